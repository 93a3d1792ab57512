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
from dataclasses import dataclass, fields
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
        return {f: getattr(self, f) for f in _STREAK_FIELDS}  # (asdict's deep copy: flat values only)

    def copy(self) -> StreakState:
        return StreakState(self.severity, self.streak, self.streak_started_at, self.last_breach_at,
                           self.last_sample_at)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> StreakState:
        d = d or {}
        return cls(**{k: d.get(k) for k in ("severity", "streak_started_at", "last_breach_at", "last_sample_at")
                      if k in d}, streak=int(d.get("streak", 0) or 0))


_STREAK_FIELDS = tuple(f.name for f in fields(StreakState))


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
    st = state.copy()
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


# --- alert decisions over event-time windows ---------------------------------------------
# The sampler evaluates each source's closed windows in order (``evaluate_source``) with
# three rules and hands the resulting ``Decision`` list to ``obslib.latency.alerts`` (and
# through it to whatever routes alerts). A decision is a severity change of one rule for
# one source within one run (changes inside a run are collapsed to the net change):
#
# - ``streak``: the blueprint streaks above, one step per closed window whose status is
#   ok/breach/error (``no_data`` and ``insufficient`` windows are neutral);
# - ``absent``: ``absent_warning_windows`` consecutive windows without events = warning,
#   ``absent_critical_windows`` = critical, resolved when events return;
# - ``burn_rate`` (Google SRE workbook, multi-window multi-burn-rate): burn = bad fraction /
#   (1 - slo_target) with bad = events above the SLO + error events, over the last 1, 4 and
#   24 windows (15 min, 1 h, 6 h at 15-minute windows); critical (page) when the 1 h and
#   15 min burns both exceed ``burn_page`` (14.4), warning when the 6 h and 1 h burns both
#   exceed ``burn_warn`` (6); resolved when neither holds.

RULES = ("streak", "absent", "burn_rate")


@dataclass(frozen=True)
class Decision:
    """One alert decision. ``id`` is stable per rule and source (``latency-<rule>:<source>``)
    so a router can keep it as one active alert; ``severity`` warning|critical|resolved,
    ``previous_severity`` ok|warning|critical; ``timestamp`` the end of the window that
    decided it (RFC 3339); ``details`` the rule's numbers (ms, counts, burn rates)."""

    id: str
    rule: str
    source: str
    severity: str
    previous_severity: str
    reason: str
    summary: str
    timestamp: str
    details: dict[str, Any]


@dataclass
class WindowFacts:
    """What the rules need of one closed window: its start/end (RFC 3339), the query's
    stats (None when the window had no events) and its status (``model.window_status``)."""

    start: str
    end: str
    events: int
    bad: int
    errors: int
    p95_ms: float | None
    status: str


def _burn(hist: list[tuple[int, int]], n: int, target: float) -> float | None:
    tail = hist[-n:]
    ev = sum(e for e, _ in tail)
    if ev == 0:
        return None
    return (sum(b for _, b in tail) / ev) / (1.0 - target)


def evaluate_source(source: str, doc: dict[str, Any] | None, windows: list[WindowFacts], *, slo_ms: float,
                    slo_target: float, absent_warning: int = 2, absent_critical: int = 4,
                    burn_page: float = 14.4, burn_warn: float = 6.0,
                    burn_windows: tuple[int, int, int] = (1, 4, 24)) -> tuple[dict[str, Any], list[Decision]]:
    """Run the three rules over ``windows`` (closed, consecutive, in time order) for one
    source. ``doc`` is the source's persisted rule state (None at first); returns the new
    state and the decisions (net severity change per rule within this call)."""
    doc = dict(doc or {})
    streak = StreakState.from_dict(doc.get("streak"))
    absent = dict(doc.get("absent") or {"severity": "ok", "windows": 0, "since": None})
    burn = dict(doc.get("burn") or {"severity": "ok"})
    hist = [tuple(x) for x in doc.get("burn_history", [])]
    before = {"streak": streak.severity, "absent": absent["severity"], "burn_rate": burn["severity"]}
    last = {}
    n15, n1h, n6h = burn_windows
    for w in windows:
        # streaks
        streak, note = step(streak, source=source, timestamp=w.end, p95_ms=w.p95_ms,
                            status=w.status if w.status in ("ok", "breach", "error") else "no_data", slo_ms=slo_ms)
        if note is not None:
            last["streak"] = w
        # absent data
        if w.events == 0:
            absent["windows"] += 1
            absent["since"] = absent["since"] or w.start
            sev = ("critical" if absent["windows"] >= absent_critical
                   else "warning" if absent["windows"] >= absent_warning else absent["severity"])
            if SEVERITY_RANK[sev] > SEVERITY_RANK[absent["severity"]]:
                absent["severity"] = sev
                last["absent"] = w
        else:
            if absent["severity"] != "ok":
                last["absent"] = w
            absent = {"severity": "ok", "windows": 0, "since": None}
        # burn rate
        hist = (hist + [(w.events, w.bad + w.errors)])[-n6h:]
        b15, b1h, b6h = (_burn(hist, n, slo_target) for n in (n15, n1h, n6h))
        sev = ("critical" if (b1h or 0) > burn_page and (b15 or 0) > burn_page
               else "warning" if (b6h or 0) > burn_warn and (b1h or 0) > burn_warn else "ok")
        burn = {"severity": sev, "burn_15m": b15, "burn_1h": b1h, "burn_6h": b6h, "at": w.end}
        if sev != before["burn_rate"] or "burn_rate" in last:
            last["burn_rate"] = w
    after = {"streak": streak.severity, "absent": absent["severity"], "burn_rate": burn["severity"]}
    decisions = []
    for rule in RULES:
        if after[rule] == before[rule] or rule not in last:
            continue
        w = last[rule]
        sev = "resolved" if after[rule] == "ok" else after[rule]
        details: dict[str, Any] = {"slo_ms": slo_ms, "window_start": w.start, "p95_ms": w.p95_ms,
                                   "events": w.events}
        if rule == "streak":
            details.update(streak=streak.streak, streak_started_at=streak.streak_started_at,
                           last_breach_at=streak.last_breach_at)
            reason = (f"{streak.streak} consecutive breaching/error window(s), p95 "
                      f"{_ms(w.p95_ms)} vs SLO {slo_ms:g} ms" if sev != "resolved"
                      else f"window p95 {_ms(w.p95_ms)} back within the {slo_ms:g} ms SLO")
        elif rule == "absent":
            details.update(absent_windows=absent["windows"], absent_since=absent["since"])
            reason = (f"no events for {absent['windows']} window(s) since {absent['since']}" if sev != "resolved"
                      else f"events returned ({w.events} in the window from {w.start})")
        else:
            details.update({k: burn[k] for k in ("burn_15m", "burn_1h", "burn_6h")}, slo_target=slo_target)
            reason = (f"error-budget burn 15m {_x(burn['burn_15m'])}, 1h {_x(burn['burn_1h'])}, "
                      f"6h {_x(burn['burn_6h'])} (page > {burn_page:g} on 1h and 15m, warn > {burn_warn:g} "
                      f"on 6h and 1h; SLO {slo_target:g} of events <= {slo_ms:g} ms)")
        decisions.append(Decision(f"latency-{rule}:{source}", rule, source, sev, before[rule], reason,
                                  f"{source}: latency {rule.replace('_', ' ')} {sev}", w.end, details))
    doc.update(streak=streak.to_dict(), absent=absent, burn=burn, burn_history=[list(x) for x in hist])
    return doc, decisions


def _ms(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.0f} ms"


def _x(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f}"
