"""The latency model (docs/architecture.md "Latency model"): events, window parts and the
one query every view uses.

- An *event* is one observation: source, event time (aware UTC), latency (ms), error flag.
- Events are grouped by ``(source, window)`` where a window is ``[start, start + window_s)``
  UTC by **event time** (``window_s`` = 900 by default). The group is a ``Part``: its event
  count, the count above the source's SLO (``bad``), the error count and a ``Sketch`` of
  the latencies of its non-error events. A window may have several parts (events that
  arrived late are written as another part of the same window); parts merge.
- ``query(parts, by=...)`` merges parts per (bucket, source) and returns ``Stats``: p50,
  p95, p99, max, samples, windows (parts merged), bad_events, error_samples, breach_flag,
  method and the merged sketch (latencies rounded to 3 decimals, here only). The hourly
  rollup, the ``latency_rollups`` dataset, ``obs
  latency status``, the alerts and the weekly payload all call it, so they agree: exact
  type 7 while a group has at most ``EXACT_MAX`` events, within the DDSketch bound beyond.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from ..timeutil import UTC
from .sketch import EXACT_MAX, Sketch

WINDOW_S = 900
HOUR_S = 3600
MS_DECIMALS = 3  # every latency the query returns is rounded to this many decimals (ms)


@dataclass
class Event:
    """One latency observation: ``ts`` aware UTC, ``latency_ms`` (None for an error without
    a latency), ``error``, ``source`` (the row's ``source`` column or the configured name)."""

    ts: datetime
    latency_ms: float | None
    error: bool
    source: str | None = None


@dataclass
class Part:
    """A (source, window) group of events: ``start`` epoch seconds of the window, ``span_s``
    its length (900 for a window part, 3600 for an hourly rollup row read back), ``events``
    all events (errors included), ``bad`` non-error events above the SLO, ``errors``, and
    ``sketch`` of the non-error latencies."""

    source: str
    start: int
    span_s: int
    events: int
    bad: int
    errors: int
    sketch: Sketch


@dataclass
class Stats:
    """The merged distribution of one (bucket, source): ms values (None with no latency)."""

    source: str
    start: int
    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None
    samples: int
    windows: int
    bad_events: int
    error_samples: int
    breach_flag: bool
    method: str
    sketch: Sketch

    @property
    def start_dt(self) -> datetime:
        return datetime.fromtimestamp(self.start, UTC)


def floor_to(epoch_s: int, span_s: int) -> int:
    """The start (epoch seconds) of the ``span_s`` bucket holding ``epoch_s``."""
    return epoch_s - epoch_s % span_s


def epoch(ts: datetime) -> int:
    """Whole epoch seconds of an aware time (sub-second parts floor)."""
    return int(ts.timestamp() // 1)


def parts_from_events(events: Iterable[Event], *, window_s: int = WINDOW_S,
                      slo_of: Callable[[str], float], default_source: str = "events") -> list[Part]:
    """Group events into window parts, sorted by (start, source). ``slo_of(source)`` gives
    the SLO (ms) that counts ``bad``."""
    groups: dict[tuple[int, str], list] = {}
    for e in events:
        t = int(e.ts.timestamp() // 1)
        key = (t - t % window_s, e.source or default_source)
        g = groups.get(key)
        if g is None:
            g = groups[key] = [[], 0]
        if e.error:
            g[1] += 1
        elif e.latency_ms is not None:
            g[0].append(e.latency_ms)
    out = []
    slos: dict[str, float] = {}
    for (start, src), (lat, errors) in sorted(groups.items()):
        slo = slos.get(src)
        if slo is None:
            slo = slos[src] = slo_of(src)
        lat.sort()
        n = len(lat)
        bad = n - bisect.bisect_right(lat, slo)
        sk = Sketch(n, None, None, lat, lat[-1] if n else None) if n <= EXACT_MAX else Sketch.of(lat)
        out.append(Part(src, start, window_s, n + errors, bad, errors, sk))
    return out


def round_ms(v: float | None) -> float | None:
    """A latency as every view shows it: rounded to ``MS_DECIMALS`` (3) decimals of a ms."""
    return None if v is None else round(v, MS_DECIMALS)


def stats_of(parts: list[Part], *, source: str, start: int, slo_ms: float) -> Stats:
    """Merge ``parts`` (one source, one bucket) into ``Stats``. The latencies are rounded
    here, once (``round_ms``), so the rollup CSV, ``obs latency status``, the datasets and
    the weekly payload print the same number; ``breach_flag`` compares the rounded p95."""
    sk = Sketch.merge_all(p.sketch for p in parts)
    p95 = round_ms(sk.quantile(0.95))
    return Stats(source, start, round_ms(sk.quantile(0.5)), p95, round_ms(sk.quantile(0.99)), round_ms(sk.max),
                 sum(p.events for p in parts),
                 len(parts), sum(p.bad for p in parts), sum(p.errors for p in parts),
                 p95 is not None and p95 > slo_ms, sk.method, sk)


def query(parts: Iterable[Part], *, by: str, slo_of: Callable[[str], float], start: int | None = None,
          end: int | None = None, sources: set[str] | None = None) -> dict[tuple[int, str], Stats]:
    """THE latency query. Parts with ``start <= part.start < end`` (epoch seconds; None =
    unbounded) and, when given, a source in ``sources``, merged per (bucket, source):
    ``by`` is ``window`` (the part's own window), ``hour`` (clock hour) or ``range`` (one
    bucket keyed by ``start`` or 0). Returns ``{(bucket_start, source): Stats}``."""
    if by not in ("window", "hour", "range"):
        raise ValueError(f"by must be window|hour|range, got {by!r}")
    groups: dict[tuple[int, str], list[Part]] = {}
    for p in parts:
        if (start is not None and p.start < start) or (end is not None and p.start >= end):
            continue
        if sources is not None and p.source not in sources:
            continue
        b = p.start if by == "window" else floor_to(p.start, HOUR_S) if by == "hour" else (start or 0)
        groups.setdefault((b, p.source), []).append(p)
    return {k: stats_of(v, source=k[1], start=k[0], slo_ms=slo_of(k[1])) for k, v in sorted(groups.items())}


def window_status(st: Stats | None, *, min_events: int) -> str:
    """A window's status for the alert rules: ``no_data`` (no events), ``insufficient``
    (fewer than ``min_events``), ``error`` (an error event), ``breach`` (p95 > SLO), ``ok``."""
    if st is None or st.samples == 0:
        return "no_data"
    if st.samples < min_events:
        return "insufficient"
    if st.error_samples:
        return "error"
    return "breach" if st.breach_flag else "ok"
