"""Writing an export's dataset files into its staging folder in the background while it
keeps computing.

As a dataset's bytes are produced (``stream``: chunk by chunk while the JSON is still
being encoded; ``stage``: a whole file), a background thread writes them to
``<stage>/<name>`` (the run's private staging folder, ``layout.new_stage``),
``fdatasync``ing every ``SYNC_EVERY`` bytes on the way and fsyncing at the end (write and
sync release the GIL, so the disk work overlaps the encoding and the rest of the export).
``discard`` removes a failed dataset's file; ``wait`` returns once every kept file is
complete on disk (re-raising a write error, ``OSError``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from . import _faults

SYNC_EVERY = 64 << 20  # bytes written between fdatasync calls while streaming


class _File:
    """One staged file; every method runs on the stager's thread, in submission order. A
    failure is kept and raised by ``finish``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fh = None
        self.unsynced = 0
        self.error: BaseException | None = None

    def open(self) -> None:
        try:
            self.fh = open(self.path, "wb")  # noqa: SIM115 - closed by finish/abort
        except BaseException as exc:  # noqa: BLE001 - reported by finish
            self.error = exc

    def write(self, chunk: bytes) -> None:
        if self.error is not None:
            return
        try:
            self.fh.write(chunk)
            self.unsynced += len(chunk)
            if self.unsynced >= SYNC_EVERY:  # start the disk writes now, not all at the final fsync
                self.fh.flush()
                os.fdatasync(self.fh.fileno())
                self.unsynced = 0
        except BaseException as exc:  # noqa: BLE001 - reported by finish
            self.error = exc

    def finish(self) -> Path:
        try:
            if self.error is not None:
                raise self.error
            self.fh.flush()
            os.fsync(self.fh.fileno())
            self.fh.close()
            os.chmod(self.path, 0o644)
            _faults.checkpoint(f"staged:{self.path.name}")
            return self.path
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        if self.fh is not None:
            with contextlib.suppress(OSError):
                self.fh.close()
        with contextlib.suppress(OSError):
            self.path.unlink()


def _unlink(p: Path) -> None:
    with contextlib.suppress(OSError):
        p.unlink()


class Stager:
    """Background writer of one export's dataset files into ``stage`` (see module doc).
    Use as a context manager."""

    def __init__(self, stage: Path) -> None:
        self.folder = Path(stage)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dashboard-stage")
        self._open: dict[str, _File] = {}
        self._staged: dict[str, Future] = {}

    def __enter__(self) -> Stager:
        return self

    def __exit__(self, *exc) -> None:
        self._pool.shutdown(wait=True)

    def stream(self, fname: str) -> Callable[[bytes], None]:
        """Start staged file ``fname``; returns ``write(chunk)``. ``end(fname)`` completes it."""
        f = _File(self.folder / fname)
        self._pool.submit(f.open)
        self._open[fname] = f

        def write(chunk: bytes) -> None:
            self._pool.submit(f.write, chunk)

        return write

    def end(self, fname: str) -> None:
        """All chunks of ``fname`` were written: fsync and close (in the background)."""
        self._staged[fname] = self._pool.submit(self._open.pop(fname).finish)

    def stage(self, fname: str, data: bytes) -> None:
        """Write ``data`` as staged file ``fname`` in the background."""
        self.stream(fname)(data)
        self.end(fname)

    def discard(self, fname: str) -> None:
        """Drop ``fname`` (streaming or staged): its file is removed."""
        f = self._open.pop(fname, None)
        if f is not None:
            self._pool.submit(f.abort)
        fut = self._staged.pop(fname, None)
        if fut is not None:
            self._pool.submit(_unlink, self.folder / fname)

    def wait(self) -> list[Path]:
        """Block until every kept file is on disk; returns their paths (re-raises a write error)."""
        return [fut.result() for fut in list(self._staged.values())]
