"""The weekly report payload (``schemas/observability_weekly_report.schema.json``).

``build_weekly_payload`` reads the research repository at ``data_root`` for one week
``[week_start, week_end)`` and returns the payload dict. Definitions (DESIGN.md):

- EV is pips per trade (``total_pips / trades``). ``ev.trend_7d`` (pips/trade) comes from
  the run's ``daily.csv`` rows dated before ``week_end``: let D be the last date with
  fills; EV over the 7 calendar days ``[D-6, D]`` minus EV over ``[D-13, D-7]``; null when
  either window has no fills or the file is missing.
- ``win_rate_lcb`` (fraction) from the state file the run ended with
  (``state_archive_path``), see ``obslib.stats.win_rate_lcb``.
- The week's own runs (``runs.week``, ``runs.week_summary``): the ``runs/index.csv`` rows
  whose ``timestamp`` (``YYYYMMDD_HHMMSS``, read in ``run_stamp_tz``, UTC by default) falls
  in ``[week_start, week_end)``. Per run: ``ev.latest`` = total_pips / trades (pips/trade)
  and ``win_rate_lcb`` = the one-sided 95 % lower bound of Beta(wins + 1, losses + 1)
  (uniform prior; null without trades). The summary pools every run of the week (runs,
  trades, wins, pips/trade, the same LCB over the pooled wins and losses); ``runs.week``
  lists at most ``WEEK_RUNS_MAX`` runs sorted by run_id (the summary keeps the full count).
- Benchmarks are standing references: the newest report generated before ``week_end`` is
  used, its ``as_of`` shown; older than ``benchmark_stale_days`` (14) at ``week_end`` ->
  warning alert; generated after the week -> not used, info alert.
- Utilisation status rule (percent of equity): ``breach`` when utilisation > budget;
  ``warning`` when headroom (budget - utilisation) < 20 % of budget
  (``utilisation_warning_headroom_frac``); else ``ok``.
- Latency (the latency model, docs/architecture.md): the events (or sample rows) of
  ``ops/signal_latency.csv`` whose event-time window starts in the week, grouped into
  window parts and merged by ``obslib.latency.model.query``: ``p95_ms`` over every event
  of the week, per-source p50/p95/p99/max with their ``method`` (exact type 7 up to 64
  events, else DDSketch within 1 %), ``hourly`` p95 per (hour, source); ``breaches`` are
  the warning/critical changes of the breach streaks replayed over the week's windows.
- Strategies are keyed by their canonical id (``inputs.strategy``); ``execution_health``
  keeps the raw telemetry names in ``strategy_source`` ({id: raw}).
- Data outside the week never fills an empty week: a missing section is empty plus an alert.

Everything is sorted, so the same inputs and ``now`` give a byte-identical payload
(provenance ``job_id`` aside, which identifies the run).
"""

from __future__ import annotations

import copy
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from ..alerts import make_alert, sort_alerts
from ..config import Config
from ..dashboard.publish_state import published_attachments
from ..errors import InputError
from ..inputs import Problem
from ..inputs.latency_events import LATENCY_REL
from ..inputs.reports import TELEMETRY_REL, read_benchmarks, read_router_telemetry
from ..inputs.runs import INDEX_REL, data_path_problem, read_daily, read_run_index, run_dir_problem
from ..inputs.state_archive import parse_snapshot
from ..inputs.strategy import strategy_keys
from ..inputs.values import is_null, parse_timestamp, show
from ..latency.sketch import METHOD_EXACT
from ..latency.streaks import replay
from ..provenance import input_entries, provenance
from ..stats import ev_per_trade, win_rate_lcb
from ..storage import canonical_json_bytes, sha256_bytes
from ..timeutil import parse_ts, to_rfc3339
from . import SCHEMA_FILE  # noqa: F401 - defined with the package, re-exported here for older imports

SCHEMA_VERSION = "1.1.0"
WEEK_RUNS_MAX = 200  # runs.week lists at most this many runs; runs.week_summary counts them all
RUN_LCB_CONF = 0.95
MAX_ALERTS_PER_FILE = 20    # bad-row alerts per input file, then one "and K more" alert
MAX_PROBLEM_FILES = 20      # files with problem alerts, then one "and K more in N files" alert
MAX_INPUT_PROBLEMS = 100    # problems listed in provenance.input_problems (all are counted)
VOLATILE_PROVENANCE = ("job_id", "generated_at", "source_command")


def _r(x: float | None, nd: int = 6) -> float | None:
    return None if x is None else round(float(x), nd)


def ev_trend_7d(daily: list[dict] | None, before: date) -> float | None:
    """EV(last 7 days with data) - EV(7 days before), pips/trade; see module doc."""
    if not daily:
        return None
    rows = [r for r in daily if r["date"] < before]
    with_fills = [r for r in rows if (r.get("fills") or 0) > 0]
    if not with_fills:
        return None
    last = with_fills[-1]["date"]

    def ev(lo: date, hi: date) -> float | None:
        sel = [r for r in rows if lo <= r["date"] <= hi]
        fills = sum(r["fills"] or 0 for r in sel)
        return ev_per_trade(sum(r["pnl_pips"] or 0.0 for r in sel), fills) if fills else None

    a = ev(last - timedelta(days=6), last)
    b = ev(last - timedelta(days=13), last - timedelta(days=7))
    return None if a is None or b is None else a - b


def _as_of_order(bench: dict) -> datetime:
    """Sort key: a benchmark's ``as_of`` (an undated one sorts first)."""
    return bench["as_of"] or datetime.min.replace(tzinfo=timezone.utc)


def _baseline_inputs(data_root: Path, bench: dict, problems: list[Problem],
                     used_inputs: list[str]) -> tuple[str, list[dict] | None, float | None]:
    """``(run_id, daily rows or None, win_rate_lcb or None)`` of a baseline benchmark: the
    run's ``daily.csv`` (for ``ev.trend_7d``) and the state file it ended with (for the
    LCB). A missing or unusable one is a problem (the field is then null)."""
    d = bench["data"]
    run_dir = str(d.get("run_dir") or "")
    run_id = Path(run_dir).name if run_dir else bench["key"]
    daily = None
    if run_dir:
        daily = read_daily(data_root, run_dir, problems)
        if daily is None and run_dir_problem(data_root, run_dir) is None:  # else read_daily said why
            problems.append(Problem("missing", f"{run_dir}/daily.csv",
                                    f"daily.csv of baseline run {run_id} not found: ev.trend_7d is null"))
        else:
            used_inputs.append(f"{run_dir}/daily.csv")
    sap = str(d.get("state_archive_path") or "")
    if not sap:
        return run_id, daily, None
    if (why := data_path_problem(data_root, sap, what="state_archive_path")) is not None:
        problems.append(Problem("malformed", bench["path"], f"{why}: win_rate_lcb is null"))
        return run_id, daily, None
    if not (Path(data_root) / sap).is_file():
        problems.append(Problem("missing", sap, f"state file of baseline {run_id} not found: win_rate_lcb is null"))
        return run_id, daily, None
    used_inputs.append(sap)
    if len(Path(sap).parts) < 4:
        problems.append(Problem("malformed", sap, "state_archive_path outside the archive layout"))
        return run_id, daily, None
    snap = parse_snapshot(Path(data_root) / sap, sap, problems)
    return run_id, daily, None if snap is None else _r(snap["win_rate_lcb"])


def _benchmarks(data_root: Path, cfg: Config, week_start: datetime, week_end: datetime,
                problems: list[Problem], alerts: list[dict], used_inputs: list[str]) -> dict:
    wk = week_start.date().isoformat()
    chosen: dict[tuple, dict] = {}
    for b in read_benchmarks(data_root, problems, cfg.run_stamp_tz):
        ident = (b["kind"], b["key"], b["days"])
        label = b["path"]
        if b["as_of"] is not None and b["as_of"] >= week_end:
            alerts.append(make_alert(f"benchmark-after-week:{label}:{wk}", "info",
                                     f"{label} was generated at {to_rfc3339(b['as_of'])}, after the week "
                                     f"{wk}; not used", anchor="weekly-report-inputs", owner=cfg.owner))
            continue
        prev = chosen.get(ident)
        if prev is None or _as_of_order(b) > _as_of_order(prev):  # the newest one before the week ends
            chosen[ident] = b
    baseline, rolling = [], []
    for _ident, b in sorted(chosen.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] or 0)):
        used_inputs.append(b["path"])
        d = b["data"]
        as_of = b["as_of"]
        age_days = None if as_of is None else (week_end - as_of).total_seconds() / 86400
        if as_of is None:
            alerts.append(make_alert(f"benchmark-age-unknown:{b['path']}:{wk}", "warning",
                                     f"{b['path']} has no generated_at or dated state/run path: age unknown",
                                     anchor="weekly-report-inputs", owner=cfg.owner))
        elif age_days > cfg.benchmark_stale_days:
            alerts.append(make_alert(f"benchmark-stale:{b['path']}:{wk}", "warning",
                                     f"{b['path']} is {age_days:.1f} days old at week_end {to_rfc3339(week_end)} "
                                     f"(limit {cfg.benchmark_stale_days} days)",
                                     anchor="weekly-report-inputs", owner=cfg.owner))
        ev_latest = _r(ev_per_trade(d.get("total_pips"), d.get("trades")))
        common = {"as_of": None if as_of is None else to_rfc3339(as_of), "as_of_source": b["as_of_source"],
                  "source": b["path"], "trades": int(d["trades"]),
                  "stale": None if age_days is None else age_days > cfg.benchmark_stale_days}
        if b["kind"] == "baseline":
            run_id, daily, lcb = _baseline_inputs(data_root, b, problems, used_inputs)
            baseline.append({"run_id": run_id, "ev": {"latest": ev_latest,
                                                      "trend_7d": _r(ev_trend_7d(daily, week_end.date()))},
                             "win_rate_lcb": lcb, **common})
        else:
            days = int(b["days"])
            rolling.append({"run_id": f"{b['key']}_rolling_{days}d", "window_days": days,
                            "ev": {"latest": ev_latest, "trend_7d": None},
                            "turnover": {"avg_trades_per_day": _r(float(d["trades"]) / days)}, **common})
    if not baseline and not rolling:
        alerts.append(make_alert(f"no-benchmarks:{wk}", "warning",
                                 f"no benchmark report usable for week {wk}", anchor="weekly-report-inputs",
                                 owner=cfg.owner))
    elif not baseline:
        alerts.append(make_alert(f"no-baseline:{wk}", "warning",
                                 f"no baseline benchmark usable for week {wk}", anchor="weekly-report-inputs",
                                 owner=cfg.owner))
    return {"baseline": baseline, "rolling": rolling}


def _run_lcb(wins: float | None, trades: float | None) -> float | None:
    """One-sided ``RUN_LCB_CONF`` lower bound of the win rate from counts: Beta(wins + 1,
    losses + 1); None without trades or with counts that do not make sense."""
    if not trades or wins is None or trades <= 0 or not 0 <= wins <= trades:
        return None
    return _r(win_rate_lcb(wins, trades - wins, 1.0, 1.0, RUN_LCB_CONF))


def run_time(row: dict, tz: str) -> datetime | None:
    """When an index row's run happened: its ``timestamp`` read as the index reader reads
    it (``inputs.values.parse_timestamp``: ``YYYYMMDD_HHMMSS`` or ISO 8601, a zone-less
    time in ``tz``), aware UTC; None when the cell is empty or not a time."""
    raw = row.get("timestamp")
    if is_null(raw):
        return None
    try:
        return parse_timestamp(str(raw), naive_tz=tz)
    except ValueError:
        return None


def _week_runs(index: list[dict], cfg: Config, week_start: datetime, week_end: datetime,
               problems: list[Problem]) -> tuple[dict, list[dict]]:
    """``(runs.week_summary, runs.week)`` from the index rows stamped in the week (module doc)."""
    rows = []
    for r in index:
        t = run_time(r, cfg.run_stamp_tz)
        if t is None:
            problems.append(Problem("ignored", INDEX_REL, f"run {r['run_id']}: timestamp {r.get('timestamp')!r} is "
                                                          "not a YYYYMMDD_HHMMSS stamp: not counted in any week",
                                    r.get("_line")))
        elif week_start <= t < week_end:
            rows.append((r, t))
    trades = sum(r["trades"] or 0 for r, _ in rows)
    wins = sum(r["wins"] or 0 for r, _ in rows)
    pips = sum(r["total_pips"] or 0.0 for r, _ in rows)
    summary = {"runs": len(rows), "trades": int(trades), "wins": int(wins),
               "ev_per_trade": _r(ev_per_trade(pips, trades)), "win_rate_lcb": _run_lcb(wins, trades)}
    week = [{"run_id": r["run_id"], "timestamp": to_rfc3339(t), "symbol": r.get("symbol") or None,
             "mode": r.get("mode") or None, "trades": int(r["trades"] or 0), "wins": int(r["wins"] or 0),
             "ev": {"latest": _r(ev_per_trade(r["total_pips"], r["trades"]))},
             "win_rate_lcb": _run_lcb(r["wins"], r["trades"])} for r, t in rows[:WEEK_RUNS_MAX]]
    return summary, week


def utilisation_status(utilisation_pct: float | None, budget_pct: float | None, headroom_pct: float | None,
                       warning_frac: float = 0.2) -> str:
    """ok|warning|breach: breach when utilisation > budget; warning when headroom <
    ``warning_frac`` x budget; ok otherwise (unknown numbers -> ok only if nothing says otherwise)."""
    if utilisation_pct is not None and budget_pct is not None and utilisation_pct > budget_pct:
        return "breach"
    if headroom_pct is not None and headroom_pct < 0:
        return "breach"
    if headroom_pct is not None and budget_pct is not None and headroom_pct < warning_frac * budget_pct:
        return "warning"
    return "ok"


def _telemetry(data_root: Path, cfg: Config, wk: str, week_end: datetime, problems: list[Problem], alerts: list[dict],
               used_inputs: list[str]) -> tuple[dict, dict]:
    tel = read_router_telemetry(data_root, problems)
    empty = ({"categories": []}, {"slippage_bps": {}, "reject_rate": {}, "strategy_source": {}})
    if tel is None:
        return empty
    stamp = tel.get("generated_at") or tel.get("as_of")
    if stamp:
        try:
            tel_time = parse_ts(str(stamp))
        except ValueError as exc:
            raise InputError(TELEMETRY_REL, f"generated_at {show(stamp)} is not a timestamp") from exc
        if tel_time >= week_end:
            alerts.append(make_alert(f"telemetry-after-week:{wk}", "warning",
                                     f"{TELEMETRY_REL} is dated {to_rfc3339(tel_time)}, after week {wk}: "
                                     "utilisation and execution health not reported", anchor="weekly-report-inputs",
                                     owner=cfg.owner))
            return empty
    else:
        alerts.append(make_alert(f"telemetry-undated:{wk}", "info",
                                 f"{TELEMETRY_REL} carries no timestamp: shown as the latest router snapshot",
                                 anchor="weekly-report-inputs", owner=cfg.owner))
    used_inputs.append(TELEMETRY_REL)

    def num(section: str, key: str | None = None) -> float | None:
        sec = tel.get(section)
        if key is not None and sec is not None and not isinstance(sec, dict):
            raise InputError(TELEMETRY_REL, f"{section} is not an object: {show(sec)}")
        v = sec if key is None else (sec or {}).get(key)
        if v is None:
            return None
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise InputError(TELEMETRY_REL, f"{section}{'.' + key if key else ''} is not a number: {show(v)}")
        return float(v)

    for sec in ("category_budget_pct", "category_utilisation_pct", "category_budget_headroom_pct", "category_caps_pct"):
        if tel.get(sec) is not None and not isinstance(tel.get(sec), dict):
            raise InputError(TELEMETRY_REL, f"{sec} is not an object: {show(tel.get(sec))}")
    names = sorted(set(tel.get("category_budget_pct") or {}) | set(tel.get("category_utilisation_pct") or {}))
    cats = []
    for n in names:
        util, budget = num("category_utilisation_pct", n), num("category_budget_pct", n)
        head = num("category_budget_headroom_pct", n)
        if head is None and util is not None and budget is not None:
            head = budget - util
        status = utilisation_status(util, budget, head, cfg.utilisation_warning_headroom_frac)
        cats.append({"name": n, "utilisation_pct": _r(util), "budget_pct": _r(budget), "headroom_pct": _r(head),
                     "cap_pct": _r(num("category_caps_pct", n)), "status": status})
        if status != "ok":
            alerts.append(make_alert(f"utilisation-{status}:{n}:{wk}", "critical" if status == "breach" else "warning",
                                     f"category {n}: utilisation {util}% vs budget {budget}% (headroom {_r(head)}%)"
                                     f" -> {status}", anchor="utilisation-budget", owner=cfg.owner))
    if not cats:
        alerts.append(make_alert(f"utilisation-empty:{wk}", "warning", f"{TELEMETRY_REL} has no categories",
                                 anchor="weekly-report-inputs", owner=cfg.owner))
    util = {"categories": cats, "gross_exposure_pct": _r(num("gross_exposure_pct")),
            "gross_exposure_cap_pct": _r(num("gross_exposure_cap_pct"))}
    eh = tel.get("execution_health") or {}
    if not isinstance(eh, dict):
        raise InputError(TELEMETRY_REL, "execution_health is not an object")
    slip, rej = {}, {}
    keys = strategy_keys(sorted(eh))  # {raw telemetry name: canonical strategy id}
    for strat in sorted(eh):
        v = eh[strat] or {}
        if not isinstance(v, dict):
            raise InputError(TELEMETRY_REL, f"execution_health.{strat} is not an object: {show(v)}")
        for key, target in (("slippage_bps", slip), ("reject_rate", rej)):
            val = v.get(key)
            if val is None:
                problems.append(Problem("missing", TELEMETRY_REL, f"execution_health.{strat}.{key} missing"))
                continue
            if isinstance(val, bool) or not isinstance(val, (int, float)):
                raise InputError(TELEMETRY_REL, f"execution_health.{strat}.{key} is not a number: {show(val)}")
            if key == "reject_rate" and not 0.0 <= float(val) <= 1.0:
                raise InputError(TELEMETRY_REL, f"execution_health.{strat}.reject_rate {val} is not a fraction "
                                                "in [0, 1]")
            target[keys[strat]] = _r(val)
    if not eh:
        alerts.append(make_alert(f"execution-health-empty:{wk}", "warning",
                                 f"{TELEMETRY_REL} has no execution_health", anchor="weekly-report-inputs",
                                 owner=cfg.owner))
    return util, {"slippage_bps": slip, "reject_rate": rej, "strategy_source": {k: r for r, k in sorted(keys.items())}}


def latency_name_of(cfg: Config, data_root: Path):
    """How the sampler names the sources of ``<data_root>/ops/signal_latency.csv`` (so the
    weekly payload uses the same names): the configured ``event_log`` source on that file
    (``match_source`` -> its name, ``by_source_column`` -> the row's source), else one
    source per value of the ``source`` column (``signal_events`` without one)."""
    from ..latency.sources import _name_of

    log = (Path(data_root) / LATENCY_REL).resolve()
    mine = [s for s in cfg.latency_sources(data_root) if s.kind == "event_log" and s.path
            and Path(s.path).resolve() == log]

    def name_of(row_source: str | None) -> str | None:
        for s in mine:
            n = _name_of(s, row_source)
            if n is not None:
                return n
        return None if mine else (row_source or "signal_events")

    return name_of


def latency_parts(data_root: Path, cfg: Config, start: datetime, end: datetime, problems: list[Problem],
                  counts: dict | None = None) -> list:
    """Window parts (``obslib.latency.model.Part``) of the data root's latency file with
    windows starting in ``[start, end)``, named as the sampler names them."""
    from ..inputs.latency_events import read_latency_parts

    name_of = latency_name_of(cfg, data_root)
    parts = read_latency_parts(data_root, start, end, problems, slo_of=cfg.latency.slo_of,
                               window_s=int(round(cfg.latency.window_minutes * 60)),
                               naive_utc=cfg.latency.naive_timestamps == "utc", counts=counts,
                               name_of=name_of)
    return parts


def _latency(data_root: Path, cfg: Config, week_start: datetime, week_end: datetime, problems: list[Problem],
             alerts: list[dict], used_inputs: list[str]) -> dict:
    """The payload's latency section: every number from ``obslib.latency.model.query`` over
    the week's window parts (the same query as the rollups and ``obs latency status``)."""
    import dataclasses

    from ..latency.model import epoch, query, window_status

    wk = week_start.date().isoformat()
    lat = cfg.latency
    parts = latency_parts(data_root, cfg, week_start, week_end, problems)
    if (Path(data_root) / LATENCY_REL).exists():
        used_inputs.append(LATENCY_REL)
    slo = lat.slo_ms
    lo, hi = epoch(week_start), epoch(week_end)
    per_src = query(parts, by="range", slo_of=lat.slo_of, start=lo, end=hi)
    total = query([dataclasses.replace(p, source="*") for p in parts], by="range", slo_of=lambda s: slo,
                  start=lo, end=hi).get((lo, "*"))
    sources = [{"source": st.source, "samples": st.samples, "p50_ms": _r(st.p50, 3), "p95_ms": _r(st.p95, 3),
                "p99_ms": _r(st.p99, 3), "max_ms": _r(st.max, 3), "windows": st.windows,
                "bad_events": st.bad_events, "error_samples": st.error_samples, "method": st.method}
               for st in per_src.values()]
    hourly = [{"hour_utc": to_rfc3339(st.start_dt), "source": st.source, "p95_ms": _r(st.p95, 3),
               "samples": st.samples, "method": st.method}
              for st in query(parts, by="hour", slo_of=lat.slo_of, start=lo, end=hi).values()]
    windows = query(parts, by="window", slo_of=lat.slo_of, start=lo, end=hi)
    wsec = int(round(lat.window_minutes * 60))
    seq = []
    for src in sorted({p.source for p in parts}):
        for ws in range(lo, hi, wsec):
            st = windows.get((ws, src))
            status = window_status(st, min_events=lat.min_events)
            seq.append({"source": src, "timestamp": to_rfc3339(datetime.fromtimestamp(ws + wsec, timezone.utc)),
                        "p95_ms": st.p95 if st else None,
                        "status": status if status in ("ok", "breach", "error") else "no_data"})
    seq.sort(key=lambda x: (x["timestamp"], x["source"]))
    _, notes = replay(seq, slo)
    breaches = sorted(({"timestamp": n.timestamp, "source": n.source, "p95_ms": _r(n.p95_ms, 3),
                        "status": n.severity} for n in notes if n.severity in ("warning", "critical")),
                      key=lambda b: (b["timestamp"], b["source"]))
    if total is None or total.samples == 0:
        alerts.append(make_alert(f"latency-no-samples:{wk}", "warning", f"no latency samples in week {wk}",
                                 anchor="signal-latency", owner=cfg.owner))
    for b in breaches:
        alerts.append(make_alert(f"latency-{b['status']}:{b['source']}:{b['timestamp']}", b["status"],
                                 f"{b['source']}: p95 {b['p95_ms']} ms above the {slo:g} ms SLO "
                                 f"({b['status']} streak at {b['timestamp']})", anchor="signal-latency",
                                 owner=cfg.owner))
    return {"p95_ms": _r(total.p95, 3) if total else None, "samples": total.samples if total else 0, "slo_ms": slo,
            "method": total.method if total else METHOD_EXACT, "sources": sources, "breaches": breaches,
            "hourly": hourly}


def build_weekly_payload(data_root: Path, week_start: datetime, *, cfg: Config, now: datetime, job_id: str,
                         command: str, sha: str | None, data_label: str,
                         allow_bad_rows: bool = False) -> dict[str, Any]:
    """Build the weekly payload for ``[week_start, week_start + 7 days)``.

    ``data_root``: research repository; ``now``: generation time (aware UTC);
    ``job_id``/``command``/``sha``: provenance; ``data_label``: how to name the data root
    in the payload (no absolute paths). Raises ``InputError`` when a required input
    (``runs/index.csv``) is missing, an existing input is unreadable (JSON syntax error,
    etc.), or, unless ``allow_bad_rows``, any input row is malformed (the message names
    the first file and line and counts the rest). With ``allow_bad_rows`` the bad rows are
    reported as alerts and in ``provenance.input_problems``, never silently dropped.
    Returns the payload dict (not yet schema-validated; see ``validate_payload``).
    """
    week_end = week_start + timedelta(days=7)
    wk = week_start.date().isoformat()
    problems: list[Problem] = []
    alerts: list[dict] = []
    used: list[str] = []
    index = read_run_index(data_root, problems)  # required: a data root without it is wrong
    used.append(INDEX_REL)
    runs = _benchmarks(data_root, cfg, week_start, week_end, problems, alerts, used)
    runs["week_summary"], runs["week"] = _week_runs(index, cfg, week_start, week_end, problems)
    indexed = {r["run_id"] for r in index}
    for b in runs["baseline"]:
        b["in_index"] = b["run_id"] in indexed
    util, health = _telemetry(data_root, cfg, wk, week_end, problems, alerts, used)
    latency = _latency(data_root, cfg, week_start, week_end, problems, alerts, used)
    malformed = [p for p in problems if p.kind == "malformed"]
    if malformed and not allow_bad_rows:
        first = malformed[0]
        more = f" (+{len(malformed) - 1} more bad row(s): " + "; ".join(map(str, malformed[1:4])) + ")" if len(
            malformed) > 1 else ""
        raise InputError(first.path, f"{first.reason}{more}; fix the input or pass --allow-bad-rows to report "
                                     "them as alerts", line=first.line)
    alerts.extend(problem_alerts(problems, cfg))
    # de-duplicate ids (the same problem reported twice keeps one alert)
    uniq = {a["id"]: a for a in alerts}
    payload = {
        "schema_version": SCHEMA_VERSION,
        "generated_at": to_rfc3339(now),
        "week_start": to_rfc3339(week_start),
        "week_end": to_rfc3339(week_end),
        "runs": runs,
        "utilisation": util,
        "execution_health": health,
        "latency": latency,
        "alerts": sort_alerts(list(uniq.values())),
        "attachments": [
            {"name": "weekly_report.ipynb", "path": f"weekly_report/{wk}/weekly_report.ipynb",
             "media_type": "application/x-ipynb+json"},
            {"name": "weekly_report.html", "path": f"weekly_report/{wk}/weekly_report.html",
             "media_type": "text/html"},
            *published_attachments(cfg),  # the published dashboard snapshot, when [publish] is configured
        ],
        "provenance": provenance(generated_at=now, job_id=job_id, command=command, sha=sha,
                                 inputs=input_entries(data_root, used), data_root=data_label,
                                 run_stamp_tz=cfg.run_stamp_tz, **problem_listing(problems)),
    }
    return payload


def _problem_order(p: Problem) -> tuple:
    return (p.path, p.line or 0, p.reason)


def problem_alerts(problems: list[Problem], cfg: Config) -> list[dict]:
    """One alert per input problem, capped: at most ``MAX_ALERTS_PER_FILE`` per file plus
    one ``input-more:<file>`` alert saying how many more (by kind), and at most
    ``MAX_PROBLEM_FILES`` files with alerts plus one ``input-more-files`` alert; so 20,000
    bad rows give about 21 alerts, not 20,000 (the webhook body stays small). Every
    problem is still counted in ``provenance.input_problems_total``."""
    by_file: dict[str, list[Problem]] = {}
    for p in sorted(problems, key=_problem_order):
        by_file.setdefault(p.path, []).append(p)
    out: list[dict] = []

    def sev(ps: list[Problem]) -> str:
        return "warning" if any(p.kind in ("malformed", "missing") for p in ps) else "info"

    for path in sorted(by_file)[:MAX_PROBLEM_FILES]:
        ps = by_file[path]
        for p in ps[:MAX_ALERTS_PER_FILE]:
            out.append(make_alert(f"input-{p.kind}:{p.path}:{p.line or 0}", sev([p]), f"input {p.kind}: {p}",
                                  anchor="weekly-report-inputs", owner=cfg.owner))
        rest = ps[MAX_ALERTS_PER_FILE:]
        if rest:
            out.append(make_alert(f"input-more:{path}", sev(rest),
                                  f"input {path}: and {len(rest)} more problem(s) ({_kinds(rest)}) not listed; "
                                  "totals in provenance.input_problems_total", anchor="weekly-report-inputs",
                                  owner=cfg.owner))
    files = sorted(by_file)[MAX_PROBLEM_FILES:]
    if files:
        rest = [p for f in files for p in by_file[f]]
        out.append(make_alert("input-more-files", sev(rest),
                              f"and {len(rest)} more problem(s) ({_kinds(rest)}) in {len(files)} more file(s), "
                              f"first {files[0]}; totals in provenance.input_problems_total",
                              anchor="weekly-report-inputs", owner=cfg.owner))
    return out


def _kinds(ps: list[Problem]) -> str:
    counts: dict[str, int] = {}
    for p in ps:
        counts[p.kind] = counts.get(p.kind, 0) + 1
    return ", ".join(f"{k}: {n}" for k, n in sorted(counts.items()))


def problem_listing(problems: list[Problem]) -> dict:
    """``provenance`` fields: ``input_problems`` (the first ``MAX_INPUT_PROBLEMS`` by file,
    line, reason), ``input_problems_total`` (every problem counted by kind) and
    ``input_problems_omitted`` (how many are not listed)."""
    ordered = sorted(problems, key=_problem_order)
    totals: dict[str, int] = {}
    for p in problems:
        totals[p.kind] = totals.get(p.kind, 0) + 1
    return {"input_problems": [{"kind": p.kind, "path": p.path, "line": p.line, "reason": p.reason[:500]}
                               for p in ordered[:MAX_INPUT_PROBLEMS]],
            "input_problems_total": dict(sorted(totals.items())),
            "input_problems_omitted": max(0, len(ordered) - MAX_INPUT_PROBLEMS)}


def content_checksum(payload: dict) -> str:
    """sha256 of the payload's canonical JSON without the per-run fields (top-level
    ``generated_at`` and provenance ``job_id``, ``generated_at``, ``source_command``):
    equal for two runs that report the same numbers. Used as the idempotency key."""
    p = copy.deepcopy(payload)
    p.pop("generated_at", None)
    for k in VOLATILE_PROVENANCE:
        p.get("provenance", {}).pop(k, None)
    return sha256_bytes(canonical_json_bytes(p))


__all__ = ["build_weekly_payload", "content_checksum", "ev_trend_7d", "utilisation_status"]
