"""Alert records shared by every job: ``{id, severity, message, owner, next_action}``.

``severity`` is info|warning|critical; ``next_action`` points at a runbook anchor
(``docs/runbook.md#<anchor>``). Ids are deterministic so the same condition in the same
week always has the same id.
"""

from __future__ import annotations

SEVERITIES = ("info", "warning", "critical")
RUNBOOK_ANCHORS = ("signal-latency", "weekly-webhook", "dashboard-exports", "missed-runs", "secrets-rotation",
                   "disaster-recovery", "weekly-report-inputs", "utilisation-budget", "dashboard-publish")


def make_alert(alert_id: str, severity: str, message: str, *, anchor: str, owner: str = "obs-oncall",
               runbook: str = "docs/runbook.md", **extra) -> dict:
    """Build one alert dict. Raises ValueError for an unknown severity or anchor."""
    if severity not in SEVERITIES:
        raise ValueError(f"severity {severity!r} not in {SEVERITIES}")
    if anchor not in RUNBOOK_ANCHORS:
        raise ValueError(f"runbook anchor {anchor!r} not in {RUNBOOK_ANCHORS}")
    return {"id": alert_id, "severity": severity, "message": message, "owner": owner,
            "next_action": f"{runbook}#{anchor}", **extra}


def sort_alerts(alerts: list[dict]) -> list[dict]:
    """Deterministic order: critical first, then warning, info; then by id."""
    rank = {s: i for i, s in enumerate(reversed(SEVERITIES))}
    return sorted(alerts, key=lambda a: (rank.get(a["severity"], 9), a["id"]))
