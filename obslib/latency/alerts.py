"""Latency SLO alerts: payloads from the rule decisions, the outbox and delivery.

The boundary for alert routing: ``streaks.evaluate_source`` decides (streak, absent data,
burn rate), ``build_payload`` turns a run's ``Decision`` list into the payload
(``schemas/latency_alert.schema.json``)::

    {schema_version "2", payload_id, generated_at, job_id, source_command, commit_sha,
     alerts: [{id "latency-<rule>:<source>" (stable), rule, severity (warning|critical|
               resolved), previous_severity (ok|warning|critical), message, summary, reason,
               owner, next_action (runbook#signal-latency), source, timestamp, details}]}

A run's payload is committed with its raw rows (in the journal) as a file in
``ops/latency_alert_outbox/<YYYYMMDDTHHMMSSZ>-<payload_id>.json``. ``deliver_outbox`` then
sends each pending payload, oldest first, signed (``obslib.webhook.send_signed``,
``webhook-id`` = ``payload_id``, so a receiver can drop a repeat) when a URL is given,
or moves it to ``out/latency_alerts/`` when not; a delivered or written payload leaves
the outbox, a failed one stays for the next run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..errors import LockTimeout
from ..schemas import validate
from ..storage import atomic_write_bytes, canonical_json_bytes, file_lock, read_json, sha256_bytes
from ..timeutil import to_rfc3339
from .paths import LatencyPaths
from .streaks import Decision

SCHEMA_VERSION = "2"
SCHEMA_NAME = "latency_alert.schema.json"
RUNBOOK_ANCHOR = "signal-latency"


@dataclass(frozen=True)
class AlertTarget:
    """Where alerts go: ``url`` None means write files to ``out/latency_alerts/``.
    Built at the CLI edge from the environment (``target_from_env``); never logged."""

    url: str | None = None
    secrets: tuple[str, ...] = ()
    route: Callable[[list[dict], Any], dict] | None = None  # alerts, budget -> routing report
    budget_s: float | None = None  # delivery time of one run (None: unlimited)

    def __repr__(self) -> str:  # never show the URL or the secrets
        return f"AlertTarget(url={'set' if self.url else None}, secrets={len(self.secrets)})"


def target_from_env(env: dict[str, str]) -> AlertTarget:
    """``OBS_ALERT_WEBHOOK_URL`` (else ``OBS_WEEKLY_WEBHOOK_URL``) and the whitespace-separated
    secrets in ``OBS_WEBHOOK_SECRET``."""
    from ..webhook import alert_destination

    url, secrets = alert_destination(env)
    return AlertTarget(url, tuple(secrets))


def alert_from_decision(d: Decision, *, owner: str, next_action: str) -> dict:
    """One alert dict from a rule decision (``streaks.Decision``): the stable ``id``
    (``latency-<rule>:<source>``), ``rule``, ``severity``, ``previous_severity``, ``reason``,
    ``summary``, ``source``, ``timestamp``, ``details``; ``message`` = summary + reason."""
    return {"id": d.id, "rule": d.rule, "severity": d.severity, "previous_severity": d.previous_severity,
            "message": f"{d.summary}: {d.reason}", "summary": d.summary, "reason": d.reason, "owner": owner,
            "next_action": next_action, "source": d.source, "timestamp": d.timestamp, "details": d.details}


def build_payload(decisions: list[Decision], *, now: datetime, job_id: str, owner: str, runbook: str,
                  source_command: str, commit_sha: str | None) -> dict:
    """The validated alert payload for a run's decisions (raises ``ValidationError``).
    ``payload_id`` hashes the alerts, so the same decisions give the same webhook-id."""
    next_action = f"{runbook}#{RUNBOOK_ANCHOR}"
    alerts = [alert_from_decision(d, owner=owner, next_action=next_action) for d in decisions]
    payload = {"schema_version": SCHEMA_VERSION,
               "payload_id": "latency-" + sha256_bytes(canonical_json_bytes(alerts))[:16],
               "generated_at": to_rfc3339(now), "job_id": job_id, "source_command": source_command,
               "commit_sha": commit_sha, "alerts": alerts}
    validate(payload, SCHEMA_NAME, "latency alert payload")
    return payload


def outbox_name(payload: dict) -> str:
    """``<YYYYMMDDTHHMMSSZ>-<payload_id>.json`` (sorts oldest first)."""
    stamp = payload["generated_at"].replace("-", "").replace(":", "").split(".")[0].rstrip("Z") + "Z"
    return f"{stamp}-{payload['payload_id']}.json"


@dataclass
class DeliveryReport:
    """What ``deliver_outbox`` did: files written to ``out/``, payloads sent, failures
    (secret-free reasons), payloads still pending, and whether another run held the lock."""

    written: list[str] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    pending: int = 0
    busy: bool = False
    superseded: list[str] = field(default_factory=list)
    routed: dict | None = None


def _alert_key(a: dict) -> tuple[str, str]:
    """One condition: (rule, source) - the same key for its warning, critical and resolved."""
    return str(a.get("rule") or "streak"), str(a.get("source") or a.get("id"))


def _critical_first(item: tuple[Any, dict]) -> tuple[int, str]:
    f, p = item
    return (0 if any(a.get("severity") == "critical" for a in p.get("alerts", [])) else 1, f.name)


def deliver_outbox(paths: LatencyPaths, *, target: AlertTarget, cfg: Any, ctx: Any, now: datetime,
                   clock: Callable[[], datetime] | None = None, sleep: Callable[[float], None] = time.sleep,
                   lock_timeout_s: float = 1.0) -> DeliveryReport:
    """Route and send or write every pending payload. Holds ``ops/latency_alert_outbox.lock``;
    if another run holds it, returns ``busy=True``.

    Latest state first: a payload whose every alert has a newer state in a later payload
    (same rule and source) is superseded (moved to ``out/latency_alerts/``, not sent); the
    rest go out payloads-with-a-critical first, then oldest first, so an undelivered
    warning never holds back a later critical. A failed send stays queued and the others
    still go. ``target.route`` (``obslib.alerting.route_alerts`` bound at the edge) records
    the alerts as active and sends them to Slack/PagerDuty; every send of the run shares
    ``target.budget_s`` (the rest waits for the next run)."""
    from ..webhook import Budget

    rep = DeliveryReport()
    budget = Budget(target.budget_s)
    try:
        with file_lock(paths.alerts_lock, lock_timeout_s):
            files = sorted(paths.outbox_dir.glob("*.json")) if paths.outbox_dir.exists() else []
            items = [(f, read_json(f)) for f in files]
            newest = {}
            for i, (_f, p) in enumerate(items):
                for a in p.get("alerts", []):
                    newest[_alert_key(a)] = i
            live = []
            for i, (f, p) in enumerate(items):
                if p.get("alerts") and all(newest[_alert_key(a)] > i for a in p["alerts"]):
                    dst = paths.alerts_out_dir / f.name  # superseded: kept for the record, never sent
                    atomic_write_bytes(dst, f.read_bytes())
                    os.unlink(f)
                    rep.superseded.append(p.get("payload_id"))
                else:
                    live.append((f, p))
            if target.route is not None:
                rep.routed = target.route([a for _f, p in live for a in p.get("alerts", [])], budget)
            for f, p in sorted(live, key=_critical_first):
                body = f.read_bytes()
                if target.url is None:
                    dst = paths.alerts_out_dir / f.name
                    atomic_write_bytes(dst, body)
                    rep.written.append(paths.rel(dst))
                    os.unlink(f)
                    continue
                if not target.secrets:
                    rep.failed.append(f"{f.name}: OBS_WEBHOOK_SECRET is not set; refusing to send unsigned")
                    continue
                if budget.spent():
                    break  # the delivery budget is spent: the rest waits for the next run
                from ..webhook import send_signed, signing_clock

                payload_id = p["payload_id"]
                out = send_signed(body, webhook_id=payload_id, url=target.url, secrets=list(target.secrets),
                                  cfg=cfg, ctx=ctx, clock=clock or signing_clock(cfg, now), sleep=sleep,
                                  purpose="latency_alert", budget=budget)
                if out.ok:
                    rep.sent.append(payload_id)
                    os.unlink(f)
                else:
                    rep.failed.append(f"{payload_id}: {out.last_error}")
            rep.pending = len(list(paths.outbox_dir.glob("*.json"))) if paths.outbox_dir.exists() else 0
    except LockTimeout:
        rep.busy = True
    return rep
