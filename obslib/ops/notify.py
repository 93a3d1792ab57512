"""Sending operations alerts (the nightly check's findings) through the signed webhook code.

Destination: ``OBS_ALERT_WEBHOOK_URL``, falling back to ``OBS_WEEKLY_WEBHOOK_URL``; signed
with ``OBS_WEBHOOK_SECRET`` (``obslib.webhook.send_signed``: retries, per-attempt run-log
records, URL and secrets never written). With no URL, or when delivery fails, the alert
document is written to ``out/ops_alerts/<job_id>.json`` so nothing is lost. ``env`` is
passed in by the CLI edge.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from ..safepath import safe_child
from ..storage import atomic_write_bytes, canonical_json_bytes, rel, sha256_bytes
from ..timeutil import to_rfc3339

ALERTS_DIRNAME = "ops_alerts"


def alert_document(alerts: list[dict], *, job_id: str, now: datetime, report: str) -> dict:
    """``{schema_version, kind: "ops_alerts", generated_at, job_id, report, alerts}``."""
    return {"schema_version": "1", "kind": "ops_alerts", "generated_at": to_rfc3339(now), "job_id": job_id,
            "report": report, "alerts": alerts}


def send_alerts(doc: dict, *, cfg: Any, ctx: Any, now: datetime, env: Mapping[str, str],
                sleep: Callable[[float], None] | None = None, budget: Any = None) -> dict:
    """Deliver ``doc`` (canonical bytes, signed); returns ``{status, attempts, status_codes,
    webhook_id, file}`` where ``status`` is ``delivered``, ``written`` (no URL configured),
    ``no_secret`` (URL but no secret: not sent) or ``failed`` (after the last attempt).
    ``file`` is the ``out/ops_alerts/<job_id>.json`` copy (None when delivered). ``budget``
    (``webhook.Budget``) bounds the attempts and waits (the nightly check's ``alerts.ops_budget_s``)."""
    from ..webhook import alert_destination, send_signed, signing_clock

    body = canonical_json_bytes(doc)
    wid = f"ops-alerts-{sha256_bytes(body)[:16]}"
    url, secrets = alert_destination(env)
    result: dict[str, Any] = {"status": "written", "attempts": 0, "status_codes": [], "webhook_id": wid, "file": None}
    if url and secrets:
        kw = {"sleep": sleep} if sleep is not None else {}
        out = send_signed(body, webhook_id=wid, url=url, secrets=secrets, cfg=cfg, ctx=ctx, clock=signing_clock(cfg, now),
                          purpose="ops_alerts", budget=budget, **kw)
        result.update(status="delivered" if out.ok else "failed", attempts=out.attempts,
                      status_codes=list(out.status_codes))
        if out.ok:
            return result
    elif url:
        result["status"] = "no_secret"
    path = safe_child(Path(cfg.out_dir) / ALERTS_DIRNAME, ctx.job_id, what="JOB_ID", suffix=".json",
                      base=cfg.work_root)
    atomic_write_bytes(path, body)
    result["file"] = rel(path, cfg.work_root)
    return result
