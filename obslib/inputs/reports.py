"""Benchmark reports, router telemetry and the portfolio summary.

- ``reports/baseline/<SYM>_<mode>.json`` and ``reports/rolling/<days>/<SYM>_<mode>.json``:
  run totals (``trades, wins, total_pips, ...``) plus ``state_archive_path`` and, for the
  baseline, ``run_dir``. A benchmark's ``as_of`` is its ``generated_at`` field when
  present, else the UTC stamp that starts its ``state_archive_path`` file name, else the
  stamp of its ``run_dir`` (in the configured run-stamp zone). ``as_of_source`` records
  which one was used.
- ``reports/portfolio_samples/router_demo/telemetry.json``: category utilisation, budget
  and headroom (percent), execution_health per strategy (slippage_bps in basis points,
  reject_rate as a fraction).
- ``reports/portfolio_summary.json``: category_utilisation, gross exposure, drawdowns.
All are optional inputs: missing -> None/[] plus a ``missing`` problem.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from ..storage import read_json
from ..timeutil import first_stamp_from_name, parse_ts, stamp_from_name
from . import Problem

BASELINE_REL = "reports/baseline"
ROLLING_REL = "reports/rolling"
TELEMETRY_REL = "reports/portfolio_samples/router_demo/telemetry.json"
PORTFOLIO_REL = "reports/portfolio_summary.json"


def _as_of(data: dict, run_stamp_tz: str):
    if data.get("generated_at"):
        try:
            return parse_ts(str(data["generated_at"])), "generated_at"
        except ValueError:
            pass
    sap = data.get("state_archive_path")
    if sap:
        ts = first_stamp_from_name(Path(str(sap)).name)
        if ts:
            return ts, "state_archive_path"
    rd = data.get("run_dir")
    if rd:
        ts = stamp_from_name(Path(str(rd)).name, run_stamp_tz)
        if ts:
            return ts, f"run_dir ({run_stamp_tz})"
    return None, None


def _load_bench(path: Path, rel_path: str, kind: str, days: int | None, run_stamp_tz: str,
                problems: list[Problem]) -> dict | None:
    try:
        data = read_json(path)
    except InputError as exc:
        problems.append(Problem("malformed", rel_path, exc.reason, exc.line))
        return None
    if not isinstance(data, dict):
        problems.append(Problem("malformed", rel_path, "expected a JSON object"))
        return None
    for k in ("trades", "total_pips"):
        v = data.get(k)
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            problems.append(Problem("malformed", rel_path, f"{k} is missing or not a number"))
            return None
    as_of, src = _as_of(data, run_stamp_tz)
    return {"kind": kind, "key": path.stem, "days": days, "path": rel_path, "data": data,
            "as_of": as_of, "as_of_source": src}


def read_benchmarks(data_root: Path, problems: list[Problem], run_stamp_tz: str = "UTC") -> list[dict]:
    """All baseline and rolling benchmark reports, sorted by (kind, key, days)."""
    root = Path(data_root)
    out: list[dict] = []
    base = root / BASELINE_REL
    if base.is_dir():
        for p in sorted(base.glob("*.json")):
            rec = _load_bench(p, f"{BASELINE_REL}/{p.name}", "baseline", None, run_stamp_tz, problems)
            if rec:
                out.append(rec)
    else:
        problems.append(Problem("missing", BASELINE_REL, "no baseline benchmark folder"))
    roll = root / ROLLING_REL
    if roll.is_dir():
        for d in sorted(roll.iterdir()):
            if not d.is_dir():
                continue
            if not d.name.isdigit():
                problems.append(Problem("ignored", f"{ROLLING_REL}/{d.name}", "rolling window folder is not a day count"))
                continue
            for p in sorted(d.glob("*.json")):
                rec = _load_bench(p, f"{ROLLING_REL}/{d.name}/{p.name}", "rolling", int(d.name), run_stamp_tz, problems)
                if rec:
                    out.append(rec)
    else:
        problems.append(Problem("missing", ROLLING_REL, "no rolling benchmark folder"))
    out.sort(key=lambda r: (r["kind"], r["key"], r["days"] or 0))
    return out


def _optional_json(data_root: Path, rel_path: str, problems: list[Problem]) -> dict | None:
    p = Path(data_root) / rel_path
    if not p.exists():
        problems.append(Problem("missing", rel_path, "file not found"))
        return None
    try:
        data = read_json(p)  # a syntax error in an existing file is an InputError: fail loudly
    except InputError as exc:
        raise InputError(rel_path, exc.reason, line=exc.line) from exc
    if not isinstance(data, dict):
        raise InputError(rel_path, "expected a JSON object")
    return data


def read_router_telemetry(data_root: Path, problems: list[Problem]) -> dict | None:
    """The router telemetry object, or None (+ ``missing`` problem). Raises ``InputError``
    when the file exists but is not valid JSON."""
    return _optional_json(data_root, TELEMETRY_REL, problems)


def read_portfolio_summary(data_root: Path, problems: list[Problem]) -> dict | None:
    """The portfolio summary object, or None (+ ``missing`` problem)."""
    return _optional_json(data_root, PORTFOLIO_REL, problems)
