"""The runbook has one anchor per alert kind; the weekly checklist is made of obs check checks."""

from __future__ import annotations

import re

from conftest import REPO

from obslib.alerts import RUNBOOK_ANCHORS
from obslib.ops.check import CHECK_IDS
from obslib.schedule import load_schedule

RUNBOOK = (REPO / "docs" / "runbook.md").read_text(encoding="utf-8")
CHECKLIST = (REPO / "docs" / "checklists" / "weekly.md").read_text(encoding="utf-8")


def anchors() -> set[str]:
    return set(re.findall(r'<a id="([a-z-]+)"></a>', RUNBOOK))


def test_runbook_has_every_alert_anchor():
    required = {"signal-latency", "weekly-webhook", "dashboard-exports", "missed-runs", "secrets-rotation",
                "disaster-recovery", "weekly-report-inputs"}
    assert required <= anchors()
    assert set(RUNBOOK_ANCHORS) <= anchors()
    assert {j.anchor for j in load_schedule()} <= anchors()


def test_weekly_checklist_items_are_obs_check_checks():
    items = [ln for ln in CHECKLIST.splitlines() if ln.startswith("- [ ]")]
    assert items
    named = set()
    for it in items:
        assert "`obs check`" in it, it
        m = re.search(r"\*\*([a-z_]+)\*\*", it)
        assert m and m.group(1) in CHECK_IDS, it
        named.add(m.group(1))
    assert named == set(CHECK_IDS)
    for link in re.findall(r"runbook\.md#([a-z-]+)", CHECKLIST):
        assert link in anchors()
