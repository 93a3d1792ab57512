"""``obs latency sample|rollup|status``: thin wrappers over ``obslib.latency.job``.

This is the edge: it reads the clock (via ``run_job``), the environment (alert webhook
URL and secrets, ``OBS_COMMIT_SHA``) and resolves the data root, then calls the library.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from typing import Any

from ._base import flag_time, run_job, say


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {"latency": {"raw_retention_days": getattr(args, "raw_retention_days", None),
                        "rollup_retention_days": getattr(args, "rollup_retention_days", None),
                        "rotate_bytes": getattr(args, "rotate_bytes", None)},
            "lock_timeout_s": getattr(args, "lock_timeout", None)}


def _say_messages(summary: dict) -> dict:
    for m in summary.pop("_messages", []):
        say(f"obs latency: {m}")
    return summary


def _needs_data_root(cfg) -> bool:
    return not cfg.latency.sources or any("{data_root}" in (s.path or "") for s in cfg.latency.sources)


def _router(cfg, ctx, now):
    """``route_alerts`` bound to this run (source ``latency``): the latency outbox hands it
    each run's alerts (and an empty list, so repeats of open criticals still go out)."""
    from ..alerting.router import brief, route_alerts

    def route(alerts, budget):
        return brief(route_alerts(alerts, cfg=cfg, ctx=ctx, now=now, dest=ctx.destinations, source="latency",
                                  budget=budget))

    return route


def _sample(args: argparse.Namespace) -> int:
    def body(cfg, ctx, now):
        from ..inputs import resolve_data_root
        from ..latency.alerts import target_from_env
        from ..latency.job import run_sample
        from ..provenance import commit_sha, source_command
        from ..timeutil import utcnow

        data_root = resolve_data_root(cfg, now) if _needs_data_root(cfg) else cfg.work_root
        pretend = bool(getattr(args, "now", None) or os.environ.get("OBS_NOW"))
        target = dataclasses.replace(target_from_env(dict(os.environ)), route=_router(cfg, ctx, now),
                                     budget_s=cfg.alerts.latency_budget_s)
        summary = run_sample(cfg, ctx, now, data_root=data_root, target=target,
                             source_command=source_command(), commit_sha=commit_sha(),
                             clock=None if pretend else utcnow)  # real runs stamp rows after the lock
        if summary.get("skipped"):
            say(f"obs latency sample: skipped: {summary.get('error') or summary.get('reason')}")
        routed = (summary.get("alerts") or {}).get("routed") or {}
        from ..alerting.destinations import is_demo_data

        if routed.get("unrouted") and not is_demo_data(cfg):  # a real alert that reaches nobody is said
            say(f"obs latency sample: {routed['unrouted']} active warning/critical alert(s) have no configured "
                "channel (set OBS_SLACK_WEBHOOK_URL / OBS_PAGERDUTY_ROUTING_KEY); see `obs alerts list`")
        return _say_messages(summary)

    return run_job(args, "latency", body, config_overrides=_overrides(args))


def _rollup(args: argparse.Namespace) -> int:
    def body(cfg, ctx, now):
        from ..latency.job import run_rollup

        summary = run_rollup(cfg, ctx, now, full=args.full)
        if summary.get("skipped"):
            say(f"obs latency rollup: skipped: {summary.get('error')}")
        return _say_messages(summary)

    return run_job(args, "latency_rollup", body, config_overrides=_overrides(args))


def _status(args: argparse.Namespace) -> int:
    def body(cfg, ctx, now):
        from ..errors import ObsError
        from ..latency.job import latency_status

        since = flag_time("--since", args.since) if args.since else None
        until = flag_time("--until", args.until) if args.until else None
        if since is not None and until is not None and since >= until:
            raise ObsError(f"--since {args.since!r} is not before --until {args.until!r} (an empty range)")
        st = latency_status(cfg, since=since, until=until)
        say(f"{'source':<24} {'severity':<9} {'streak':>6} {'absent':<8} {'burn':<8} {'window p95 ms':>14}  "
            f"{'status':<12} window end")
        for name, s in st["sources"].items():
            p95 = "-" if s["latest_p95_ms"] is None else f"{s['latest_p95_ms']:.0f}"
            say(f"{name:<24} {s['severity']:<9} {s['streak']:>6} {s['absent']:<8} {s['burn']:<8} {p95:>14}  "
                f"{s['latest_status'] or '-':<12} {s['latest_at'] or '-'}")
        for name, r in (st.get("range") or {}).get("sources", {}).items():
            p95 = "-" if r["p95_ms"] is None else f"{r['p95_ms']:.0f}"
            say(f"range {st['range']['since']}..{st['range']['until']} {name}: p95 {p95} ms over "
                f"{r['samples']} events ({r['method']})")
        if not st["sources"]:
            say("no latency samples yet (run `obs latency sample`)")
        return st

    return run_job(args, "latency_status", body, record=False)


def register(subparsers, parent: argparse.ArgumentParser) -> None:
    """Add ``obs latency sample|rollup|status``."""
    p = subparsers.add_parser("latency", help="latency sampling, hourly rollups and SLO breach alerts",
                              description="Signal latency monitoring (see docs/runbook.md#signal-latency).")
    sub = p.add_subparsers(dest="latency_command", metavar="ACTION")
    sub.required = True

    def knobs(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--raw-retention-days", type=int, help="drop raw rows/archives older than this (default 14)")
        sp.add_argument("--rollup-retention-days", type=int, help="drop rollup rows older than this (default 90)")
        sp.add_argument("--lock-timeout", type=float, help="seconds to wait for ops/signal_latency.lock (default 30)")

    s = sub.add_parser("sample", parents=[parent], help="sample every source once (cron: */15), roll up, alert",
                       description="Append one row per latency source to ops/signal_latency.csv, update the hourly "
                                   "rollups, rotate/prune, and send breach-streak alerts.")
    knobs(s)
    s.add_argument("--rotate-bytes", type=int, help="rotate ops/signal_latency.csv above this size (default 10 MB)")
    s.set_defaults(func=_sample)
    r = sub.add_parser("rollup", parents=[parent], help="recompute hourly rollups (cron: hourly)",
                       description="Update ops/signal_latency_rollup.csv (only hours with new samples).")
    knobs(r)
    r.add_argument("--full", action="store_true", help="recompute every hour still inside raw retention")
    r.set_defaults(func=_rollup)
    st = sub.add_parser("status", parents=[parent], help="current breach streaks and the latest p95 per source",
                        description="Print the current streaks and the latest p95 per source (JSON on stdout, "
                                    "a table on stderr).")
    st.add_argument("--since", help="also report p50/p95/p99 per source over sample windows from this time (RFC 3339, "
                         "1970..2099)")
    st.add_argument("--until", help="... up to this time (exclusive, RFC 3339, after --since; default: no end)")
    st.set_defaults(func=_status)
