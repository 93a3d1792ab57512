"""Helpers behind ``notebooks/dashboard_bundle.ipynb``: run the export through obslib, load
the published datasets, the summary (status banner, key figures, alerts), one readable
table per dataset and the plots. The notebook only calls these; how numbers look is
``obslib.presentation`` (rates in percent in tables and plots alike, UTC times).

Wide or long datasets are summarised on the page (per strategy, per week, per source);
the full data is in the Parquet and JSON files beside it.

The datasets are read as ``pyarrow.Table`` (``DashboardRun.frame``) and summarised with
plain Python (the small ones) and numpy (turnover: one vectorised pass over its run-week
rows); the kernel imports neither pandas nor the export code unless it exports itself
(``run_export``). Each function also takes a pandas DataFrame (an analyst's own).
"""

from __future__ import annotations

import math
import weakref
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..config import load_config
from ..errors import ObsError
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
from ..storage import atomic_write_json, read_json, scratch_dir
from ..timeutil import UTC, parse_ts, utcnow, week_start_of
from . import DATASETS, DEFAULT_PIP_VALUE
from .layout import bundle_dir
from .result import ExportResult

if TYPE_CHECKING:
    import pandas as pd

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

    def frame(self, name: str) -> pa.Table:
        """The published Parquet file of dataset ``name`` as a ``pyarrow.Table`` (``.to_pandas()``
        for a DataFrame); an empty table when there is none."""
        return read_dataset(bundle_dir(self.work_root) / f"{name}.parquet")

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
    from ..inputs import data_label as default_data_label
    from ..inputs import resolve_data_root
    from ..runlog import new_job_id
    from .bundle import ExportRequest, export_bundle  # the export: only when the notebook exports itself

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


DICTIONARY_COLUMNS = ("run_id",)  # repeated on every run-week row: read as one string per run plus codes


def read_dataset(path: Path) -> pa.Table:
    """A dataset's Parquet file as a ``pyarrow.Table`` (an empty one when the file is absent);
    ``DICTIONARY_COLUMNS`` dictionary-encoded (a pandas Categorical in ``to_pandas()``).
    ``ParquetFile.read``, not ``pq.read_table``: the latter imports pyarrow.dataset and pandas."""
    if not Path(path).exists():
        return pa.table({})
    names = pq.ParquetFile(path).schema_arrow.names
    return pq.ParquetFile(path, read_dictionary=[c for c in DICTIONARY_COLUMNS if c in names]).read()


def _table(data: pa.Table | pd.DataFrame) -> pa.Table:
    """``data`` as a ``pyarrow.Table`` (a pandas DataFrame converted, its index dropped)."""
    return data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _present(values) -> list:
    """``values`` without the missing ones (None, NaN)."""
    return [v for v in values if not _missing(v)]


def _min(values) -> float | None:
    """The smallest present value; None when there is none (as pandas' ``min`` skips NaN)."""
    vals = _present(values)
    return min(vals) if vals else None


def _max(values) -> float | None:
    vals = _present(values)
    return max(vals) if vals else None


def _by(rows: list[dict], *keys: str) -> dict[Any, list[dict]]:
    """``rows`` grouped by ``keys`` (one key: the value, else a tuple), groups in key order,
    each group in the rows' order (pandas ``groupby``)."""
    out: dict[Any, list[dict]] = {}
    for r in rows:
        k = r[keys[0]] if len(keys) == 1 else tuple(r[k] for k in keys)
        out.setdefault(k, []).append(r)
    return dict(sorted(out.items()))


def _sorted_desc(rows: list[dict], key: str) -> list[dict]:
    """``rows`` by ``key``, largest first, missing values last, ties in their order."""
    have = [r for r in rows if not _missing(r.get(key))]
    return sorted(have, key=lambda r: r[key], reverse=True) + [r for r in rows if _missing(r.get(key))]


# --- summary -------------------------------------------------------------------------------

def _ev_series(rows: list[dict]) -> dict[tuple, list[dict]]:
    """ev_history rows per (strategy, symbol, mode), keys sorted, each series oldest first."""
    return _by(sorted(rows, key=lambda r: r["generated_at"]), "strategy", "symbol", "mode")


def _latest(series: dict[tuple, list[dict]]) -> list[dict]:
    """The latest snapshot of each series (its row as written)."""
    return [g[-1] for g in series.values()]


def key_figures(run: DashboardRun, frames: dict[str, pa.Table]) -> list[Figure]:
    """Datasets published, the EV gate per strategy, execution health, turnover of the
    latest week and latency over the last day of rollups."""
    res = run.result
    figs = [Figure("Datasets published", f"{len(res.published)} of {len(DATASETS)}", "", wide=True,
                   status="critical" if res.failed else "ok", lines=tuple(f"{n}\t{fmt_num((res.datasets.get(n) or {}).get('rows'), 0) or '–'} rows"
                                          for n in DATASETS))]
    ev = _table(frames.get("ev_history", pa.table({})))
    if not ev.num_rows:
        figs.append(Figure("EV gate: latest win-rate LCB", "no data", detail="no state-archive snapshots",
                           status="unknown"))
    else:
        per = _by(_latest(_ev_series(ev.to_pylist())), "strategy")
        lowest = sorted(((name, _min(r["win_rate_lcb"] for r in g)) for name, g in per.items()),
                        key=lambda x: (x[1] is None, x[1] or 0.0))  # lowest first, no value last
        lines = tuple(f"{name}\t{fmt_pct(v, 1)} %" for name, v in lowest[:4])
        more = f"{len(lowest) - 4} more strategies below" if len(lowest) > 4 else "lowest series of each strategy"
        figs.append(Figure("EV gate: latest win-rate LCB", fmt_pct(_min(v for _, v in lowest), 1), "% lowest", more,
                           status="ok", lines=lines, wide=True))
    sl = _table(frames.get("slippage_telemetry", pa.table({})))
    if not sl.num_rows:
        figs.append(Figure("Slippage · reject rate", "no data", detail="no router telemetry", status="unknown"))
    else:
        rows = sl.to_pylist()
        lines = tuple(f"{r['strategy']}\t{fmt_num(r['slippage_bps'], 1) or '–'} bps\t"
                      f"{fmt_pct(r['reject_rate'], 1) or '–'} %" for r in _sorted_desc(rows, "slippage_bps")[:4])
        figs.append(Figure("Slippage · reject rate", fmt_num(_max(r["slippage_bps"] for r in rows), 1) or "–",
                           "bps max slippage", f"{len(rows) - 4} more below" if len(rows) > 4 else "", status="ok",
                           lines=lines, wide=True))
    to = _table(frames.get("turnover_summary", pa.table({})))
    if not to.num_rows:
        figs.append(Figure("Turnover, last week", "no data", detail="no daily rows", status="unknown"))
    else:
        last = turnover_weeks(to)[-1]
        figs.append(Figure("Turnover, last week", fmt_num(last["mean"], 2), "trades/day",
                           f"mean of {last['runs']:,} runs · week of {fmt_time(last['week_start'])[:10]}"))
    lat = _table(frames.get("latency_rollups", pa.table({})))
    if not lat.num_rows:
        figs.append(Figure("Latency, 24 h", "no data", detail="no rollups: unknown, not zero", status="unknown"))
    else:
        rows = lat.to_pylist()
        end = max(r["hour_utc"] for r in rows)
        day = [r for r in rows if r["hour_utc"] > end - timedelta(hours=24)]
        over = sum(r["breach_flag"] is True for r in day)
        slo = f" · SLO {fmt_num(run.slo_ms, 0)} ms" if run.slo_ms else ""
        figs.append(Figure("Latency, 24 h", fmt_num(_max(r["p95_ms"] for r in day), 0), "ms",
                           f"worst hourly p95 · {over} source-hour(s) over the SLO{slo}",
                           status="warning" if over else "ok"))
    return figs


def summary(run: DashboardRun, frames: dict[str, pa.Table] | None = None) -> Summary:
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

def _ev_reading(rows: list[dict], series: dict[tuple, list[dict]]) -> str:
    if not rows:
        return "No EV-gate snapshots: ev_history is empty."
    top = max(series, key=lambda k: len(series[k]))  # the first of the largest, in key order
    latest = [r["win_rate_lcb"] for r in _latest(series)]
    return (f"{len(rows):,} snapshots over {len(series)} series of {len({r['strategy'] for r in rows})} strategies; "
            f"most: {' '.join(top)} ({len(series[top])}). Latest win-rate LCB range "
            f"{fmt_pct(_min(latest), 1)}–{fmt_pct(_max(latest), 1)} %.")


def ev_reading(df: pa.Table | pd.DataFrame) -> str:
    rows = _table(df).to_pylist()
    return _ev_reading(rows, _ev_series(rows))


def ev_table(df: pa.Table | pd.DataFrame) -> Table:
    """The latest snapshot per strategy, symbol and mode (archive aliases of a strategy
    merged under its id: ``strategy_table``)."""
    cols = [Col("strategy", "strategy", "id"), Col("symbol", "symbol", "id"), Col("mode", "mode", "id"),
            Col("n", "snapshots", "int"), Col("first", "first (UTC)", "time"),
            Col("generated_at", "latest (UTC)", "time"), Col("win_rate_lcb", "win-rate LCB (%)", "pct", 1),
            Col("win_rate_point", "posterior mean (%)", "pct", 1), Col("ev_trend_7d", "7-day change (pp)", "signed", 1)]
    rows = _table(df).to_pylist()
    series = _ev_series(rows)
    if not rows:
        return Table(cols, [], _ev_reading(rows, series), empty="No snapshots.")
    latest = [{**g[-1], "n": len(g), "first": g[0]["generated_at"],
               "ev_trend_7d": None if _missing(g[-1]["ev_trend_7d"]) else g[-1]["ev_trend_7d"] * 100}
              for g in series.values()]
    return Table(cols, latest, _ev_reading(rows, series), f"All {len(rows):,} snapshots: ev_history.parquet / ev_history.json.")


def strategy_table(df: pa.Table | pd.DataFrame) -> Table:
    """Which raw names (``strategy_source``) each canonical strategy id stands for."""
    cols = [Col("strategy", "strategy id", "id"), Col("sources", "names in the data (strategy_source)", "text")]
    t = _table(df)
    if not t.num_rows or "strategy_source" not in t.column_names:
        return Table(cols, [], empty="No strategies.")
    per = _by(t.select(["strategy", "strategy_source"]).to_pylist(), "strategy")
    rows = [{"strategy": k, "sources": ", ".join(sorted({r["strategy_source"] for r in g} - {None}))}
            for k, g in per.items()]
    return Table(cols, rows, "Strategy ids: the module name without the 'strategies.' prefix, the class name and a "
                             "_v<N> version tag.")


def ev_hist(df: pa.Table | pd.DataFrame) -> dict[str, dict[str, list[tuple]]]:
    """ev_history rows as ``presentation.plot_ev_gate``'s input (a missing LCB as NaN: a gap)."""
    out: dict[str, dict[str, list[tuple]]] = {}
    for (strategy, symbol, mode), g in _ev_series(_table(df).to_pylist()).items():
        out.setdefault(strategy, {})[f"{symbol} {mode}"] = [
            (r["generated_at"], math.nan if _missing(r["win_rate_lcb"]) else r["win_rate_lcb"],
             None if _missing(r["win_rate_point"]) else r["win_rate_point"]) for r in g]
    return out


def plot_ev(df: pa.Table | pd.DataFrame):
    """EV gate per strategy over time, the week of the latest snapshot shaded."""
    t = _table(df)
    if not t.num_rows:
        return plot_ev_gate({}, utcnow(), utcnow(), "")
    start = week_start_of(max(t.column("generated_at").to_pylist()))
    return plot_ev_gate(ev_hist(t), start, start + timedelta(days=7), "latest week")


def slippage_table(df: pa.Table | pd.DataFrame) -> Table:
    cols = [Col("strategy", "strategy", "id"), Col("strategy_source", "telemetry name", "id"),
            Col("slippage_bps", "slippage (bps)", "num", 1), Col("reject_rate", "reject rate (%)", "pct", 1),
            Col("slippage_zscore", "slippage z-score", "signed", 2), Col("fill_count", "fills", "int"),
            Col("window_days", "window (days)", "int"), Col("generated_at", "snapshot (UTC)", "time")]
    rows = _table(df).to_pylist()
    if not rows:
        return Table(cols, [], "No router telemetry: slippage_telemetry is empty.", empty="No strategies.")
    worst = _sorted_desc(rows, "slippage_bps")[0]
    return Table(cols, rows,
                 f"Highest slippage: {worst['strategy']} at {fmt_num(worst['slippage_bps'], 1)} bps; snapshot time "
                 f"from {rows[0]['generated_at_source']}.")


def plot_slippage(df: pa.Table | pd.DataFrame):
    """Slippage (bps) and reject rate (percent, as in the table) per strategy, side by side."""
    rows = _table(df).to_pylist()
    if not rows:
        return no_data_figure("Execution health per strategy", "No router telemetry: execution health unknown.")
    d = sorted(rows, key=lambda r: r["strategy"])
    names = [r["strategy"] for r in d]
    left = 0.3 + 0.075 * max(len(n) for n in names)
    fig, (a1, a2) = new_figure(PLOT_WIDTH_IN, 0.45 * len(names) + 1.3, left_in=left, right_in=0.5, ncols=2,
                               wspace=0.12, top_in=0.5)
    y = list(range(len(names)))[::-1]
    for ax, col, scale, colour, unit in ((a1, "slippage_bps", 1.0, "#1565c0", "slippage (bps)"),
                                         (a2, "reject_rate", 100.0, "#c62828", "reject rate (%)")):
        vals = [None if _missing(r[col]) else r[col] * scale for r in d]
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


def _bits(buffer: pa.Buffer, offset: int, n: int) -> np.ndarray:
    """An Arrow bitmap (validity or boolean values) as ``n`` booleans."""
    return np.unpackbits(np.frombuffer(buffer, np.uint8), bitorder="little")[offset:offset + n].astype(bool)


def _chunk_values(a: pa.Array) -> np.ndarray:
    if pa.types.is_dictionary(a.type):
        a = a.indices
    valid, data = a.buffers()[:2]
    if pa.types.is_boolean(a.type):
        out = _bits(data, a.offset, len(a)).astype(float)
    else:  # ints, floats, timestamps (their integer count of the unit)
        kind = "f" if pa.types.is_floating(a.type) else "i"
        out = np.frombuffer(data, dtype=f"{kind}{a.type.bit_width // 8}")[a.offset:a.offset + len(a)].astype(float)
    if valid is not None and a.null_count:
        out[~_bits(valid, a.offset, len(a))] = np.nan
    return out


def _values(t: pa.Table, name: str) -> np.ndarray:
    """Column ``name`` (numbers, booleans, timestamps in their unit, dictionary codes) as
    float64 with NaN for null, straight from the Arrow buffers (``Array.to_numpy`` imports
    pandas). Timestamps up to 2^53 units stay exact."""
    col = t.column(name)
    if pa.types.is_dictionary(col.type) and col.num_chunks > 1:
        col = t.select([name]).unify_dictionaries().column(name)  # one dictionary: codes comparable across chunks
    return np.concatenate([np.empty(0), *(_chunk_values(c) for c in col.chunks)])


def _codes(t: pa.Table, name: str) -> np.ndarray:
    """One integer per distinct value of column ``name`` (its dictionary codes when it has one)."""
    if pa.types.is_dictionary(t.column(name).type):
        return _values(t, name)
    seen: dict[Any, int] = {}
    return np.fromiter((seen.setdefault(v, len(seen)) for v in t.column(name).to_pylist()), dtype=float,
                       count=t.num_rows)


def _distinct(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sorted distinct values and each value's position among them (``np.unique`` with
    ``return_inverse``, by one sort)."""
    order = np.argsort(values, kind="stable")
    v = values[order]
    first = np.concatenate([[True], v[1:] != v[:-1]])
    index = np.empty(len(values), dtype=np.int64)
    index[order] = np.cumsum(first) - 1
    return v[first], index


def _utc(value: float, unit: str) -> datetime:
    """A timestamp column's value (a count of ``unit`` since 1970) as an aware UTC datetime."""
    per_us = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": 0.001}[unit]
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(value) * per_us)


class _Groups:
    """Rows split by a group index ``0..n-1``; the statistics skip NaN, as pandas' groupby does
    (a group without a value gets NaN). Order statistics take ``sort(values)``, done once."""

    def __init__(self, index: np.ndarray, n: int):
        self.index, self.n = index, n

    def sort(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The present values ordered by group then value; each group's count and first position."""
        ok = ~np.isnan(values)
        g, v = self.index[ok], values[ok]
        count = np.bincount(g, minlength=self.n)
        return v[np.lexsort((v, g))], count, np.cumsum(count) - count

    def total(self, values: np.ndarray) -> np.ndarray:
        return np.bincount(self.index, weights=np.where(np.isnan(values), 0.0, values), minlength=self.n)

    def distinct(self, codes: np.ndarray) -> np.ndarray:
        """Distinct non-negative integer ``codes`` per group (by sorting: ``np.unique`` hashes, slower here)."""
        width = int(codes.max()) + 1
        key = np.sort(self.index * width + codes)
        return np.bincount(key[np.concatenate([[True], key[1:] != key[:-1]])] // width, minlength=self.n)

    def mean(self, values: np.ndarray) -> np.ndarray:
        ok = ~np.isnan(values)
        count = np.bincount(self.index[ok], minlength=self.n)
        sums = np.bincount(self.index[ok], weights=values[ok], minlength=self.n)
        return np.divide(sums, count, out=np.full(self.n, np.nan), where=count > 0)

    def minimum(self, s: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
        return self.quantile(s, 0.0)

    def quantile(self, s: tuple[np.ndarray, np.ndarray, np.ndarray], q: float) -> np.ndarray:
        """Linear interpolation between the closest ranks (numpy's and pandas' default)."""
        v, count, first = s
        out, has = np.full(self.n, np.nan), count > 0
        pos = q * (count[has] - 1)
        lo = np.floor(pos).astype(np.int64)
        a, b = v[first[has] + lo], v[first[has] + np.minimum(lo + 1, count[has] - 1)]
        out[has] = np.where(pos == lo, a, a + (b - a) * (pos - lo))
        return out

    def median(self, s: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
        """The middle value, or the mean of the two middle values (pandas' groupby median)."""
        v, count, first = s
        out, has = np.full(self.n, np.nan), count > 0
        out[has] = (v[first[has] + (count[has] - 1) // 2] + v[first[has] + count[has] // 2]) / 2
        return out


_last_weeks: tuple[weakref.ref, list[dict]] | None = None  # the summary, table and plot share one table's weeks


def turnover_weeks(df: pa.Table | pd.DataFrame) -> list[dict]:
    """Per week, oldest first: runs, mean, median and 10th/90th percentile of trades per day,
    fills, wins, runs with missing trading days and the worst drawdown (percent of equity).
    One vectorised pass over the run-week rows (numpy), remembered for the last table."""
    global _last_weeks
    t = _table(df)
    if _last_weeks is None or _last_weeks[0]() is not t:
        _last_weeks = (weakref.ref(t), _turnover_weeks(t))
    return [dict(r) for r in _last_weeks[1]]


def _turnover_weeks(t: pa.Table) -> list[dict]:
    if not t.num_rows:
        return []
    weeks, week_index = _distinct(_values(t, "week_start"))
    g = _Groups(week_index, len(weeks))
    trades = _values(t, "avg_trades_per_day")
    ranked = g.sort(trades)
    cols = {"runs": g.distinct(_codes(t, "run_id").astype(np.int64)), "mean": g.mean(trades),
            "p10": g.quantile(ranked, 0.1), "median": g.median(ranked), "p90": g.quantile(ranked, 0.9),
            "fills": g.total(_values(t, "fills")), "wins": g.total(_values(t, "wins")),
            "missing": g.total(_values(t, "missing_day_count") > 0),
            "drawdown": g.minimum(g.sort(_values(t, "drawdown_pct")))}
    unit = t.schema.field("week_start").type.unit
    return [{"week_start": _utc(w, unit), **{k: int(c[i]) if k in ("runs", "missing") else float(c[i])
                                             for k, c in cols.items()}} for i, w in enumerate(weeks)]


def turnover_reading(df: pa.Table | pd.DataFrame) -> str:
    t = _table(df)
    if not t.num_rows:
        return "No daily rows: turnover_summary is empty."
    trades, drawdown = _values(t, "avg_trades_per_day"), _values(t, "drawdown_pct")
    trades, drawdown = trades[~np.isnan(trades)], drawdown[~np.isnan(drawdown)]
    flagged = int((_values(t, "missing_day_count") > 0).sum())
    runs, weeks = len(_distinct(_codes(t, "run_id"))[0]), len(_distinct(_values(t, "week_start"))[0])
    return (f"{runs:,} runs × {weeks:,} weeks = {t.num_rows:,} rows; median "
            f"{fmt_num(np.median(trades) if len(trades) else None, 2)} trades/day; {flagged:,} run-week(s) with "
            f"missing trading days; worst weekly drawdown {fmt_num(drawdown.min() if len(drawdown) else None, 3)} % "
            f"of equity.")


def turnover_table(df: pa.Table | pd.DataFrame, weeks: int = TURNOVER_WEEKS) -> Table:
    """The last ``weeks`` weeks summarised across runs (the full table is in the files)."""
    cols = [Col("week_start", "week (Monday, UTC)", "date"), Col("runs", "runs", "int"),
            Col("mean", "trades/day mean", "num", 2), Col("median", "trades/day median", "num", 2),
            Col("p90", "trades/day p90", "num", 2), Col("win_rate", "win rate (%)", "pct", 1),
            Col("missing", "runs missing days", "int"), Col("drawdown", "worst drawdown (% of equity)", "num", 3)]
    t = _table(df)
    if not t.num_rows:
        return Table(cols, [], turnover_reading(t), empty="No rows.")
    w = [{**r, "win_rate": r["wins"] / r["fills"] if r["fills"] > 0 else None}
         for r in turnover_weeks(t)[-weeks:][::-1]]
    return Table(cols, w, turnover_reading(t),
                 f"The last {len(w)} weeks, newest first; all {t.num_rows:,} run-week rows: turnover_summary.parquet.")


def plot_turnover(df: pa.Table | pd.DataFrame, weeks: int = 26):
    """Trades per day across runs, by week (the last ``weeks``): the mean and the median,
    the 10th–90th percentile band; dates in UTC."""
    w = turnover_weeks(df)[-weeks:]
    if not w:
        return no_data_figure("Turnover across runs by week", "No daily rows: turnover unknown.")
    t = [r["week_start"] for r in w]
    col = {k: [r[k] for r in w] for k in ("p10", "p90", "mean", "median")}
    labels = ["10th–90th percentile", "mean", "median"]
    fig, (ax,) = new_figure(PLOT_WIDTH_IN, 3.4, right_in=legend_width_in(labels) + 0.2)
    ax.fill_between(t, col["p10"], col["p90"], color="#90caf9", alpha=0.6, label=labels[0])
    ax.plot(t, col["mean"], color="#0d47a1", marker=markers_for(len(t)), markersize=4, label="mean")
    ax.plot(t, col["median"], color="#ef6c00", linestyle="--", marker=markers_for(len(t), "s"), markersize=3,
            label="median")
    ax.set_ylabel("trades per day")
    ax.set_ylim(0, max(1e-9, _max([*col["p90"], *col["mean"]]) or 0.0) * 1.2)
    ax.set_title(f"Trades per day across runs, by week (last {len(w)} weeks with data)", loc="left", fontsize=11)
    utc_time_axis(ax, "week starting (UTC)")
    ax.grid(axis="y", alpha=0.3)
    legend_outside(ax)
    return fig


def latency_table(df: pa.Table | pd.DataFrame) -> Table:
    """Per source: hours, the latest hour's p95, the worst hour and the hours over the SLO."""
    cols = [Col("source", "source", "id"), Col("hours", "hours", "int"), Col("last", "latest hour (UTC)", "time"),
            Col("last_p95", "latest p95 (ms)", "num", 0), Col("max_p95", "worst hourly p95 (ms)", "num", 0),
            Col("breaches", "hours over SLO", "int")]
    all_rows = _table(df).to_pylist()
    if not all_rows:
        return Table(cols, [], "No latency rollups: latency unknown, not zero.", empty="No rollups.")
    rows = [{"source": src, "hours": len(g), "last": g[-1]["hour_utc"], "last_p95": g[-1]["p95_ms"],
             "max_p95": _max(r["p95_ms"] for r in g), "breaches": sum(r["breach_flag"] is True for r in g)}
            for src, g in _by(sorted(all_rows, key=lambda r: r["hour_utc"]), "source").items()]
    return Table(cols, rows, f"{len(all_rows):,} hourly rollup rows over {len(rows)} source(s).",
                 "All rows: latency_rollups.parquet.")


def plot_latency(df: pa.Table | pd.DataFrame, slo_ms: float | None = None, days: int = 7):
    """Hourly p95 (ms) per source over the last ``days`` days of rollups (UTC), hours over
    the SLO marked, the SLO dashed."""
    rows = _table(df).to_pylist()
    if not rows:
        return no_data_figure("Hourly p95 latency per source", "No latency rollups: latency unknown, not zero.")
    end = max(r["hour_utc"] for r in rows)
    d = sorted((r for r in rows if r["hour_utc"] > end - timedelta(days=days)), key=lambda r: r["hour_utc"])
    labels = [*dict.fromkeys(r["source"] for r in d), "hour over SLO", "SLO"]
    fig, (ax,) = new_figure(PLOT_WIDTH_IN, 3.6, right_in=legend_width_in(labels) + 0.2)
    nan = math.nan
    for src, g in _by(d, "source").items():
        ax.plot([r["hour_utc"] for r in g], [nan if _missing(r["p95_ms"]) else r["p95_ms"] for r in g],
                marker=markers_for(len(g)), markersize=4, label=src)
    bad = [r for r in d if r["breach_flag"] is True]
    if bad:
        ax.scatter([r["hour_utc"] for r in bad], [nan if _missing(r["p95_ms"]) else r["p95_ms"] for r in bad], s=40,
                   facecolors="none", edgecolors="red", zorder=5, label="hour over SLO")
    if slo_ms:
        ax.axhline(slo_ms, color="red", linestyle="--", linewidth=1.2, label=f"SLO {fmt_num(slo_ms, 0)} ms")
    vals = [v for v in [*_present(r["p95_ms"] for r in d), slo_ms] if v]
    if vals and max(vals) / max(min(vals), 1e-9) > 50:
        log_scale_ms(ax)
    else:
        ax.set_ylim(0, max(vals or [1]) * 1.15)
    ax.set_ylabel("p95 latency (ms)")
    ax.set_title(f"Hourly p95 latency per source (last {days} days of rollups)", loc="left", fontsize=11)
    ax.set_xlim(end - timedelta(days=days), end + timedelta(hours=1))  # the stated window, even for one hour of data
    utc_time_axis(ax)
    ax.grid(axis="y", alpha=0.3)
    legend_outside(ax, title="source")
    return fig


__all__ = ["DashboardRun", "ev_table", "key_figures", "load_result", "plot_ev", "plot_latency", "plot_slippage",
           "plot_turnover", "read_dataset", "run_export", "slippage_table", "strategy_table", "summary", "turnover_table",
           "turnover_weeks", "latency_table"]
