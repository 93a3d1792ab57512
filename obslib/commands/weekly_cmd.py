"""``obs weekly run`` (the cron job behind ``make weekly``), plus ``deliver``/``replay``
from the webhook module."""

from __future__ import annotations

import argparse
import os

from ..errors import ObsError
from ..runlog import redact
from ..timeutil import parse_week_start
from ._base import run_job, say


def _week(args) -> object:
    if not getattr(args, "week_start", None):
        return None
    try:
        return parse_week_start(args.week_start)
    except ValueError as exc:
        raise ObsError(f"--week-start: {exc}") from exc


FAIL_ON = ("never", "warning", "critical")
FAIL_ON_EXIT = 4  # a report alert at or above --fail-on (distinct from 1 error, 2 refused, 3 undelivered)


def fail_on_code(counts: dict[str, int], fail_on: str) -> int:
    """``FAIL_ON_EXIT`` when the report has an alert at or above ``fail_on``, else 0."""
    if fail_on == "critical" and counts.get("critical"):
        return FAIL_ON_EXIT
    if fail_on == "warning" and (counts.get("critical") or counts.get("warning")):
        return FAIL_ON_EXIT
    return 0


def human_line(out: dict) -> str:
    """One line for people: ``wrote <html> - 2 critical, 3 warning; <delivery>``."""
    html = next((a for a in out.get("artefacts", []) if a.endswith(".html")), "the report")
    c = out.get("report_alerts", {})
    d = out.get("delivery") or {}
    st = d.get("status")
    if st == "dry_run":
        why = "no webhook configured" if not d.get("secret_missing") else "no signing secret"
        what = f"dry run: {why} ({d.get('dry_run_file')})"
    elif st == "delivered":
        what = f"delivered in {d.get('attempts')} attempt(s)"
    else:
        what = str(st or "not delivered").replace("_", " ")
    return f"wrote {html} \u2014 {c.get('critical', 0)} critical, {c.get('warning', 0)} warning; {what}"


def _route(cfg, ctx, now, alerts: list[dict]) -> dict:
    """The week's report and delivery alerts become active alerts (``obslib.alerting``): a
    critical pages, a warning goes to Slack; an alert the next report no longer has resolves."""
    from ..alerting.router import brief, route_alerts
    from ..webhook import Budget

    rep = route_alerts(alerts, cfg=cfg, ctx=ctx, now=now, dest=ctx.destinations, source="weekly_report",
                       resolve_missing=True, budget=Budget(60.0))
    return brief(rep)


def _run(args: argparse.Namespace) -> int:
    from ..heartbeat import write_heartbeat

    def body(cfg, ctx, now):
        from ..weekly.delivery import preflight_delivery

        # cheap checks first: a delivery that cannot happen fails before any notebook runs
        week = _week(args)
        from ..timeutil import week_start_of

        preflight_delivery(os.environ, require_delivery=args.require_delivery, cfg=cfg,
                           week_start=(week or week_start_of(now)).date().isoformat())
        from ..notebook import kernel_session

        try:
            # the report kernel starts first: its start-up overlaps the imports and preflight
            with kernel_session(cfg.notebook.kernel_name) as km:
                from ..weekly.job import build_report

                result = build_report(cfg, ctx, now, week, allow_bad_rows=args.allow_bad_rows, km=km,
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
        out["routed"] = _route(cfg, ctx, now, result["payload"]["alerts"] + list(delivery.get("alerts", [])))
        out["_artefacts"] = result["artefacts"]
        from ..retention import prune_all

        pruned = prune_all(cfg)  # old dry-run payloads, failed notebooks, alert files, ... (docs: retention)
        out["pruned"] = len(pruned)
        out["_runlog_extra"] = {"pruned": pruned[:100], "week_start": result["week_start"],
                                "report_alerts": out["report_alerts"]}
        if status == "dry_run":
            out["status"] = "dry_run"
        say(human_line(out))
        code = fail_on_code(out["report_alerts"], args.fail_on)
        if code:
            out["exit_code"] = code
            out["fail_on"] = args.fail_on
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
                   help="fail when no webhook URL or secret is configured (cron sets this when the URL is set); "
                        "checked before the notebook runs")
    r.add_argument("--fail-on", choices=FAIL_ON, default="never",
                   help=f"exit {FAIL_ON_EXIT} when the report has an alert at or above this severity "
                        "(default never: report alerts are content, not a job failure)")
    # imported before the job accepts SIGTERM (cli.run): never left half-imported by one
    r.set_defaults(func=_run, preimport=("jupyter_client.manager",))
    try:
        from .webhook_cmd import add_weekly_delivery_commands
    except ImportError:  # delivery commands not installed
        return
    add_weekly_delivery_commands(wsub, parent)
