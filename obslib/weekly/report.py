"""Helpers behind ``notebooks/weekly_report.ipynb``: parameter checks, the payload build,
the summary (status banner, key figures, alerts), the detail tables and the plots. The
notebook only calls these; how numbers look is ``obslib.presentation``.

Order of the page: the summary first (``summary``), then the week's runs, benchmarks,
utilisation, execution health, latency, the EV gate, all alerts and the provenance.
Every figure shown comes from the payload, except the changes from the previous week
(the same payload built for the week before, ``WeeklyReport.previous``) and the EV-gate
history read from the data root for its plot.

Tables are ``presentation.Table`` objects rendered without pandas, which keeps ``make
weekly`` close to the cost of papermill itself (see ``bench/weekly.py``).
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from ..config import load_config
from ..errors import ObsError
from ..presentation import (
    PLOT_WIDTH_IN,
    STATUS_COLOURS,
    Col,
    Figure,
    Summary,
    Table,
    change,
    fmt_num,
    fmt_pct,
    fmt_time,
    legend_outside,
    legend_width_in,
    log_scale_ms,
    markers_for,
    new_figure,
    no_data_figure,
    overall_status,
    pill,
    plot_ev_gate,
    severity_counts,
    utc_time_axis,
)
from ..storage import atomic_write_bytes, pretty_json_bytes, scratch_dir
from ..timeutil import parse_ts
from . import SCHEMA_FILE
from .prebuilt import build_payloads, take_over

WEEKLY_PARAMS: dict[str, type] = {
    "week_start": str, "data_root": str, "as_of": str, "out_dir": str, "work_root": str, "job_id": str,
    "source_command": str, "commit_sha": str, "data_label": str, "allow_bad_rows": bool, "config_file": str,
}
PUBLISHED_FILES = ("weekly_report.ipynb", "weekly_report.html")  # a folder holding them is a published week
SUMMARY_ALERTS = 8  # alerts shown on the first screen; all of them further down


def check_params(params: dict[str, Any]) -> None:
    """Raise ``ObsError`` naming an unknown parameter or one of the wrong type (``WEEKLY_PARAMS``)."""
    unknown = sorted(set(params) - set(WEEKLY_PARAMS))
    if unknown:
        raise ObsError(f"unknown notebook parameter(s) {unknown}; known: {sorted(WEEKLY_PARAMS)}")
    for k, v in params.items():
        if not isinstance(v, WEEKLY_PARAMS[k]):
            raise ObsError(f"notebook parameter {k!r} must be {WEEKLY_PARAMS[k].__name__}, got {type(v).__name__} "
                           f"({v!r})")


@dataclass
class WeeklyReport:
    """What the notebook shows: the ``payload`` (written to ``payload_path``), the data
    root (for the plots' time series), the previous week's payload (for changes; None when
    it could not be built) and the runbook link base of the published page (None when the
    runbook is not beside it)."""

    payload: dict
    payload_path: Path
    data_root: Path
    previous: dict | None = None
    runbook_href: str | None = None

    @property
    def title(self) -> str:
        return report_title(self.payload)


def report_title(p: dict) -> str:
    """``Weekly observability report — <week_start> — <data label>`` (the page's title)."""
    return f"Weekly observability report — {p['week_start'][:10]} — {p['provenance'].get('data_root') or 'data'}"


def prepare_weekly(*, week_start: str = "", data_root: str = "", as_of: str = "", out_dir: str = "",
                   work_root: str = "", job_id: str = "", source_command: str = "", commit_sha: str = "",
                   data_label: str = "", allow_bad_rows: bool = False, config_file: str = "") -> WeeklyReport:
    """Build, validate and write ``<out_dir>/payload.json``; build the previous week's
    payload too (kept in memory, for the key figures' changes). When the weekly job has
    already built both for exactly these parameters (``obslib.weekly.prebuilt``: one build
    per run), they are taken over from ``out_dir`` instead of built again.

    Blank parameters mean: ``as_of`` now, ``week_start`` the week containing ``as_of``,
    ``data_root`` the demo repository (under ``work_root``, a temp folder when blank),
    ``out_dir`` a temp folder (``storage.scratch_dir``), ``config_file`` ``$OBS_CONFIG`` or
    ``<work_root>/obs.toml`` (the job passes the file it read, so a re-run reads it too). ``out_dir`` may
    not be a published week folder: a re-run writes elsewhere. Raises
    ``ObsError``/``InputError``/``ValidationError``.
    """
    params = {k: v for k, v in locals().items()}
    check_params(params)
    out = Path(out_dir) if out_dir else None
    if out is not None and any((out / n).exists() for n in PUBLISHED_FILES):
        raise ObsError(f"out_dir {out} holds a published weekly report; write a re-run elsewhere "
                       "(papermill <notebook> <out.ipynb> -p out_dir <new folder>)")
    wr = Path(work_root) if work_root else scratch_dir("weekly")
    cfg = load_config(wr, config_file=config_file or None, overrides={"data_root": data_root or None})
    built = take_over(out, params) or build_payloads(cfg, params)
    path = (out or scratch_dir("weekly-out")) / "payload.json"
    atomic_write_bytes(path, pretty_json_bytes(built.payload))
    runbook = Path(cfg.work_root) / cfg.runbook
    page_dir = cfg.out_dir / "weekly_report" / built.payload["week_start"][:10]
    href = Path(os.path.relpath(runbook, page_dir)).as_posix() if runbook.is_file() else None
    return WeeklyReport(built.payload, path, built.root, built.previous, href)


# --- summary -------------------------------------------------------------------------------

def _alert_rows(p: dict, runbook_href: str | None) -> list[dict]:
    rows = []
    for a in p["alerts"]:
        anchor = a["next_action"].split("#", 1)[-1]
        link = (f'<a href="{runbook_href}#{anchor}">{anchor}</a>' if runbook_href else anchor)
        rows.append({"severity": pill(a["severity"]), "message": a["message"], "owner": a["owner"], "runbook": link})
    return rows


ALERT_COLUMNS = [Col("severity", "severity", "html"), Col("message", "message"), Col("owner", "owner", "id"),
                 Col("runbook", "runbook", "html")]


def alerts_table(p: dict, runbook_href: str | None = None, max_rows: int | None = None,
                 css_id: str | None = None) -> Table:
    """The payload's alerts, most severe first (as in the payload); the runbook anchor is
    a link when the runbook is beside the published page."""
    alerts = p["alerts"]
    note = "" if max_rows is None or len(alerts) <= max_rows else "All alerts are listed under 'All alerts' below."
    return Table(ALERT_COLUMNS, _alert_rows(p, runbook_href), note=note, max_rows=max_rows, css_id=css_id,
                 empty="No alerts this week.")


def _baseline_figure(p: dict, prev: dict | None) -> Figure:
    base = p["runs"]["baseline"]
    if not base:
        return Figure("Baseline EV", "no data", detail="no baseline benchmark usable for this week", status="unknown")
    b = base[0]
    before = next((x for x in (prev or {}).get("runs", {}).get("baseline", []) if x["run_id"] == b["run_id"]), None)
    before = before or ((prev or {}).get("runs", {}).get("baseline") or [None])[0]
    lcb = fmt_pct(b["win_rate_lcb"], 1)
    detail = f"win-rate LCB {lcb} %" if lcb else "win-rate LCB unknown"
    detail += f" · as of {b['as_of'][:10]}" if b.get("as_of") else ""
    if len(base) > 1:
        detail += f" · {len(base) - 1} more baseline(s) below"
    moved = change(b["ev"]["latest"], None if before is None else before["ev"]["latest"], 3, "pips/trade")
    if before is not None and b["win_rate_lcb"] is not None and before["win_rate_lcb"] is not None:
        d = 100 * (b["win_rate_lcb"] - before["win_rate_lcb"])
        moved += f"; LCB {d:+.1f} pp" if round(d, 1) else ""
    return Figure("Baseline EV", fmt_num(b["ev"]["latest"], 3) or "unknown", "pips/trade", detail, moved,
                  "warning" if b.get("stale") else "ok")


_RANK = {"breach": 0, "warning": 1, "ok": 2}


def _headroom_figure(p: dict, prev: dict | None) -> Figure:
    cats = [c for c in p["utilisation"]["categories"] if c.get("headroom_pct") is not None]
    if not cats:
        return Figure("Worst utilisation headroom", "no data", detail="no router telemetry for this week",
                      status="unknown")
    worst = min(cats, key=lambda c: (_RANK[c["status"]], c["headroom_pct"] / c["budget_pct"] if c.get("budget_pct")
                                     else c["headroom_pct"]))
    before = next((c for c in (prev or {}).get("utilisation", {}).get("categories", []) if c["name"] == worst["name"]),
                  None)
    detail = (f"{worst['name']}: {fmt_num(worst.get('utilisation_pct'), 1)} % used of "
              f"{fmt_num(worst.get('budget_pct'), 1)} % budget · {worst['status']}")
    status = {"breach": "critical", "warning": "warning"}.get(worst["status"], "ok")
    return Figure("Worst utilisation headroom", fmt_num(worst["headroom_pct"], 1), "% of equity", detail,
                  change(worst["headroom_pct"], None if before is None else before["headroom_pct"], 1, "pp"), status)


def _execution_figure(p: dict, prev: dict | None, shown: int = 4) -> Figure:
    eh = p["execution_health"]
    names = sorted(set(eh["slippage_bps"]) | set(eh["reject_rate"]),
                   key=lambda n: (-(eh["slippage_bps"].get(n) or 0.0), n))
    if not names:
        return Figure("Slippage · reject rate", "no data", detail="no execution health in the telemetry",
                      status="unknown")
    lines = tuple(f"{n}\t{fmt_num(eh['slippage_bps'].get(n), 1) or '–'} bps\t{fmt_pct(eh['reject_rate'].get(n), 1) or '–'} %"
                  for n in names[:shown])
    slips = [v for v in eh["slippage_bps"].values() if v is not None]
    prev_slips = [v for v in ((prev or {}).get("execution_health", {}).get("slippage_bps") or {}).values()]
    detail = f"{len(names) - shown} more strategies below" if len(names) > shown else ""
    return Figure("Slippage · reject rate per strategy", fmt_num(max(slips), 1) if slips else "–", "bps max slippage",
                  detail, change(max(slips) if slips else None, max(prev_slips) if prev_slips else None, 1,
                                 "bps (max)"), "ok", lines, wide=True)


def _latency_figure(p: dict, prev: dict | None) -> Figure:
    lat = p["latency"]
    slo = lat.get("slo_ms")
    if lat["p95_ms"] is None:
        return Figure("Latency p95 vs SLO", "no data", detail=f"no samples this week: unknown, not zero "
                                                              f"(SLO {fmt_num(slo, 0)} ms)", status="unknown")
    sev = {b["status"] for b in lat["breaches"]}
    status = "critical" if "critical" in sev else "warning" if sev or lat["p95_ms"] > slo else "ok"
    detail = (f"SLO {fmt_num(slo, 0)} ms · {fmt_num(100 * lat['p95_ms'] / slo, 1)} % of SLO · "
              f"{lat.get('samples', 0):,} samples")
    before = None if prev is None else prev["latency"]["p95_ms"]
    return Figure("Latency p95 vs SLO", fmt_num(lat["p95_ms"], 0), "ms", detail, change(lat["p95_ms"], before, 0, "ms"),
                  status)


def _runs_figure(p: dict, prev: dict | None) -> Figure:
    s = p["runs"]["week_summary"]
    before = None if prev is None else prev["runs"]["week_summary"]["runs"]
    if not s["runs"]:
        return Figure("Runs this week", "0", "runs", "no run stamped in this week (runs/index.csv)",
                      change(0, before, 0, "runs"), "unknown")
    detail = (f"{s['trades']:,} trades · EV {fmt_num(s['ev_per_trade'], 3) or '–'} pips/trade · "
              f"LCB {fmt_pct(s['win_rate_lcb'], 1) or '–'} %")
    return Figure("Runs this week", f"{s['runs']:,}", "runs", detail, change(s["runs"], before, 0, "runs"), "ok")


def key_figures(p: dict, prev: dict | None = None) -> list[Figure]:
    """The summary's key figures, each with its unit and the change from the previous week."""
    return [_baseline_figure(p, prev), _headroom_figure(p, prev), _execution_figure(p, prev),
            _latency_figure(p, prev), _runs_figure(p, prev)]


def summary(rep: WeeklyReport) -> Summary:
    """The first screen: the status banner (the most severe alert's level), the key figures
    and the most severe alerts."""
    p, prev, href = rep.payload, rep.previous, rep.runbook_href
    sev = [a["severity"] for a in p["alerts"]]
    end = (parse_ts(p["week_end"]) - timedelta(days=1)).date().isoformat()
    facts = [f"Week {p['week_start'][:10]} → {end} (UTC)", f"Data: {p['provenance'].get('data_root') or 'unknown'}",
             f"Generated {fmt_time(p['generated_at'])} UTC"]
    return Summary(report_title(p), overall_status(sev), f"{severity_counts(sev).capitalize()}.", facts,
                   key_figures(p, prev), alerts_table(p, href, SUMMARY_ALERTS, css_id="obs-alerts"))


# --- detail tables -------------------------------------------------------------------------

RUN_COLUMNS = [Col("run_id", "run", "id"), Col("timestamp", "time (UTC)", "time"), Col("symbol", "symbol", "id"),
               Col("mode", "mode", "id"), Col("trades", "trades", "int"), Col("ev", "EV (pips/trade)", "num", 3),
               Col("win_rate_lcb", "win-rate LCB (%)", "pct", 1)]


def _run_rows(runs: list[dict]) -> list[dict]:
    return [{**r, "ev": r["ev"]["latest"]} for r in runs]


def week_runs_table(p: dict) -> Table:
    """The week's runs pooled (``runs.week_summary``)."""
    s = p["runs"]["week_summary"]
    cols = [Col("runs", "runs", "int"), Col("trades", "trades", "int"), Col("wins", "wins", "int"),
            Col("ev_per_trade", "EV (pips/trade)", "num", 3), Col("win_rate_lcb", "win-rate LCB (%)", "pct", 1)]
    if not s["runs"]:
        return Table(cols, [], "No run in runs/index.csv is stamped in this week.", empty="")
    listed = len(p["runs"]["week"])
    note = "Every run is listed in payload.json (runs.week)." if listed == s["runs"] else (
        f"payload.json lists the first {listed} of {s['runs']} runs by run_id (runs.week); the totals count all.")
    return Table(cols, [s], f"{s['runs']:,} runs stamped in the week, pooled:", note)


def _ranked(p: dict) -> list[dict]:
    return sorted((r for r in _run_rows(p["runs"]["week"]) if r["ev"] is not None),
                  key=lambda r: (-r["ev"], r["run_id"]))


def best_runs_table(p: dict, n: int = 5) -> Table:
    """The week's ``n`` runs with the highest EV (pips/trade); nothing shown without runs."""
    ranked = _ranked(p)
    return Table(RUN_COLUMNS, ranked[:n], f"Best {min(n, len(ranked))} runs by EV:" if ranked else "", empty="")


def worst_runs_table(p: dict, n: int = 5) -> Table:
    """The week's ``n`` runs with the lowest EV (pips/trade), worst first; nothing shown without runs."""
    ranked = _ranked(p)[::-1]
    return Table(RUN_COLUMNS, ranked[:n], f"Worst {min(n, len(ranked))} runs by EV:" if ranked else "", empty="")


BENCH_COLUMNS = [Col("kind", "kind", "id"), Col("run_id", "run", "id"), Col("as_of", "as of (UTC)", "time"),
                 Col("ev_latest", "EV (pips/trade)", "num", 3), Col("ev_trend_7d", "EV 7-day trend (pips/trade)",
                                                                    "signed", 3),
                 Col("win_rate_lcb", "win-rate LCB (%)", "pct", 1), Col("avg_trades_per_day", "trades/day", "num", 2),
                 Col("stale", "stale", "bool")]


def runs_table(p: dict) -> Table:
    """Baseline and rolling benchmarks."""
    rows = [{"kind": "baseline", "run_id": b["run_id"], "ev_latest": b["ev"]["latest"],
             "ev_trend_7d": b["ev"]["trend_7d"], "win_rate_lcb": b["win_rate_lcb"],
             "as_of": b.get("as_of"), "stale": b.get("stale")} for b in p["runs"]["baseline"]]
    rows += [{"kind": f"rolling {r['window_days']} d" if r.get("window_days") else "rolling", "run_id": r["run_id"],
              "ev_latest": r["ev"]["latest"], "avg_trades_per_day": r["turnover"]["avg_trades_per_day"],
              "as_of": r.get("as_of"), "stale": r.get("stale")} for r in p["runs"]["rolling"]]
    if not rows:
        return Table(BENCH_COLUMNS, [], "No benchmark was usable for this week (see alerts).",
                     empty="No benchmarks.")
    stale = sum(1 for r in rows if r["stale"])
    b = p["runs"]["baseline"]
    lead = (f"Baseline EV {fmt_num(b[0]['ev']['latest'], 3)} pips/trade, win-rate LCB "
            f"{fmt_pct(b[0]['win_rate_lcb'], 1) or 'unknown'} %" if b else "No baseline")
    return Table(BENCH_COLUMNS, rows, f"{lead}; {len(rows)} benchmark(s), {stale} stale.")


UTIL_COLUMNS = [Col("name", "category", "id"), Col("utilisation_pct", "utilisation (% of equity)", "num", 1),
                Col("budget_pct", "budget (% of equity)", "num", 1), Col("headroom_pct", "headroom (% of equity)",
                                                                        "num", 1),
                Col("cap_pct", "cap (% of equity)", "num", 1), Col("status_html", "status", "html")]


def utilisation_table(p: dict) -> Table:
    """Router utilisation per category (percent of equity) with its status."""
    cats = p["utilisation"]["categories"]
    if not cats:
        return Table(UTIL_COLUMNS, [], "No router telemetry: utilisation unknown (see alerts).",
                     empty="No categories.")
    bad = [c for c in cats if c["status"] != "ok"]
    reading = ("All categories within budget." if not bad else
               "Attention: " + ", ".join(f"{c['name']} {c['status']}" for c in bad) + ".")
    return Table(UTIL_COLUMNS, [{**c, "status_html": pill(c["status"])} for c in cats], reading,
                 "Rule: breach when utilisation > budget; warning when headroom < 20 % of budget.")


EXEC_COLUMNS = [Col("strategy", "strategy", "id"), Col("source", "telemetry name", "id"),
                Col("slippage_bps", "slippage (bps)", "num", 1), Col("reject_rate", "reject rate (%)", "pct", 1)]


def execution_table(p: dict) -> Table:
    """Slippage (bps) and reject rate (percent) per strategy (canonical id, raw name beside)."""
    eh = p["execution_health"]
    names = sorted(set(eh["slippage_bps"]) | set(eh["reject_rate"]))
    src = eh.get("strategy_source") or {}
    rows = [{"strategy": n, "source": src.get(n, n), "slippage_bps": eh["slippage_bps"].get(n),
             "reject_rate": eh["reject_rate"].get(n)} for n in names]
    with_slip = [r for r in rows if r["slippage_bps"] is not None]
    if not with_slip:
        return Table(EXEC_COLUMNS, rows, "No execution health data." if not rows else "No slippage data.",
                     empty="No strategies in the telemetry.")
    worst = max(with_slip, key=lambda r: r["slippage_bps"])
    return Table(EXEC_COLUMNS, rows, f"Highest slippage: {worst['strategy']} at {fmt_num(worst['slippage_bps'], 1)} bps.")


# the keys of a ``latency.sources`` entry of the weekly payload, in ``payload._latency``'s order
LATENCY_COLUMNS = ["source", "samples", "p50_ms", "p95_ms"]
_LATENCY_COLS = {"source": Col("source", "source", "id"), "samples": Col("samples", "samples", "int"),
                 "p50_ms": Col("p50_ms", "p50 (ms)", "num", 0), "p95_ms": Col("p95_ms", "p95 (ms)", "num", 0),
                 "p99_ms": Col("p99_ms", "p99 (ms)", "num", 0), "max_ms": Col("max_ms", "max (ms)", "num", 0),
                 "windows": Col("windows", "windows", "int"), "error_samples": Col("error_samples", "errors", "int"),
                 "bad_events": Col("bad_events", "bad events", "int"), "method": Col("method", "method", "id")}


def latency_table(p: dict) -> Table:
    """Per-source latency for the week (ms): the columns ``LATENCY_COLUMNS`` (even with no
    source), then the other keys a source entry carries (known ones with units, in
    ``_LATENCY_COLS`` order; unknown ones after them, sorted)."""
    lat = p["latency"]
    sources = lat["sources"]
    present = {k for s in sources for k in s} - set(LATENCY_COLUMNS)
    known = [k for k in _LATENCY_COLS if k in present]  # in the table's order, then any other key
    cols = [_LATENCY_COLS[k] for k in LATENCY_COLUMNS + known] + [Col(k, k, "text") for k in sorted(present - set(known))]
    if lat["p95_ms"] is None:
        return Table(cols, sources, "No latency samples this week: latency is unknown, not zero.",
                     empty="No samples.")
    return Table(cols, sources, f"Week p95 {fmt_num(lat['p95_ms'], 0)} ms over {lat['samples']:,} samples "
                                f"(SLO {fmt_num(lat['slo_ms'], 0)} ms); {len(lat['breaches'])} breach streak "
                                f"notification(s).")


def breaches_table(p: dict) -> Table:
    """The week's breach-streak notifications."""
    cols = [Col("timestamp", "time (UTC)", "time"), Col("source", "source", "id"), Col("p95_ms", "p95 (ms)", "num", 0),
            Col("status_html", "severity", "html")]
    rows = [{**b, "status_html": pill(b["status"])} for b in p["latency"]["breaches"]]
    return Table(cols, rows, max_rows=20, empty="No SLO breach streaks this week.")


def provenance_table(p: dict) -> Table:
    """Where the numbers come from: data, time, job, commit, inputs."""
    pv = p["provenance"]
    rows = [{"k": "data", "v": pv.get("data_root")}, {"k": "generated (UTC)", "v": fmt_time(pv["generated_at"], True)},
            {"k": "job id", "v": pv["job_id"]}, {"k": "commit", "v": pv.get("commit_sha") or "unknown"},
            {"k": "command", "v": pv["source_command"]},
            {"k": "run stamps read in", "v": pv.get("run_stamp_tz", "UTC")},
            {"k": "inputs", "v": f"{len(pv['inputs'])} files (paths and sha256 in payload.json)"},
            {"k": "input problems", "v": str(len(pv.get("input_problems") or []))},
            {"k": "schema", "v": f"{SCHEMA_FILE} {p['schema_version']}"}]
    return Table([Col("k", "", "id"), Col("v", "", "text")], rows)


# --- time series for the plots -------------------------------------------------------------

def latency_hourly(data_root: Path, p: dict) -> dict[str, list[tuple]]:
    """``{source: [(hour_start datetime UTC, p95 ms), ...]}`` in time order: the payload's
    ``latency.hourly`` series, computed by the latency query (``obslib.latency.model.query``,
    the same numbers as the hourly rollups). ``data_root`` is kept for the call signature."""
    out: dict[str, list[tuple]] = defaultdict(list)
    for h in sorted(p["latency"].get("hourly", []), key=lambda h: (h["source"], h["hour_utc"])):
        out[h["source"]].append((parse_ts(h["hour_utc"]), h["p95_ms"]))
    return dict(out)


def ev_history(data_root: Path, before: str) -> dict[str, dict[str, list[tuple]]]:
    """``{strategy: {"<symbol> <mode>": [(generated_at, win_rate_lcb, win_rate_point), ...]}}``
    from every state-archive snapshot generated before ``before`` (RFC 3339), in time
    order; ``strategy`` is the canonical id (the archive's aliases of one strategy are one
    key); the point is the posterior mean (``stats.win_rate_point``, priors included)."""
    from ..inputs.state_archive import read_state_archive
    from ..stats import win_rate_point

    cutoff = parse_ts(before)
    out: dict[str, dict[str, list[tuple]]] = defaultdict(lambda: defaultdict(list))
    for r in read_state_archive(data_root, []):
        if r["generated_at"] >= cutoff:
            continue
        point = win_rate_point(r["ev_alpha"], r["ev_beta"], r["prior_alpha"], r["prior_beta"])
        out[r["strategy"]][f"{r['symbol']} {r['mode']}"].append((r["generated_at"], r["win_rate_lcb"], point))
    for series in out.values():
        for pts in series.values():
            pts.sort(key=lambda x: x[0])
    return {k: dict(v) for k, v in sorted(out.items())}


def ev_gate_table(hist: dict[str, dict[str, list[tuple]]]) -> Table:
    """The latest EV-gate snapshot per strategy and symbol/mode."""
    cols = [Col("strategy", "strategy", "id"), Col("series", "symbol, mode", "id"),
            Col("t", "latest snapshot (UTC)", "time"), Col("lcb", "win-rate LCB (%)", "pct", 1),
            Col("point", "posterior mean (%)", "pct", 1), Col("n", "snapshots", "int")]
    rows = [{"strategy": s, "series": k, "t": pts[-1][0], "lcb": pts[-1][1], "point": pts[-1][2], "n": len(pts)}
            for s, series in hist.items() for k, pts in series.items()]
    return Table(cols, rows, empty="No EV-gate snapshots before the end of the week.")


# --- plots ---------------------------------------------------------------------------------


def plot_ev_lcb(data_root: Path, week_start: str, week_end: str, hist: dict | None = None):
    """EV-gate win rate over time from ``ev_history`` (snapshots dated before ``week_end``),
    the report week shaded (``presentation.plot_ev_gate``)."""
    hist = ev_history(data_root, week_end) if hist is None else hist
    return plot_ev_gate(hist, parse_ts(week_start), parse_ts(week_end), "report week")


def plot_utilisation(p: dict, ax=None):
    """Horizontal bars: utilisation per category (percent of equity), coloured by status and
    labelled with its value; across each bar a solid black line at the budget and a dotted
    one at the cap; the status colours and lines explained beside the plot."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    cats = p["utilisation"]["categories"]
    if not cats:
        return no_data_figure("Utilisation against budget", "No router telemetry: utilisation unknown, not zero.")
    if ax is None:
        fig, (ax,) = new_figure(10.0, 0.62 * len(cats) + 1.25, left_in=1.3, right_in=1.9, top_in=0.4, bottom_in=0.55)
    y = list(range(len(cats)))[::-1]  # the first category on top
    util = [c.get("utilisation_pct") or 0.0 for c in cats]
    ax.barh(y, util, height=0.55, color=[STATUS_COLOURS.get(c["status"], "grey") for c in cats], zorder=2)
    top = max([*util, *[c.get("budget_pct") or 0 for c in cats], *[c.get("cap_pct") or 0 for c in cats]]) or 1.0
    for yi, c, u in zip(y, cats, util, strict=True):
        if c.get("budget_pct") is not None:
            ax.vlines(c["budget_pct"], yi - 0.38, yi + 0.38, color="black", linewidth=2.4, zorder=3)
        if c.get("cap_pct") is not None:
            ax.vlines(c["cap_pct"], yi - 0.38, yi + 0.38, color="black", linewidth=1.3, linestyle=":", zorder=3)
        label = "unknown" if c.get("utilisation_pct") is None else f"{fmt_num(c['utilisation_pct'], 1)} %"
        head = "" if c.get("headroom_pct") is None else f"   headroom {fmt_num(c['headroom_pct'], 1)}"
        right = max(u, c.get("budget_pct") or 0.0, c.get("cap_pct") or 0.0)  # past every mark of the bar
        ax.text(right + top * 0.015, yi, label + head, va="center", ha="left", fontsize=9, zorder=4)
    ax.set_yticks(y, [c["name"] for c in cats])
    ax.set_ylim(-0.6, len(cats) - 0.4)
    ax.set_xlim(0, top * 1.4)
    ax.set_xlabel("percent of equity")
    ax.set_title("Utilisation against budget", loc="left", fontsize=11)
    ax.grid(axis="x", alpha=0.3, zorder=0)
    handles = [Patch(color=STATUS_COLOURS[s], label=s) for s in ("ok", "warning", "breach")]
    handles += [Line2D([], [], color="black", linewidth=2.4, label="budget"),
                Line2D([], [], color="black", linewidth=1.3, linestyle=":", label="cap")]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8,
              title="status · lines", title_fontsize=8, alignment="left")
    return ax


def plot_latency(hourly: dict[str, list[tuple]], slo_ms: float, week_start: str | None = None,
                 week_end: str | None = None, ax=None):
    """Hourly p95 (ms) per source from ``latency_hourly`` over the week (UTC), the SLO
    dashed; markers on every hour when there are few; a log axis only when the values
    span more than 50×. With no samples: a figure that says so."""
    if not hourly:
        return no_data_figure("Hourly p95 latency per source",
                              f"No latency samples this week: latency is unknown, not zero (SLO {fmt_num(slo_ms, 0)} ms).")
    labels = [*hourly, f"SLO {fmt_num(slo_ms, 0)} ms"]
    if ax is None:
        fig, (ax,) = new_figure(PLOT_WIDTH_IN, 3.6, right_in=legend_width_in(labels) + 0.2)
    values = [v for pts in hourly.values() for _, v in pts if v is not None and v > 0]
    for src, pts in hourly.items():
        ax.plot([h for h, _ in pts], [v for _, v in pts], marker=markers_for(len(pts)), markersize=4,
                linestyle="-" if len(pts) > 1 else "none", label=src)
    ax.axhline(slo_ms, color="red", linestyle="--", linewidth=1.2, label=f"SLO {fmt_num(slo_ms, 0)} ms")
    if values and max(values + [slo_ms]) / min(values + [slo_ms]) > 50:
        log_scale_ms(ax)
    else:
        ax.set_ylim(0, max(values + [slo_ms]) * 1.15)
    if week_start and week_end:  # the week, or up to the last sample's hour when the week is still running
        last = max(h for pts in hourly.values() for h, _ in pts) + timedelta(hours=1)
        ax.set_xlim(parse_ts(week_start), min(parse_ts(week_end), max(last, parse_ts(week_start) + timedelta(hours=6))))
    ax.set_ylabel("p95 latency (ms)")
    ax.set_title("Hourly p95 latency per source", loc="left", fontsize=11)
    utc_time_axis(ax)
    ax.grid(axis="y", alpha=0.3)
    legend_outside(ax, title="source")
    return ax


__all__ = ["WeeklyReport", "alerts_table", "best_runs_table", "breaches_table", "check_params", "ev_gate_table",
           "ev_history", "execution_table", "key_figures", "latency_hourly", "latency_table", "plot_ev_lcb",
           "plot_latency", "plot_utilisation", "prepare_weekly", "provenance_table", "report_title", "runs_table",
           "summary", "utilisation_table", "week_runs_table", "worst_runs_table"]
