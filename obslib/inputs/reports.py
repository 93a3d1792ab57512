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
All are optional inputs: missing -> None/[] plus a ``missing`` problem; a benchmark folder
with no ``*.json`` report is ``missing`` too. A benchmark file that does not parse is a
``malformed`` problem; a folder or file that cannot be read raises ``UnreadableInput``.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import InputError
from ..storage import UnreadableInput, read_json
from ..timeutil import first_stamp_from_name, parse_ts, stamp_from_name
from . import Problem, read_json_file

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
    parsed, data = read_json_file(path, rel_path, problems)
    if not parsed:
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


def _entries(folder: Path, rel_folder: str) -> list[os.DirEntry]:
    """A folder's entries sorted by name; ``UnreadableInput`` when it cannot be listed
    (``Path.glob`` would silently yield nothing)."""
    try:
        with os.scandir(folder) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError as exc:
        raise UnreadableInput(rel_folder, f"cannot read: {exc.strerror or exc.__class__.__name__}") from exc


def _read_folder(folder: Path, rel_folder: str, kind: str, days: int | None, run_stamp_tz: str,
                 problems: list[Problem], out: list[dict]) -> None:
    reports = [e for e in _entries(folder, rel_folder) if e.name.endswith(".json") and e.is_file()]
    if not reports:
        problems.append(Problem("missing", rel_folder, f"{kind} benchmark folder has no *.json report"))
    for e in reports:
        rec = _load_bench(Path(e.path), f"{rel_folder}/{e.name}", kind, days, run_stamp_tz, problems)
        if rec:
            out.append(rec)


def read_benchmarks(data_root: Path, problems: list[Problem], run_stamp_tz: str = "UTC") -> list[dict]:
    """All baseline and rolling benchmark reports, sorted by (kind, key, days).

    A missing folder, or one with no ``*.json`` report, adds a ``missing`` problem; a file
    that does not parse adds a ``malformed`` one. Raises ``UnreadableInput`` (path relative
    to the data root, reason ``cannot read: <OS message>``) when a benchmark folder or file
    cannot be read."""
    root = Path(data_root)
    out: list[dict] = []
    base = root / BASELINE_REL
    if base.is_dir():
        _read_folder(base, BASELINE_REL, "baseline", None, run_stamp_tz, problems, out)
    else:
        problems.append(Problem("missing", BASELINE_REL, "no baseline benchmark folder"))
    roll = root / ROLLING_REL
    if roll.is_dir():
        for d in _entries(roll, ROLLING_REL):
            if not d.is_dir():
                continue
            rel_d = f"{ROLLING_REL}/{d.name}"
            if not d.name.isdigit():
                problems.append(Problem("ignored", rel_d, "rolling window folder is not a day count"))
                continue
            _read_folder(Path(d.path), rel_d, "rolling", int(d.name), run_stamp_tz, problems, out)
    else:
        problems.append(Problem("missing", ROLLING_REL, "no rolling benchmark folder"))
    out.sort(key=lambda r: (r["kind"], r["key"], r["days"] or 0))
    return out


def _optional_json(data_root: Path, rel_path: str, problems: list[Problem]) -> dict | None:
    p = Path(data_root) / rel_path
    if not p.exists():
        problems.append(Problem("missing", rel_path, "file not found"))
        return None
    data = read_json(p, shown_as=rel_path)  # a syntax error in an existing file fails loudly
    if not isinstance(data, dict):
        raise InputError(rel_path, "expected a JSON object")
    return data


def read_router_telemetry(data_root: Path, problems: list[Problem]) -> dict | None:
    """The router telemetry object, or None (+ ``missing`` problem). Raises ``InputError``
    when the file exists but is not valid JSON (even with ``--allow-bad-rows``: every
    section depends on it), ``UnreadableInput`` when it cannot be read."""
    return _optional_json(data_root, TELEMETRY_REL, problems)


def read_portfolio_summary(data_root: Path, problems: list[Problem]) -> dict | None:
    """The portfolio summary object, or None (+ ``missing`` problem)."""
    return _optional_json(data_root, PORTFOLIO_REL, problems)
