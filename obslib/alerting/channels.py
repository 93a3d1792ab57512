"""Alert channels: one formatter and one sender per channel, in a registry (``CHANNELS``).

``webhook``    today's signed generic webhook: ``{schema_version, kind: "alert_event", event,
               alert, sent_at}`` signed like every obslib webhook (``obslib.signing``).
``slack``      a Slack incoming webhook: JSON with a plain ``text`` fallback and Block Kit
               ``blocks`` (header, severity and source fields, summary, runbook link).
``pagerduty``  PagerDuty Events API v2: ``routing_key``, ``event_action`` trigger |
               acknowledge | resolve, ``dedup_key`` = the alert id; a trigger carries
               ``payload.summary`` (<= 1024 chars), ``payload.source``, ``payload.severity``
               (critical | error | warning | info), ``payload.timestamp``,
               ``payload.custom_details`` and the runbook in ``links``.
``email``      SMTP through the standard library (``smtplib``): host, port, from and to in
               ``[alerts]``, the password from ``OBS_SMTP_PASSWORD``; the attempt log of a
               failed delivery rides along as ``attempt_log.json``.

Every send is bounded (``obslib.webhook`` attempt deadline and the caller's ``Budget``) and
never raises for a receiver's failure: it returns a ``SendResult``. What each send carried
is appended to ``ops/alerts_sent.log`` (one JSON object per line, keys and URLs redacted).
"""

from __future__ import annotations

import json
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from ..runlog import _sanitise
from ..storage import canonical_json_bytes, locked_append
from ..timeutil import to_rfc3339

SENT_LOG = "alerts_sent.log"
PD_SUMMARY_MAX = 1024
PD_SEVERITY = {"critical": "critical", "warning": "warning", "info": "info"}
EVENTS = ("trigger", "repeat", "resolve", "acknowledge")
SLACK_EMOJI = {"critical": ":red_circle:", "warning": ":warning:", "info": ":information_source:"}


@dataclass
class SendResult:
    """Outcome of one channel send: ``ok``, HTTP ``status_code`` (None for SMTP or no
    response), a secret-free ``error``, ``rejected`` (401/403 or an SMTP auth failure: the
    receiver refused the key), ``attempts``, ``retryable``."""

    ok: bool
    status_code: int | None = None
    error: str | None = None
    rejected: bool = False
    attempts: int = 0
    retryable: bool = False
    logged: dict = field(default_factory=dict)


def _label(entry: dict, event: str) -> str:
    if event == "resolve":
        return "RESOLVED"
    if event == "acknowledge":
        return "ACKNOWLEDGED"
    return ("REPEAT " if event == "repeat" else "") + str(entry.get("severity", "")).upper()


def runbook_link(entry: dict, cfg: Any) -> str:
    """The runbook reference (``docs/runbook.md#anchor``), absolute under
    ``alerts.runbook_base_url`` when that is set."""
    ref = str(entry.get("next_action") or "")
    base = getattr(getattr(cfg, "alerts", None), "runbook_base_url", None)
    return f"{base.rstrip('/')}/{ref.lstrip('/')}" if base and ref and "://" not in ref else ref


def text_line(entry: dict, event: str, cfg: Any = None) -> str:
    """The one-line plain text of an alert event (Slack fallback, email subject body)."""
    return (f"{_label(entry, event)}: {entry.get('message', '')} [{entry['id']}; source "
            f"{entry.get('source') or 'obslib'}; runbook {runbook_link(entry, cfg)}]")


# --------------------------------------------------------------------------- formats


def slack_body(entry: dict, event: str, cfg: Any = None) -> dict:
    """Slack incoming-webhook JSON: ``text`` fallback plus Block Kit ``blocks`` (header
    <= 150 chars, section texts <= 3000)."""
    sev = str(entry.get("severity", ""))
    emoji = ":white_check_mark:" if event == "resolve" else SLACK_EMOJI.get(sev, ":bell:")
    link = runbook_link(entry, cfg)
    link_md = f"<{link}|runbook>" if "://" in link else f"`{link}`"
    return {
        "text": text_line(entry, event, cfg)[:3000],
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": f"{_label(entry, event)}: {entry['id']}"[:150],
                                        "emoji": True}},
            {"type": "section", "fields": [
                {"type": "mrkdwn", "text": f"*Severity*\n{emoji} {sev}"},
                {"type": "mrkdwn", "text": f"*Source*\n{entry.get('source') or 'obslib'}"}]},
            {"type": "section", "text": {"type": "mrkdwn", "text": str(entry.get("message", ""))[:3000] or "-"}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"Runbook: {link_md} \u00b7 first seen "
                                                                      f"{entry.get('first_seen')}"}]},
        ],
    }


PD_DEDUP_MAX = 255  # Events API v2: dedup_key is at most 255 characters


def pagerduty_dedup_key(alert_id: str) -> str:
    """The alert id, or -- when longer than 255 characters -- ``obs-sha256:<hex of the id>``
    (deterministic, so trigger, acknowledge and resolve share it; the id itself is in
    ``custom_details.id``)."""
    import hashlib

    aid = str(alert_id)
    if len(aid) <= PD_DEDUP_MAX:
        return aid
    return "obs-sha256:" + hashlib.sha256(aid.encode("utf-8")).hexdigest()


def pagerduty_body(entry: dict, event: str, routing_key: str, now: datetime, cfg: Any = None) -> dict:
    """PagerDuty Events API v2 event for ``event`` (trigger/repeat -> ``trigger``);
    ``dedup_key`` from ``pagerduty_dedup_key``."""
    action = {"trigger": "trigger", "repeat": "trigger", "resolve": "resolve", "acknowledge": "acknowledge"}[event]
    body: dict[str, Any] = {"routing_key": routing_key, "event_action": action,
                            "dedup_key": pagerduty_dedup_key(entry["id"])}
    if action == "trigger":
        details = {k: entry.get(k) for k in ("id", "first_seen", "last_seen", "next_action", "source")}
        details.update(entry.get("details") or {})
        body.update({
            "payload": {"summary": str(entry.get("message") or entry["id"])[:PD_SUMMARY_MAX],
                        "source": str(entry.get("source") or "obslib"),
                        "severity": PD_SEVERITY.get(str(entry.get("severity")), "error"),
                        "timestamp": to_rfc3339(now), "component": "obslib",
                        "custom_details": details},
            "links": [{"href": runbook_link(entry, cfg), "text": "runbook"}],
            "client": "obslib",
        })
    return body


def webhook_body(entry: dict, event: str, now: datetime) -> dict:
    """The generic webhook's alert event document."""
    alert = {k: v for k, v in entry.items() if k != "channels"}
    return {"schema_version": "1", "kind": "alert_event", "event": event, "alert": alert, "sent_at": to_rfc3339(now)}


def email_message(entry: dict, event: str, *, sender: str, to: list[str], cfg: Any = None) -> EmailMessage:
    """The email: subject ``[obslib <LABEL>] <id>``, a plain-text body, and the attempt log
    (when the alert carries one) attached as ``attempt_log.json``."""
    msg = EmailMessage()
    msg["Subject"] = f"[obslib {_label(entry, event)}] {entry['id']}"[:200]
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    lines = [text_line(entry, event, cfg), "", f"first seen: {entry.get('first_seen')}",
             f"last seen: {entry.get('last_seen')}", f"runbook: {runbook_link(entry, cfg)}"]
    msg.set_content("\n".join(lines) + "\n")
    log = (entry.get("details") or {}).get("attempt_log")
    if log:
        msg.add_attachment(json.dumps(log, indent=2, sort_keys=True).encode("utf-8"), maintype="application",
                           subtype="json", filename="attempt_log.json")
    return msg


# --------------------------------------------------------------------------- senders


def _http(body: dict, url: str, *, entry: dict, event: str, channel: str, ctx: Any, cfg: Any, budget: Any,
          sleep: Callable[[float], None], hide: list[str], signed_secrets: tuple[str, ...] = ()) -> SendResult:
    from ..webhook import send_body, send_signed, signing_clock

    raw = canonical_json_bytes(body)
    wid = f"alert-{channel}-{event}-{entry['id']}"[:200].replace(" ", "_")
    common = {"cfg": cfg, "ctx": ctx, "sleep": sleep, "budget": budget, "purpose": f"alert_{channel}",
              "max_attempts": min(3, cfg.webhook.max_attempts)}
    if signed_secrets:
        out = send_signed(raw, webhook_id=wid, url=url, secrets=list(signed_secrets), clock=signing_clock(cfg, ctx.now),
                          **common)
    else:
        out = send_body(raw, webhook_id=wid, url=url, headers_for=lambda _now: {"Content-Type": "application/json"},
                        hide=hide, **common)
    return SendResult(out.ok, out.last_status_code, out.last_error, out.rejected, out.attempts,
                      out.retryable or out.budget_spent)


def send_slack(entry, event, *, dest, cfg, ctx, now, budget, sleep) -> SendResult:
    res = _http(slack_body(entry, event, cfg), dest.slack_url, entry=entry, event=event, channel="slack", ctx=ctx,
                cfg=cfg, budget=budget, sleep=sleep, hide=[])
    res.logged = slack_body(entry, event, cfg)
    return res


def send_pagerduty(entry, event, *, dest, cfg, ctx, now, budget, sleep) -> SendResult:
    body = pagerduty_body(entry, event, dest.pagerduty_key, now, cfg)
    res = _http(body, dest.pagerduty_url, entry=entry, event=event, channel="pagerduty", ctx=ctx, cfg=cfg,
                budget=budget, sleep=sleep, hide=[dest.pagerduty_key])
    res.logged = {**body, "routing_key": "[REDACTED]"}
    return res


def send_webhook(entry, event, *, dest, cfg, ctx, now, budget, sleep) -> SendResult:
    body = webhook_body(entry, event, now)
    res = _http(body, dest.alert_url, entry=entry, event=event, channel="webhook", ctx=ctx, cfg=cfg, budget=budget,
                sleep=sleep, hide=[], signed_secrets=dest.secrets)
    res.logged = body
    return res


def send_email(entry, event, *, dest, cfg, ctx, now, budget, sleep) -> SendResult:
    al = cfg.alerts
    sender = al.smtp_from or f"obslib@{al.smtp_host}"
    msg = email_message(entry, event, sender=sender, to=list(dest.email_to), cfg=cfg)
    logged = {"subject": msg["Subject"], "to": list(dest.email_to),
              "attachments": [p.get_filename() for p in msg.iter_attachments()]}
    timeout = max(1.0, min(al.smtp_timeout_s, budget.remaining() if budget is not None else al.smtp_timeout_s))
    try:
        with smtplib.SMTP(al.smtp_host, al.smtp_port, timeout=timeout) as smtp:
            if al.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if al.smtp_user and dest.smtp_password:
                smtp.login(al.smtp_user, dest.smtp_password)
            smtp.send_message(msg)
    except smtplib.SMTPAuthenticationError as exc:
        return SendResult(False, None, f"SMTP {exc.smtp_code}: authentication refused", True, 1, False, logged)
    except (smtplib.SMTPException, OSError) as exc:
        code = getattr(exc, "smtp_code", None)
        return SendResult(False, None, f"{exc.__class__.__name__}{f' {code}' if code else ''}: mail not sent",
                          False, 1, True, logged)
    return SendResult(True, None, None, False, 1, False, logged)


CHANNELS: dict[str, Callable[..., SendResult]] = {
    "webhook": send_webhook, "slack": send_slack, "pagerduty": send_pagerduty, "email": send_email}


def send(channel: str, entry: dict, event: str, *, dest: Any, cfg: Any, ctx: Any, now: datetime, budget: Any,
         sleep: Callable[[float], None]) -> SendResult:
    """Send ``event`` of ``entry`` on ``channel`` (``CHANNELS``) and append what was sent to
    ``ops/alerts_sent.log``. Raises KeyError for an unknown channel."""
    fn = CHANNELS[channel]
    res = fn(entry, event, dest=dest, cfg=cfg, ctx=ctx, now=now, budget=budget, sleep=sleep)
    rec = {"at": to_rfc3339(now), "job_id": ctx.job_id, "alert_id": entry["id"], "channel": channel, "event": event,
           "severity": entry.get("severity"), "ok": res.ok, "status_code": res.status_code, "error": res.error,
           "sent": res.logged}
    hide = [v for v in (getattr(dest, "pagerduty_key", None), getattr(dest, "smtp_password", None)) if v]
    text = canonical_json_bytes(_sanitise(rec)).decode("utf-8")
    for h in hide:
        text = text.replace(h, "[REDACTED]")
    locked_append(Path(cfg.ops_dir) / SENT_LOG, text.encode("utf-8"))
    return res
