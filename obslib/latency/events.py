"""Incremental reader of a signal event log (an ``event_log`` latency source).

Formats, told apart by the header (row parsing is shared with
``obslib.inputs.latency_events``):

- ``timestamp_utc,latency_ms,status,detail,source`` (latency in ms);
- legacy ``signal_id,ts_emit,ts_ack,status,detail``: the event time is ``ts_ack`` and
  latency = ``ts_ack - ts_emit`` in ms.

The reader resumes from a persisted ``Cursor`` (byte offset plus the file's device/inode
and sha256 fingerprints of the first and last 4 KB before the offset):

- only complete lines are consumed; a torn last line (no trailing newline) is left for
  the next run;
- a file that was truncated, shrunk or replaced (other inode, or other bytes before the
  offset) is re-read from its first data line, skipping events at or before the
  high-water mark (the newest event time already consumed), so no event is counted twice;
- a file replaced by a copy that keeps the consumed bytes unchanged (an atomic rewrite
  that only appended) continues at the offset.
"""

from __future__ import annotations

import csv
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..inputs import Problem
from ..inputs.latency_events import normalise_status, parse_latency_row
from ..storage import sha256_bytes
from ..timeutil import parse_ts, to_rfc3339

FINGERPRINT_BYTES = 4096
MODERN_COLUMNS = {"timestamp_utc", "latency_ms", "status"}
LEGACY_COLUMNS = {"signal_id", "ts_emit", "ts_ack", "status"}


@dataclass
class Cursor:
    """Where the last run stopped in one event log (persisted in the offsets file)."""

    dev: int
    inode: int
    offset: int
    lines: int
    head_len: int
    head_sha: str
    tail_len: int
    tail_sha: str
    hwm_ts: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Cursor | None:
        if not d:
            return None
        try:
            return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})
        except TypeError:
            return None


@dataclass
class Event:
    """One event: aware UTC time, latency in ms (None for an error without a latency)."""

    ts: datetime
    latency_ms: float | None
    error: bool
    source: str | None = None  # the row's ``source`` column, when the log has one


@dataclass
class ReadResult:
    """New events since the cursor, the cursor to persist, and what was noticed."""

    events: list[Event]
    cursor: Cursor
    fmt: str
    problems: list[Problem] = field(default_factory=list)
    replaced: bool = False
    continued_after_replace: bool = False
    torn_bytes: int = 0
    replay_skipped: int = 0


def detect_format(header: list[str]) -> str:
    """``modern`` or ``legacy`` from a header row; raises ValueError otherwise."""
    cols = {c.strip() for c in header}
    if MODERN_COLUMNS <= cols:
        return "modern"
    if LEGACY_COLUMNS <= cols:
        return "legacy"
    raise ValueError(f"unrecognised event-log header {header!r} (expected timestamp_utc,latency_ms,status,... "
                     "or signal_id,ts_emit,ts_ack,status,detail)")


def parse_event(row: dict[str, str], *, rel_path: str, line: int, problems: list[Problem]) -> Event | None:
    """One CSV row (as a dict) as an ``Event``; a bad row adds a ``Problem`` and gives None.
    An error-status row may have an empty latency."""
    status = normalise_status(row.get("status"))
    lat_raw = (row.get("latency_ms") or "").strip() if "latency_ms" in row else None
    if status == "error" and (lat_raw == "" or (lat_raw is None and not (row.get("ts_ack") or "").strip())):
        key = "timestamp_utc" if "timestamp_utc" in row else "ts_emit"
        try:
            return Event(parse_ts(row.get(key) or ""), None, True, row.get("source") or None)
        except ValueError as exc:
            problems.append(Problem("malformed", rel_path, str(exc), line))
            return None
    s = parse_latency_row(row, rel_path=rel_path, line=line, problems=problems)
    if s is None:
        return None
    if s["latency_ms"] is None:
        problems.append(Problem("malformed", rel_path, "no latency_ms", line))
        return None
    return Event(s["timestamp"], float(s["latency_ms"]), s["status"] == "error", row.get("source") or None)


def _sha_range(fh, start: int, length: int) -> str:
    fh.seek(start)
    return sha256_bytes(fh.read(length))


def _resume_point(fh, st: os.stat_result, cursor: Cursor | None, header_end: int) -> tuple[int, bool, bool]:
    """(start offset, replaced, continued_after_replace)."""
    if cursor is None:
        return header_end, False, False
    if st.st_size < cursor.offset or cursor.offset < header_end:
        return header_end, True, False
    head_ok = _sha_range(fh, 0, cursor.head_len) == cursor.head_sha
    same_file = (st.st_dev, st.st_ino) == (cursor.dev, cursor.inode)
    if same_file and head_ok:
        return cursor.offset, False, False
    if head_ok and _sha_range(fh, cursor.offset - cursor.tail_len, cursor.tail_len) == cursor.tail_sha:
        return cursor.offset, True, True
    return header_end, True, False


def read_new_events(path: str | os.PathLike, cursor: Cursor | None, *, rel_path: str | None = None) -> ReadResult:
    """Read the complete event lines appended to ``path`` since ``cursor``.

    Returns every new parsed event (no time filtering), the new cursor (offset after the
    last complete line) and the problems found (bad rows: file, line, reason; they are
    consumed and counted, not retried). Raises ``InputError`` when the file is missing,
    unreadable or has an unrecognised header.
    """
    p = Path(path)
    rel_path = rel_path or p.name
    try:
        fh = open(p, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError as exc:
        raise InputError(rel_path, "event log not found") from exc
    except OSError as exc:
        raise InputError(rel_path, f"cannot read event log: {exc.__class__.__name__}") from exc
    with fh:
        st = os.fstat(fh.fileno())
        header_line = fh.readline()
        if not header_line.endswith(b"\n"):  # empty file or a torn header: nothing yet
            empty = Cursor(st.st_dev, st.st_ino, 0, 0, 0, sha256_bytes(b""), 0, sha256_bytes(b""),
                           cursor.hwm_ts if cursor else None)
            return ReadResult([], empty, "unknown", torn_bytes=len(header_line))
        header_end = len(header_line)
        try:
            header = next(csv.reader([header_line.decode("utf-8-sig")]))
            fmt = detect_format(header)
        except (UnicodeDecodeError, ValueError, StopIteration) as exc:
            raise InputError(rel_path, str(exc), line=1) from exc
        header = [h.strip() for h in header]
        start, replaced, continued = _resume_point(fh, st, cursor, header_end)
        fh.seek(start)
        data = fh.read(max(0, st.st_size - start))
        cut = data.rfind(b"\n") + 1
        new_offset = start + cut
        line0 = 1 if start == header_end else (cursor.lines if cursor else 1)
        problems: list[Problem] = []
        events: list[Event] = []
        hwm = parse_ts(cursor.hwm_ts) if cursor and cursor.hwm_ts else None
        replay_skipped = 0
        for i, raw in enumerate(data[:cut].splitlines()):
            line = line0 + i + 1
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                problems.append(Problem("malformed", rel_path, "not UTF-8", line))
                continue
            if not text.strip():
                continue
            row = next(csv.reader([text]))
            if len(row) != len(header):
                problems.append(Problem("malformed", rel_path,
                                        f"{len(row)} fields, header has {len(header)}", line))
                continue
            ev = parse_event(dict(zip(header, row, strict=True)), rel_path=rel_path, line=line, problems=problems)
            if ev is None:
                continue
            if replaced and not continued and hwm is not None and ev.ts <= hwm:
                replay_skipped += 1
                continue
            events.append(ev)
        new_hwm = max([e.ts for e in events] + ([hwm] if hwm else []), default=None)
        fp_len = min(new_offset, FINGERPRINT_BYTES)  # head and tail fingerprints
        new_cursor = Cursor(st.st_dev, st.st_ino, new_offset, line0 + data[:cut].count(b"\n"),
                            fp_len, _sha_range(fh, 0, fp_len),
                            fp_len, _sha_range(fh, new_offset - fp_len, fp_len),
                            to_rfc3339(new_hwm) if new_hwm else None)
    return ReadResult(events, new_cursor, fmt, problems, replaced, continued, len(data) - cut, replay_skipped)
