"""``obs alerts list|ack`` (the active alerts in ``ops/active_alerts.json``) and
``obs config show`` (the effective configuration, its sources, secrets redacted)."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys

from ..errors import ObsError
from ._base import config_from_args, run_job, say


def _fmt_age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    m = int(seconds // 60)
    return f"{m // 60}h{m % 60:02d}m" if m >= 60 else f"{m}m"


def _list(args: argparse.Namespace) -> int:
    def body(cfg, ctx, now):
        from ..alerting.state import age_s, read_state

        st = read_state(cfg.ops_dir)
        rows = []
        for aid, e in sorted(st["alerts"].items(), key=lambda kv: (-{"critical": 3, "warning": 2}.get(
                kv[1].get("severity"), 1), kv[1].get("first_seen") or "")):
            rows.append({"id": aid, "severity": e.get("severity"), "source": e.get("source"),
                         "message": e.get("message"), "first_seen": e.get("first_seen"), "last_seen": e.get("last_seen"),
                         "age_s": age_s(e, now), "acknowledged_by": e.get("acknowledged_by"),
                         "acknowledged_at": e.get("acknowledged_at"), "resolved_at": e.get("resolved_at"),
                         "channels": {c: {k: cs.get(k) for k in ("status", "event", "last_sent_at", "last_error")}
                                      for c, cs in e.get("channels", {}).items()}})
        malformed = st["malformed"]
        for aid, why in sorted(malformed.items()):
            print(f"obs alerts list: malformed entry {aid!r} in ops/active_alerts.json: {why} (left as it is)",
                  file=sys.stderr)
        bad = {"malformed": malformed, "status": "error", "exit_code": 2,
               "error": f"{len(malformed)} malformed entr{'y' if len(malformed) == 1 else 'ies'} in "
                        "ops/active_alerts.json"} if malformed else {}
        if args.json:
            return {"alerts": rows, "count": len(rows), **bad}
        if not rows and not malformed:
            say("no active alerts")
        for r in rows:
            chans = ", ".join(f"{c}:{v['status']}" for c, v in r["channels"].items()) or "no channel"
            ack = f"acked by {r['acknowledged_by']}" if r["acknowledged_at"] else "not acked"
            say(f"{r['severity']:<8} {r['id']}  age {_fmt_age(r['age_s'])}  {ack}  [{chans}]  {r['message']}"[:400])
        return {"count": len(rows), "critical": sum(r["severity"] == "critical" for r in rows),
                "warning": sum(r["severity"] == "warning" for r in rows), **bad}

    return run_job(args, "alerts_list", body, record=False)


def _ack(args: argparse.Namespace) -> int:
    def body(cfg, ctx, now):
        from ..alerting.router import acknowledge

        by = args.by if args.by is not None else (os.environ.get("USER") or getpass.getuser())
        out = acknowledge(args.id, by=by, note=args.note, cfg=cfg, ctx=ctx, now=now, dest=ctx.destinations)
        if out.get("already_acknowledged"):
            say(f"{args.id} already acknowledged by {out['acknowledged_by']} at {out['acknowledged_at']}; "
                "nothing changed or re-sent")
            return {"status": "ok", **out}
        say(f"acknowledged {args.id} after {_fmt_age(out['time_to_ack_s'])} (goal {_fmt_age(out['goal_s'])})"
            + (f"; PagerDuty acknowledge {'sent' if out['sent'] else 'failed'}" if out["sent"] or out["failed"]
               else ""))
        return {"status": "ok" if not out["failed"] else "error", **out,
                "error": "; ".join(f["error"] or "" for f in out["failed"]) or None}

    return run_job(args, "alerts_ack", body, guard=False)


def _config_show(args: argparse.Namespace) -> int:
    from ..config_show import describe, render_text

    try:
        from ..alerting.destinations import Destinations

        cfg = config_from_args(args)
        Destinations.from_env(os.environ, cfg)  # validates secrets and URLs (names only in errors)
        doc = describe(cfg, env=os.environ, overrides={"data_root": getattr(args, "data_root", None),
                                                       "work_root": getattr(args, "work_root", None)},
                       config_file=getattr(args, "config", None))
    except ObsError as exc:
        say(f"obs config show: error: {exc}")
        return exc.exit_code
    if args.json:
        sys.stdout.write(json.dumps(doc, sort_keys=True, default=str) + "\n")
    else:
        sys.stdout.write(render_text(doc))
    return 0


def register(subparsers, parent: argparse.ArgumentParser) -> None:
    """Add ``obs alerts list|ack`` and ``obs config show``."""
    a = subparsers.add_parser("alerts", help="active alerts: list, acknowledge",
                              description="The active alerts (ops/active_alerts.json): what is open, where it was "
                                          "sent, who acknowledged it. See docs/runbook.md#acknowledge.")
    asub = a.add_subparsers(dest="alerts_command", metavar="ACTION")
    asub.required = True
    ls = asub.add_parser("list", parents=[parent], help="active alerts with age and per-channel status")
    ls.add_argument("--json", action="store_true", help="the whole list in the JSON summary line")
    ls.set_defaults(func=_list)
    ak = asub.add_parser("ack", parents=[parent], help="acknowledge an active alert (stops its repeats)",
                         description="Acknowledge an alert: record who and when, stop the 4-hourly repeats, send "
                                     "the PagerDuty acknowledge. The time to acknowledge is reported by `obs check`.")
    ak.add_argument("id", help="the alert id (see `obs alerts list`)")
    ak.add_argument("--by", help="who acknowledges (default: $USER)")
    ak.add_argument("--note", help="a note kept with the acknowledgement")
    ak.set_defaults(func=_ack)

    c = subparsers.add_parser("config", help="the effective configuration",
                              description="Configuration tools.")
    csub = c.add_subparsers(dest="config_command", metavar="ACTION")
    csub.required = True
    sh = csub.add_parser("show", parents=[parent], help="every value with its source; secrets redacted; validated",
                         description="Print the effective configuration: each value and where it came from "
                                     "(default, obs.toml, environment, flag). Destinations and secrets are named, "
                                     "never shown. Exit 2 when the configuration is invalid.")
    sh.add_argument("--json", action="store_true", help="JSON instead of text")
    sh.set_defaults(func=_config_show)
