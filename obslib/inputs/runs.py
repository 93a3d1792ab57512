"""``runs/index.csv`` and ``runs/<run_id>/daily.csv``.

The index is read by column name. Four header versions exist (28, 31, 38 and 39
columns); all share the core columns below, and a column absent from an older header is
None. Unknown extra columns are kept. A header with another column count is accepted
when the core columns are present, with an ``ignored`` problem noting the unknown version.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from ..errors import InputError
from ..safepath import UnsafePath, check_relpath, is_identifier
from . import Problem
from .csvfile import cell_float, read_csv, to_float
from .values import is_null, parse_date, parse_timestamp, show

INDEX_REL = "runs/index.csv"
HEADER_V39 = (
    "run_id,run_dir,manifest_id,timestamp,symbol,mode,equity,or_n,k_tp,k_sl,k_tr,threshold_lcb,min_or_atr,"
    "rv_cuts,allow_low_rv,allowed_sessions,warmup,prior_alpha,prior_beta,include_expected_slip,rv_quantile,"
    "calibrate_days,ev_mode,size_floor,trades,wins,total_pips,sharpe,max_drawdown,win_rate,pnl_per_trade,"
    "state_path,gate_block,ev_reject,ev_bypass,dump_rows,state_loaded,state_archive_path,ev_profile_path"
).split(",")
_NOT_IN_V38 = {"ev_profile_path"}
_NOT_IN_V31 = _NOT_IN_V38 | {"k_tr", "rv_cuts", "include_expected_slip", "rv_quantile",
                             "calibrate_days", "ev_mode", "size_floor"}
_NOT_IN_V28 = _NOT_IN_V31 | {"gate_block", "ev_reject", "ev_bypass"}
HEADER_VERSIONS = {
    39: HEADER_V39,
    38: [c for c in HEADER_V39 if c not in _NOT_IN_V38],
    31: [c for c in HEADER_V39 if c not in _NOT_IN_V31],
    28: [c for c in HEADER_V39 if c not in _NOT_IN_V28],
}
CORE_COLUMNS = ("run_id", "run_dir", "timestamp", "symbol", "mode", "trades", "wins", "total_pips")
NUMERIC = ("trades", "wins", "total_pips", "sharpe", "max_drawdown", "win_rate", "pnl_per_trade", "equity")
INDEX_COUNTS = ("trades", "wins")
DAILY_COLUMNS = ("date", "breakouts", "gate_pass", "gate_block", "ev_pass", "ev_reject", "fills", "wins", "pnl_pips")
DAILY_REQUIRED = ("fills", "wins", "pnl_pips")
DAILY_COUNTS = ("breakouts", "gate_pass", "gate_block", "ev_pass", "ev_reject", "fills", "wins")


def data_path_problem(data_root: Path, value: str, *, what: str, root_resolved: Path | None = None) -> str | None:
    """Why ``value``, a path read from an input file (``run_dir``, ``state_archive_path``),
    may not be read under ``data_root``, or None when it may.

    It must be a relative path of safe identifiers (``safepath.check_relpath``: no
    ``..``, no leading ``/``, ``[A-Za-z0-9._-]`` parts; one trailing ``/`` is allowed) that
    resolves, links followed, inside the resolved data root. The reason reads
    ``<what> '<value>' outside the data root (...)``. ``root_resolved``: the data root
    already resolved (callers checking many rows pass it once; ~0.1 ms a row remains)."""
    stripped = value.rstrip("/") if isinstance(value, str) else value
    try:
        check_relpath(stripped, what=what)
        root_r = root_resolved if root_resolved is not None else Path(data_root).resolve()
        target = (root_r / stripped).resolve()
        if target != root_r and root_r not in target.parents:
            raise UnsafePath(what)
    except UnsafePath:
        return (f"{what} {show(value, 80)} outside the data root (a relative path of [A-Za-z0-9._-] parts "
                "inside it is expected)")
    return None


def run_dir_problem(data_root: Path, run_dir: str, *, root_resolved: Path | None = None) -> str | None:
    """``data_path_problem`` for a ``run_dir`` (``runs/index.csv``, benchmark reports)."""
    return data_path_problem(data_root, run_dir, what="run_dir", root_resolved=root_resolved)


def read_run_index(data_root: Path, problems: list[Problem]) -> list[dict]:
    """Rows of ``runs/index.csv`` as dicts (numeric columns as float or None), sorted by
    run_id, with ``_line``. Raises ``InputError`` when the file is missing or lacks core
    columns; bad rows go to ``problems``: besides the value contract
    (``obslib.inputs.values``), a ``run_id`` that is not a safe identifier
    (``safepath.IDENTIFIER_RE``: ``../x``, ``a/b``), and a ``run_dir`` outside the data root
    (``run_dir_problem``). A null ``run_dir`` or ``timestamp`` (empty or a null token such
    as ``NA``) is None in the row."""
    header, rows = read_csv(Path(data_root) / INDEX_REL, rel_path=INDEX_REL, required_columns=CORE_COLUMNS,
                            problems=problems)
    if len(header) not in HEADER_VERSIONS:
        problems.append(Problem("ignored", INDEX_REL, f"unknown header version ({len(header)} columns); read by name", 1))
    out = []
    root_r = Path(data_root).resolve()
    for line, row in rows:
        ok = True
        rec: dict = {"_line": line}
        for k, v in row.items():
            if k in NUMERIC:
                good, val = to_float(row, k, rel_path=INDEX_REL, line=line, problems=problems,
                                     required=k in ("trades", "wins", "total_pips"), count=k in INDEX_COUNTS)
                ok = ok and good
                rec[k] = val
            else:
                rec[k] = v
        if is_null(row.get("run_id")):
            problems.append(Problem("malformed", INDEX_REL, "empty run_id", line))
            ok = False
        elif not is_identifier(row["run_id"]):
            problems.append(Problem("malformed", INDEX_REL, f"run_id {show(row['run_id'], 80)} is not a safe "
                                    "identifier ([A-Za-z0-9._-], starting with a letter or digit, without '..')",
                                    line))
            ok = False
        if is_null(row.get("run_dir")):
            rec["run_dir"] = None
        elif ok and (why := run_dir_problem(data_root, row["run_dir"], root_resolved=root_r)) is not None:
            problems.append(Problem("malformed", INDEX_REL, why, line))
            ok = False
        if ok and rec["wins"] > rec["trades"]:
            problems.append(Problem("malformed", INDEX_REL, f"wins {rec['wins']:g} > trades {rec['trades']:g}", line))
            ok = False
        if is_null(row.get("timestamp")):
            rec["timestamp"] = None
        else:
            try:
                parse_timestamp(row["timestamp"])
            except ValueError as exc:
                problems.append(Problem("malformed", INDEX_REL, str(exc), line))
                ok = False
        if ok:
            for col in HEADER_V39:
                rec.setdefault(col, None)
            out.append(rec)
    out.sort(key=lambda r: (r["run_id"], r["_line"]))
    return out


def daily_row_problem(row: dict[str, str | None]) -> tuple[dict | None, str | None]:
    """One ``daily.csv`` row under the value contract (``obslib.inputs.values``):
    ``(record, None)`` or ``(None, reason)``, the reason of the FIRST check that fails, in
    this order: date (empty, not YYYY-MM-DD, out of range), then each column of
    ``DAILY_COLUMNS`` (required and empty, not a number, not finite, a count that is
    negative or fractional), then wins > fills. ``daily_frame`` applies the same checks in
    the same order, vectorised (tests/test_safety_inputs.py holds them equal)."""
    raw = row.get("date")
    if is_null(raw):
        return None, "date is empty"
    try:
        rec: dict = {"date": parse_date(raw)}
    except ValueError as exc:
        return None, str(exc)
    for k in DAILY_COLUMNS[1:]:
        if k not in row:
            rec[k] = None
            continue
        val, why = cell_float(row, k, required=k in DAILY_REQUIRED, count=k in DAILY_COUNTS)
        if why is not None:
            return None, why
        rec[k] = val
    if rec["wins"] > rec["fills"]:
        return None, f"wins {rec['wins']:g} > fills {rec['fills']:g}"
    return rec, None


def read_daily(data_root: Path, run_dir: str, problems: list[Problem]) -> list[dict] | None:
    """``<run_dir>/daily.csv`` rows as ``{date: date, fills, wins, pnl_pips, ...}`` sorted by
    date, or None when the file does not exist (an optional input: the caller decides
    whether that is an alert). Bad rows (``daily_row_problem``; a repeated date: the first
    row is kept) go to ``problems``; raises ``InputError`` for a file that exists but is
    unreadable or lacks columns. The line-accurate reader of the one ``daily.csv``
    contract; ``daily_frame`` is its vectorised form for many files. A ``run_dir`` outside
    the data root (``run_dir_problem``) is a problem and nothing is read (None)."""
    why = run_dir_problem(data_root, run_dir)
    if why is not None:
        problems.append(Problem("malformed", INDEX_REL, why))
        return None
    rel_path = f"{run_dir.rstrip('/')}/daily.csv"
    path = Path(data_root) / rel_path
    if not path.is_file():
        return None
    _, rows = read_csv(path, rel_path=rel_path, required_columns=("date", *DAILY_REQUIRED), problems=problems)
    out = []
    seen: set[date] = set()
    for line, row in rows:
        rec, why = daily_row_problem(row)
        if rec is not None and rec["date"] in seen:
            why = f"duplicate date {rec['date'].isoformat()} (first occurrence kept)"
        if why is not None:
            problems.append(Problem("malformed", rel_path, why, line))
            continue
        seen.add(rec["date"])
        out.append(rec)
    out.sort(key=lambda r: r["date"])
    return out


def require_file(data_root: Path, rel_path: str) -> Path:
    """The path of a required input; ``InputError`` when it does not exist."""
    p = Path(data_root) / rel_path
    if not p.exists():
        raise InputError(rel_path, "required input not found")
    return p
