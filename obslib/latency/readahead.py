"""Read-ahead for bulk reads: the next batches are read (parsed) in worker threads while the
caller works on the current one; a big CSV file is read as byte ranges in parallel.

pyarrow releases the GIL while it parses a CSV block, and numpy while it sorts and counts,
so readers and the code that folds their batches into sketches (``sketch.DenseGroups``)
use both cores instead of taking turns. The hourly rollup of 1e7 events (``bench/latency.py``,
454 MB of CSV) took ~1.8 s with one reader in the caller's thread, ~1.6 s with it read
ahead, ~1.4 s with the file read as two byte ranges (``csv_batches``, 4 MB blocks, peak
~490 MiB). At most ``depth`` batches wait in memory besides the one being worked on.
"""

from __future__ import annotations

import io
import os
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
    yield from read_parallel([batches], depth)


def read_parallel(sources: list[Iterable[T]], depth: int = 2) -> Iterator[T]:
    """The items of every iterable in ``sources``, each read in its own daemon thread (up to
    ``depth`` waiting in all), yielded as they come: each source's items keep their order,
    the sources' items interleave. An exception in any source is raised here; stopping early
    stops every worker after the item it is reading."""
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

    def work(src: Iterable[T]) -> None:
        try:
            for item in src:
                if not put(item):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            put(exc)
            return
        put(_END)

    for src in sources:
        threading.Thread(target=work, args=(src,), name="obs-read-ahead", daemon=True).start()
    try:
        left = len(sources)
        while left:
            item = q.get()
            if item is _END:
                left -= 1
                continue
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


class _Range(io.RawIOBase):
    """Bytes ``[start, end)`` of a file as a read-only stream (``os.pread``: no shared offset)."""

    def __init__(self, fd: int, start: int, end: int):
        self._fd, self._pos, self._end = fd, start, end

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = min(len(b), self._end - self._pos)
        if n <= 0:
            return 0
        data = os.pread(self._fd, n, self._pos)
        b[:len(data)] = data
        self._pos += len(data)
        return len(data)


def csv_ranges(path: str | os.PathLike, parts: int = 2) -> tuple[list[str], list[tuple[int, int]]]:
    """The header's column names of the CSV file ``path`` and ``parts`` byte ranges of its
    data lines, each starting at a line's first byte and ending after a newline (the last
    at the end of the file)."""
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        header = fh.readline()
        starts = [fh.tell()]
        for i in range(1, parts):
            fh.seek(max(starts[-1], size * i // parts))
            fh.readline()  # to the start of the next line
            starts.append(min(fh.tell(), size))
    names = header.decode("utf-8").rstrip("\r\n").split(",")
    bounds = [*starts, size]
    return names, [(a, b) for a, b in zip(bounds, bounds[1:], strict=False) if b > a]


def csv_batches(path: str | os.PathLike, *, convert_options, block_size: int = 8 << 20, parts: int = 2,
                depth: int = 2) -> Iterator:
    """Record batches of the CSV file ``path`` (a header line, then plain lines: no quoted
    newlines), read as ``parts`` byte ranges by pyarrow streaming readers in parallel
    threads (``read_parallel``): about ``parts`` times faster on as many cores, the batches
    of different ranges interleaved. Memory: at most ``depth`` batches waiting, plus one
    block being parsed per range."""
    import pyarrow.csv as pacsv

    names, ranges = csv_ranges(path, parts)
    fd = os.open(path, os.O_RDONLY)
    try:
        readers = [pacsv.open_csv(io.BufferedReader(_Range(fd, a, b), buffer_size=1 << 20),
                                  read_options=pacsv.ReadOptions(block_size=block_size, column_names=names,
                                                                         use_threads=False),
                                  convert_options=convert_options) for a, b in ranges]
        yield from read_parallel(readers, depth)
    finally:
        os.close(fd)


__all__ = ["csv_batches", "csv_ranges", "read_ahead", "read_parallel"]
