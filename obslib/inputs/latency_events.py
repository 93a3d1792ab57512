"""The one reader of latency lines: event logs and the kit's own sample rows.

Formats, told apart by the header:

- event form ``timestamp_utc,latency_ms,status[,detail][,source]``: one event per row;
- legacy ``signal_id,ts_emit,ts_ack,status,detail``: event time ``ts_ack``, latency
  ``ts_ack - ts_emit`` (ms), source ``legacy``;
- the kit's sample form ``timestamp_utc,source,latency_ms,p95_latency_ms,status,...``: a
  row is a window ``Part`` (with a ``sketch`` column: the window's distribution; without,
  the old layout: one value, ``latency_ms``, in the window of ``timestamp_utc``).

Rules, the same for every job (``obslib.latency.events`` reads incrementally with them,
``read_latency_parts`` reads a whole file for the weekly payload):

- a record is complete only when its newline has arrived; the bytes after the last
  newline are never parsed (they wait for a later run);
- a line longer than ``MAX_LINE_BYTES``, a line that is not UTF-8 or CSV, a row with the
  wrong field count, an empty timestamp, a timestamp without a zone (unless
  ``latency.naive_timestamps = "utc"``), a latency that is not a number by ``parse_ms``
  or is negative, a status not listed below, a source name that is not an identifier: a
  bad row, reported as ``Problem`` with the file and line, and skipped (the cursor moves
  past it).

Numbers (``parse_ms``): ASCII decimal only, ``[-]digits[.digits][e[+-]digits]`` (or
``.5``), nothing around it: no spaces, no ``_`` separators, no full-width or other
Unicode digits, no ``inf``/``nan``, no hex. Counts of the kit's rows: ASCII digits only.

Statuses (case-insensitive, no spaces around): an event (event and legacy forms) is a
success for ``OK_STATUSES`` (``success``, ``ok``, or an empty cell) and an error event for
``ERROR_STATUSES`` (``error``, ``failed``, ``failure``, ``timeout``, ``err``); the kit's
own sample rows carry ``SAMPLE_STATUSES`` (``ok``, ``breach``, ``insufficient``,
``no_data``, or an error status). Any other word is a bad row: it is never guessed to be a
success.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from ..latency.model import Event, Part, epoch, floor_to, parts_from_events
from ..safepath import IDENTIFIER_RE
from ..timeutil import UTC
from . import Problem

LATENCY_REL = "ops/signal_latency.csv"
OK_STATUSES = frozenset({"success", "ok", ""})
ERROR_STATUSES = frozenset({"error", "failed", "failure", "timeout", "err"})
SAMPLE_STATUSES = frozenset({"ok", "breach", "insufficient", "no_data"}) | ERROR_STATUSES
_NUMBER = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_COUNT = re.compile(r"[0-9]+")
MAX_LINE_BYTES = 64 * 1024
EVENT_COLUMNS = {"timestamp_utc", "latency_ms", "status"}
LEGACY_COLUMNS = {"signal_id", "ts_emit", "ts_ack", "status"}
SAMPLE_COLUMNS = {"timestamp_utc", "source", "latency_ms", "p95_latency_ms", "status"}


def _status_text(allowed: frozenset[str]) -> str:
    return ", ".join(sorted(x for x in allowed if x)) + (" or empty" if "" in allowed else "")


def event_is_error(raw: str | None) -> bool:
    """An event row's status: False for ``OK_STATUSES``, True for ``ERROR_STATUSES``
    (case-insensitive). Raises ValueError for any other word (a bad row)."""
    s = (raw or "").lower()
    if s in OK_STATUSES:
        return False
    if s in ERROR_STATUSES:
        return True
    raise ValueError(f"status {(raw or '')[:40]!r} is not one of {_status_text(OK_STATUSES | ERROR_STATUSES)}")


def sample_status(raw: str | None) -> str:
    """A kit sample row's status, lower case, one of ``SAMPLE_STATUSES``; ValueError
    otherwise."""
    s = (raw or "").lower()
    if s not in SAMPLE_STATUSES:
        raise ValueError(f"status {(raw or '')[:40]!r} is not one of {_status_text(SAMPLE_STATUSES)}")
    return s


def parse_ms(value: str, column: str = "latency_ms") -> float:
    """A latency cell (ms) by the strict number rule (module doc): a finite float >= 0.
    Raises ValueError naming the column and the value."""
    if not _NUMBER.fullmatch(value):
        raise ValueError(f"{column} {value[:40]!r} is not a number")
    v = float(value)
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{column} {value[:40]!r} is not a finite number >= 0")
    return v


def parse_count(value: str | None, column: str) -> int:
    """A count cell of the kit's rows: ASCII digits (empty = 0). ValueError otherwise."""
    if not value:
        return 0
    if not _COUNT.fullmatch(value):
        raise ValueError(f"{column} {value[:40]!r} is not a count (ASCII digits)")
    return int(value)


def detect_format(header: list[str]) -> str:
    """``samples`` (the kit's rows), ``events`` or ``legacy``; ValueError otherwise."""
    cols = {c.strip() for c in header}
    if SAMPLE_COLUMNS <= cols:
        return "samples"
    if EVENT_COLUMNS <= cols:
        return "events"
    if LEGACY_COLUMNS <= cols:
        return "legacy"
    raise ValueError(f"unrecognised event-log header {header!r} (expected timestamp_utc,latency_ms,status,... "
                     "or signal_id,ts_emit,ts_ack,status,detail or the kit's sample columns)")


def event_time(value: str | None, *, naive_utc: bool = False, column: str = "timestamp_utc") -> datetime:
    """An event timestamp as aware UTC. Raises ValueError when empty, unparsable or (unless
    ``naive_utc``) without a zone."""
    s = (value or "").strip()
    if not s:
        raise ValueError(f"empty {column}")
    iso = s[:-1] + "+00:00" if s.endswith(("Z", "z")) else s
    try:
        ts = datetime.fromisoformat(iso)
    except ValueError as exc:
        raise ValueError(f"{column} {s[:40]!r} is not a timestamp") from exc
    if ts.tzinfo is None:
        if not naive_utc:
            raise ValueError(f"{column} {s[:40]!r} has no time zone (write Z or an offset, or set "
                             "latency.naive_timestamps = \"utc\")")
        ts = ts.replace(tzinfo=UTC)
    ts = ts.astimezone(UTC)
    return ts


def _latency(value: str | None, column: str) -> float | None:
    """An optional latency cell: None when empty, else ``parse_ms``."""
    return parse_ms(value, column) if value else None


def _source(value: str | None) -> str | None:
    s = (value or "").strip()
    if not s:
        return None
    if not IDENTIFIER_RE.fullmatch(s) or ".." in s:
        raise ValueError(f"source {s[:40]!r} is not an identifier ([A-Za-z0-9._-], 1-128 characters)")
    return s


class LineParser:
    """Parses the data lines of one file whose header line was ``header``."""

    def __init__(self, header: list[str], *, rel_path: str, naive_utc: bool = False,
                 slo_of: Callable[[str], float] | None = None, window_s: int = 900):
        self.header = [h.strip() for h in header]
        self.fmt = detect_format(self.header)
        self.rel_path = rel_path
        self.naive_utc = naive_utc
        self.slo_of = slo_of or (lambda s: float("inf"))
        self.window_s = window_s
        if self.fmt == "events":
            h = self.header
            self._i_ts, self._i_lat, self._i_status = (h.index("timestamp_utc"), h.index("latency_ms"),
                                                       h.index("status"))
            self._i_src = h.index("source") if "source" in h else None
            self._names: dict[str, str] = {}

    def parse(self, raw: bytes, line: int, problems: list[Problem]) -> Event | Part | None:
        """One complete line (without its newline): an ``Event``, a ``Part`` (sample form),
        or None (blank line, or a bad row: a ``Problem`` is added)."""
        if len(raw) > MAX_LINE_BYTES:
            problems.append(Problem("malformed", self.rel_path, f"line of {len(raw)} bytes is longer than "
                                                                f"{MAX_LINE_BYTES}", line))
            return None
        try:
            text = raw.decode("utf-8").rstrip("\r")
        except UnicodeDecodeError:
            problems.append(Problem("malformed", self.rel_path, "not UTF-8", line))
            return None
        if '"' in text:
            try:
                row = next(csv.reader([text]))
            except (csv.Error, StopIteration) as exc:
                problems.append(Problem("malformed", self.rel_path, f"not CSV: {exc}", line))
                return None
        elif not text.strip():
            return None
        else:
            row = text.split(",")
        if len(row) != len(self.header):
            if not text.strip():
                return None
            problems.append(Problem("malformed", self.rel_path,
                                    f"{len(row)} fields, header has {len(self.header)}", line))
            return None
        try:
            if self.fmt == "events":
                return self._fast_event(row)
            d = dict(zip(self.header, row, strict=True))
            if self.fmt == "samples":
                from ..latency.store import part_from_row

                return part_from_row(d, naive_utc=self.naive_utc, slo_of=self.slo_of, window_s=self.window_s)
            return self._event(d)
        except ValueError as exc:
            problems.append(Problem("malformed", self.rel_path, str(exc), line))
            return None

    def _fast_event(self, row: list[str]) -> Event:
        """The event form by column index (the hot path of the sampler)."""
        ts_raw = row[self._i_ts]
        ts = None
        if ts_raw[-1:] == "Z":
            try:
                ts = datetime.fromisoformat(ts_raw)  # Python 3.11: "Z" gives an aware UTC time
            except ValueError:
                pass
        if ts is None or ts.tzinfo is not UTC:
            ts = event_time(ts_raw, naive_utc=self.naive_utc)
        status = row[self._i_status]
        error = status not in ("success", "ok", "") and event_is_error(status)
        lat_raw = row[self._i_lat]
        lat = parse_ms(lat_raw) if lat_raw else None
        if lat is None and not error:
            raise ValueError("no latency_ms")
        src = None
        if self._i_src is not None:
            raw_src = row[self._i_src]
            src = self._names.get(raw_src)
            if src is None and raw_src:
                src = self._names[raw_src] = _source(raw_src)
        return Event(ts, lat, error, src)

    def _event(self, d: dict[str, str]) -> Event:
        error = event_is_error(d.get("status"))
        if self.fmt == "legacy":
            ack = event_time(d.get("ts_ack"), naive_utc=self.naive_utc, column="ts_ack")
            emit_raw = (d.get("ts_emit") or "").strip()
            if error and not emit_raw:
                return Event(ack, None, True, _source(d.get("source")) or "legacy")
            emit = event_time(emit_raw, naive_utc=self.naive_utc, column="ts_emit")
            lat = (ack - emit).total_seconds() * 1000.0
            if lat < 0:
                raise ValueError("ts_ack is before ts_emit")
            return Event(ack, lat, error, _source(d.get("source")) or "legacy")
        ts = event_time(d.get("timestamp_utc"), naive_utc=self.naive_utc)
        lat = _latency(d.get("latency_ms"), "latency_ms")
        if lat is None and not error:
            raise ValueError("no latency_ms")
        return Event(ts, lat, error, _source(d.get("source")))


def complete_lines(data: bytes) -> tuple[list[bytes], int]:
    """(complete lines without newlines, bytes left after the last newline)."""
    cut = data.rfind(b"\n") + 1
    return data[:cut].split(b"\n")[:-1], len(data) - cut


def torn_bytes(data: bytes) -> int:
    """The bytes after the last newline (``complete_lines(data)[1]``, without splitting)."""
    return len(data) - (data.rfind(b"\n") + 1)


def read_latency_parts(data_root: Path, start: datetime, end: datetime, problems: list[Problem], *,
                       slo_of: Callable[[str], float], window_s: int = 900, naive_utc: bool = False,
                       counts: dict | None = None,
                       name_of: Callable[[str | None], str | None] | None = None) -> list[Part]:
    """Window parts of ``<data_root>/ops/signal_latency.csv`` (any form) whose window starts
    in ``[start, end)``, sorted by (start, source). Events are grouped by event-time
    window; sample rows are parts already. A missing file is an optional input: [] plus a
    ``missing`` problem. ``counts`` (if given) receives ``lines``, ``bad_rows`` and
    ``torn_bytes`` (an incomplete last line, not read). ``name_of`` maps a row's source
    to the source name (None: not counted); default: the row's source."""
    path = Path(data_root) / LATENCY_REL
    if not path.exists():
        problems.append(Problem("missing", LATENCY_REL, "latency sample file not found"))
        return []
    data = path.read_bytes()
    lines, torn = complete_lines(data)
    if counts is not None:
        counts.update(lines=max(0, len(lines) - 1), bad_rows=0, torn_bytes=torn)
    if not lines:
        return []
    try:
        header = next(csv.reader([lines[0].decode("utf-8-sig")]))
        parser = LineParser(header, rel_path=LATENCY_REL, naive_utc=naive_utc, slo_of=slo_of, window_s=window_s)
    except (UnicodeDecodeError, ValueError, StopIteration, csv.Error) as exc:
        problems.append(Problem("malformed", LATENCY_REL, f"unrecognised header: {exc}", 1))
        return []
    lo, hi = epoch(start), epoch(end)
    events: list[Event] = []
    parts: list[Part] = []
    n_before = len(problems)
    for i, raw in enumerate(lines[1:], start=2):
        item = parser.parse(raw, i, problems)
        if name_of is not None and item is not None:
            name = name_of(item.source)
            if name is None:
                continue
            item.source = name
        if isinstance(item, Event):
            if lo <= floor_to(epoch(item.ts), window_s) < hi:
                events.append(item)
        elif isinstance(item, Part) and lo <= item.start < hi:
            parts.append(item)
    if counts is not None:
        counts["bad_rows"] = len(problems) - n_before
    parts += parts_from_events(events, window_s=window_s, slo_of=slo_of)
    parts.sort(key=lambda p: (p.start, p.source))
    return parts
