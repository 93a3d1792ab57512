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
from ..stats import percentile
from ..timeutil import parse_ts
from .events import Cursor, read_new_events
from .streaks import is_breach

TAIL_BYTES = 64 * 1024


@dataclass
class SourceSample:
    """One source's sample: ``latency_ms`` is the window median, ``p95_ms`` its p95 (ms)."""

    source: str
    kind: str
    status: str
    latency_ms: float | None = None
    p95_ms: float | None = None
    samples: int = 0
    detail: str = ""
    problems: list[Problem] = field(default_factory=list)
    cursor: Cursor | None = None
    stale_events: int = 0


def window_stats(values: list[float]) -> tuple[float | None, float | None]:
    """(median, p95) of ``values`` in ms, type-7 linear; (None, None) when empty."""
    return percentile(values, 50), percentile(values, 95)


def classify(p95_ms: float | None, *, error: bool, slo_ms: float) -> str:
    """``error`` | ``no_data`` | ``breach`` | ``ok`` (see the module docstring)."""
    if error:
        return "error"
    if p95_ms is None:
        return "no_data"
    return "breach" if is_breach(p95_ms, slo_ms) else "ok"


def sample_event_log(src: LatencySource, cursor: Cursor | None, now: datetime, slo_ms: float,
                     rel_path: str | None = None) -> SourceSample:
    """New events since ``cursor`` with time > ``now - src.window_minutes`` make the window
    (older new events are consumed and counted as ``stale_events``). With
    ``src.match_source`` set, only events whose ``source`` column equals it count (several
    configured sources can share one log, each with its own cursor). The returned
    ``cursor`` must be persisted together with the sample row."""
    res = read_new_events(src.path, cursor, rel_path=rel_path)
    since = now - timedelta(minutes=src.window_minutes)
    mine = [e for e in res.events if src.match_source is None or e.source == src.match_source]
    window = [e for e in mine if e.ts > since]
    lat = [e.latency_ms for e in window if not e.error and e.latency_ms is not None]
    errors = sum(1 for e in window if e.error)
    p50, p95 = window_stats(lat)
    notes = []
    if errors:
        notes.append(f"{errors} error event(s)")
    if res.replaced:
        notes.append("event log replaced" + (" (content kept)" if res.continued_after_replace else ""))
    if res.problems:
        notes.append(f"{len(res.problems)} bad line(s)")
    return SourceSample(src.name, src.kind, classify(p95, error=errors > 0, slo_ms=slo_ms), p50, p95,
                        len(lat) + errors, "; ".join(notes), res.problems, res.cursor,
                        len(mine) - len(window))


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


def sample_feed_freshness(src: LatencySource, now: datetime, slo_ms: float) -> SourceSample:
    """Latency = ``now - (newest bar time + bar_minutes)`` in ms, floored at 0 (bar times
    without a zone are UTC). One value, so median = p95."""
    newest = _newest_bar_time(Path(src.path))
    lat = max(0.0, (now - (newest + timedelta(minutes=src.bar_minutes))).total_seconds() * 1000.0)
    return SourceSample(src.name, src.kind, classify(lat, error=False, slo_ms=slo_ms), lat, lat, 1,
                        f"newest bar {newest.isoformat()}")


def sample_http_probe(src: LatencySource, slo_ms: float,
                      get: Callable[..., Any] | None = None,
                      monotonic: Callable[[], float] = time.monotonic) -> SourceSample:
    """GET ``src.url`` with ``src.timeout_s``; latency = response time in ms. A non-2xx
    response or a timeout/connection error gives ``status=error``. The URL is never put
    in ``detail``."""
    import requests

    get = get or requests.get
    t0 = monotonic()
    try:
        resp = get(src.url, timeout=src.timeout_s)
    except requests.Timeout:
        return SourceSample(src.name, src.kind, "error", samples=1, detail=f"timeout after {src.timeout_s:g} s")
    except requests.RequestException as exc:
        return SourceSample(src.name, src.kind, "error", samples=1, detail=f"request failed: {exc.__class__.__name__}")
    ms = (monotonic() - t0) * 1000.0
    code = resp.status_code
    if not 200 <= code < 300:
        return SourceSample(src.name, src.kind, "error", ms, ms, 1, f"HTTP {code}")
    return SourceSample(src.name, src.kind, classify(ms, error=False, slo_ms=slo_ms), ms, ms, 1, f"HTTP {code}")


def sample_source(src: LatencySource, *, now: datetime, slo_ms: float, cursor: Cursor | None = None,
                  http_get: Callable[..., Any] | None = None, rel_path: str | None = None) -> SourceSample:
    """Sample any source; unreadable input becomes ``status=error`` (cursor unchanged)."""
    try:
        if src.kind == "event_log":
            return sample_event_log(src, cursor, now, slo_ms, rel_path=rel_path)
        if src.kind == "feed_freshness":
            return sample_feed_freshness(src, now, slo_ms)
        return sample_http_probe(src, slo_ms, get=http_get)
    except InputError as exc:
        return SourceSample(src.name, src.kind, "error", detail=str(exc), cursor=cursor)
    except OSError as exc:
        return SourceSample(src.name, src.kind, "error", detail=f"cannot read: {exc.__class__.__name__}",
                            cursor=cursor)
