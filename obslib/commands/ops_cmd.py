"""``obs cron``, ``obs check``, ``obs log tail``, ``obs restore``: thin wrappers over
``obslib.schedule`` and ``obslib.ops``.

Registering this module also installs size-based rotation of ``ops/automation_runs.log``
(``obslib.ops.runlog_ops.install_rotation``) for every ``obs`` command of the process.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from datetime import timedelta
from pathlib import Path

from ..config import finite_number
from ..errors import ConfigError, ObsError
from ..ops.runlog_ops import format_record, install_rotation, tail
from ._base import config_from_args, emit, flag_time, run_job, say


def _obs_bin() -> str:
    cand = Path(sys.executable).with_name("obs")
    return str(cand) if cand.exists() else (shutil.which("obs") or "obs")


def _cron(args: argparse.Namespace) -> int:
    from ..schedule import env_file, load_schedule, render_crontab, render_json

    try:
        cfg = config_from_args(args)
        jobs = load_schedule(cfg.schedule)
        if args.format == "json":
            sys.stdout.write(json.dumps(render_json(jobs), sort_keys=True) + "\n")
        else:
            if cfg.data_root is None and not args.demo:
                raise ConfigError("refusing to render a crontab without a configured data root: scheduled jobs "
                                  "would run on the generated demo data. Set data_root in obs.toml, "
                                  "OBS_DATA_ROOT or --data-root (or pass --demo for a demo crontab)")
            root = str(Path(cfg.work_root).resolve())
            data_root = str(Path(cfg.data_root).resolve()) if cfg.data_root is not None else None
            sys.stdout.write(render_crontab(jobs, work_root=root, obs_bin=args.obs_bin or _obs_bin(),
                                            env_path=args.env_file or env_file(cfg.schedule), data_root=data_root))
        return 0
    except ObsError as exc:
        say(f"obs cron: error: {exc}")
        return exc.exit_code


def _check(args: argparse.Namespace) -> int:
    def body(cfg, ctx, now):
        from ..ops.nightly import nightly_check

        since = flag_time("--since", args.since) if args.since else None
        out = nightly_check(cfg, ctx, now, dict(os.environ), since=since,
                            lookback=timedelta(hours=args.lookback_hours), send=not args.no_send)
        for f in out["findings"][:20]:
            say(f"obs check: {f['severity']}: {f['id']} -> {f['next_action']}")
        tta = out.get("time_to_ack")
        if tta and (tta["count"] or tta["unacknowledged_critical"]):
            say(f"obs check: {ack_line(tta)}")
        return out

    return run_job(args, "nightly_check", body)


def ack_line(tta: dict) -> str:
    """``time to acknowledge: 3 acks since the last check, median 4.0 min, max 12.5 min, 1 over the 10 min goal; ...``"""
    goal = tta["goal_s"] / 60
    parts = []
    if tta["count"]:
        parts.append(f"{tta['count']} ack(s) since the last check, median {tta['median_s'] / 60:.1f} min, "
                     f"max {tta['max_s'] / 60:.1f} min, {tta['over_goal']} over the {goal:g} min goal")
    if tta["unacknowledged_critical"]:
        parts.append(f"{len(tta['unacknowledged_critical'])} critical alert(s) not acknowledged: "
                     + ", ".join(tta["unacknowledged_critical"][:5]))
    return "time to acknowledge: " + "; ".join(parts)


def _tail(args: argparse.Namespace) -> int:
    from ..schedule import job_by_name, load_schedule

    try:
        cfg = config_from_args(args)
        names = None
        if args.job:
            jobs = load_schedule(cfg.schedule)  # a bad [schedule] is an error, as before
            try:
                names = {job_by_name(jobs, args.job).job_name}
            except ConfigError:  # not a scheduled job: match the run-log job_name as given
                names = {args.job}
        recs = tail(cfg.ops_dir, args.n, job_names=names, status=args.status)
    except ObsError as exc:
        say(f"obs log tail: error: {exc}")
        return exc.exit_code
    except OSError as exc:
        say(f"obs log tail: error: cannot read the run log: {exc.__class__.__name__}")
        return 2
    for r in recs:
        sys.stdout.write((json.dumps(r, sort_keys=True) if args.json else format_record(r)) + "\n")
    if not recs:
        say("obs log tail: no matching records")
    return 0


def _restore(args: argparse.Namespace) -> int:
    def body(cfg, ctx, now):
        from ..ops.restore import restore

        return restore(cfg, ctx, now, job_id=args.job_id, week_start=args.week_start, dry_run=args.dry_run)

    return run_job(args, "restore", body)


def register(subparsers, parent: argparse.ArgumentParser) -> None:
    """Add ``obs cron``, ``obs check``, ``obs log tail`` and ``obs restore``."""
    install_rotation()
    c = subparsers.add_parser("cron", parents=[parent], help="print the schedule (crontab or JSON)",
                              description="Render the one schedule (obslib.schedule, overridable in obs.toml "
                                          "[schedule.<job>]) as a crontab for `crontab -` or as JSON.")
    c.add_argument("--format", choices=("crontab", "json"), default="crontab")
    c.add_argument("--obs-bin", help="path of the obs executable in the crontab (default: this venv's obs)")
    c.add_argument("--env-file", help="file of NAME=value secret lines each cron command sources "
                                      "(default: obs.toml [schedule] env_file)")
    c.set_defaults(func=_cron)

    k = subparsers.add_parser("check", parents=[parent], help="nightly check: missed/failed/slow runs, heartbeats",
                              description="Compare the runs each scheduled job should have made since the last "
                                          "check with ops/automation_runs.log and the heartbeats; write "
                                          "ops/nightly_check.json; send alerts; exit 1 when anything is critical. "
                                          "See docs/runbook.md.")
    k.add_argument("--since", help="window start (RFC 3339; default: the previous check, else --lookback-hours)")
    k.add_argument("--lookback-hours", type=finite_number(minimum=0, exclusive=True), default=24.0,
                   help="first-check window in hours, a finite number > 0 (default 24)")
    k.add_argument("--no-send", action="store_true", help="preview: write ops/nightly_check.preview.json, send no alerts, and leave the check window where it is")
    k.set_defaults(func=_check)

    lg = subparsers.add_parser("log", help="the run log ops/automation_runs.log",
                               description="Read ops/automation_runs.log (and its rotated archives).")
    lsub = lg.add_subparsers(dest="log_command", metavar="ACTION")
    lsub.required = True
    t = lsub.add_parser("tail", parents=[parent], help="show the last records (human-readable)",
                        description="Show the last run-log records, oldest first, one line each.")
    t.add_argument("-n", type=finite_number(minimum=0, integer=True), default=20, help="how many records (default 20; 0 = all)")
    t.add_argument("--job", help="only this job (schedule name such as latency_sample, or run-log job_name)")
    t.add_argument("--status", help="only this status (e.g. error)")
    t.add_argument("--json", action="store_true", help="one JSON record per line instead of text")
    t.set_defaults(func=_tail)

    r = subparsers.add_parser("restore", parents=[parent], help="disaster recovery: rebuild out/ from ops/ history",
                              description="Rebuild out/dashboard/ (the latest bundle) and the latest weekly payload "
                                          "solely from ops/dashboard_export_history/ and ops/weekly_report_history/. "
                                          "See docs/runbook.md#disaster-recovery.")
    r.add_argument("--job-id", help="restore this dashboard export (default: the latest complete one)")
    r.add_argument("--week-start", help="restore this week's payload (default: the latest delivered week)")
    r.add_argument("--dry-run", action="store_true", help="say what would be restored; write nothing")
    r.set_defaults(func=_restore)


__all__ = ["register", "emit"]
