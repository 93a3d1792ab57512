"""The nightly check job: lock, compute (``check.run_check``), write ``ops/nightly_check.json``
atomically, write the heartbeat, then (outside the lock) send the alerts.

Two checks at once: the report is computed and written under ``ops/nightly_check.lock``
(bounded wait ``cfg.lock_timeout_s``), and every write is atomic, so the file is always
one complete, schema-valid report; the second check starts where the first ended.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ..alerts import make_alert
from ..heartbeat import write_heartbeat
from ..provenance import block as provenance_block
from ..schedule import load_schedule
from ..schemas import validate
from ..storage import atomic_write_json, file_lock
from .check import REPORT_NAME, SCHEMA_FILE, load_previous, run_check
from .notify import alert_document, send_alerts

JOB = "nightly_check"


def _findings_summary(report: dict) -> dict[str, Any]:
    """The report's window, counts and first 50 findings (id, severity, next_action) for the job summary."""
    return {"window": report["window"], "counts": report["counts"],
            "findings": [{k: f[k] for k in ("id", "severity", "next_action")} for f in report["findings"][:50]],
            "findings_total": len(report["findings"])}


def nightly_check(cfg: Any, ctx: Any, now: datetime, env: Mapping[str, str], *, since: datetime | None = None,
                  lookback: timedelta = timedelta(hours=24), send: bool = True, sleep=None) -> dict:
    """Run the check; returns the job summary for ``run_job`` (``status`` ok|warning|critical,
    ``exit_code`` 1 when anything is critical or the alerts could not be delivered).
    Raises ``LockTimeout`` when another check holds the lock, ``ConfigError`` for a bad
    ``[schedule]``, ``ValidationError`` if the report breaks its schema (nothing written).
    """
    jobs = load_schedule(cfg.schedule)
    ops = Path(cfg.ops_dir)
    report_path = ops / REPORT_NAME
    with file_lock(ops / "nightly_check.lock", cfg.lock_timeout_s):
        prev = load_previous(report_path)
        report = run_check(ops_dir=ops, jobs=jobs, now=now, prev=prev, since=since, lookback=lookback,
                           owner=cfg.owner, runbook=cfg.runbook, job_id=ctx.job_id)
        report["provenance"] = provenance_block(generated_at=now, job_id=ctx.job_id)
        validate(report, SCHEMA_FILE, "nightly check report")
        if not send:
            # a preview (--no-send) must not move the "since the last check" window, or the
            # findings it shows would never be alerted by the next real check
            preview = report_path.with_name("nightly_check.preview.json")
            atomic_write_json(preview, report)
            ctx.artefacts.append(f"ops/{preview.name}")
            return {"status": report["status"], "exit_code": 1 if report["counts"]["critical"] else 0,
                    "preview": True, **_findings_summary(report), "report": f"ops/{preview.name}"}
        atomic_write_json(report_path, report)
        write_heartbeat(ops, JOB, ctx.job_id, now, "ok" if report["status"] == "ok" else report["status"],
                        {"findings": len(report["findings"])})
    ctx.artefacts.extend([f"ops/{REPORT_NAME}", f"ops/{JOB}_heartbeat.json"])
    from ..alerting.destinations import Destinations
    from ..alerting.router import brief, route_alerts
    from ..alerting.state import ack_stats, read_state
    from ..webhook import Budget

    budget = Budget(cfg.alerts.ops_budget_s)
    delivery: dict[str, Any] = {"status": "nothing_to_send"}
    alerts = list(report["findings"])
    if alerts:
        doc = alert_document(alerts, job_id=ctx.job_id, now=now, report=f"ops/{REPORT_NAME}")
        delivery = send_alerts(doc, cfg=cfg, ctx=ctx, now=now, env=env, sleep=sleep, budget=budget)
        if delivery.get("file"):
            ctx.artefacts.append(delivery["file"])
    problems = []
    if delivery["status"] == "no_secret":
        problems.append(make_alert("ops-alerts-secret-missing", "critical",
                                   "OBS_WEBHOOK_SECRET is not set: operations alerts were not sent "
                                   f"(written to {delivery['file']})", anchor="secrets-rotation",
                                   owner=cfg.owner, runbook=cfg.runbook))
    elif delivery["status"] == "failed":
        problems.append(make_alert("ops-alerts-undelivered", "critical",
                                   f"operations alerts were not delivered after {delivery['attempts']} attempt(s) "
                                   f"(written to {delivery['file']})", anchor="missed-runs",
                                   owner=cfg.owner, runbook=cfg.runbook))
    # every finding (and delivery problem) becomes an active alert: routed, repeated until acknowledged,
    # resolved by the first check that no longer reports it
    dest = getattr(ctx, "destinations", None) or Destinations.from_env(env, cfg)
    routed = route_alerts([*alerts, *problems], cfg=cfg, ctx=ctx, now=now, dest=dest, source=JOB,
                          resolve_missing=True, budget=budget, **({"sleep": sleep} if sleep else {}))
    since = datetime.fromisoformat(report["window"]["since"].replace("Z", "+00:00"))
    acks = ack_stats(read_state(cfg.ops_dir), since=since, goal_s=cfg.alerts.ack_goal_s)
    critical = report["counts"]["critical"] > 0 or bool(problems)
    return {"status": report["status"] if not problems else "critical", "exit_code": 1 if critical else 0,
            **_findings_summary(report),
            "alerts_delivery": delivery, "delivery_alerts": problems, "report": f"ops/{REPORT_NAME}",
            "routed": brief(routed),
            "time_to_ack": acks}
