"""Streak table tests for obslib.latency.streaks (DESIGN.md "Latency SLO")."""

from __future__ import annotations

import json

import pytest

from obslib.latency.streaks import StreakState, replay, step

SLO = 120000.0


def _samples(*specs):
    """specs: 'ok' | 'breach' | 'error' | 'no_data' -> sample dicts 15 min apart."""
    p95 = {"ok": 1000.0, "breach": 150000.0, "error": None, "no_data": None}
    return [{"source": "s", "timestamp": f"2025-10-13T{9 + i // 4:02d}:{(i % 4) * 15:02d}:00Z",
             "p95_ms": p95[k], "status": k if k in ("error", "no_data") else ("breach" if k == "breach" else "ok")}
            for i, k in enumerate(specs)]


def _sev(notes):
    return [n.severity for n in notes]


@pytest.mark.parametrize("specs, notes, final_severity, final_streak", [
    (("ok", "breach", "breach"), ["warning"], "warning", 2),
    (("ok", "breach", "breach", "breach"), ["warning", "critical"], "critical", 3),
    (("ok", "error"), ["critical"], "critical", 1),
    (("breach", "breach", "breach", "ok"), ["warning", "critical", "resolved"], "ok", 0),
    (("breach", "ok", "breach", "ok"), [], "ok", 0),  # single breaches never alert
    (("breach", "breach", "breach", "breach", "breach"), ["warning", "critical"], "critical", 5),
    (("error", "error", "breach"), ["critical"], "critical", 3),
    (("breach", "breach", "no_data", "breach"), ["warning", "critical"], "critical", 3),  # no_data is neutral
    (("breach", "breach", "ok", "breach", "breach"), ["warning", "resolved", "warning"], "warning", 2),
])
def test_streak_table(specs, notes, final_severity, final_streak):
    states, got = replay(_samples(*specs), SLO)
    assert _sev(got) == notes
    assert states["s"].severity == final_severity
    assert states["s"].streak == final_streak


def test_warning_then_error_escalates_once():
    states, got = replay(_samples("breach", "breach", "error", "error"), SLO)
    assert _sev(got) == ["warning", "critical"]


def test_resolved_carries_streak_and_last_breach():
    _, got = replay(_samples("breach", "breach", "ok"), SLO)
    resolved = got[-1]
    assert resolved.severity == "resolved"
    assert resolved.streak == 2
    assert resolved.last_breach_at == "2025-10-13T09:15:00Z"
    assert resolved.streak_started_at == "2025-10-13T09:00:00Z"


def test_restart_between_samples_keeps_streak():
    """State persisted as JSON after each sample (a new process each time) gives the same
    notifications as one uninterrupted replay."""
    samples = _samples("ok", "breach", "breach", "breach", "ok")
    stored = None
    notes = []
    for s in samples:
        st = StreakState.from_dict(json.loads(stored)) if stored else StreakState()
        st, note = step(st, source="s", timestamp=s["timestamp"], p95_ms=s["p95_ms"], status=s["status"], slo_ms=SLO)
        stored = json.dumps(st.to_dict())
        if note:
            notes.append(note.severity)
    assert notes == ["warning", "critical", "resolved"]


def test_breach_is_strictly_above_slo():
    st, note = step(StreakState(streak=1, severity="ok"), source="s", timestamp="2025-10-13T09:00:00Z",
                    p95_ms=SLO, status="ok", slo_ms=SLO)
    assert note is None and st.streak == 0


def test_sources_are_independent():
    a = _samples("breach", "breach")
    b = [dict(s, source="t", p95_ms=10.0) for s in a]
    states, got = replay([x for pair in zip(a, b, strict=False) for x in pair], SLO)
    assert [(n.source, n.severity) for n in got] == [("s", "warning")]
    assert states["t"].severity == "ok"
