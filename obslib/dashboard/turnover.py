"""``turnover_summary``: one row per run (``runs/index.csv``) per ISO week that has rows in
the run's ``runs/<run_id>/daily.csv``. Vectorised over all runs (pandas/numpy).

Definitions (also in ``schemas/dashboard/turnover_summary.schema.json``):

- ``week_start`` = Monday 00:00 UTC of the row dates' week (the week ends 7 days later,
  exclusive; no column repeats that). Daily dates are calendar days read as UTC.
- Precision: pips (``pnl_pips``, ``pnl_per_trade``, ``drawdown_pips``) 2 decimals,
  per-day averages 3, fractions (``win_rate``, ``active_day_ratio``) 4, ``drawdown_pct`` 4
  (percent). ``pip_value`` is one number per export: the provenance block's
  ``parameters.pip_value``, not a column.
- Per-run span: ``start_ts`` / ``end_ts`` = 00:00 UTC of the first / last date with a row
  in the run's ``daily.csv`` (the same on every row of the run; the span covers the whole
  last day).
- ``days_reported`` = daily rows in the week; ``active_days`` = rows with fills > 0;
  ``fills``, ``wins`` (counts) and ``pnl_pips`` (pips) are the week's sums.
- ``avg_trades_per_day = fills / days_reported`` (a missing day is not counted as a
  zero day: it is unknown, and flagged instead); ``avg_trades_active_day = fills /
  active_days`` (null when no active day), so it is >= ``avg_trades_per_day``;
  ``win_rate = wins / fills`` (fraction, null when no fills); ``pnl_per_trade = pnl_pips /
  fills`` (pips per trade); ``active_day_ratio = active_days / days_reported``.
- ``drawdown_pips`` (>= 0): the largest fall of the week's cumulative daily pnl (pips)
  from its running peak, the peak starting at 0 at ``week_start`` (daily granularity).
  ``drawdown_pct = -100 * drawdown_pips * pip_value / equity`` (percent of the run's
  ``equity`` from ``runs/index.csv``, <= 0), with ``pip_value`` = account-currency value of
  one pip for the run's position, default 10.0 (one standard lot, 100 000 units, at
  0.0001 per pip in a USD-quoted account; for USDJPY it is an approximation). ``equity``
  and ``drawdown_pips`` are on every row and ``pip_value`` in the provenance
  (``parameters``), so the conversion can be redone. Null ``drawdown_pct`` (plus a warning) when equity is
  missing or not positive.
- Missing trading days: the run's trading days are Monday-Friday, plus Sunday when its
  file has any Sunday row, between its first and last date. Each such day without a row
  is listed in ``missing_days`` (``YYYY-MM-DD``) of its week, ``missing_day_count`` counts
  them. A week whose every trading day is missing has no row; it is named in a warning.
- Runs in the index without ``daily.csv`` are skipped and counted in one warning; a
  duplicate ``run_id`` keeps its first index line (warning).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from ..inputs import Problem
from ..inputs.daily_frame import daily_rel, iter_daily_frames
from ..inputs.runs import INDEX_REL, read_run_index
from . import DEFAULT_PIP_VALUE
from .datasets import DatasetResult, typed_frame

_EPOCH = np.datetime64("1970-01-01", "D")
# decimals written per kind of value (the JSON stays small; see the schema's descriptions)
PIPS_DP, AVG_DP, FRACTION_DP, PCT_DP = 2, 3, 4, 4
_KEY = 1 << 21  # day numbers (days since 1970) stay far below this


def _weekday(day: np.ndarray) -> np.ndarray:
    return (day + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0


def _missing_days(df: pd.DataFrame) -> pd.DataFrame:
    """``[run_key, day]`` of trading days without a row (frame sorted by run_key, day)."""
    rk, day = df["run_key"].to_numpy(), df["day"].to_numpy()
    has_sun = pd.Series(_weekday(day) == 6).groupby(rk).transform("any").to_numpy()
    gap = np.diff(day) - 1
    same = rk[1:] == rk[:-1]
    pos = np.flatnonzero(same & (gap > 0))
    if not len(pos):
        return pd.DataFrame({"run_key": np.array([], np.int64), "day": np.array([], np.int64)})
    lens = gap[pos]
    owner = np.repeat(pos, lens)
    offs = np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens) + 1
    cand = day[owner] + offs
    wd = _weekday(cand)
    keep = (wd <= 4) | ((wd == 6) & has_sun[owner])
    return pd.DataFrame({"run_key": rk[owner][keep], "day": cand[keep]})


def _weekly(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Aggregate one batch of daily rows (sorted by run_key, day) into weekly rows.
    Returns ``(weekly rows, missing days of weeks without any row)``."""
    day = df["day"].to_numpy()
    week = day - _weekday(day)
    gk = df["run_key"].to_numpy() * _KEY + week
    fills, pnl = df["fills"].to_numpy(), df["pnl_pips"].to_numpy()
    starts = np.flatnonzero(np.r_[True, gk[1:] != gk[:-1]])  # rows are sorted: groups are contiguous
    csum = np.cumsum(pnl)
    base = np.repeat(csum[starts] - pnl[starts], np.diff(np.r_[starts, len(gk)]))
    cum = csum - base  # cumulative pnl within the week
    peak = np.maximum(pd.Series(cum).groupby(gk, sort=False).cummax().to_numpy(), 0.0)
    out = pd.DataFrame({"gk": gk[starts], "days_reported": np.diff(np.r_[starts, len(gk)]),
                        "active_days": np.add.reduceat((fills > 0).astype(np.int64), starts),
                        "fills": np.add.reduceat(fills, starts), "wins": np.add.reduceat(df["wins"].to_numpy(), starts),
                        "pnl_pips": np.add.reduceat(pnl, starts),
                        "drawdown_pips": np.maximum.reduceat(peak - cum, starts)})
    miss = _missing_days(df)
    miss["gk"] = miss["run_key"].to_numpy() * _KEY + (miss["day"].to_numpy() - _weekday(miss["day"].to_numpy()))
    miss["date"] = (_EPOCH + miss["day"].to_numpy().astype("timedelta64[D]")).astype(str)
    lists = miss.groupby("gk")["date"].agg(tuple)
    md = out["gk"].map(lists)
    out["missing_days"] = md.where(md.notna(), pd.Series([()] * len(out), dtype=object))
    out["missing_day_count"] = out["gk"].map(miss.groupby("gk").size()).fillna(0).astype(np.int64)
    return out, miss[~miss["gk"].isin(out["gk"])]


def _prefetched(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """``frames`` with the next batch read on a helper thread while the current one is
    aggregated (CSV parsing releases the GIL). Same items, same order, same errors."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="daily-prefetch") as pool:
        pending = pool.submit(next, frames, None)
        while (batch := pending.result()) is not None:
            pending = pool.submit(next, frames, None)
            yield batch


def build_turnover_summary(data_root: Path, *, pip_value: float = DEFAULT_PIP_VALUE,
                           batch_files: int = 256) -> DatasetResult:
    """The dataset (see module doc). Raises ``InputError`` when ``runs/index.csv`` is
    missing or lacks core columns, or a daily file exists but cannot be read."""
    problems: list[Problem] = []
    index = read_run_index(data_root, problems)
    res = DatasetResult("turnover_summary", typed_frame("turnover_summary", []))
    res.inputs.append(("data", INDEX_REL))
    runs, seen = [], set()
    for r in index:
        if r["run_id"] in seen:
            res.warnings.append(f"{INDEX_REL}:{r['_line']}: duplicate run_id {r['run_id']}: first line kept")
            continue
        seen.add(r["run_id"])
        runs.append(r)
    run_dirs = [r.get("run_dir") or f"runs/{r['run_id']}" for r in runs]
    parts, orphans, spans = [], [], []
    for batch in _prefetched(iter_daily_frames(data_root, run_dirs, problems, batch_files=batch_files)):
        spans.append(batch.groupby("run_key", sort=False)["day"].agg(["min", "max"]))
        w, orphan = _weekly(batch)
        parts.append(w)
        orphans.append(orphan)
    have = sorted({int(k) for p in parts for k in np.unique(p["gk"].to_numpy() // _KEY)})
    res.inputs += [("data", daily_rel(run_dirs[k])) for k in have]
    if len(runs) > len(have):
        res.warnings.append(f"{len(runs) - len(have)} of {len(runs)} runs in {INDEX_REL} have no daily.csv rows: "
                            f"no turnover rows for them")
    if not parts:
        res.add_problems(problems)
        return res
    w = pd.concat(parts, ignore_index=True)
    rk = (w["gk"].to_numpy() // _KEY).astype(np.int64)
    week = w["gk"].to_numpy() % _KEY
    equity = np.array([r.get("equity") if r.get("equity") is not None else np.nan for r in runs], float)[rk]
    fills, days, active = w["fills"].to_numpy(), w["days_reported"].to_numpy(), w["active_days"].to_numpy()
    span = pd.concat(spans).groupby(level=0).agg({"min": "min", "max": "max"})
    first, last = span["min"].reindex(rk).to_numpy(), span["max"].reindex(rk).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        frame = {
            "run_id": np.array([r["run_id"] for r in runs], dtype=object)[rk],
            "week_start": pd.to_datetime(week, unit="D", utc=True),
            "start_ts": pd.to_datetime(first, unit="D", utc=True), "end_ts": pd.to_datetime(last, unit="D", utc=True),
            "days_reported": days, "active_days": active, "fills": fills, "wins": w["wins"].to_numpy(),
            "pnl_pips": w["pnl_pips"].round(PIPS_DP).to_numpy() + 0.0,
            "avg_trades_per_day": np.round(fills / days, AVG_DP),
            "avg_trades_active_day": np.where(active > 0, np.round(fills / active, AVG_DP), np.nan),
            "win_rate": np.where(fills > 0, np.round(w["wins"].to_numpy() / fills, FRACTION_DP), np.nan),
            "pnl_per_trade": np.where(fills > 0, np.round(w["pnl_pips"].to_numpy() / fills, PIPS_DP), np.nan) + 0.0,
            "active_day_ratio": np.round(active / days, FRACTION_DP),
            "drawdown_pips": w["drawdown_pips"].round(PIPS_DP).to_numpy() + 0.0,
            "drawdown_pct": np.where(equity > 0, np.round(-100.0 * w["drawdown_pips"].to_numpy() * pip_value / equity,
                                                          PCT_DP), np.nan) + 0.0,
            "equity": equity,
            "missing_day_count": w["missing_day_count"].to_numpy(),
            "missing_days": w["missing_days"].to_numpy(),
        }
    res.frame = typed_frame("turnover_summary", pd.DataFrame(frame, copy=False))
    bad_eq = sorted({runs[k]["run_id"] for k in np.unique(rk[~(equity > 0)])})
    if bad_eq:
        res.warnings.append(f"equity missing or not positive in {INDEX_REL} for {len(bad_eq)} run(s) "
                            f"({', '.join(bad_eq[:5])}): drawdown_pct null")
    orphan = pd.concat(orphans, ignore_index=True)
    if len(orphan):
        weeks = orphan.drop_duplicates("gk")
        for gk in weeks["gk"].to_numpy()[:50]:
            rid = runs[int(gk // _KEY)]["run_id"]
            res.warnings.append(f"{rid}: week {_EPOCH + int(gk % _KEY)} has no daily rows (all trading days "
                                f"missing): no row")
    res.add_problems(problems)
    return res
