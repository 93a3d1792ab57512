"""Incremental reader of a signal event log (an ``event_log`` latency source).

Rows are parsed by ``obslib.inputs.latency_events.LineParser`` (event form, legacy form,
the kit's sample rows; bad rows are reported with file:line and skipped). The reader
resumes from a persisted ``Cursor`` (byte offset, the file's device/inode, sha256
fingerprints of the first and last 4 KB before the offset, the size last seen):

- only complete lines are consumed; a torn last line (no trailing newline) waits;
- **rename-rotation** (the path now names another inode): the old file is looked up by
  inode in the same folder; when found (and its head fingerprint matches) its remaining
  complete lines are read first, then the new file from its first data line. When it
  cannot be found, the bytes known to be lost (size last seen - offset) are reported and
  the new file is treated as a replacement (below);
- a file truncated, shrunk or replaced in place is re-read from its first data line,
  skipping events at or before the high-water mark (the newest event time consumed);
  a replacement that kept the consumed bytes continues at the offset;
- with ``now``: an event later than ``now + max_future_skew_s`` is a bad row (counted,
  never the high-water mark); an event in ``(now, now + skew]`` stops the read there: it
  and every line after it wait for a later run (``held_rows``).
"""

from __future__ import annotations

import csv
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..inputs import Problem
from ..inputs.latency_events import LineParser, complete_lines, detect_format, torn_bytes  # noqa: F401 (re-export)
from ..storage import sha256_bytes
from ..timeutil import UTC, parse_ts, to_rfc3339
from .bulk import Block, parse_block
from .model import Event, Part

FINGERPRINT_BYTES = 4096


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
    seen_size: int = 0

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
class ReadResult:
    """New events since the cursor, the cursor to persist, and what was noticed:
    ``problems`` bad rows (file:line, reason; consumed), ``torn_bytes`` an incomplete last
    line (waits), ``held_rows`` lines held back from an event after ``now`` (within the
    skew), ``future_rows`` events more than the skew after ``now`` (bad rows, also in
    ``problems``), ``rotated_from`` the old file finished after a rename-rotation,
    ``lost_bytes`` bytes of a rotated-away file that could not be found (a lower bound)."""

    events: list[Event]
    cursor: Cursor
    fmt: str
    problems: list[Problem] = field(default_factory=list)
    replaced: bool = False
    continued_after_replace: bool = False
    torn_bytes: int = 0
    replay_skipped: int = 0
    held_rows: int = 0
    future_rows: int = 0
    rotated_from: str | None = None
    lost_bytes: int = 0
    parts: list[Part] = field(default_factory=list)
    bulk: Block | None = None

    @property
    def events_read(self) -> int:
        return len(self.events) + (self.bulk.size if self.bulk is not None else 0)


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


def find_rotated(path: Path, cursor: Cursor) -> Path | None:
    """The file in ``path``'s folder that is the cursor's inode (and still starts with the
    bytes the cursor saw), or None."""
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return None
    for e in sorted(entries, key=lambda e: e.name):
        try:
            st = e.stat(follow_symlinks=False)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) != (cursor.dev, cursor.inode) or Path(e.path) == path:
            continue
        try:
            with open(e.path, "rb") as fh:
                if _sha_range(fh, 0, cursor.head_len) == cursor.head_sha:
                    return Path(e.path)
        except OSError:
            continue
    return None


class _Scan:
    """Parses complete lines into events/parts with the future guard and counts."""

    def __init__(self, parser: LineParser, rel: str, now: datetime | None, skew_s: float):
        self.parser, self.rel = parser, rel
        self.now = now
        self.limit = now + timedelta(seconds=skew_s) if now is not None else None
        self.events: list[Event] = []
        self.parts: list[Part] = []
        self.problems: list[Problem] = []
        self.held = 0
        self.future = 0
        self.bulk: Block | None = None

    def run(self, data: bytes, line0: int, hwm: datetime | None = None, bulk: bool = False) -> tuple[int, int, int]:
        """Scan complete lines of ``data``. Returns (bytes consumed, lines consumed, replay
        skipped). Stops before a held line. With ``bulk`` (and no ``hwm``) an event-form block
        whose every line passes ``bulk.parse_block``'s checks is parsed at once into
        ``self.bulk`` instead of ``self.events``."""
        if bulk and hwm is None and self.parser.fmt == "events":
            p = self.parser
            cut = data.rfind(b"\n") + 1
            blk = parse_block(data[:cut], p.header, i_ts=p._i_ts, i_lat=p._i_lat, i_status=p._i_status,
                              i_src=p._i_src, now=self.now)
            if blk is not None:
                self.bulk = blk
                return cut, blk.lines, 0
        lines, _ = complete_lines(data)
        used = 0
        skipped = 0
        for i, raw in enumerate(lines):
            item = self.parser.parse(raw, line0 + i + 1, self.problems)
            ts = item.ts if isinstance(item, Event) else None
            if ts is not None and self.limit is not None and ts > self.now:
                if ts > self.limit:
                    self.future += 1
                    self.problems.append(Problem("malformed", self.rel, f"event time {to_rfc3339(ts)} is more "
                                                 f"than the allowed skew after now ({to_rfc3339(self.now)})",
                                                 line0 + i + 1))
                else:
                    self.held = len(lines) - i
                    return used, i, skipped
            elif isinstance(item, Event):
                if hwm is not None and item.ts <= hwm:
                    skipped += 1
                else:
                    self.events.append(item)
            elif isinstance(item, Part):
                self.parts.append(item)
            used += len(raw) + 1
        return used, len(lines), skipped


def _open_header(fh, rel_path: str) -> tuple[list[str] | None, int]:
    header_line = fh.readline()
    if not header_line.endswith(b"\n"):
        return None, len(header_line)
    try:
        header = next(csv.reader([header_line.decode("utf-8-sig")]))
        detect_format(header)
    except (UnicodeDecodeError, ValueError, StopIteration, csv.Error) as exc:
        raise InputError(rel_path, str(exc), line=1) from exc
    return header, len(header_line)


def read_new_events(path: str | os.PathLike, cursor: Cursor | None, *, rel_path: str | None = None,
                    now: datetime | None = None, max_future_skew_s: float = 300.0, naive_utc: bool = False,
                    slo_of=None, window_s: int = 900, bulk: bool = False) -> ReadResult:
    """Read the complete lines appended to ``path`` since ``cursor`` (see the module doc).

    Returns the new events (no time filtering besides the future guard), the new cursor,
    and every count. With ``bulk`` a first read of a plain event-form log may return the
    events as columns (``ReadResult.bulk``, see ``obslib.latency.bulk``) instead of
    ``events``; everything else is the same. Raises ``InputError`` when the file is missing, unreadable or has an
    unrecognised header.
    """
    p = Path(path)
    rel_path = rel_path or p.name
    try:
        fh = open(p, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError as exc:
        raise InputError(rel_path, "event log not found") from exc
    except OSError as exc:
        raise InputError(rel_path, f"cannot read event log: {exc.__class__.__name__}") from exc
    rotated_from, lost, pre = None, 0, None
    with fh:
        st = os.fstat(fh.fileno())
        if cursor is not None and (st.st_dev, st.st_ino) != (cursor.dev, cursor.inode):
            old = find_rotated(p, cursor)
            if old is not None:
                pre = _finish_old(old, cursor, rel_path, now, max_future_skew_s, naive_utc, slo_of, window_s)
                if pre is not None and pre.held_rows:
                    return pre  # the old file still holds events after now: finish it first
                rotated_from = old.name
                cursor = None
            else:
                lost = max(0, cursor.seen_size - cursor.offset)
        header, header_end = _open_header(fh, rel_path)
        if header is None:  # empty file or a torn header: nothing yet
            empty = Cursor(st.st_dev, st.st_ino, 0, 0, 0, sha256_bytes(b""), 0, sha256_bytes(b""),
                           (pre.cursor.hwm_ts if pre else (cursor.hwm_ts if cursor else None)), st.st_size)
            res = ReadResult([], empty, "unknown", torn_bytes=header_end)
            return _combine(pre, res, rotated_from, lost)
        parser = LineParser(header, rel_path=rel_path, naive_utc=naive_utc, slo_of=slo_of, window_s=window_s)
        start, replaced, continued = _resume_point(fh, st, cursor, header_end)
        if rotated_from is not None:
            replaced = False
        elif replaced and not continued and cursor is not None and not lost:
            lost = max(0, cursor.seen_size - cursor.offset)  # what the cursor saw but had not consumed
        fh.seek(start)
        data = fh.read(max(0, st.st_size - start))
        line0 = 1 if start == header_end else (cursor.lines if cursor else 1)
        hwm = parse_ts(cursor.hwm_ts) if cursor and cursor.hwm_ts else None
        scan = _Scan(parser, rel_path, now, max_future_skew_s)
        used, nlines, skipped = scan.run(data, line0, hwm if (replaced and not continued) else None,
                                         bulk=bulk and pre is None)
        new_offset = start + used
        base_hwm = hwm or (parse_ts(pre.cursor.hwm_ts) if pre and pre.cursor.hwm_ts else None)
        bulk_hwm = ([datetime.fromtimestamp(scan.bulk.max_ts(), UTC)]
                    if scan.bulk is not None and scan.bulk.size else [])
        new_hwm = max([e.ts for e in scan.events] + bulk_hwm + ([base_hwm] if base_hwm else []), default=None)
        fp_len = min(new_offset, FINGERPRINT_BYTES)
        new_cursor = Cursor(st.st_dev, st.st_ino, new_offset, line0 + nlines, fp_len, _sha_range(fh, 0, fp_len),
                            fp_len, _sha_range(fh, new_offset - fp_len, fp_len),
                            to_rfc3339(new_hwm) if new_hwm else None, st.st_size)
    torn = torn_bytes(data)
    res = ReadResult(scan.events, new_cursor, parser.fmt, scan.problems, replaced, continued, torn, skipped,
                     scan.held, scan.future, parts=scan.parts, bulk=scan.bulk)
    return _combine(pre, res, rotated_from, lost)


def _finish_old(old: Path, cursor: Cursor, rel_path: str, now, skew, naive_utc, slo_of,
                window_s) -> ReadResult | None:
    """The rest of a rotated-away file after the cursor (a final line without newline is a
    bad row: the writer has moved on). The result's cursor still points at that file."""
    with open(old, "rb") as fh:
        st = os.fstat(fh.fileno())
        header, header_end = _open_header(fh, f"{rel_path} (rotated: {old.name})")
        if header is None:
            return None
        parser = LineParser(header, rel_path=f"{rel_path} (rotated: {old.name})", naive_utc=naive_utc,
                            slo_of=slo_of, window_s=window_s)
        start = max(cursor.offset, header_end)
        fh.seek(start)
        data = fh.read(max(0, st.st_size - start))
        scan = _Scan(parser, parser.rel_path, now, skew)
        used, nlines, _ = scan.run(data, cursor.lines if cursor.offset >= header_end else 1)
        torn = torn_bytes(data)
        if torn and not scan.held:
            scan.problems.append(Problem("malformed", parser.rel_path, f"incomplete last line ({torn} bytes) in "
                                         "a rotated file", cursor.lines + nlines + 1))
        new_offset = start + used
        hwm = max([e.ts for e in scan.events] + ([parse_ts(cursor.hwm_ts)] if cursor.hwm_ts else []), default=None)
        fp_len = min(new_offset, FINGERPRINT_BYTES)
        cur = Cursor(st.st_dev, st.st_ino, new_offset, cursor.lines + nlines, fp_len, _sha_range(fh, 0, fp_len),
                     fp_len, _sha_range(fh, new_offset - fp_len, fp_len), to_rfc3339(hwm) if hwm else None,
                     st.st_size)
    return ReadResult(scan.events, cur, parser.fmt, scan.problems, held_rows=scan.held, future_rows=scan.future,
                      rotated_from=old.name, parts=scan.parts)


def _combine(pre: ReadResult | None, res: ReadResult, rotated_from: str | None, lost: int) -> ReadResult:
    res.rotated_from = rotated_from
    res.lost_bytes = lost
    if pre is not None:
        res.events = pre.events + res.events
        res.parts = pre.parts + res.parts
        res.problems = pre.problems + res.problems
        res.future_rows += pre.future_rows
    return res
