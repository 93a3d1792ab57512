"""``obs webhook verify`` and the weekly delivery subcommands ``obs weekly deliver|replay``.

``register`` adds the ``webhook`` group. ``add_weekly_delivery_commands`` adds
``deliver`` and ``replay`` under the ``weekly`` group owned by ``weekly_cmd`` (which
calls it). Secrets and URLs are read from the environment here, at
the edge, and passed into ``obslib.weekly.delivery`` / ``obslib.webhook``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# obslib.weekly.delivery / obslib.webhook (requests, jsonschema) are imported inside the handlers so
# that `obs` starts fast for every other job (the 15-minute latency sample above all).
from ..config import finite_number
from ..errors import ConfigError, InputError
from ..runlog import redact
from ..storage import read_json, rel
from ._base import run_job, say

_RUNLOG_STATUS = {"delivered": "ok", "already_delivered": "ok", "replayed": "ok", "dry_run": "dry_run"}


def _finish(res: dict) -> dict:
    for alert in res.get("alerts", []):
        say(f"ALERT [{alert['severity']}] {alert['message']} (next: {alert['next_action']})")
    return {"status": _RUNLOG_STATUS.get(res["delivery"]["status"], "error"), **res}


def _cmd_deliver(args: argparse.Namespace) -> int:
    from ..weekly.delivery import deliver_weekly, dry_run_weekly, load_weekly_payload

    def body(cfg, ctx, now):
        payload = load_weekly_payload(cfg, args.week_start)
        if args.dry_run_webhook:
            path, data = dry_run_weekly(payload, cfg=cfg, now=now, tag=ctx.job_id.rsplit("-", 1)[-1])
            sys.stdout.write(redact(data.decode("utf-8")) + "\n")
            out = rel(path, cfg.work_root)
            return {"status": "dry_run", "delivery": {"status": "dry_run", "signed": False, "output": out},
                    "alerts": [], "_artefacts": [out]}
        return _finish(deliver_weekly(payload, week_start=args.week_start, cfg=cfg, ctx=ctx, now=now,
                                      env=dict(os.environ), force=args.force,
                                      require_delivery=args.require_delivery))

    return run_job(args, "weekly_deliver", body)


def _cmd_replay(args: argparse.Namespace) -> int:
    from ..weekly.delivery import replay_weekly

    def body(cfg, ctx, now):
        return _finish(replay_weekly(args.week_start, cfg=cfg, ctx=ctx, now=now, env=dict(os.environ),
                                     demo_ok=bool(getattr(args, "demo", False))))

    return run_job(args, "weekly_replay", body)


def _cmd_verify(args: argparse.Namespace) -> int:
    from ..signing import SECRET_ENV, secrets_from_env, verify

    def body(cfg, ctx, now):
        try:
            raw = Path(args.body).read_bytes()
        except OSError as exc:
            raise InputError(args.body, f"cannot read body: {exc.__class__.__name__}") from exc
        headers = read_json(args.headers)
        if not isinstance(headers, dict):
            raise InputError(args.headers, "headers file must be a JSON object {name: value}")
        secrets = secrets_from_env(os.environ)
        if not secrets:
            raise ConfigError(f"{SECRET_ENV} is not set: no secret to verify with")
        tol = args.tolerance_s if args.tolerance_s is not None else cfg.webhook.signature_tolerance_s
        res = verify(raw, headers, secrets, tolerance_s=tol, now=now)
        if not res.ok:
            say(f"obs webhook verify: rejected: {res.reason}")
        return {"status": "ok" if res.ok else "error", "verified": res.ok, "reason": res.reason,
                "error": None if res.ok else res.reason, "exit_code": 0 if res.ok else 1}

    return run_job(args, "webhook_verify", body, record=False)


def add_weekly_delivery_commands(weekly_subparsers, parent: argparse.ArgumentParser) -> None:
    """Add ``deliver`` and ``replay`` to the ``obs weekly`` subparsers (called by weekly_cmd)."""
    d = weekly_subparsers.add_parser(
        "deliver", parents=[parent], help="sign and POST the weekly payload (retries, history, escalation)",
        description="Deliver out/weekly_report/<week_start>/payload.json to $OBS_WEEKLY_WEBHOOK_URL, signed with "
                    "$OBS_WEBHOOK_SECRET (whitespace-separated for rotation). Idempotent per payload checksum.")
    d.add_argument("--week-start", required=True, help="Monday of the week, YYYY-MM-DD")
    d.add_argument("--force", action="store_true", help="send again even if these exact bytes were delivered")
    d.add_argument("--require-delivery", action="store_true",
                   help="fail (non-zero) when the URL or the secret is missing instead of a dry run")
    d.add_argument("--dry-run-webhook", action="store_true",
                   help="print the canonical payload, write out/weekly_report/<timestamp>.json, sign and send nothing")
    d.set_defaults(func=_cmd_deliver)
    r = weekly_subparsers.add_parser(
        "replay", parents=[parent], help="re-send the stored bytes of a delivered week (fresh signature, same id)",
        description="Re-send ops/weekly_report_history/<week_start>.json byte for byte, with a fresh signature "
                    "timestamp and the same webhook-id. No metric is regenerated.")
    r.add_argument("--week-start", required=True, help="Monday of the week, YYYY-MM-DD")
    r.set_defaults(func=_cmd_replay)


def register(subparsers, parent: argparse.ArgumentParser) -> None:
    """Add ``obs webhook verify`` (``obs weekly deliver|replay`` come via ``add_weekly_delivery_commands``)."""
    w = subparsers.add_parser("webhook", help="webhook tools for receivers (verify a signed request)")
    wsub = w.add_subparsers(dest="webhook_command", metavar="SUBCOMMAND")
    v = wsub.add_parser(
        "verify", parents=[parent], help="verify a received request's signatures (secrets from $OBS_WEBHOOK_SECRET)",
        description="Verify X-OBS-Signature and/or the Standard Webhooks headers of a received request. Exit 0 "
                    "when verified, 1 when rejected (reason on stderr and in the JSON summary).")
    v.add_argument("--body", required=True, help="file holding the raw request body bytes")
    v.add_argument("--headers", required=True, help="JSON file: object of header name -> value")
    v.add_argument("--tolerance-s", type=finite_number(minimum=0), default=None,
                   help="accepted clock skew in seconds, past or future: a finite number >= 0 "
                        "(default: webhook.signature_tolerance_s)")
    v.set_defaults(func=_cmd_verify)
