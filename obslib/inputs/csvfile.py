"""Line-accurate CSV reading with bad-row reporting.

``read_csv`` yields ``(line_no, row_dict)`` for good rows and records a ``Problem`` for
each bad one: wrong field count, a torn last line (no trailing newline and too few
fields), undecodable bytes. Empty cells become None.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path

from ..errors import InputError
from . import Problem
from .values import count_problem, is_null, parse_number


def read_csv(path: Path, *, rel_path: str, required_columns: Iterable[str] = (),
             problems: list[Problem]) -> tuple[list[str], list[tuple[int, dict[str, str | None]]]]:
    """Read a headed CSV. Returns ``(header, [(line_no, row), ...])``.

    Raises ``InputError`` when the file is missing, unreadable, empty or lacks a
    required column. Bad rows are appended to ``problems`` (kind ``malformed``).
    """
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError as exc:
        raise InputError(rel_path, "file not found") from exc
    except OSError as exc:
        raise InputError(rel_path, f"cannot read: {exc.strerror}") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(rel_path, f"not UTF-8 text (byte {exc.start})") from exc
    if not text.strip():
        raise InputError(rel_path, "file is empty (no header)")
    torn_tail = not text.endswith("\n")
    lines = text.splitlines()
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip() for h in next(reader)]
    except csv.Error as exc:
        raise InputError(rel_path, f"bad header: {exc}", line=1) from exc
    missing = [c for c in required_columns if c not in header]
    if missing:
        raise InputError(rel_path, f"missing required column(s) {missing}; header has {len(header)} columns", line=1)
    rows: list[tuple[int, dict[str, str | None]]] = []
    n = len(header)
    last_line = len(lines)
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(Problem("malformed", rel_path, f"CSV syntax error: {exc}", reader.line_num))
            continue
        line_no = reader.line_num
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue  # a blank line; a line of empty fields (",,,") is a row, checked like any other
        if len(fields) != n:
            torn = torn_tail and line_no == last_line and len(fields) < n
            reason = (f"truncated last line: {len(fields)} of {n} fields" if torn
                      else f"expected {n} fields, found {len(fields)}")
            problems.append(Problem("malformed", rel_path, reason, line_no))
            continue
        rows.append((line_no, {h: (v if v.strip() != "" else None) for h, v in zip(header, fields, strict=True)}))
    return header, rows


def cell_float(row: dict, key: str, *, required: bool = False, count: bool = False) -> tuple[float | None, str | None]:
    """``(value, None)`` or ``(None, reason)`` for ``row[key]`` under the value contract
    (``obslib.inputs.values``): a null token is None (a reason when ``required``), the
    number must be finite, and a ``count`` a whole number >= 0."""
    v = row.get(key)
    if is_null(v):
        return None, (f"column {key!r} is empty" if required else None)
    try:
        f = parse_number(v)
    except ValueError as exc:
        return None, f"column {key!r}: {exc}" if str(exc).startswith("'") else f"column {key!r} {exc}"
    why = count_problem(f) if count else None
    return (None, f"column {key!r}: {why}") if why else (f, None)


def to_float(row: dict, key: str, *, rel_path: str, line: int, problems: list[Problem],
             required: bool = False, count: bool = False) -> tuple[bool, float | None]:
    """Parse ``row[key]`` (``cell_float``). Returns ``(ok, value)``; on failure records a
    malformed-row problem and returns ``(False, None)``."""
    f, why = cell_float(row, key, required=required, count=count)
    if why is not None:
        problems.append(Problem("malformed", rel_path, why, line))
        return False, None
    return True, f
