"""Weekly report delivery: idempotent signed POST, auditable history, replay, escalation.

Files (paths relative to the work root)::

    ops/weekly_report_history/<week_start>.json                  exact bytes last delivered
    ops/weekly_report_history/<week_start>.receipt.json          receipt (schemas/delivery_receipt.schema.json)
    ops/weekly_report_history/<week_start>.<sha16>.json          a superseded version (payload changed)
    ops/weekly_report_history/<week_start>.<sha16>.receipt.json  ... and its receipt
    ops/escalations/<job_id>.json                                a failed delivery (schemas/escalation.schema.json)
    out/weekly_report/<YYYYMMDDTHHMMSSZ>.json                    ``--dry-run-webhook`` output (unsigned)

``webhook-id`` for a weekly payload is ``weekly-<week_start>-<first 16 hex of sha256(body)>``:
the same bytes always get the same id (retries, ``--force``, replay), changed bytes a new one.

Environment (read by the caller at the edge and passed in as ``env``):
``OBS_WEEKLY_WEBHOOK_URL`` destination, ``OBS_WEBHOOK_SECRET`` whitespace-separated
secrets, ``OBS_ESCALATION_WEBHOOK_URL`` optional escalation destination. None of them is
ever written anywhere.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from ..alerts import make_alert
from ..errors import DeliveryError, InputError, ValidationError
from ..faults import checkpoint
from ..provenance import commit_sha, provenance, source_command
from ..runlog import redact
from ..safepath import check_identifier, safe_child
from ..schemas import validate
from ..storage import (
    atomic_write_bytes,
    atomic_write_json,
    canonical_json_bytes,
    file_lock,
    fsync_dir,
    read_json,
    read_json_object,
    rel,
    retry_transient,
    sha256_bytes,
    sha256_file,
)
from ..timeutil import parse_week_start, to_rfc3339
from ..webhook import SECRET_ENV, DeliveryOutcome, secrets_from_env, send_signed, signing_clock
from .payload import content_checksum

SCHEMA_VERSION = "1"
HISTORY_DIRNAME = "weekly_report_history"
ESCALATIONS_DIRNAME = "escalations"
RUNBOOK_ANCHOR = "weekly-webhook"
ENV_URL = "OBS_WEEKLY_WEBHOOK_URL"
ENV_SECRET = SECRET_ENV
ENV_ESCALATION_URL = "OBS_ESCALATION_WEBHOOK_URL"
ESCALATION_MAX_ATTEMPTS = 3


# --------------------------------------------------------------------------- helpers


def _week(week_start: str) -> str:
    try:
        return parse_week_start(week_start).date().isoformat()
    except ValueError as exc:
        raise InputError("--week-start", str(exc)) from exc


def weekly_webhook_id(week_start: str, content_checksum: str) -> str:
    """``weekly-<week_start>-<first 16 hex of the payload's content checksum>``.

    The content checksum (``obslib.weekly.payload.content_checksum``) is the sha256 of the
    canonical payload without its per-run fields (generation time, job id, command), so
    re-running the same week on the same inputs gives the same idempotency key and is
    not sent again, while any changed number gives a new key."""
    return f"weekly-{week_start}-{content_checksum[:16]}"


def history_dir(cfg: Any) -> Path:
    """``<work_root>/ops/weekly_report_history``."""
    return Path(cfg.ops_dir) / HISTORY_DIRNAME


def runbook_ref(cfg: Any, anchor: str = RUNBOOK_ANCHOR) -> str:
    """``docs/runbook.md#<anchor>`` (the runbook path comes from ``cfg.runbook``)."""
    return f"{cfg.runbook}#{anchor}"


def _alert(cfg: Any, alert_id: str, severity: str, message: str, anchor: str = RUNBOOK_ANCHOR) -> dict[str, str]:
    return make_alert(alert_id, severity, message, anchor=anchor, owner=cfg.owner, runbook=cfg.runbook)


def _provenance(ctx: Any, now: datetime, env: Mapping[str, str], inputs: list[dict]) -> dict:
    """DESIGN.md provenance (``generated_at, source_command, commit_sha, job_id, inputs``)."""
    return provenance(generated_at=now, job_id=ctx.job_id, command=redact(source_command(), dict(env)),
                      sha=commit_sha(env=dict(env)), inputs=inputs)


def _canonical(payload: Any) -> bytes:
    try:
        return canonical_json_bytes(payload)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"weekly payload cannot be serialised canonically: {exc}") from exc


def load_weekly_payload(cfg: Any, week_start: str) -> dict:
    """Read ``out/weekly_report/<week_start>/payload.json`` written by the weekly job.

    Raises ``InputError`` (file named) when missing or not a JSON object.
    """
    from .job import recover_week

    ws = _week(week_start)
    recover_week(cfg, ws)  # a run killed after its commit point is finished first
    path = Path(cfg.out_dir) / "weekly_report" / ws / "payload.json"
    if not path.exists():
        raise InputError(rel(path, cfg.work_root), "no weekly payload for this week: run `obs weekly run` first")
    data = read_json(path)
    if not isinstance(data, dict):
        raise InputError(rel(path, cfg.work_root), "weekly payload must be a JSON object")
    return data


def dry_run_weekly(payload: dict, *, cfg: Any, now: datetime, tag: str = "") -> tuple[Path, bytes]:
    """Write the canonical payload, unsigned, to
    ``out/weekly_report/<YYYYMMDDTHHMMSSZ>_<week_start>[_<tag>].json`` (``tag``: the job id's
    random suffix), never overwriting an earlier file. Returns ``(path, bytes)``; nothing
    is signed or sent."""
    body = _canonical(payload)
    week = _week(str(payload.get("week_start", ""))[:10])
    stem = "_".join(x for x in (now.strftime("%Y%m%dT%H%M%SZ"), week, tag) if x)
    folder = Path(cfg.out_dir) / "weekly_report"
    path = safe_child(folder, stem, what="dry-run payload name", suffix=".json", base=cfg.work_root)
    n = 1
    while path.exists():
        n += 1
        path = safe_child(folder, stem, what="dry-run payload name", suffix=f".{n}.json",
                          base=cfg.work_root)
    atomic_write_bytes(path, body)
    return path, body


# --------------------------------------------------------------------------- escalation


def escalate(*, what: str, outcome: DeliveryOutcome, cfg: Any, ctx: Any, now: datetime, env: Mapping[str, str],
             purpose: str, anchor: str = RUNBOOK_ANCHOR, extra: dict[str, Any] | None = None,
             sleep=time.sleep) -> tuple[Path, dict]:
    """Record a failed delivery in ``ops/escalations/<job_id>.json`` and POST it.

    The record (schemas/escalation.schema.json) says what failed, the attempts, status
    codes, last status and error, and ``next_action`` (the runbook anchor). When
    ``OBS_ESCALATION_WEBHOOK_URL`` is set in ``env`` the record's canonical bytes are
    POSTed there (signed with ``OBS_WEBHOOK_SECRET`` when set, else unsigned; at most
    3 attempts) and the result is written back into the file under ``post``.
    Returns ``(path, record)``. Never raises for a failed escalation POST.
    """
    path = safe_child(Path(cfg.ops_dir) / ESCALATIONS_DIRNAME, ctx.job_id, what="JOB_ID", suffix=".json",
                      base=cfg.work_root)
    record: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "kind": "webhook_delivery_failed",
        "job_id": ctx.job_id,
        "job_name": ctx.job_name,
        "generated_at": to_rfc3339(now),
        "severity": "critical",
        "owner": cfg.owner,
        "what": what,
        "purpose": purpose,
        "webhook_id": outcome.webhook_id,
        "payload_checksum_sha256": outcome.payload_checksum_sha256,
        "attempts": outcome.attempts,
        "status_codes": list(outcome.status_codes),
        "last_status_code": outcome.last_status_code,
        "last_error": outcome.last_error,
        "next_action": runbook_ref(cfg, anchor),
        **(extra or {}),
        "provenance": _provenance(ctx, now, env, []),
    }
    url = (env.get(ENV_ESCALATION_URL) or "").strip()
    record["post"] = {"status": "pending" if url else "not_configured", "attempts": 0, "status_code": None}
    validate(record, "escalation.schema.json", "escalation record")
    atomic_write_json(path, record)
    ctx.artefacts.append(rel(path, cfg.work_root))
    if url:
        body = canonical_json_bytes({k: v for k, v in record.items() if k != "post"})
        secrets = secrets_from_env(env, ENV_SECRET)
        res = send_signed(body, webhook_id=f"escalation-{ctx.job_id}", url=url, secrets=secrets, cfg=cfg,
                          ctx=ctx, clock=signing_clock(cfg, now), sleep=sleep, purpose="escalation", allow_unsigned=True,
                          max_attempts=min(ESCALATION_MAX_ATTEMPTS, cfg.webhook.max_attempts))
        record["post"] = {"status": "delivered" if res.ok else "failed", "attempts": res.attempts,
                          "status_code": res.last_status_code}
        validate(record, "escalation.schema.json", "escalation record")
        atomic_write_json(path, record)
    route_escalation(record, outcome, cfg=cfg, ctx=ctx, now=now, env=env, sleep=sleep)
    return path, record


def exhausted_alert_id(purpose: str, key: str) -> str:
    """The active-alert id of an exhausted delivery: ``delivery-exhausted:<purpose>:<key>``."""
    return f"delivery-exhausted:{purpose}:{key}"


def route_escalation(record: dict, outcome: DeliveryOutcome, *, cfg: Any, ctx: Any, now: datetime,
                     env: Mapping[str, str], sleep=time.sleep) -> dict:
    """Route an exhausted delivery to people: ``delivery_exhausted`` (email by default, the
    attempt log attached) and, when the receiver answered 401/403, its own
    ``receiver-rejected`` critical ("receiver rejected the signature or key"). Never raises
    for a failed send (it stays pending in ``ops/active_alerts.json``)."""
    from ..alerting.destinations import Destinations
    from ..alerting.router import REJECTED_MESSAGE, route_alerts
    from ..webhook import Budget

    key = str(record.get("week_start") or ctx.job_id)
    alerts = [_alert(cfg, exhausted_alert_id(record["purpose"], key), "critical",
                     f"{record['what']} failed after {outcome.attempts} attempt(s) (last: "
                     f"{outcome.last_status_code or outcome.last_error}); escalation ops/escalations/{ctx.job_id}.json",
                     anchor=RUNBOOK_ANCHOR)]
    alerts[0].update(kind="delivery_exhausted", attempt_log=list(outcome.attempt_records))
    if outcome.rejected:
        alerts.append(_alert(cfg, f"receiver-rejected:{record['purpose']}", "critical",
                             f"{record['purpose']} receiver answered HTTP {outcome.last_status_code}: "
                             f"{REJECTED_MESSAGE}", anchor="secrets-rotation"))
        alerts[-1]["kind"] = "receiver_rejected"
    rep = route_alerts(alerts, cfg=cfg, ctx=ctx, now=now, dest=Destinations.from_env(env, cfg),
                       source="weekly_delivery", budget=Budget(60.0), sleep=sleep)
    if rep["unrouted"]:  # no channel at all is configured: said on stderr (counted in rep["unrouted"])
        print(f"{record['purpose']} delivery: {len(rep['unrouted'])} critical alert(s) reach no channel (configure "
              f"Slack, PagerDuty or email): {', '.join(rep['unrouted'][:5])}", file=sys.stderr)
    return rep


def _fail(outcome: DeliveryOutcome, *, what: str, cfg: Any, ctx: Any, now: datetime, env: Mapping[str, str],
          week_start: str, sleep) -> DeliveryError:
    path, record = escalate(what=what, outcome=outcome, cfg=cfg, ctx=ctx, now=now, env=env, purpose="weekly",
                            extra={"week_start": week_start}, sleep=sleep)
    last = f"HTTP {outcome.last_status_code}" if outcome.last_status_code is not None else outcome.last_error
    err = DeliveryError(f"{what} failed after {outcome.attempts} attempt(s) (last: {last}); "
                        f"escalation {rel(path, cfg.work_root)}; see {runbook_ref(cfg)}")
    err.summary = {"delivery": {"status": "error", **outcome.summary(), "escalation": rel(path, cfg.work_root),
                                "escalation_post": record["post"]["status"]}}
    return err


# --------------------------------------------------------------------------- history


def _paths(cfg: Any, ws: str, tag: str | None = None) -> tuple[Path, Path]:
    stem = _week(ws) if tag is None else f"{_week(ws)}.{check_identifier(tag, what='history version tag')}"
    d = history_dir(cfg)
    return (safe_child(d, stem, what="weekly history file", suffix=".json", base=cfg.work_root),
            safe_child(d, stem, what="weekly history file", suffix=".receipt.json", base=cfg.work_root))


def _delivery_entry(outcome: DeliveryOutcome, ctx: Any, kind: str) -> dict[str, Any]:
    return {"job_id": ctx.job_id, "kind": kind, "delivered_at": to_rfc3339(outcome.delivered_at),
            "attempts": outcome.attempts, "status_codes": list(outcome.status_codes)}


def _journal_path(cfg: Any, ws: str) -> Path:
    """``ops/weekly_report_history/.<ws>.pending.json``: a history update in progress."""
    return safe_child(history_dir(cfg), _week(ws), what="weekly history file", prefix=".", suffix=".pending.json",
                      base=cfg.work_root)


def _apply_journal(cfg: Any, ws: str, journal: dict) -> None:
    """Carry out a committed history update (idempotent: safe to repeat after a crash at
    any step): move the previous version aside when the journal says so, write the body,
    then the receipt, then drop the journal."""
    body_p, receipt_p = _paths(cfg, ws)
    tag = journal.get("archive_tag")
    if tag:
        old_body, old_receipt = _paths(cfg, ws, tag)
        checkpoint("history.archive_receipt")
        cur = read_json_object(receipt_p) if receipt_p.exists() else None
        if cur is not None and str(cur.get("payload_checksum_sha256", ""))[:16] == tag:
            retry_transient(lambda: os.replace(receipt_p, old_receipt))
        checkpoint("history.archive_body")
        if body_p.exists() and sha256_file(body_p)[:16] == tag:
            retry_transient(lambda: os.replace(body_p, old_body))
    body = base64.b64decode(journal["body_b64"])
    checkpoint("history.body")
    atomic_write_bytes(body_p, body)
    checkpoint("history.receipt")
    atomic_write_json(receipt_p, journal["receipt"])
    checkpoint("history.journal_done")
    _journal_path(cfg, ws).unlink(missing_ok=True)
    fsync_dir(history_dir(cfg))


def recover_history(cfg: Any, ws: str) -> bool:
    """Finish a history update that a killed run committed but did not complete (caller
    holds ``<ws>.lock``). Returns True when one was finished. A journal that does not parse
    was never committed (it is written atomically) and is removed."""
    jp = _journal_path(cfg, ws)
    if not jp.exists():
        return False
    journal = read_json_object(jp)
    if journal is None or journal.get("week_start") != ws or "body_b64" not in journal:
        jp.unlink(missing_ok=True)
        return False
    _apply_journal(cfg, ws, journal)
    return True


def recover_history_locked(cfg: Any, ws: str) -> bool:
    """``recover_history`` under the week's history lock (for readers such as restore)."""
    if not _journal_path(cfg, ws).exists():
        return False
    with file_lock(history_dir(cfg) / f"{_week(ws)}.lock", cfg.lock_timeout_s):
        return recover_history(cfg, ws)


def _archive_tag(cfg: Any, ws: str) -> str | None:
    """The ``<sha16>`` under which the current version of week ``ws`` is kept when a new
    one replaces it (None when there is none)."""
    body_p, _ = _paths(cfg, ws)
    return sha256_file(body_p)[:16] if body_p.exists() else None


def _write_history(cfg: Any, ctx: Any, ws: str, body: bytes, outcome: DeliveryOutcome, kind: str,
                   previous: dict | None, env: Mapping[str, str], archive: bool = False) -> tuple[dict, str | None]:
    """Write the body and its receipt as ONE unit: both go into the journal
    ``.<ws>.pending.json`` (one atomic write: the commit point), which is then applied
    (``_apply_journal``). A kill before the commit leaves the previous version whole; a
    kill after it is finished by the next delivery, replay or restore of that week.
    Returns ``(receipt, archived path or None)``."""
    body_p, receipt_p = _paths(cfg, ws)
    tag = _archive_tag(cfg, ws) if archive else None
    deliveries = list((previous or {}).get("deliveries", [])) + [_delivery_entry(outcome, ctx, kind)]
    receipt = {
        "schema_version": SCHEMA_VERSION,
        "kind": "weekly_delivery_receipt",
        "week_start": ws,
        "webhook_id": outcome.webhook_id,
        "payload_file": body_p.name,
        "payload_bytes": len(body),
        "payload_checksum_sha256": outcome.payload_checksum_sha256,
        "job_id": ctx.job_id,
        "delivered_at": to_rfc3339(outcome.delivered_at),
        "attempts": outcome.attempts,
        "status_codes": list(outcome.status_codes),
        "signature_headers": dict(outcome.headers),
        "deliveries": deliveries,
        "provenance": _provenance(ctx, outcome.delivered_at, env,
                                  [{"path": body_p.name, "sha256": outcome.payload_checksum_sha256}]),
    }
    validate(receipt, "delivery_receipt.schema.json", "delivery receipt")
    journal = {"week_start": ws, "archive_tag": tag, "body_b64": base64.b64encode(body).decode("ascii"),
               "receipt": receipt}
    checkpoint("history.journal")
    atomic_write_json(_journal_path(cfg, ws), journal, canonical=True)
    _apply_journal(cfg, ws, journal)
    ctx.artefacts.extend([rel(body_p, cfg.work_root), rel(receipt_p, cfg.work_root)])
    return receipt, (rel(_paths(cfg, ws, tag)[0], cfg.work_root) if tag else None)


def _destination(env: Mapping[str, str]) -> tuple[str, list[str], list[str]]:
    """``(url, secrets, missing)``: ``missing`` names the unset variables among the two."""
    url, secrets = (env.get(ENV_URL) or "").strip(), secrets_from_env(env, ENV_SECRET)
    return url, secrets, [n for n, v in ((ENV_URL, url), (ENV_SECRET, secrets)) if not v]


def _resolve_exhausted(cfg: Any, ctx: Any, now: datetime, env: Mapping[str, str], ws: str) -> None:
    """A delivered week ends its ``delivery-exhausted`` and ``receiver-rejected`` alerts (if any are active)."""
    from ..alerting.destinations import Destinations
    from ..alerting.router import route_alerts
    from ..alerting.state import StateUnreadable, read_state
    from ..webhook import Budget

    ids = [exhausted_alert_id("weekly", ws), "receiver-rejected:weekly"]
    try:
        active = read_state(cfg.ops_dir)["alerts"]
    except StateUnreadable:  # the router moves it aside (and says so); the week is delivered regardless
        active = dict.fromkeys(ids)
    if any(i in active for i in ids):
        route_alerts([{"id": i, "severity": "resolved"} for i in ids], cfg=cfg, ctx=ctx, now=now,
                     dest=Destinations.from_env(env, cfg), source="weekly_delivery", budget=Budget(30.0))


def preflight_delivery(env: Mapping[str, str], *, require_delivery: bool, cfg: Any,
                       week_start: str | None = None) -> None:
    """The cheap delivery checks, run before any notebook: with ``require_delivery`` the URL
    and the secret must both be set (``DeliveryError``, as ``deliver_weekly`` would raise
    after the report was built); a weak secret or a bad URL is a ``ConfigError``; when a
    delivery will happen, the week's history lock must be free (``LockTimeout`` after the
    usual bounded wait: another delivery of the same week is running)."""
    url, secrets, missing = _destination(env)
    if require_delivery and missing:
        raise DeliveryError(f"--require-delivery: {' and '.join(missing)} not set; nothing was built or delivered; "
                            f"see {runbook_ref(cfg)}")
    if not missing and week_start:
        with file_lock(history_dir(cfg) / f"{_week(week_start)}.lock", cfg.lock_timeout_s):
            pass


# --------------------------------------------------------------------------- weekly delivery


def deliver_weekly(payload: dict, *, week_start: str, cfg: Any, ctx: Any, now: datetime, env: Mapping[str, str],
                   force: bool = False, require_delivery: bool = False, sleep=time.sleep) -> dict:
    """Deliver the weekly ``payload`` for ``week_start`` (``YYYY-MM-DD``, a Monday).

    The payload is serialised once (canonical JSON); those bytes are signed, sent and
    stored. ``env`` supplies ``OBS_WEEKLY_WEBHOOK_URL``, ``OBS_WEBHOOK_SECRET`` and
    ``OBS_ESCALATION_WEBHOOK_URL``; ``now`` (aware UTC) starts the signature clock.

    Returns ``{"delivery": {"status", "webhook_id", "attempts", "status_codes",
    "payload_checksum_sha256", "delivered_at", "history", "receipt", "previous_version"},
    "alerts": [{id, severity, message, owner, next_action}]}`` where ``status`` is
    ``delivered``, ``already_delivered`` (same bytes delivered before and not ``force``)
    or ``dry_run`` (no URL, or no secret: nothing sent, a warning/critical alert).

    Raises ``DeliveryError`` (message free of URL and secrets; ``.summary`` holds the
    delivery dict) after the last failed attempt, having written
    ``ops/escalations/<job_id>.json`` and POSTed it to ``OBS_ESCALATION_WEBHOOK_URL``;
    also when ``require_delivery`` and the URL or the secret is missing.
    Raises ``InputError`` for a bad ``week_start``, ``ValidationError`` for a payload
    that is not canonical-JSON serialisable, ``LockTimeout`` when another delivery of
    the same week holds the history lock.
    """
    ws = _week(week_start)
    body = _canonical(payload)
    checksum = sha256_bytes(body)
    content = content_checksum(payload)
    wid = weekly_webhook_id(ws, content)
    base = {"webhook_id": wid, "payload_checksum_sha256": checksum, "content_checksum_sha256": content,
            "attempts": 0, "week_start": ws}
    url, secrets, missing = _destination(env)
    if missing:
        if require_delivery:
            raise DeliveryError(f"--require-delivery: {' and '.join(missing)} not set; weekly payload not delivered; "
                                f"see {runbook_ref(cfg)}")
        if not url:
            alert = _alert(cfg, "weekly-webhook-not-configured", "warning",
                           f"{ENV_URL} is not set: the weekly payload for {ws} was not delivered (dry run)")
        else:
            alert = _alert(cfg, "weekly-webhook-secret-missing", "critical",
                           f"{ENV_SECRET} is not set: the weekly payload for {ws} was not signed or delivered")
        path, _ = dry_run_weekly(payload, cfg=cfg, now=now, tag=ctx.job_id.rsplit("-", 1)[-1])
        return {"delivery": {"status": "dry_run", **base, "dry_run_file": rel(path, cfg.work_root),
                             "secret_missing": bool(url)}, "alerts": [alert]}

    hist = history_dir(cfg)
    body_p, receipt_p = _paths(cfg, ws)
    with file_lock(hist / f"{ws}.lock", cfg.lock_timeout_s):
        recover_history(cfg, ws)
        receipt = read_json_object(receipt_p) if receipt_p.exists() else None
        same = (body_p.exists() and receipt is not None and receipt.get("webhook_id") == wid
                and sha256_file(body_p) == receipt.get("payload_checksum_sha256"))
        if same and not force:
            return {"delivery": {"status": "already_delivered", **base, "attempts": 0,
                                 "delivered_at": receipt.get("delivered_at"), "history": rel(body_p, cfg.work_root),
                                 "receipt": rel(receipt_p, cfg.work_root)}, "alerts": []}
        outcome = send_signed(body, webhook_id=wid, url=url, secrets=secrets, cfg=cfg, ctx=ctx,
                              clock=signing_clock(cfg, now), sleep=sleep, purpose="weekly")
        if not outcome.ok:
            raise _fail(outcome, what=f"weekly report delivery for week {ws}", cfg=cfg, ctx=ctx, now=now, env=env,
                        week_start=ws, sleep=sleep)
        new_receipt, previous = _write_history(cfg, ctx, ws, body, outcome, "forced" if same else "delivery",
                                               receipt if same else None, env, archive=not same)
    _resolve_exhausted(cfg, ctx, now, env, ws)
    return {"delivery": {"status": "delivered", **base, **outcome.summary(), "forced": bool(force and same),
                         "history": rel(body_p, cfg.work_root), "receipt": rel(receipt_p, cfg.work_root),
                         "previous_version": previous, "delivered_at": new_receipt["delivered_at"]},
            "alerts": []}


def replay_weekly(week_start: str, *, cfg: Any, ctx: Any, now: datetime, env: Mapping[str, str],
                  sleep=time.sleep, demo_ok: bool = False) -> dict:
    """Re-send the stored bytes of week ``week_start`` with a fresh signature, same id.

    Reads ``ops/weekly_report_history/<week_start>.json`` (no metric is regenerated),
    checks it against its receipt's checksum, POSTs it, and appends a ``replay`` entry
    to the receipt's ``deliveries``. Returns ``{"delivery": {"status": "replayed", ...},
    "alerts": []}``. Raises ``InputError`` when nothing was delivered for that week,
    ``ValidationError`` when the stored bytes no longer match the receipt,
    ``DeliveryError`` when the URL/secret is missing or after the last failed attempt
    (escalation written, as for ``deliver_weekly``), ``ConfigError`` when the stored
    payload was built from the demo data (``provenance.data_root``) and not ``demo_ok``.
    """
    ws = _week(week_start)
    body_p, receipt_p = _paths(cfg, ws)
    url, secrets, missing = _destination(env)
    if missing:
        raise DeliveryError(f"replay needs {' and '.join(missing)}; nothing sent; see {runbook_ref(cfg)}")
    with file_lock(history_dir(cfg) / f"{ws}.lock", cfg.lock_timeout_s):
        recover_history(cfg, ws)
        if not body_p.exists():
            raise InputError(rel(body_p, cfg.work_root), "no delivered weekly payload for this week: nothing to replay")
        body = body_p.read_bytes()
        checksum = sha256_bytes(body)
        receipt = read_json_object(receipt_p)
        if receipt is not None and receipt.get("payload_checksum_sha256") != checksum:
            raise ValidationError(f"{rel(body_p, cfg.work_root)}: bytes do not match the checksum in "
                                  f"{rel(receipt_p, cfg.work_root)}; not replayed")
        try:
            stored = json.loads(body)
        except ValueError as exc:
            raise ValidationError(f"{rel(body_p, cfg.work_root)}: not JSON ({exc}); not replayed") from None
        from ..alerting.destinations import stored_payload_guard

        stored_payload_guard(stored, demo_ok=demo_ok, where=rel(body_p, cfg.work_root))
        wid = (receipt or {}).get("webhook_id") or weekly_webhook_id(ws, content_checksum(stored))
        outcome = send_signed(body, webhook_id=wid, url=url, secrets=secrets, cfg=cfg, ctx=ctx,
                              clock=signing_clock(cfg, now), sleep=sleep, purpose="weekly_replay")
        if not outcome.ok:
            raise _fail(outcome, what=f"weekly report replay for week {ws}", cfg=cfg, ctx=ctx, now=now, env=env,
                        week_start=ws, sleep=sleep)
        new_receipt, _ = _write_history(cfg, ctx, ws, body, outcome, "replay", receipt, env)
    return {"delivery": {"status": "replayed", "week_start": ws, **outcome.summary(),
                         "history": rel(body_p, cfg.work_root), "receipt": rel(receipt_p, cfg.work_root),
                         "delivered_at": new_receipt["delivered_at"]}, "alerts": []}
