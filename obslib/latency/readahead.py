"""Read-ahead for bulk reads: the next batch is read (parsed) in a worker thread while the
caller works on the current one.

pyarrow releases the GIL while it parses a CSV block, and numpy while it sorts and counts,
so a streaming reader and the code that folds its batches into sketches
(``sketch.DenseGroups``) use both cores instead of taking turns: the hourly rollup of 1e7
events (``bench/latency.py``) went from ~1.8 s to ~1.6 s. At most ``depth`` batches wait in
memory besides the one being worked on.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_END = object()


def read_ahead(batches: Iterable[T], depth: int = 2) -> Iterator[T]:
    """Yield the items of ``batches`` in order, reading up to ``depth`` ahead in a daemon
    thread. An exception raised by ``batches`` is raised here, at the item where it
    happened. When the caller stops early (``break``, an exception, ``close()``), the
    worker stops after the item it is reading."""
    q: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in batches:
                if not put(item):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            put(exc)
            return
        put(_END)

    worker = threading.Thread(target=work, name="obs-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


__all__ = ["read_ahead"]
