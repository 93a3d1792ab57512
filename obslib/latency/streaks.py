"""SLO breach streaks per source (DESIGN.md "Latency SLO").

A sample breaches when ``p95_ms > slo_ms``. Per source, consecutive breaching samples
form a streak: 2 in a row = ``warning``, 3 or more = ``critical``; a sample with
``status == "error"`` is ``critical`` at once (it also extends the streak). Within a
streak the severity only rises. A non-breaching ``ok`` sample ends the streak with one
``resolved`` notification. ``no_data`` samples neither extend nor end a streak.

One notification is produced per severity change; the state is a plain dict so it can
be persisted (``ops/signal_latency_state.json``) and survive restarts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

SEVERITY_RANK = {"ok": 0, "warning": 1, "critical": 2}


@dataclass
class StreakState:
    """Per-source streak state. ``streak`` counts consecutive breaching/error samples."""

    severity: str = "ok"
    streak: int = 0
    streak_started_at: str | None = None
    last_breach_at: str | None = None
    last_sample_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> StreakState:
        d = d or {}
        return cls(**{k: d.get(k) for k in ("severity", "streak_started_at", "last_breach_at", "last_sample_at")
                      if k in d}, streak=int(d.get("streak", 0) or 0))


@dataclass(frozen=True)
class Notification:
    """A severity change: ``severity`` is warning|critical|resolved."""

    source: str
    severity: str
    timestamp: str
    p95_ms: float | None
    streak: int
    last_breach_at: str | None
    streak_started_at: str | None


def is_breach(p95_ms: float | None, slo_ms: float) -> bool:
    """True when ``p95_ms`` (milliseconds) is strictly above the SLO."""
    return p95_ms is not None and p95_ms > slo_ms


def step(state: StreakState, *, source: str, timestamp: str, p95_ms: float | None, status: str,
         slo_ms: float) -> tuple[StreakState, Notification | None]:
    """Advance one source's streak by one sample.

    ``timestamp`` is RFC 3339 UTC, ``p95_ms`` milliseconds (None when no data), ``status``
    the sample status (``error`` forces critical, ``no_data`` is neutral). Returns the new
    state and the notification for a severity change (or None).
    """
    st = StreakState(**state.to_dict())
    st.last_sample_at = timestamp
    status = (status or "").lower()
    if status == "no_data" or (p95_ms is None and status != "error"):
        return st, None
    breaching = status == "error" or is_breach(p95_ms, slo_ms)
    if breaching:
        if st.streak == 0:
            st.streak_started_at = timestamp
        st.streak += 1
        st.last_breach_at = timestamp
        computed = "critical" if (status == "error" or st.streak >= 3) else ("warning" if st.streak >= 2 else "ok")
        if SEVERITY_RANK[computed] > SEVERITY_RANK[st.severity]:
            st.severity = computed
            return st, Notification(source, computed, timestamp, p95_ms, st.streak, st.last_breach_at,
                                    st.streak_started_at)
        return st, None
    # a good sample ends the streak
    prev = st.severity
    ended = StreakState(last_breach_at=st.last_breach_at, last_sample_at=timestamp)
    if prev != "ok":
        return ended, Notification(source, "resolved", timestamp, p95_ms, st.streak, st.last_breach_at,
                                   st.streak_started_at)
    return ended, None


def replay(samples: Iterable[dict[str, Any]], slo_ms: float,
           states: dict[str, StreakState] | None = None) -> tuple[dict[str, StreakState], list[Notification]]:
    """Run ``step`` over samples (dicts with ``source, timestamp, p95_ms, status``), in the
    given order (callers sort by time). Returns the final states per source and every
    notification, in order."""
    states = dict(states or {})
    notes: list[Notification] = []
    for s in samples:
        src = s["source"]
        st, note = step(states.get(src, StreakState()), source=src, timestamp=s["timestamp"],
                        p95_ms=s.get("p95_ms"), status=s.get("status", "ok"), slo_ms=slo_ms)
        states[src] = st
        if note is not None:
            notes.append(note)
    return states, notes
