"""Writing an export's dataset files to disk in the background while it keeps computing.

As a dataset's bytes are produced (``stream``: chunk by chunk while the JSON is still
being encoded; ``stage``: a whole file), a background thread writes them twice: a hidden
temp file in the bundle folder (``out/dashboard/.<name>.<random>.tmp``) and one in the
history root (``ops/dashboard_export_history/.<job_id>.<name>.<random>.tmp``), each
``fdatasync``ed every ``SYNC_EVERY`` bytes on the way and fsynced at the end (write and
sync release the GIL, so the disk work overlaps the encoding and the rest of the export).
Under the export lock, ``publish`` ``os.replace``s the first into place (the same atomic
write as ``storage.atomic_write_bytes``; the caller fsyncs the folder), and
``history_files`` hands the second to ``history.record_history``, which renames it into
the history entry instead of copying the published file back: two independent files
(not links) with the same bytes. ``close`` removes every temp file not used (a failed
dataset, an exception).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

SYNC_EVERY = 64 << 20  # bytes written between fdatasync calls while streaming


class _Pair:
    """The two temp files of one bundle file; every method runs on the stager's thread, in
    submission order. A failure is kept and raised by ``finish``."""

    def __init__(self, bundle_dir: Path, history_root: Path, job_id: str, fname: str) -> None:
        self.targets = ((bundle_dir, f".{fname}."), (history_root, f".{job_id}.{fname}."))
        self.paths: list[Path] = []
        self.files: list = []
        self.unsynced = 0
        self.error: BaseException | None = None

    def open(self) -> None:
        try:
            for folder, prefix in self.targets:
                folder.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=str(folder))
                self.paths.append(Path(tmp))
                self.files.append(os.fdopen(fd, "wb"))
        except BaseException as exc:  # noqa: BLE001 - reported by finish
            self.error = exc

    def write(self, chunk: bytes) -> None:
        if self.error is not None:
            return
        try:
            for fh in self.files:
                fh.write(chunk)
            self.unsynced += len(chunk)
            if self.unsynced >= SYNC_EVERY:  # start the disk writes now, not all at the final fsync
                for fh in self.files:
                    fh.flush()
                    os.fdatasync(fh.fileno())
                self.unsynced = 0
        except BaseException as exc:  # noqa: BLE001 - reported by finish
            self.error = exc

    def finish(self) -> tuple[Path, Path]:
        try:
            if self.error is not None:
                raise self.error
            for fh, p in zip(self.files, self.paths, strict=True):
                fh.flush()
                os.fsync(fh.fileno())
                fh.close()
                os.chmod(p, 0o644)
            return self.paths[0], self.paths[1]
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        for fh in self.files:
            with contextlib.suppress(OSError):
                fh.close()
        for p in self.paths:
            with contextlib.suppress(OSError):
                p.unlink()


class Stager:
    """Background writer of one export's dataset files (see module doc). Use as a context
    manager; ``publish`` re-raises a write error (``OSError``)."""

    def __init__(self, bundle_dir: Path, history_root: Path, job_id: str) -> None:
        self.bundle_dir, self.history_root, self.job_id = Path(bundle_dir), Path(history_root), job_id
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dashboard-stage")
        self._pairs: list[_Pair] = []
        self._open: dict[str, _Pair] = {}
        self._staged: dict[str, Future] = {}
        self._history: dict[str, Path] = {}

    def __enter__(self) -> Stager:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def stream(self, fname: str) -> Callable[[bytes], None]:
        """Start bundle file ``fname``; returns ``write(chunk)``. ``end(fname)`` completes it."""
        pair = _Pair(self.bundle_dir, self.history_root, self.job_id, fname)
        self._pairs.append(pair)
        self._pool.submit(pair.open)
        self._open[fname] = pair

        def write(chunk: bytes) -> None:
            self._pool.submit(pair.write, chunk)

        return write

    def end(self, fname: str) -> None:
        """All chunks of ``fname`` were written: fsync and close (in the background)."""
        self._staged[fname] = self._pool.submit(self._open.pop(fname).finish)

    def stage(self, fname: str, data: bytes) -> None:
        """Write ``data`` for bundle file ``fname`` (both temp files) in the background."""
        self.stream(fname)(data)
        self.end(fname)

    def discard(self, fname: str) -> None:
        """Drop ``fname`` (streaming or staged): its temp files are removed."""
        pair = self._open.pop(fname, None)
        if pair is not None:
            self._pool.submit(pair.abort)
        self._staged.pop(fname, None)

    def publish(self, fname: str) -> None:
        """Wait for ``fname``'s temp files, then atomically replace ``bundle_dir/fname``."""
        bundle_tmp, history_tmp = self._staged.pop(fname).result()
        self._history[fname] = history_tmp
        os.replace(bundle_tmp, self.bundle_dir / fname)

    def history_files(self) -> dict[str, Path]:
        """``{fname: fsynced temp file with the published bytes}`` for ``record_history``
        (which renames them; any left are removed by ``close``)."""
        return dict(self._history)

    def close(self) -> None:
        """Wait for the writer, then remove every temp file that was not used (renamed)."""
        self._pool.shutdown(wait=True)
        for pair in self._pairs:
            pair.abort()  # closes handles; unlinking a renamed path fails harmlessly
        self._pairs.clear()
        self._staged.clear()
        self._history.clear()
