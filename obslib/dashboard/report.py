"""Helpers behind ``notebooks/dashboard_bundle.ipynb``: run the export through obslib, load
the published datasets, one-line readings and the four plots. The notebook only calls these.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from ..config import load_config
from ..inputs import resolve_data_root
from ..runlog import new_job_id
from ..storage import atomic_write_json, read_json, scratch_dir
from ..timeutil import parse_ts, utcnow
from . import DATASETS, DEFAULT_PIP_VALUE
from .bundle import ExportRequest, ExportResult, bundle_dir, export_bundle

RESULT_FILE = "export_result.json"


@dataclass
class DashboardRun:
    result: ExportResult
    work_root: Path
    data_root: Path

    def frame(self, name: str) -> pd.DataFrame:
        """The published Parquet file of dataset ``name`` (empty frame when none)."""
        p = bundle_dir(self.work_root) / f"{name}.parquet"
        return pd.read_parquet(p) if p.exists() else pd.DataFrame()

    def status_table(self) -> tuple[pd.DataFrame, str]:
        df = pd.DataFrame([{"dataset": n, **self.result.datasets.get(n, {"status": "not_selected"})}
                           for n in DATASETS])
        failed = [f"{f['dataset']} (rule {f['rule']})" for f in self.result.failed]
        reading = (f"Export sequence {self.result.sequence}: all datasets published." if not failed else
                   f"Export sequence {self.result.sequence}: NOT published: {', '.join(failed)}; their previous "
                   f"version stays.")
        return df, reading


def run_export(*, data_root: str = "", as_of: str = "", work_root: str = "", out_dir: str = "", job_id: str = "",
               source_command: str = "", commit_sha: str = "", data_label: str = "",
               pip_value: float = DEFAULT_PIP_VALUE) -> DashboardRun:
    """Export every dataset (``dashboard.bundle.export_bundle``) and write
    ``<out_dir>/export_result.json``. Blank values: ``as_of`` now, ``work_root`` a temp
    folder, ``data_root`` the demo repository, ``job_id`` a new one. Raises ``ObsError``
    for a missing data root or a held export lock."""
    now = parse_ts(as_of) if as_of else utcnow()
    wr = Path(work_root) if work_root else scratch_dir("dashboard")
    cfg = load_config(wr, overrides={"data_root": data_root or None})
    root = resolve_data_root(cfg, now)
    req = ExportRequest(names=list(DATASETS), data_root=root, work_root=wr, now=now,
                        job_id=job_id or new_job_id("dashboard_notebook", now),
                        command=source_command or "notebooks/dashboard_bundle.ipynb", commit_sha=commit_sha or None,
                        data_label=data_label or ("demo" if cfg.uses_demo else Path(root).name), pip_value=pip_value,
                        retention_days=cfg.history_retention_days, lock_timeout_s=cfg.lock_timeout_s)
    result = export_bundle(req)
    if out_dir:
        atomic_write_json(Path(out_dir) / RESULT_FILE, asdict(result))
    return DashboardRun(result, wr, root)


def load_run(result_file: str, *, work_root: str, data_root: str = "") -> DashboardRun:
    """The run ``obs dashboard run`` exported in its own process before the notebook
    started (its ``export_result.json``): the notebook reads the files it wrote."""
    return DashboardRun(load_result(Path(result_file)), Path(work_root), Path(data_root))


def load_result(path: Path) -> ExportResult:
    """The ``ExportResult`` a notebook run wrote."""
    return ExportResult(**read_json(path))


def ev_reading(df: pd.DataFrame) -> str:
    if df.empty:
        return "No EV-gate snapshots: ev_history is empty."
    keys = df.groupby(["strategy", "symbol", "mode"]).size()
    top = keys.idxmax()
    return (f"{len(df)} snapshots over {len(keys)} keys; most: {'/'.join(top)} ({keys.max()}). "
            f"Latest win-rate LCB range {df['win_rate_lcb'].min():.3f}..{df['win_rate_lcb'].max():.3f}.")


def turnover_reading(df: pd.DataFrame) -> str:
    if df.empty:
        return "No daily rows: turnover_summary is empty."
    flagged = int((df["missing_day_count"] > 0).sum())
    return (f"{df['run_id'].nunique()} runs x {df['week_start'].nunique()} weeks = {len(df)} rows; median "
            f"{df['avg_trades_per_day'].median():.2f} trades/day; {flagged} week(s) with missing trading days; worst "
            f"weekly drawdown {df['drawdown_pct'].min():.3f} %.")


def plot_ev(df: pd.DataFrame, ax=None):
    """EV-gate point win rate (dotted) and its LCB (solid) over time per key."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(9, 3.5))[1]
    if df.empty:
        ax.set_title("ev_history: no snapshots")
        return ax
    for key, g in df.groupby(["strategy", "symbol", "mode"]):
        line = ax.plot(g["generated_at"], g["win_rate_lcb"], marker=".", label="/".join(key)[:40])[0]
        ax.plot(g["generated_at"], g["win_rate_point"], linestyle=":", color=line.get_color(), alpha=0.6)
    ax.set_ylabel("win rate (fraction)")
    ax.set_title("EV gate per key: win-rate LCB (solid), point estimate (dotted)")
    ax.legend(fontsize=6)
    return ax


def plot_slippage(df: pd.DataFrame):
    """Slippage (bps) and reject rate (percent) per strategy."""
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3))
    if df.empty:
        a1.set_title("slippage_telemetry: no telemetry")
        return fig
    a1.bar(df["strategy"], df["slippage_bps"].fillna(0))
    a1.set_ylabel("slippage (bps)")
    a2.bar(df["strategy"], 100 * df["reject_rate"].fillna(0), color="tab:red")
    a2.set_ylabel("reject rate (%)")
    for a in (a1, a2):
        a.tick_params(axis="x", labelsize=6, rotation=15)
    fig.suptitle("Execution health per strategy")
    return fig


def plot_turnover(df: pd.DataFrame, ax=None, max_weeks: int = 60):
    """Distribution of avg_trades_per_day across runs, by week (the last ``max_weeks``)."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(10, 3.5))[1]
    if df.empty:
        ax.set_title("turnover_summary: no rows")
        return ax
    weeks = sorted(df["week_start"].unique())[-max_weeks:]
    data = [df.loc[df["week_start"] == w, "avg_trades_per_day"].dropna().to_numpy() for w in weeks]
    ax.boxplot(data, showfliers=False)
    step = max(1, len(weeks) // 10)
    ax.set_xticks(range(1, len(weeks) + 1, step), [pd.Timestamp(w).strftime("%Y-%m-%d") for w in weeks][::step],
                  fontsize=6, rotation=30)
    ax.set_ylabel("trades per day")
    ax.set_title(f"Turnover across runs by week (last {len(weeks)} weeks)")
    return ax


def plot_latency(df: pd.DataFrame, ax=None):
    """Heatmap of p95 latency (ms, log colour) by hour (rows) x source (columns)."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    ax = ax or plt.subplots(figsize=(8, 4))[1]
    if df.empty:
        ax.set_title("latency_rollups: no rollups (latency unknown, not zero)")
        return ax
    grid = df.pivot_table(index="hour_utc", columns="source", values="p95_ms", aggfunc="max")
    im = ax.imshow(grid.to_numpy(), aspect="auto", norm=LogNorm(), cmap="viridis")
    ax.set_xticks(range(len(grid.columns)), grid.columns, fontsize=7)
    step = max(1, len(grid.index) // 12)
    ax.set_yticks(range(0, len(grid.index), step), [t.strftime("%m-%d %H:00") for t in grid.index][::step],
                  fontsize=6)
    plt.colorbar(im, ax=ax, label="p95 (ms)")
    ax.set_title("Hourly p95 latency: hour x source")
    return ax
