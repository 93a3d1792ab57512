"""The live raw-sample file ``ops/signal_latency.csv`` and its write-ahead journal.

Row format (one per source per sample run)::

    timestamp_utc,source,latency_ms,p95_latency_ms,status,samples_in_window,job_id

``latency_ms`` is the window's median and ``p95_latency_ms`` its p95 (ms, 3 decimals,
empty when there is no value); ``status`` is ok|breach|error|no_data.

Commit protocol (caller holds ``ops/signal_latency.lock``): the run writes one journal
file atomically holding the exact bytes to append, the live file's size before the
append, the new event-log cursors, the new streak state and the alert payload (if any);
``apply_journal`` then truncates the live file back to that size, appends the bytes,
writes the cursors, the state and the outbox file (each atomically) and deletes the
journal. Every step is idempotent, so after a ``kill -9`` anywhere the next run's
``apply_journal`` finishes the commit exactly once, or (no journal yet) nothing of the
killed run is visible.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..storage import atomic_write_bytes, atomic_write_json, canonical_json_bytes, fsync_dir, read_json
from ..timeutil import parse_ts
from ._faults import checkpoint
from .paths import LatencyPaths

RAW_COLUMNS = ["timestamp_utc", "source", "latency_ms", "p95_latency_ms", "status", "samples_in_window", "job_id"]
HEADER = ",".join(RAW_COLUMNS) + "\n"
STATE_SCHEMA_VERSION = "1"


def fmt_ms(v: float | None) -> str:
    """Milliseconds with 3 decimals, or empty for None."""
    return "" if v is None else f"{v:.3f}"


def format_row(timestamp: str, source: str, latency_ms: float | None, p95_ms: float | None, status: str,
               samples: int, job_id: str) -> str:
    """One raw CSV line (newline-terminated). Source names must not contain , or quotes."""
    if any(c in source for c in ',"\n\r'):
        raise ValueError(f"latency source name {source!r} must not contain commas, quotes or newlines")
    return f"{timestamp},{source},{fmt_ms(latency_ms)},{fmt_ms(p95_ms)},{status},{samples},{job_id}\n"


def read_json_or(path: Path, default: Any) -> Any:
    """A JSON file's content, ``default`` when missing. Raises ``InputError`` when corrupt."""
    if not path.exists():
        return default
    return read_json(path)


def file_size(path: Path) -> int:
    """Size in bytes, 0 when missing."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def first_row_time(path: Path):
    """Aware UTC time of the first data row of the live file, or None (empty/missing)."""
    try:
        with open(path, "rb") as fh:
            fh.readline()
            line = fh.readline()
    except FileNotFoundError:
        return None
    if not line.endswith(b"\n"):
        return None
    try:
        return parse_ts(line.split(b",", 1)[0].decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None


def write_journal(paths: LatencyPaths, *, job_id: str, append: str, offsets: dict, state: dict,
                  outbox_name: str | None, outbox_payload: dict | None) -> None:
    """Record the run's whole commit atomically (see the module docstring)."""
    size = file_size(paths.live)
    if size == 0:
        append = HEADER + append
    journal = {"job_id": job_id, "live_size_before": size, "append": append, "offsets": offsets,
               "state": state, "outbox_name": outbox_name, "outbox_payload": outbox_payload}
    atomic_write_bytes(paths.journal, canonical_json_bytes(journal))


def _append_at(path: Path, size_before: int, data: bytes) -> None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        cur = os.fstat(fd).st_size
        if cur > size_before:
            os.ftruncate(fd, size_before)  # a torn or complete earlier attempt of this journal
            cur = size_before
        os.lseek(fd, cur, os.SEEK_SET)
        half = len(data) // 2
        for i, chunk in enumerate((data[:half], data[half:])):
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view):]
            if i == 0:
                checkpoint("live_partial")  # a torn append, for the crash trials
        os.fsync(fd)
    finally:
        os.close(fd)


def apply_journal(paths: LatencyPaths) -> str | None:
    """Finish a pending commit, if any. Returns the journal's job id (None when none)."""
    j = read_json_or(paths.journal, None)
    if j is None:
        return None
    _append_at(paths.live, int(j["live_size_before"]), j["append"].encode("utf-8"))
    fsync_dir(paths.live.parent)
    checkpoint("live_appended")
    atomic_write_json(paths.offsets, j["offsets"])
    checkpoint("offsets_written")
    atomic_write_json(paths.state, j["state"])
    checkpoint("state_written")
    if j.get("outbox_name") and j.get("outbox_payload") is not None:
        atomic_write_bytes(paths.outbox_dir / j["outbox_name"], canonical_json_bytes(j["outbox_payload"]))
        checkpoint("outbox_written")
    os.unlink(paths.journal)
    fsync_dir(paths.journal.parent)
    checkpoint("journal_removed")
    return j["job_id"]
