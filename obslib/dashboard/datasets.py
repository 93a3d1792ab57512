"""Dataset builders: ``ev_history``, ``slippage_telemetry`` and ``latency_rollups``
(``turnover_summary`` lives in ``turnover.py``). Each returns a ``DatasetResult``: a
DataFrame in the column order of ``columns.SPECS`` (timestamps tz-aware UTC), the warnings
(input problems, fields the source lacks) and the inputs read (paths relative to the data
root, or to the work root for ``ops/`` files of the kit).

Definitions (also in the JSON Schema descriptions):

- ``ev_history``: one row per snapshot file of every ``<strategy>/<symbol>/<mode>``
  folder. ``generated_at`` is the UTC stamp the file name starts with.
  ``win_rate_point = (alpha + prior_alpha) / (alpha + prior_alpha + beta + prior_beta)``;
  ``win_rate_lcb`` as DESIGN.md (fraction). ``ev_trend_7d`` (fraction) = this snapshot's
  ``win_rate_point`` minus that of the newest snapshot of the same key generated at least
  7 days earlier; null when there is none. Two files of one key with the same stamp:
  identical EV values -> one row kept plus a warning naming the other file; different
  values -> both rows kept, so the rule "generated_at strictly increasing per key" fails
  and the dataset is not published (the error names the key and the stamp).
- ``slippage_telemetry``: one row per strategy of the telemetry's ``execution_health``.
  ``generated_at`` is the telemetry's own ``generated_at`` if it has one, else the
  portfolio summary's ``generated_at``, else the export time; ``generated_at_source``
  says which (``telemetry`` | ``portfolio_summary`` | ``export_time``). ``fill_count``
  and ``window_days`` are taken from the strategy's entry when present, else null plus one
  warning each (never invented). ``slippage_zscore = (x - mean) / std`` over the
  snapshot's strategies with a finite slippage, population std (ddof = 0); null when
  fewer than 2 such strategies or zero spread.
- ``latency_rollups``: rows of ``ops/signal_latency_rollup.csv`` as written by the
  latency query (``obslib.latency.model.query``; columns by name:
  ``hour_utc,source,p50_ms,p95_ms,samples,breach_flag`` required; ``method``, ``p99_ms``,
  ``max_ms``, ``windows``, ``bad_events``, ``error_samples`` null when an old rollup row
  lacks them). ``samples`` = events in the hour. An absent file gives an empty dataset
  plus a warning. An hour without a latency (only error events, empty percentiles) is
  not a rollup row: skipped and counted in a warning. ``streak_id`` = ``<source>@<first hour of the streak>`` for a breaching hour,
  where a streak is a run of breaching hours of one source with no gap (each exactly 1 h
  after the previous); ``streak_length`` = hours into the streak at that hour (1, 2, ...),
  0 and ``streak_id`` null for a non-breaching hour.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from ..inputs import Problem
from ..inputs.csvfile import read_csv
from ..inputs.reports import PORTFOLIO_REL, TELEMETRY_REL, read_portfolio_summary, read_router_telemetry
from ..inputs.state_archive import read_state_archive
from ..inputs.strategy import strategy_keys
from ..inputs.values import RANGE_TEXT, check_date, show
from ..stats import win_rate_point
from ..timeutil import parse_ts, to_rfc3339
from .columns import SPECS

ROLLUP_REL = "ops/signal_latency_rollup.csv"
MAX_WARNINGS = 200


@dataclass
class DatasetResult:
    """One built dataset. ``frame`` has exactly ``SPECS[name].column_names``; ``inputs``
    are ``(base, rel_path)`` pairs (``base`` is ``data`` or ``work``)."""

    name: str
    frame: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    inputs: list[tuple[str, str]] = field(default_factory=list)

    def add_problems(self, problems: list[Problem]) -> None:
        """Record input problems as warnings (at most ``MAX_WARNINGS`` listed, then their total)."""
        for p in problems:
            if len(self.warnings) >= MAX_WARNINGS:
                self.warnings.append(f"... {len(problems)} input problems in total")
                break
            self.warnings.append(f"input {p.kind}: {p}")


def _whole(arr: np.ndarray) -> bool:
    """True when every non-NaN value is a whole number within int64 (exact cast)."""
    with np.errstate(invalid="ignore"):
        ok = np.isnan(arr) | ((np.floor(arr) == arr) & (np.abs(arr) < 2.0 ** 62))
    return bool(ok.all())


def typed_frame(name: str, rows: list[dict] | pd.DataFrame) -> pd.DataFrame:
    """``rows`` as a frame with the dataset's columns and dtypes (timestamps UTC, ints as
    nullable Int64, floats float64, bools nullable boolean), in spec order. Columns that
    already have their dtype (as the vectorised builders make them) are taken as they are."""
    df = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    plain_index = isinstance(df.index, pd.RangeIndex) and df.index.start == 0 and df.index.step == 1
    out = {}
    for col, kind in SPECS[name].columns:
        s = df[col] if col in df else pd.Series([None] * len(df), dtype=object)
        if kind == "timestamp":
            if not (isinstance(s.dtype, pd.DatetimeTZDtype) and str(s.dtype.tz) == "UTC"):
                s = pd.to_datetime(s, utc=True)
        elif kind == "float":
            if s.dtype != np.float64:
                s = pd.to_numeric(s, errors="raise").astype("float64")
        elif kind == "int":
            if s.dtype.kind == "i":  # numpy ints: no nulls, no float rounding question
                s = pd.Series(pd.arrays.IntegerArray(s.to_numpy(np.int64), np.zeros(len(s), dtype=bool)),
                              index=s.index)
            elif s.dtype == np.float64 and _whole(s.to_numpy()):  # float counts: NaN -> null
                arr = s.to_numpy()
                nan = np.isnan(arr)
                s = pd.Series(pd.arrays.IntegerArray(np.where(nan, 0.0, arr).astype(np.int64), nan), index=s.index)
            elif not isinstance(s.dtype, pd.Int64Dtype):
                s = pd.to_numeric(s, errors="raise").astype("Int64")
        elif kind == "bool":
            s = s.astype("boolean")
        elif kind == "string":
            s = s.astype(object).where(s.notna(), None)
        out[col] = s if plain_index and col in df else s.reset_index(drop=True)
    return pd.DataFrame(out, columns=SPECS[name].column_names)


# --- ev_history ------------------------------------------------------------------------

_EV_VALUES = ("ev_alpha", "ev_beta", "prior_alpha", "prior_beta", "ev_decay", "conf")


def build_ev_history(data_root: Path) -> DatasetResult:
    """Every state-archive snapshot as a row (see module doc). Never raises for bad files:
    they become warnings."""
    problems: list[Problem] = []
    snaps = read_state_archive(data_root, problems)
    res = DatasetResult("ev_history", typed_frame("ev_history", []))
    res.inputs = [("data", s["path"]) for s in snaps]
    kept: list[dict] = []
    for s in snaps:
        prev = kept[-1] if kept else None
        same = prev is not None and all(prev[k] == s[k] for k in ("strategy", "symbol", "mode", "generated_at"))
        if same and all(prev[k] == s[k] for k in _EV_VALUES):
            res.warnings.append(f"{s['path']}: same stamp and EV values as {prev['source_path']}; one row kept")
            continue
        kept.append({**s, "source_path": s["path"]})
    df = typed_frame("ev_history", [{**r, "win_rate_point": win_rate_point(
        r["ev_alpha"], r["ev_beta"], r["prior_alpha"], r["prior_beta"])} for r in kept])
    if len(df):
        df["ev_trend_7d"] = _trend_7d(df)
    res.frame = df
    res.add_problems(problems)
    return res


def _trend_7d(df: pd.DataFrame) -> pd.Series:
    keyed = df.assign(_k=df["strategy"] + "/" + df["symbol"] + "/" + df["mode"], _i=np.arange(len(df)))
    left = keyed.assign(_t=keyed["generated_at"] - pd.Timedelta(days=7)).sort_values("_t")
    right = keyed[["_k", "generated_at", "win_rate_point"]].rename(columns={"win_rate_point": "_prev"})
    right = right.sort_values("generated_at")
    m = pd.merge_asof(left, right, left_on="_t", right_on="generated_at", by="_k", direction="backward",
                      suffixes=("", "_r"))
    m = m.sort_values("_i")
    return pd.Series((m["win_rate_point"] - m["_prev"]).to_numpy(), index=df.index, dtype="float64")


# --- slippage_telemetry ----------------------------------------------------------------

def _num(v) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    f = float(v)
    return f if np.isfinite(f) else None


def build_slippage_telemetry(data_root: Path, now: datetime) -> DatasetResult:
    """Rows from the router telemetry's ``execution_health`` (see module doc). A missing
    telemetry file gives an empty dataset plus a warning; raises ``InputError`` when the
    file exists but is not JSON."""
    problems: list[Problem] = []
    res = DatasetResult("slippage_telemetry", typed_frame("slippage_telemetry", []))
    tel = read_router_telemetry(data_root, problems)
    if tel is None:
        res.add_problems(problems)
        return res
    res.inputs.append(("data", TELEMETRY_REL))
    when, source = None, None
    if tel.get("generated_at"):
        when, source = _ts_or_warn(tel["generated_at"], TELEMETRY_REL, res), "telemetry"
    if when is None:
        summary = read_portfolio_summary(data_root, problems)
        if summary is not None and summary.get("generated_at"):
            res.inputs.append(("data", PORTFOLIO_REL))
            when, source = _ts_or_warn(summary["generated_at"], PORTFOLIO_REL, res), "portfolio_summary"
    if when is None:
        when, source = now, "export_time"
        res.warnings.append("neither telemetry nor portfolio summary has generated_at: rows stamped with the "
                            "export time")
    health = tel.get("execution_health")
    if not isinstance(health, dict):
        res.warnings.append(f"{TELEMETRY_REL}: no execution_health object")
        health = {}
    rows, lacking = [], {"fill_count": [], "window_days": []}
    keys = strategy_keys(sorted(health))  # canonical strategy ids; the raw name is strategy_source
    for strat in sorted(health):
        e = health[strat] if isinstance(health[strat], dict) else {}
        row = {"generated_at": when, "generated_at_source": source, "strategy": keys[strat], "strategy_source": strat}
        for k in ("slippage_bps", "reject_rate"):
            row[k] = _num(e.get(k))
            if row[k] is None:
                res.warnings.append(f"{TELEMETRY_REL}: {strat}.{k} missing or not a number: null")
        for k, alt in (("fill_count", "fills"), ("window_days", None)):
            v = e.get(k, e.get(alt) if alt else None)
            if v is None:
                lacking[k].append(strat)
                row[k] = None
            else:
                row[k] = v  # kept as given; the schema rejects a non-integer or out-of-range value
        rows.append(row)
    for k, strats in lacking.items():
        if strats:
            res.warnings.append(f"{TELEMETRY_REL}: {k} not in the source for {', '.join(strats)}: null, not "
                                f"invented")
    df = pd.DataFrame(rows)
    if len(df):
        x = df["slippage_bps"].astype(float)
        ok = x.notna()
        sd = float(x[ok].std(ddof=0)) if ok.sum() >= 2 else 0.0
        df["slippage_zscore"] = (x - x[ok].mean()) / sd if sd > 0 else np.nan
    res.frame = _typed_or_raw("slippage_telemetry", df)
    res.add_problems(problems)
    return res


def _typed_or_raw(name: str, df: pd.DataFrame) -> pd.DataFrame:
    """Typed frame; when a value cannot take its column's type the raw frame is returned
    (validation then reports the exact value and rule instead of a conversion crash)."""
    try:
        return typed_frame(name, df)
    except (TypeError, ValueError):
        out = df.reindex(columns=SPECS[name].column_names)
        out.attrs["untyped"] = True
        return out


def _ts_or_warn(raw, rel_path: str, res: DatasetResult) -> datetime | None:
    try:
        ts = parse_ts(str(raw))
    except (ValueError, OverflowError):
        res.warnings.append(f"{rel_path}: generated_at {show(raw)} is not RFC 3339: ignored")
        return None
    try:
        check_date(ts.date())
    except ValueError:
        res.warnings.append(f"{rel_path}: generated_at {show(raw)} is out of range ({RANGE_TEXT}): ignored")
        return None
    return ts


# --- latency_rollups -------------------------------------------------------------------

_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no"}


def build_latency_rollups(work_root: Path) -> DatasetResult:
    """Rows of ``<work_root>/ops/signal_latency_rollup.csv`` with breach streaks (module
    doc). Absent file: empty dataset plus a warning. Bad rows become warnings."""
    res = DatasetResult("latency_rollups", typed_frame("latency_rollups", []))
    path = Path(work_root) / ROLLUP_REL
    if not path.is_file():
        res.warnings.append(f"{ROLLUP_REL} not found: latency_rollups is empty (latency unknown, not zero)")
        return res
    res.inputs.append(("work", ROLLUP_REL))
    problems: list[Problem] = []
    _, rows = read_csv(path, rel_path=ROLLUP_REL, problems=problems,
                       required_columns=("hour_utc", "source", "p50_ms", "p95_ms", "samples", "breach_flag"))
    out, no_samples = [], 0
    for line, r in rows:
        try:
            hour = parse_ts(r["hour_utc"] or "")
            if hour.minute or hour.second or hour.microsecond:
                raise ValueError(f"hour_utc {r['hour_utc']!r} is not on the hour")
            samples = int(r["samples"] or "")
            if r["p95_ms"] is None:  # no latency in the hour (none, or only error events)
                no_samples += 1
                continue
            flag = (r["breach_flag"] or "").strip().lower()
            if flag not in _TRUE | _FALSE:
                raise ValueError(f"breach_flag {r['breach_flag']!r} is not true/false")
            p50, p95 = float(r["p50_ms"] or "nan"), float(r["p95_ms"] or "nan")
            if not (np.isfinite(p50) and np.isfinite(p95)):
                raise ValueError("p50_ms/p95_ms missing or not finite")
        except (TypeError, ValueError) as exc:
            problems.append(Problem("malformed", ROLLUP_REL, str(exc), line))
            continue
        extra = {}
        for k, conv in (("p99_ms", float), ("max_ms", float), ("windows", int), ("bad_events", int),
                        ("error_samples", int)):
            try:
                extra[k] = conv(r[k]) if r.get(k) not in (None, "") else None
            except ValueError:
                extra[k] = None
        out.append({"hour_utc": hour, "source": r["source"], "p50_ms": p50, "p95_ms": p95, "samples": samples,
                    "breach_flag": flag in _TRUE, "method": r.get("method"), **extra})
    if no_samples:
        res.warnings.append(f"{ROLLUP_REL}: {no_samples} hour(s) with no successful sample skipped")
    df = typed_frame("latency_rollups", out)
    if len(df):
        df = df.sort_values(["source", "hour_utc"], kind="stable").reset_index(drop=True)
        df = _streaks(df).sort_values(["hour_utc", "source"], kind="stable").reset_index(drop=True)
    res.frame = df
    res.add_problems(problems)
    return res


def _streaks(df: pd.DataFrame) -> pd.DataFrame:
    """Add streak_id/streak_length to rows sorted by (source, hour_utc)."""
    breach = df["breach_flag"].fillna(False).to_numpy(bool)
    prev_same = (df["source"].shift() == df["source"]).to_numpy()
    contiguous = ((df["hour_utc"] - df["hour_utc"].shift()) == pd.Timedelta(hours=1)).to_numpy()
    starts = breach & ~(np.roll(breach, 1) & prev_same & contiguous)
    starts[0] = breach[0]
    first_idx = pd.Series(np.arange(len(df))).where(starts).ffill().fillna(0).astype(int).to_numpy()
    length = np.where(breach, np.arange(len(df)) - first_idx + 1, 0)
    ids = [f"{df['source'].iat[i]}@{to_rfc3339(df['hour_utc'].iat[i].to_pydatetime())}" if b else None
           for i, b in zip(first_idx, breach, strict=True)]
    return df.assign(streak_id=ids, streak_length=pd.array(length, dtype="Int64"))


__all__ = ["DatasetResult", "typed_frame", "build_ev_history", "build_slippage_telemetry",
           "build_latency_rollups", "ROLLUP_REL"]
