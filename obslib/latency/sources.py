"""Sample one latency source for one window (``event_log``, ``feed_freshness``, ``http_probe``).

Every sampler returns a ``SourceSample``; a source that cannot be read gives
``status="error"`` (with a secret-free ``detail``) instead of raising, so the other
sources are still sampled. Latencies are milliseconds; percentiles are linear
(Hyndman-Fan type 7, numpy's default) over the window's values.

Status: ``error`` when the source cannot be read or an event in the window reports an
error; ``no_data`` when the window has no latency; ``breach`` when p95 > SLO; else ``ok``.
"""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ..config import LatencySource
from ..errors import InputError
from ..inputs import Problem
from ..timeutil import parse_ts
from .bulk import parts_from_block
from .events import Cursor, read_new_events
from .model import Event, Part, parts_from_events
from .table import PartTable

TAIL_BYTES = 64 * 1024


@dataclass
class SourceSample:
    """One source's read for one run: ``parts`` the window parts of the new events (named
    by source; a ``PartTable`` after a vectorised read), ``status`` ``ok`` or ``error`` (the source could not be read), ``detail``
    what was noticed, ``problems`` bad rows, ``cursor`` to persist, ``counts`` of held,
    dropped and lost input (see ``events.ReadResult``)."""

    source: str
    kind: str
    status: str
    parts: list[Part] | PartTable = field(default_factory=list)
    detail: str = ""
    problems: list[Problem] = field(default_factory=list)
    cursor: Cursor | None = None
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def events(self) -> int:
        if isinstance(self.parts, PartTable):
            return self.parts.total_events
        return sum(p.events for p in self.parts)


def _name_of(src: LatencySource, row_source: str | None) -> str | None:
    """The source an event counts for (None: not this source's)."""
    if src.by_source_column:
        return row_source or src.name
    if src.match_source is not None:
        return src.name if row_source == src.match_source else None
    return src.name


def sample_event_log(src: LatencySource, cursor: Cursor | None, now: datetime, *, slo_of, window_s: int,
                     max_future_skew_s: float = 300.0, naive_utc: bool = False,
                     rel_path: str | None = None) -> SourceSample:
    """Every new complete event since ``cursor`` (any event time up to ``now``; see
    ``events.read_new_events`` for held and bad rows) grouped into event-time window parts.
    With ``src.match_source`` only rows whose ``source`` column equals it count (named
    ``src.name``); with ``src.by_source_column`` each value of that column is a source.
    The returned ``cursor`` must be persisted together with the rows."""
    res = read_new_events(src.path, cursor, rel_path=rel_path, now=now, max_future_skew_s=max_future_skew_s,
                          naive_utc=naive_utc, slo_of=slo_of, window_s=window_s, bulk=True)
    mine = []
    for e in res.events:
        name = _name_of(src, e.source)
        if name is not None:
            e.source = name
            mine.append(e)
    parts: list[Part] | PartTable = parts_from_events(mine, window_s=window_s, slo_of=slo_of)
    for p in res.parts:  # a log in the kit's own sample layout
        name = _name_of(src, p.source)
        if name is not None:
            p.source = name
            parts.append(p)
    if res.bulk is not None:  # the whole read was one vectorised block: ``mine`` is empty
        parts = PartTable.concat([parts_from_block(res.bulk, lambda s: _name_of(src, s), window_s=window_s,
                                                   slo_of=slo_of), PartTable.from_parts(parts)])
    notes = []
    errors = int(parts.errors.sum()) if isinstance(parts, PartTable) else sum(p.errors for p in parts)
    if errors:
        notes.append(f"{errors} error event(s)")
    if res.rotated_from:
        notes.append(f"finished rotated file {res.rotated_from}")
    if res.lost_bytes:
        notes.append(f"event log rotated away and not found: at least {res.lost_bytes} byte(s) lost")
    elif res.replaced:
        notes.append("event log replaced" + (" (content kept)" if res.continued_after_replace else ""))
    if res.problems:
        notes.append(f"{len(res.problems)} bad row(s)")
    if res.held_rows:
        notes.append(f"{res.held_rows} row(s) held: event time after now")
    counts = {"events_read": res.events_read, "bad_rows": len(res.problems), "future_rows": res.future_rows,
              "held_rows": res.held_rows, "torn_bytes": res.torn_bytes, "replay_skipped": res.replay_skipped,
              "lost_bytes": res.lost_bytes}
    return SourceSample(src.name, src.kind, "ok", parts, "; ".join(notes), res.problems, res.cursor, counts)


def _one(src: LatencySource, now: datetime, ms: float | None, error: bool, detail: str, *, slo_of,
         window_s: int) -> SourceSample:
    ev = Event(now, ms, error, src.name)
    return SourceSample(src.name, src.kind, "ok", parts_from_events([ev], window_s=window_s, slo_of=slo_of),
                        detail)


def _newest_bar_time(path: Path) -> datetime:
    with open(path, "rb") as fh:
        header_line = fh.readline()
        try:
            header = [h.strip() for h in next(csv.reader([header_line.decode("utf-8-sig")]))]
        except (UnicodeDecodeError, StopIteration) as exc:
            raise InputError(path.name, "unreadable header", line=1) from exc
        col = next((header.index(c) for c in ("timestamp", "timestamp_utc", "time") if c in header), None)
        if col is None:
            raise InputError(path.name, f"no timestamp column in header {header}", line=1)
        size = os.fstat(fh.fileno()).st_size
        start = max(len(header_line), size - TAIL_BYTES)
        fh.seek(start)
        chunk = fh.read(size - start)
    lines = chunk.split(b"\n")
    if start > len(header_line):
        lines = lines[1:]  # first line may be partial
    lines = lines[:-1]  # the part after the last newline is torn (or empty)
    newest = None
    for raw in lines:
        try:
            row = next(csv.reader([raw.decode("utf-8")]))
            ts = parse_ts(row[col])
        except (UnicodeDecodeError, StopIteration, IndexError, ValueError):
            continue
        newest = ts if newest is None or ts > newest else newest
    if newest is None:
        raise InputError(path.name, "no parseable bar in the last 64 KB")
    return newest


def sample_feed_freshness(src: LatencySource, now: datetime, *, slo_of, window_s: int) -> SourceSample:
    """One event at ``now``: latency = ``now - (newest bar time + bar_minutes)`` in ms,
    floored at 0 (bar times without a zone are UTC)."""
    newest = _newest_bar_time(Path(src.path))
    lat = max(0.0, (now - (newest + timedelta(minutes=src.bar_minutes))).total_seconds() * 1000.0)
    return _one(src, now, lat, False, f"newest bar {newest.isoformat()}", slo_of=slo_of, window_s=window_s)


def sample_http_probe(src: LatencySource, now: datetime, *, slo_of, window_s: int,
                      get: Callable[..., Any] | None = None,
                      monotonic: Callable[[], float] = time.monotonic) -> SourceSample:
    """One event at ``now``: GET ``src.url`` with ``src.timeout_s``; latency = response
    time in ms. A non-2xx response or a timeout/connection error is an error event. The
    URL is never put in ``detail``."""
    import requests

    get = get or requests.get
    t0 = monotonic()
    kw = {"slo_of": slo_of, "window_s": window_s}
    try:
        resp = get(src.url, timeout=src.timeout_s)
    except requests.Timeout:
        return _one(src, now, None, True, f"timeout after {src.timeout_s:g} s", **kw)
    except requests.RequestException as exc:
        return _one(src, now, None, True, f"request failed: {exc.__class__.__name__}", **kw)
    ms = (monotonic() - t0) * 1000.0
    code = resp.status_code
    return _one(src, now, ms, not 200 <= code < 300, f"HTTP {code}", **kw)


def sample_source(src: LatencySource, *, now: datetime, slo_of, window_s: int = 900, cursor: Cursor | None = None,
                  http_get: Callable[..., Any] | None = None, rel_path: str | None = None,
                  max_future_skew_s: float = 300.0, naive_utc: bool = False) -> SourceSample:
    """Read any source; unreadable input gives ``status=error`` (cursor unchanged, no
    parts), so the other sources are still read."""
    try:
        if src.kind == "event_log":
            return sample_event_log(src, cursor, now, slo_of=slo_of, window_s=window_s,
                                    max_future_skew_s=max_future_skew_s, naive_utc=naive_utc, rel_path=rel_path)
        if src.kind == "feed_freshness":
            return sample_feed_freshness(src, now, slo_of=slo_of, window_s=window_s)
        return sample_http_probe(src, now, slo_of=slo_of, window_s=window_s, get=http_get)
    except InputError as exc:
        return SourceSample(src.name, src.kind, "error", detail=str(exc), cursor=cursor)
    except OSError as exc:
        return SourceSample(src.name, src.kind, "error", detail=f"cannot read: {exc.__class__.__name__}",
                            cursor=cursor)
