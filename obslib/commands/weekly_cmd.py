"""``obs weekly run`` (the cron job behind ``make weekly``), plus ``deliver``/``replay``
from the webhook module."""

from __future__ import annotations

import argparse
import os
import sys
from contextlib import ExitStack, contextmanager
from datetime import UTC, date, datetime, timedelta

from ..errors import ObsError
from ..runlog import redact
from ..timeutil import parse_week_start, week_start_of
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


def _route(cfg, ctx, now, alerts: list[dict], week_start: str) -> dict:
    """The week's report and delivery alerts become active alerts (``obslib.alerting``): a
    critical pages, a warning goes to Slack; an alert the next report of the same (or a
    later) week no longer has resolves. A past week's report (``--week-start`` or
    ``--from/--to`` before the week containing now) routes nothing: its alerts are in the
    report, and it never resolves or pages for the current week (docs/runbook.md)."""
    from ..alerting.router import brief, route_alerts
    from ..webhook import Budget

    if week_start < week_start_of(now).date().isoformat():
        return {"skipped": f"past week {week_start}: report alerts are not routed"}
    rep = route_alerts(alerts, cfg=cfg, ctx=ctx, now=now, dest=ctx.destinations, source="weekly_report",
                       resolve_missing=True, scope=week_start, budget=Budget(60.0))
    from ..alerting.destinations import is_demo_data

    if rep["unrouted"] and not is_demo_data(cfg):  # a real alert that reaches nobody is said (and counted)
        print(f"obs weekly run: {len(rep['unrouted'])} warning/critical alert(s) have no configured channel "
              f"(set Slack/PagerDuty/email): {', '.join(rep['unrouted'][:5])}", file=sys.stderr)
    return brief(rep)


BACKFILL_MAX_WEEKS = 260  # five years of weeks in one command


def _backfill_weeks(args: argparse.Namespace, now: datetime) -> list[datetime]:
    """The Mondays from the week containing ``--from`` to the week containing ``--to``
    (inclusive); ``ObsError`` for a bad date, a reversed or too long range, a range
    that ends after ``now`` or one combined with ``--week-start``."""
    if getattr(args, "week_start", None):
        raise ObsError("--week-start reports one week; --from/--to report a range: use one or the other")
    if not (args.date_from and args.date_to):
        raise ObsError("--from and --to go together (YYYY-MM-DD each)")
    days = []
    for flag, raw in (("--from", args.date_from), ("--to", args.date_to)):
        try:
            days.append(date.fromisoformat(raw))
        except ValueError as exc:
            raise ObsError(f"{flag} {raw!r} is not a date (YYYY-MM-DD)") from exc
    first, last = (week_start_of(datetime(d.year, d.month, d.day, tzinfo=UTC)) for d in days)
    if last < first:
        raise ObsError(f"--to {args.date_to} is before --from {args.date_from}")
    if last > now:
        raise ObsError(f"--to {args.date_to}: the week of {last.date().isoformat()} has not started yet "
                       f"(now is {now.date().isoformat()})")
    n = (last - first).days // 7 + 1
    if n > BACKFILL_MAX_WEEKS:
        raise ObsError(f"--from/--to cover {n} weeks; at most {BACKFILL_MAX_WEEKS} in one command")
    return [first + timedelta(weeks=i) for i in range(n)]


@contextmanager
def _job_id_for(week: datetime):
    """A ``JOB_ID`` from the environment names the whole backfill: each week gets
    ``<JOB_ID>-<week_start>`` so its run-log record and artefacts stay its own."""
    base = os.environ.get("JOB_ID")
    if base:
        os.environ["JOB_ID"] = f"{base}-{week.date().isoformat()}"
    try:
        yield
    finally:
        if base:
            os.environ["JOB_ID"] = base


def _run(args: argparse.Namespace) -> int:
    """One week (``--week-start`` or the current one), or each week of ``--from``/``--to``
    in turn: one job, one run-log record and one summary line per week; the exit code
    is the first non-zero one (later weeks still run)."""
    if args.date_from or args.date_to:
        from ._base import resolve_now

        try:
            weeks = _backfill_weeks(args, resolve_now(args))
        except ObsError as exc:
            failure = exc  # reported as the job's error: one summary line, the usage exit code
            return run_job(args, "weekly_report", lambda cfg, ctx, now: _raise(failure))
        code = 0
        for week in weeks:
            with _job_id_for(week):
                code = run_job(args, "weekly_report", _body(args, lambda w=week: w)) or code
        return code
    return run_job(args, "weekly_report", _body(args, lambda: _week(args)))


def _raise(exc: Exception):
    raise exc


def _body(args: argparse.Namespace, week_of):
    """The weekly job for the week ``week_of()`` (evaluated inside the job, so a bad
    ``--week-start`` is reported as the job's error; None: the week containing now)."""
    from ..heartbeat import write_heartbeat

    def body(cfg, ctx, now):
        from ..notebook import kernel_session
        from ..weekly import NOTEBOOK

        week = week_of()
        refused = False  # a delivery that cannot happen is a refused run, not a failed report

        def delivery_preflight() -> None:  # cheap checks before the notebook runs
            nonlocal refused
            from ..weekly.delivery import preflight_delivery

            try:
                preflight_delivery(os.environ, require_delivery=args.require_delivery, cfg=cfg,
                                   week_start=(week or week_start_of(now)).date().isoformat())
            except ObsError:
                refused = True
                raise

        try:
            # the report kernel starts first: its start-up (~0.5 s, the longest step before the
            # first cell) overlaps the imports and both preflights
            with ExitStack() as stack:
                try:
                    km = stack.enter_context(kernel_session(cfg.notebook.kernel_name, notebook=NOTEBOOK))
                except ObsError:
                    delivery_preflight()  # a refused delivery is still the error reported first
                    raise
                delivery_preflight()  # refused: the kernel is stopped unused
                from ..weekly.job import build_report

                result = build_report(cfg, ctx, now, week, allow_bad_rows=args.allow_bad_rows, km=km,
                                      replace=args.replace)
            from ..weekly.delivery import deliver_weekly

            try:
                delivery = deliver_weekly(result["payload"], week_start=result["week_start"], cfg=cfg, ctx=ctx,
                                          now=now, env=os.environ, force=args.force,
                                          require_delivery=args.require_delivery)
            except Exception:
                # the report's own alerts reach people whatever happened to its delivery
                try:
                    _route(cfg, ctx, now, result["payload"]["alerts"], result["week_start"])
                except Exception as route_exc:  # noqa: BLE001 - the delivery error is the job's error
                    print(f"alerts: report alerts not routed: {route_exc.__class__.__name__}: "
                          f"{redact(str(route_exc))[:300]}", file=sys.stderr)
                raise
        except Exception as exc:
            if not refused:
                write_heartbeat(cfg.ops_dir, "weekly_report", ctx.job_id, now, "error",
                                error=redact(f"{exc.__class__.__name__}: {exc}")[:500])
            raise
        status = (delivery.get("delivery") or {}).get("status")
        write_heartbeat(cfg.ops_dir, "weekly_report", ctx.job_id, now, "ok",
                        {"week_start": result["week_start"], "delivery": status})
        from ..weekly.job import summary_line

        out = summary_line(result, delivery)
        out["routed"] = _route(cfg, ctx, now, result["payload"]["alerts"] + list(delivery.get("alerts", [])),
                               result["week_start"])
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

    return body


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    p = sub.add_parser("weekly", help="weekly report: run, deliver, replay",
                       description="Weekly observability report (notebook, HTML, signed JSON payload).")
    wsub = p.add_subparsers(dest="weekly_command", metavar="SUBCOMMAND")
    wsub.required = True
    r = wsub.add_parser("run", parents=[parent], help="execute the report notebook for a week and deliver it",
                        description="Build the week's payload through the report notebook (papermill), export "
                                    "HTML, publish to out/weekly_report/<week_start>/, then deliver the payload.")
    r.add_argument("--week-start", help="Monday YYYY-MM-DD (default: the week containing --now)")
    r.add_argument("--from", dest="date_from", metavar="YYYY-MM-DD",
                   help="backfill: report every week from the one containing this date ... (with --to)")
    r.add_argument("--to", dest="date_to", metavar="YYYY-MM-DD",
                   help="... to the one containing this date, one summary line per week")
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
