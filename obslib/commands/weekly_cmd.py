"""``obs weekly run`` (the cron job behind ``make weekly``), plus ``deliver``/``replay``
from the webhook module."""

from __future__ import annotations

import argparse
import os

from ..errors import ObsError
from ..runlog import redact
from ..timeutil import parse_week_start
from ._base import run_job


def _week(args) -> object:
    if not getattr(args, "week_start", None):
        return None
    try:
        return parse_week_start(args.week_start)
    except ValueError as exc:
        raise ObsError(f"--week-start: {exc}") from exc


def _run(args: argparse.Namespace) -> int:
    from ..heartbeat import write_heartbeat
    from ..notebook import kernel_session

    def body(cfg, ctx, now):
        try:
            # the report kernel starts first: its start-up overlaps the imports and preflight
            with kernel_session(cfg.notebook.kernel_name) as km:
                from ..weekly.job import build_report

                result = build_report(cfg, ctx, now, _week(args), allow_bad_rows=args.allow_bad_rows, km=km,
                                      replace=args.replace)
            from ..weekly.delivery import deliver_weekly

            delivery = deliver_weekly(result["payload"], week_start=result["week_start"], cfg=cfg, ctx=ctx,
                                      now=now, env=os.environ, force=args.force,
                                      require_delivery=args.require_delivery)
        except Exception as exc:
            write_heartbeat(cfg.ops_dir, "weekly_report", ctx.job_id, now, "error",
                            error=redact(f"{exc.__class__.__name__}: {exc}")[:500])
            raise
        status = (delivery.get("delivery") or {}).get("status")
        write_heartbeat(cfg.ops_dir, "weekly_report", ctx.job_id, now, "ok",
                        {"week_start": result["week_start"], "delivery": status})
        from ..weekly.job import summary_line

        out = summary_line(result, delivery)
        out["_artefacts"] = result["artefacts"]
        from ..retention import prune_all

        pruned = prune_all(cfg)  # old dry-run payloads, failed notebooks, alert files, ... (docs: retention)
        out["pruned"] = len(pruned)
        out["_runlog_extra"] = {"pruned": pruned[:100]}
        if status == "dry_run":
            out["status"] = "dry_run"
        return out

    return run_job(args, "weekly_report", body)


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("weekly", help="weekly report: run, deliver, replay",
                       description="Weekly observability report (notebook, HTML, signed JSON payload).")
    wsub = p.add_subparsers(dest="weekly_command", metavar="SUBCOMMAND")
    wsub.required = True
    r = wsub.add_parser("run", parents=[parent], help="execute the report notebook for a week and deliver it",
                        description="Build the week's payload through the report notebook (papermill), export "
                                    "HTML, publish to out/weekly_report/<week_start>/, then deliver the payload.")
    r.add_argument("--week-start", help="Monday YYYY-MM-DD (default: the week containing --now)")
    r.add_argument("--allow-bad-rows", action="store_true",
                   help="report malformed input rows as alerts instead of failing the job")
    r.add_argument("--force", action="store_true", help="resend even when this payload was already delivered")
    r.add_argument("--replace", action="store_true",
                   help="replace a week folder built from another data root (refused otherwise; see its source.json)")
    r.add_argument("--require-delivery", action="store_true",
                   help="fail when no webhook URL or secret is configured (cron sets this when the URL is set)")
    # imported before the job accepts SIGTERM (cli.run): never left half-imported by one
    r.set_defaults(func=_run, preimport=("jupyter_client.manager",))
    try:
        from .webhook_cmd import add_weekly_delivery_commands
    except ImportError:  # delivery commands not installed
        return
    add_weekly_delivery_commands(wsub, parent)
