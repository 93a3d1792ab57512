"""Helpers behind ``notebooks/dashboard_bundle.ipynb``: run the export through obslib, load
the published datasets, the summary (status banner, key figures, alerts), one readable
table per dataset and the plots. The notebook only calls these; how numbers look is
``obslib.presentation`` (rates in percent in tables and plots alike, UTC times).

Wide or long datasets are summarised on the page (per strategy, per week, per source);
the full data is in the Parquet and JSON files beside it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

from ..config import load_config
from ..errors import ObsError
from ..inputs import data_label as default_data_label
from ..inputs import resolve_data_root
from ..presentation import (
    PLOT_WIDTH_IN,
    Col,
    Figure,
    Summary,
    Table,
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
from ..runlog import new_job_id
from ..storage import atomic_write_json, read_json, scratch_dir
from ..timeutil import parse_ts, utcnow, week_start_of
from . import DATASETS, DEFAULT_PIP_VALUE
from .bundle import ExportRequest, ExportResult, bundle_dir, export_bundle

RESULT_FILE = "export_result.json"
PUBLISHED_FILES = ("dashboard_bundle.ipynb", "manifest.json")  # a folder holding them is a published bundle
RUNBOOK_ANCHOR = "dashboard-exports"


@dataclass
class DashboardRun:
    """One export as the notebook shows it."""

    result: ExportResult
    work_root: Path
    data_root: Path
    now: datetime | None = None
    data_label: str = ""
    owner: str = "obs-oncall"
    slo_ms: float | None = None

    def frame(self, name: str) -> pd.DataFrame:
        """The published Parquet file of dataset ``name`` (empty frame when none)."""
        p = bundle_dir(self.work_root) / f"{name}.parquet"
        return pd.read_parquet(p) if p.exists() else pd.DataFrame()

    @property
    def title(self) -> str:
        day = "" if self.now is None else f" — {self.now.date().isoformat()}"
        return f"Dashboard bundle{day} — {self.data_label or 'data'}"

    def alerts(self) -> list[dict]:
        """A dataset that was not published (critical) and each dataset warning (warning),
        as alert rows (severity, message, owner, runbook anchor)."""
        out = [{"severity": "critical", "message": f"{f['dataset']} not published (rule {f['rule']}): {f['error']}; "
                                                  "its previous version stays", "owner": self.owner}
               for f in self.result.failed]
        for name in DATASETS:
            texts = self.result.warnings.get(name) or []
            count = (self.result.datasets.get(name) or {}).get("warnings") or len(texts)
            out += [{"severity": "warning", "message": f"{name}: {t}", "owner": self.owner} for t in texts]
            if count > len(texts):  # past WARNING_TEXTS, or a dataset reused from the last export
                more = f"{count - len(texts)} more warning(s)" if texts else f"{count} warning(s)"
                out.append({"severity": "warning", "owner": self.owner, "message": f"{name}: {more} in {name}.json"})
        return out

    def status_table(self) -> tuple[Table, str]:
        """One row per dataset: status, rows, warnings, failed rule; and a one-line reading."""
        rows = []
        for n in DATASETS:
            d = self.result.datasets.get(n, {"status": "not_selected"})
            rows.append({"dataset": n, "status": pill(d["status"]), "rows": d.get("rows"),
                         "warnings": d.get("warnings"), "rule": d.get("rule"), "error": d.get("error")})
        failed = [f"{f['dataset']} (rule {f['rule']})" for f in self.result.failed]
        reading = (f"Export sequence {self.result.sequence}: all datasets published." if not failed else
                   f"Export sequence {self.result.sequence}: NOT published: {', '.join(failed)}; their previous "
                   f"version stays.")
        cols = [Col("dataset", "dataset", "id"), Col("status", "status", "html"), Col("rows", "rows", "int"),
                Col("warnings", "warnings", "int"), Col("rule", "failed rule", "id"), Col("error", "error")]
        return Table(cols, rows, reading), reading


def run_export(*, data_root: str = "", as_of: str = "", work_root: str = "", out_dir: str = "", job_id: str = "",
               source_command: str = "", commit_sha: str = "", data_label: str = "",
               pip_value: float = DEFAULT_PIP_VALUE) -> DashboardRun:
    """Export every dataset (``dashboard.bundle.export_bundle``) and write
    ``<out_dir>/export_result.json``. Blank values: ``as_of`` now, ``data_root`` the demo
    repository, ``job_id`` a new one, ``work_root`` ``out_dir`` (a re-run of a published
    notebook: ``-p out_dir DIR`` rebuilds the bundle under DIR, never into the published
    one), else a temp folder removed when the kernel exits. ``out_dir`` may not be a
    published bundle folder. Raises ``ObsError`` for a missing data root or a held
    export lock."""
    now = parse_ts(as_of) if as_of else utcnow()
    if out_dir and any((Path(out_dir) / n).exists() for n in PUBLISHED_FILES):
        raise ObsError(f"out_dir {out_dir} holds a published dashboard bundle; write a re-run elsewhere "
                       "(papermill <notebook> <out.ipynb> -p out_dir <new folder>)")
    wr = Path(work_root or out_dir) if (work_root or out_dir) else scratch_dir("dashboard")
    cfg = load_config(wr, overrides={"data_root": data_root or None})
    root = resolve_data_root(cfg, now)
    label = data_label or default_data_label(cfg)
    req = ExportRequest(names=list(DATASETS), data_root=root, work_root=wr, now=now,
                        job_id=job_id or new_job_id("dashboard_notebook", now),
                        command=source_command or "notebooks/dashboard_bundle.ipynb", commit_sha=commit_sha or None,
                        data_label=label, pip_value=pip_value, retention_days=cfg.history_retention_days,
                        lock_timeout_s=cfg.lock_timeout_s)
    result = export_bundle(req)
    if out_dir:
        atomic_write_json(Path(out_dir) / RESULT_FILE, asdict(result))
    return DashboardRun(result, wr, root, now, label, cfg.owner, cfg.latency.slo_ms)


def load_run(result_file: str, *, work_root: str, data_root: str = "", as_of: str = "",
             data_label: str = "") -> DashboardRun:
    """The run ``obs dashboard run`` exported in its own process before the notebook
    started (its ``export_result.json``): the notebook reads the files it wrote."""
    cfg = load_config(Path(work_root))
    return DashboardRun(load_result(Path(result_file)), Path(work_root), Path(data_root),
                        parse_ts(as_of) if as_of else None, data_label, cfg.owner, cfg.latency.slo_ms)


def load_result(path: Path) -> ExportResult:
    """The ``ExportResult`` a notebook run wrote."""
    return ExportResult(**read_json(path))


# --- summary -------------------------------------------------------------------------------

def _latest_per_series(ev: pd.DataFrame) -> pd.DataFrame:
    return ev.sort_values("generated_at").groupby(["strategy", "symbol", "mode"], as_index=False).last()


def key_figures(run: DashboardRun, frames: dict[str, pd.DataFrame]) -> list[Figure]:
    """Datasets published, the EV gate per strategy, execution health, turnover of the
    latest week and latency over the last day of rollups."""
    res = run.result
    figs = [Figure("Datasets published", f"{len(res.published)} of {len(DATASETS)}", "", wide=True,
                   status="critical" if res.failed else "ok", lines=tuple(f"{n}\t{fmt_num((res.datasets.get(n) or {}).get('rows'), 0) or '–'} rows"
                                          for n in DATASETS))]
    ev = frames.get("ev_history", pd.DataFrame())
    if ev.empty:
        figs.append(Figure("EV gate: latest win-rate LCB", "no data", detail="no state-archive snapshots",
                           status="unknown"))
    else:
        latest = _latest_per_series(ev).groupby("strategy")["win_rate_lcb"].min().sort_values()
        lines = tuple(f"{name}\t{fmt_pct(v, 1)} %" for name, v in latest.head(4).items())
        more = f"{len(latest) - 4} more strategies below" if len(latest) > 4 else "lowest series of each strategy"
        figs.append(Figure("EV gate: latest win-rate LCB", fmt_pct(latest.min(), 1), "% lowest", more, status="ok",
                           lines=lines, wide=True))
    sl = frames.get("slippage_telemetry", pd.DataFrame())
    if sl.empty:
        figs.append(Figure("Slippage · reject rate", "no data", detail="no router telemetry", status="unknown"))
    else:
        top = sl.sort_values("slippage_bps", ascending=False)
        lines = tuple(f"{r.strategy}\t{fmt_num(r.slippage_bps, 1) or '–'} bps\t{fmt_pct(r.reject_rate, 1) or '–'} %"
                      for r in top.head(4).itertuples())
        figs.append(Figure("Slippage · reject rate", fmt_num(sl["slippage_bps"].max(), 1) or "–", "bps max slippage",
                           f"{len(sl) - 4} more below" if len(sl) > 4 else "", status="ok", lines=lines, wide=True))
    to = frames.get("turnover_summary", pd.DataFrame())
    if to.empty:
        figs.append(Figure("Turnover, last week", "no data", detail="no daily rows", status="unknown"))
    else:
        last = to["week_start"].max()
        wk = to[to["week_start"] == last]
        figs.append(Figure("Turnover, last week", fmt_num(wk["avg_trades_per_day"].mean(), 2), "trades/day",
                           f"mean of {wk['run_id'].nunique():,} runs · week of {fmt_time(last)[:10]}"))
    lat = frames.get("latency_rollups", pd.DataFrame())
    if lat.empty:
        figs.append(Figure("Latency, 24 h", "no data", detail="no rollups: unknown, not zero", status="unknown"))
    else:
        end = lat["hour_utc"].max()
        day = lat[lat["hour_utc"] > end - pd.Timedelta(hours=24)]
        over = int(day["breach_flag"].fillna(False).sum())
        slo = f" · SLO {fmt_num(run.slo_ms, 0)} ms" if run.slo_ms else ""
        figs.append(Figure("Latency, 24 h", fmt_num(day["p95_ms"].max(), 0), "ms",
                           f"worst hourly p95 · {over} source-hour(s) over the SLO{slo}",
                           status="warning" if over else "ok"))
    return figs


def summary(run: DashboardRun, frames: dict[str, pd.DataFrame] | None = None) -> Summary:
    """The first screen: status banner, key figures, the export's alerts."""
    frames = frames if frames is not None else {n: run.frame(n) for n in DATASETS}
    alerts = run.alerts()
    sev = [a["severity"] for a in alerts]
    facts = [f"Export sequence {run.result.sequence}", f"Data: {run.data_label or 'unknown'}",
             f"Generated {fmt_time(run.now)} UTC" if run.now else ""]
    rows = [{**a, "severity": pill(a["severity"]), "runbook": RUNBOOK_ANCHOR} for a in alerts]
    table = Table([Col("severity", "severity", "html"), Col("message", "message"), Col("owner", "owner", "id"),
                   Col("runbook", "runbook", "id")], rows, max_rows=8, css_id="obs-alerts",
                  note="" if len(rows) <= 8 else "Every warning is in the dataset's JSON file (warnings).",
                  empty="No alerts: every dataset published without warnings.")
    return Summary(run.title, overall_status(sev), f"{severity_counts(sev).capitalize()}.", [f for f in facts if f],
                   key_figures(run, frames), table)


# --- tables --------------------------------------------------------------------------------

def ev_reading(df: pd.DataFrame) -> str:
    if df.empty:
        return "No EV-gate snapshots: ev_history is empty."
    keys = df.groupby(["strategy", "symbol", "mode"]).size()
    top = keys.idxmax()
    return (f"{len(df):,} snapshots over {len(keys)} series of {df['strategy'].nunique()} strategies; most: "
            f"{' '.join(top)} ({keys.max()}). Latest win-rate LCB range "
            f"{fmt_pct(_latest_per_series(df)['win_rate_lcb'].min(), 1)}–"
            f"{fmt_pct(_latest_per_series(df)['win_rate_lcb'].max(), 1)} %.")


def ev_table(df: pd.DataFrame) -> Table:
    """The latest snapshot per strategy, symbol and mode (archive aliases of a strategy
    merged under its id: ``strategy_table``)."""
    cols = [Col("strategy", "strategy", "id"), Col("symbol", "symbol", "id"), Col("mode", "mode", "id"),
            Col("n", "snapshots", "int"), Col("first", "first (UTC)", "time"),
            Col("generated_at", "latest (UTC)", "time"), Col("win_rate_lcb", "win-rate LCB (%)", "pct", 1),
            Col("win_rate_point", "posterior mean (%)", "pct", 1), Col("ev_trend_7d", "7-day change (pp)", "signed", 1)]
    if df.empty:
        return Table(cols, [], ev_reading(df), empty="No snapshots.")
    g = df.sort_values("generated_at").groupby(["strategy", "symbol", "mode"])
    latest = g.last().reset_index()
    latest["n"] = g.size().to_numpy()
    latest["first"] = g["generated_at"].min().to_numpy()
    latest["ev_trend_7d"] = latest["ev_trend_7d"] * 100
    return Table(cols, latest.to_dict("records"), ev_reading(df),
                 f"All {len(df):,} snapshots: ev_history.parquet / ev_history.json.")


def strategy_table(df: pd.DataFrame) -> Table:
    """Which raw names (``strategy_source``) each canonical strategy id stands for."""
    cols = [Col("strategy", "strategy id", "id"), Col("sources", "names in the data (strategy_source)", "text")]
    if df.empty or "strategy_source" not in df:
        return Table(cols, [], empty="No strategies.")
    rows = [{"strategy": k, "sources": ", ".join(sorted(set(g)))} for k, g in df.groupby("strategy")["strategy_source"]]
    return Table(cols, rows, "Strategy ids: the module name without the 'strategies.' prefix, the class name and a "
                             "_v<N> version tag.")


def ev_hist(df: pd.DataFrame) -> dict[str, dict[str, list[tuple]]]:
    """ev_history rows as ``presentation.plot_ev_gate``'s input."""
    out: dict[str, dict[str, list[tuple]]] = {}
    for r in df.sort_values(["strategy", "symbol", "mode", "generated_at"]).itertuples():
        out.setdefault(r.strategy, {}).setdefault(f"{r.symbol} {r.mode}", []).append(
            (r.generated_at.to_pydatetime(), r.win_rate_lcb, None if pd.isna(r.win_rate_point) else r.win_rate_point))
    return out


def plot_ev(df: pd.DataFrame):
    """EV gate per strategy over time, the week of the latest snapshot shaded."""
    if df.empty:
        return plot_ev_gate({}, utcnow(), utcnow(), "")
    start = week_start_of(df["generated_at"].max().to_pydatetime())
    return plot_ev_gate(ev_hist(df), start, start + timedelta(days=7), "latest week")


def slippage_table(df: pd.DataFrame) -> Table:
    cols = [Col("strategy", "strategy", "id"), Col("strategy_source", "telemetry name", "id"),
            Col("slippage_bps", "slippage (bps)", "num", 1), Col("reject_rate", "reject rate (%)", "pct", 1),
            Col("slippage_zscore", "slippage z-score", "signed", 2), Col("fill_count", "fills", "int"),
            Col("window_days", "window (days)", "int"), Col("generated_at", "snapshot (UTC)", "time")]
    if df.empty:
        return Table(cols, [], "No router telemetry: slippage_telemetry is empty.", empty="No strategies.")
    worst = df.sort_values("slippage_bps", ascending=False).iloc[0]
    return Table(cols, df.to_dict("records"),
                 f"Highest slippage: {worst['strategy']} at {fmt_num(worst['slippage_bps'], 1)} bps; snapshot time "
                 f"from {df['generated_at_source'].iloc[0]}.")


def plot_slippage(df: pd.DataFrame):
    """Slippage (bps) and reject rate (percent, as in the table) per strategy, side by side."""
    if df.empty:
        return no_data_figure("Execution health per strategy", "No router telemetry: execution health unknown.")
    d = df.sort_values("strategy")
    names = list(d["strategy"])
    left = 0.3 + 0.075 * max(len(n) for n in names)
    fig, (a1, a2) = new_figure(PLOT_WIDTH_IN, 0.45 * len(names) + 1.3, left_in=left, right_in=0.5, ncols=2,
                               wspace=0.12, top_in=0.5)
    y = list(range(len(names)))[::-1]
    for ax, col, scale, colour, unit in ((a1, "slippage_bps", 1.0, "#1565c0", "slippage (bps)"),
                                         (a2, "reject_rate", 100.0, "#c62828", "reject rate (%)")):
        vals = [None if pd.isna(v) else v * scale for v in d[col]]
        ax.barh(y, [v or 0 for v in vals], height=0.55, color=colour, zorder=2)
        top = max([v for v in vals if v is not None] or [1.0])
        for yi, v in zip(y, vals, strict=True):
            ax.text((v or 0) + top * 0.02, yi, "no data" if v is None else fmt_num(v, 1), va="center", fontsize=9)
        ax.set_xlim(0, top * 1.25)
        ax.set_xlabel(unit)
        ax.set_yticks(y, names if ax is a1 else [""] * len(names))
        ax.grid(axis="x", alpha=0.3, zorder=0)
    a1.set_title("Execution health per strategy", loc="left", fontsize=11)
    return fig


TURNOVER_WEEKS = 12


def turnover_weeks(df: pd.DataFrame) -> pd.DataFrame:
    """Per week: runs, mean, median and 10th/90th percentile of trades per day, win rate, runs with
    missing trading days and the worst drawdown (percent of equity)."""
    g = df.groupby("week_start")
    return pd.DataFrame({
        "runs": g["run_id"].nunique(), "mean": g["avg_trades_per_day"].mean(),
        "p10": g["avg_trades_per_day"].quantile(0.1),
        "median": g["avg_trades_per_day"].median(), "p90": g["avg_trades_per_day"].quantile(0.9),
        "fills": g["fills"].sum(), "wins": g["wins"].sum(), "missing": g["missing_day_count"].apply(lambda s: int((s > 0).sum())),
        "drawdown": g["drawdown_pct"].min()}).reset_index().sort_values("week_start")


def turnover_reading(df: pd.DataFrame) -> str:
    if df.empty:
        return "No daily rows: turnover_summary is empty."
    flagged = int((df["missing_day_count"] > 0).sum())
    return (f"{df['run_id'].nunique():,} runs × {df['week_start'].nunique():,} weeks = {len(df):,} rows; median "
            f"{fmt_num(df['avg_trades_per_day'].median(), 2)} trades/day; {flagged:,} run-week(s) with missing trading "
            f"days; worst weekly drawdown {fmt_num(df['drawdown_pct'].min(), 3)} % of equity.")


def turnover_table(df: pd.DataFrame, weeks: int = TURNOVER_WEEKS) -> Table:
    """The last ``weeks`` weeks summarised across runs (the full table is in the files)."""
    cols = [Col("week_start", "week (Monday, UTC)", "date"), Col("runs", "runs", "int"),
            Col("mean", "trades/day mean", "num", 2), Col("median", "trades/day median", "num", 2),
            Col("p90", "trades/day p90", "num", 2), Col("win_rate", "win rate (%)", "pct", 1),
            Col("missing", "runs missing days", "int"), Col("drawdown", "worst drawdown (% of equity)", "num", 3)]
    if df.empty:
        return Table(cols, [], turnover_reading(df), empty="No rows.")
    w = turnover_weeks(df).tail(weeks).iloc[::-1]
    w["win_rate"] = (w["wins"] / w["fills"]).where(w["fills"] > 0)
    return Table(cols, w.to_dict("records"), turnover_reading(df),
                 f"The last {len(w)} weeks, newest first; all {len(df):,} run-week rows: turnover_summary.parquet.")


def plot_turnover(df: pd.DataFrame, weeks: int = 26):
    """Trades per day across runs, by week (the last ``weeks``): the mean and the median,
    the 10th–90th percentile band; dates in UTC."""
    if df.empty:
        return no_data_figure("Turnover across runs by week", "No daily rows: turnover unknown.")
    w = turnover_weeks(df).tail(weeks)
    t = [x.to_pydatetime() for x in w["week_start"]]
    labels = ["10th–90th percentile", "mean", "median"]
    fig, (ax,) = new_figure(PLOT_WIDTH_IN, 3.4, right_in=legend_width_in(labels) + 0.2)
    ax.fill_between(t, w["p10"], w["p90"], color="#90caf9", alpha=0.6, label=labels[0])
    ax.plot(t, w["mean"], color="#0d47a1", marker=markers_for(len(t)), markersize=4, label="mean")
    ax.plot(t, w["median"], color="#ef6c00", linestyle="--", marker=markers_for(len(t), "s"), markersize=3,
            label="median")
    ax.set_ylabel("trades per day")
    ax.set_ylim(0, max(1e-9, float(w[["p90", "mean"]].max().max())) * 1.2)
    ax.set_title(f"Trades per day across runs, by week (last {len(w)} weeks with data)", loc="left", fontsize=11)
    utc_time_axis(ax, "week starting (UTC)")
    ax.grid(axis="y", alpha=0.3)
    legend_outside(ax)
    return fig


def latency_table(df: pd.DataFrame) -> Table:
    """Per source: hours, the latest hour's p95, the worst hour and the hours over the SLO."""
    cols = [Col("source", "source", "id"), Col("hours", "hours", "int"), Col("last", "latest hour (UTC)", "time"),
            Col("last_p95", "latest p95 (ms)", "num", 0), Col("max_p95", "worst hourly p95 (ms)", "num", 0),
            Col("breaches", "hours over SLO", "int")]
    if df.empty:
        return Table(cols, [], "No latency rollups: latency unknown, not zero.", empty="No rollups.")
    rows = []
    for src, g in df.sort_values("hour_utc").groupby("source"):
        rows.append({"source": src, "hours": len(g), "last": g["hour_utc"].iloc[-1], "last_p95": g["p95_ms"].iloc[-1],
                     "max_p95": g["p95_ms"].max(), "breaches": int(g["breach_flag"].fillna(False).sum())})
    return Table(cols, rows, f"{len(df):,} hourly rollup rows over {len(rows)} source(s).",
                 "All rows: latency_rollups.parquet.")


def plot_latency(df: pd.DataFrame, slo_ms: float | None = None, days: int = 7):
    """Hourly p95 (ms) per source over the last ``days`` days of rollups (UTC), hours over
    the SLO marked, the SLO dashed."""
    if df.empty:
        return no_data_figure("Hourly p95 latency per source", "No latency rollups: latency unknown, not zero.")
    end = df["hour_utc"].max()
    d = df[df["hour_utc"] > end - pd.Timedelta(days=days)].sort_values("hour_utc")
    labels = [*d["source"].unique(), "hour over SLO", "SLO"]
    fig, (ax,) = new_figure(PLOT_WIDTH_IN, 3.6, right_in=legend_width_in(labels) + 0.2)
    for src, g in d.groupby("source"):
        ax.plot([t.to_pydatetime() for t in g["hour_utc"]], g["p95_ms"], marker=markers_for(len(g)), markersize=4,
                label=src)
    bad = d[d["breach_flag"].fillna(False).astype(bool)]
    if len(bad):
        ax.scatter([t.to_pydatetime() for t in bad["hour_utc"]], bad["p95_ms"], s=40, facecolors="none",
                   edgecolors="red", zorder=5, label="hour over SLO")
    if slo_ms:
        ax.axhline(slo_ms, color="red", linestyle="--", linewidth=1.2, label=f"SLO {fmt_num(slo_ms, 0)} ms")
    vals = [v for v in [*d["p95_ms"].dropna(), slo_ms] if v]
    if vals and max(vals) / max(min(vals), 1e-9) > 50:
        log_scale_ms(ax)
    else:
        ax.set_ylim(0, max(vals or [1]) * 1.15)
    ax.set_ylabel("p95 latency (ms)")
    ax.set_title(f"Hourly p95 latency per source (last {days} days of rollups)", loc="left", fontsize=11)
    utc_time_axis(ax)
    ax.grid(axis="y", alpha=0.3)
    legend_outside(ax, title="source")
    return fig


__all__ = ["DashboardRun", "ev_table", "key_figures", "load_result", "plot_ev", "plot_latency", "plot_slippage",
           "plot_turnover", "run_export", "slippage_table", "strategy_table", "summary", "turnover_table", "latency_table"]
