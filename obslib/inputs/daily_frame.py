"""Fast, vectorised reading of many ``runs/<run_id>/daily.csv`` files into one DataFrame.

Same contract as ``runs.read_daily`` (same columns, same bad-row reporting with the file
and 1-based line), built for the dashboard's thousands of files:

- Files are grouped by header; the bodies of a group are concatenated and parsed once by
  ``pyarrow.csv`` with explicit column types (``date`` as a calendar date, the counters
  as float64). pyarrow rejects a line with the wrong field count or a value that is not
  a date/number, and the row count must equal the newline count, so row ``i`` of a file
  is exactly line ``i + 2``. pyarrow is looser than ``values.NUMBER_RE`` only about
  surrounding spaces, so a body with a space or tab goes to the line-accurate reader. Empty required cells, non-finite numbers and duplicate dates
  are then found vectorised and each becomes a ``Problem`` with its line.
- When a group does not parse, each of its files is retried alone, and a file that still
  does not parse goes through the line-accurate ``runs.read_daily``, so every bad row is
  reported with its file, line and reason (nothing is dropped silently).

Columns of the returned frame: ``run_key`` (int, the caller's index into ``run_dirs``),
``day`` (int64, days since 1970-01-01, the calendar day with no zone), ``fills``,
``wins``, ``pnl_pips`` (float; fills/wins are counts, pnl in pips) and the optional
counters ``breakouts, gate_pass, gate_block, ev_pass, ev_reject`` (float, NaN when absent).
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from ..errors import InputError
from . import Problem
from .runs import DAILY_COLUMNS, DAILY_COUNTS, DAILY_REQUIRED, INDEX_REL, read_daily, run_dir_problem
from .values import DATE_MAX, DATE_MIN, NULL_TOKENS, RANGE_TEXT, count_problem

REQUIRED = DAILY_REQUIRED
NUMERIC = DAILY_COLUMNS[1:]
FRAME_COLUMNS = ("run_key", "day", *NUMERIC)
_EPOCH = np.datetime64("1970-01-01", "D")
_DAY_MIN = int((np.datetime64(DATE_MIN.isoformat(), "D") - _EPOCH).astype(np.int64))
_DAY_MAX = int((np.datetime64(DATE_MAX.isoformat(), "D") - _EPOCH).astype(np.int64))
_NULLS = sorted(NULL_TOKENS)


def daily_rel(run_dir: str) -> str:
    """``<run_dir>/daily.csv`` as a POSIX path relative to the data root."""
    return f"{run_dir.rstrip('/')}/daily.csv"


def empty_frame() -> pd.DataFrame:
    """A frame with no rows and the module's columns and dtypes."""
    return pd.DataFrame({c: pd.Series(dtype="int64" if c in ("run_key", "day") else "float64")
                         for c in FRAME_COLUMNS})


def _split_header(raw: bytes) -> tuple[tuple[str, ...], bytes] | None:
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    head, _, body = raw.partition(b"\n")
    try:
        header = tuple(h.strip() for h in head.decode("utf-8").split(","))
    except UnicodeDecodeError:
        return None
    if not {"date", *REQUIRED} <= set(header) or len(set(header)) != len(header):
        return None
    return header, body


def _slow_frame(data_root: Path, run_dir: str, key: int, problems: list[Problem]) -> pd.DataFrame:
    rows = read_daily(data_root, run_dir, problems) or []
    if not rows:
        return empty_frame()
    df = pd.DataFrame(rows)
    out = pd.DataFrame({"run_key": np.full(len(df), key, dtype=np.int64),
                        "day": (np.array(df["date"].tolist(), dtype="datetime64[D]") - _EPOCH).astype(np.int64)})
    for c in NUMERIC:
        out[c] = df[c].astype(float) if c in df else np.nan
    return out  # read_daily already reported (and left out) repeated dates


def _parse(parts: list[tuple[int, str, bytes]], header: tuple[str, ...],
           problems: list[Problem]) -> pd.DataFrame | None:
    """Parse files sharing ``header``; None when pyarrow rejects the bytes or the row count
    differs from the line count (the caller falls back)."""
    counts = np.array([body.count(b"\n") for _, _, body in parts], dtype=np.int64)
    blob = b"".join(body for _, _, body in parts)
    if not blob or blob.isspace():  # same test as `not blob.strip()`, without the copy
        return empty_frame()
    if b" " in blob or b"\t" in blob:  # pyarrow trims ' 2 ' to 2; the contract refuses it: line by line
        return None
    types = {c: (pa.date32() if c == "date" else pa.float64()) for c in header if c == "date" or c in NUMERIC}
    try:
        tab = pacsv.read_csv(io.BytesIO(blob), read_options=pacsv.ReadOptions(column_names=list(header)),
                             parse_options=pacsv.ParseOptions(ignore_empty_lines=False),
                             convert_options=pacsv.ConvertOptions(column_types=types, include_columns=list(types),
                                                                  null_values=_NULLS, strings_can_be_null=True))
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    if tab.num_rows != int(counts.sum()):
        return None
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    owner = np.repeat(np.arange(len(parts)), counts)
    line = np.arange(tab.num_rows) - starts[owner] + 2
    day_col = tab.column("date").combine_chunks()
    day_null = day_col.is_null().to_numpy(zero_copy_only=False)
    days = day_col.fill_null(0).cast(pa.int32()).to_numpy(zero_copy_only=False).astype(np.int64)
    data = {"run_key": np.array([p[0] for p in parts], dtype=np.int64)[owner], "day": days}
    # the checks of runs.daily_row_problem, in its order: the first failing one names the row
    bad = day_null.copy()
    reasons = {int(i): "date is empty" for i in np.flatnonzero(bad)}

    def flag(mask: np.ndarray, reason) -> None:
        for i in np.flatnonzero(mask & ~bad):
            reasons[int(i)] = reason(int(i))
        bad[mask] = True

    flag((days < _DAY_MIN) | (days > _DAY_MAX),
         lambda i: f"date {_EPOCH + int(days[i])} is out of range ({RANGE_TEXT})")
    for c in NUMERIC:
        if c in types:
            arr = tab.column(c).combine_chunks()
            null = arr.is_null().to_numpy(zero_copy_only=False)
            col = arr.to_numpy(zero_copy_only=False).astype(float, copy=False) + 0.0  # -0 reads as 0
        else:
            null, col = np.ones(tab.num_rows, dtype=bool), np.full(tab.num_rows, np.nan)
        data[c] = col
        if c in REQUIRED:
            flag(null, lambda i, c=c: f"column {c!r} is empty")
        with np.errstate(invalid="ignore"):
            flag(~null & ~np.isfinite(col), lambda i, c=c: f"column {c!r} is not finite")
            if c in DAILY_COUNTS:
                flag(~null & ((col < 0) | (col != np.floor(col))),
                     lambda i, c=c, col=col: f"column {c!r}: {count_problem(float(col[i]))}")
    with np.errstate(invalid="ignore"):
        flag(data["wins"] > data["fills"], lambda i: f"wins {data['wins'][i]:g} > fills {data['fills'][i]:g}")
    df = pd.DataFrame(data, copy=False)  # fresh arrays: no consolidation copy
    comb = data["run_key"] * (1 << 21) + data["day"]
    if not bool(np.all(np.diff(comb) > 0)):  # not strictly increasing: look for repeated dates among good rows
        dup = np.zeros(len(df), dtype=bool)
        good = np.flatnonzero(~bad)
        dup[good] = df.iloc[good].duplicated(["run_key", "day"]).to_numpy()
        flag(dup, lambda i: f"duplicate date {_EPOCH + int(data['day'][i])} (first occurrence kept)")
    for i in sorted(reasons):
        problems.append(Problem("malformed", parts[owner[i]][1], reasons[i], int(line[i])))
    return df.loc[~bad].reset_index(drop=True) if bad.any() else df


def iter_daily_frames(data_root: Path, run_dirs: Sequence[str | None], problems: list[Problem], *,
                      batch_files: int = 256) -> Iterator[pd.DataFrame]:
    """Yield frames (see module doc) for ``run_dirs`` in batches of ``batch_files`` files,
    sorted by (run_key, day). ``run_key`` is the position in ``run_dirs``; a None entry or
    a run without ``daily.csv`` yields no rows, and so does a ``run_dir`` outside the data
    root (``runs.run_dir_problem``; a problem naming ``runs/index.csv``, as ``read_daily``
    reports it). Raises ``InputError`` for a file that exists but is unreadable or lacks
    required columns (as ``read_daily`` does)."""
    root = Path(data_root)
    root_r = root.resolve()
    for lo in range(0, len(run_dirs), batch_files):
        groups: dict[tuple[str, ...], list[tuple[int, str, bytes]]] = {}
        frames: list[pd.DataFrame] = []
        for key in range(lo, min(lo + batch_files, len(run_dirs))):
            rd = run_dirs[key]
            if not rd:
                continue
            why = run_dir_problem(root, rd, root_resolved=root_r)
            if why is not None:
                problems.append(Problem("malformed", INDEX_REL, why))
                continue
            rel_path = daily_rel(rd)
            path = root / rel_path
            if not path.is_file():
                continue
            try:
                raw = path.read_bytes()
            except OSError as exc:
                raise InputError(rel_path, f"cannot read: {exc.strerror}") from exc
            split = _split_header(raw)
            if split is None:
                frames.append(_slow_frame(root, rd, key, problems))
            else:
                groups.setdefault(split[0], []).append((key, rel_path, split[1]))
        for header, parts in groups.items():
            df = _parse(parts, header, problems) if len(parts) > 1 else None
            if df is not None:
                frames.append(df)
                continue
            for part in parts:  # retry alone, then the line-accurate reader
                one = _parse([part], header, problems)
                frames.append(one if one is not None else _slow_frame(root, run_dirs[part[0]], part[0], problems))
        frames = [f for f in frames if len(f)]
        if frames:
            out = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
            comb = out["run_key"].to_numpy() * (1 << 21) + out["day"].to_numpy()
            if not bool(np.all(np.diff(comb) >= 0)):
                out = out.sort_values(["run_key", "day"], kind="stable").reset_index(drop=True)
            yield out


def read_daily_frame(data_root: Path, run_dirs: Sequence[str | None], problems: list[Problem]) -> pd.DataFrame:
    """All of ``iter_daily_frames`` in one frame (``empty_frame()`` when there are none)."""
    frames = list(iter_daily_frames(data_root, run_dirs, problems))
    return pd.concat(frames, ignore_index=True) if frames else empty_frame()
