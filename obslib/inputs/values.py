"""The one value contract of every CSV input (``runs/index.csv``, ``daily.csv``, ...).

Every reader, line by line (``runs.read_daily``, ``runs.read_run_index``) or vectorised
(``daily_frame``), applies these rules, so a value means the same in the weekly report and
the dashboard:

- **Null tokens**: a cell that is empty or one of ``NULL_TOKENS`` (``NA``, ``N/A``, ``null``,
  ``NULL``, ``nan``, ``NaN``, ``#N/A``, ``n/a``, after trimming spaces) is a missing value: None
  for an optional column, a bad row ("column 'x' is empty") for a required one.
- **Numbers** match ``NUMBER_RE`` -- ASCII digits, an optional sign, decimal point and
  exponent, nothing else (``1_000``, a full-width ``５``, `` 2 `` with spaces, ``0x10`` are
  bad rows although Python's ``float()`` takes them) -- and are finite (``inf``, ``1e999``
  are bad rows). ``-0`` reads as ``0``.
- **Counts** (fills, wins, trades, breakouts, ...) are whole numbers >= 0, and wins never
  exceed fills (daily) or trades (index).
- **Dates and timestamps** must be real calendar dates between ``DATE_MIN`` and ``DATE_MAX``
  (``2999-01-01`` and ``2026-99-99`` are bad rows), written exactly as ``YYYY-MM-DD`` (dates)
  or ``YYYYMMDD_HHMMSS`` / ``YYYY-MM-DD[THH:MM[:SS[.ffffff]]][Z|+HH:MM]`` (timestamps):
  ``20260601-120000``, ``2026-W48``, ``20261123`` are bad rows, not guesses.

A bad row is reported as a ``Problem`` with its file and line and is left out; it never
stops the other rows (``--allow-bad-rows``) or another dashboard dataset.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, date, datetime

NULL_TOKENS = frozenset({"", "NA", "N/A", "null", "NULL", "nan", "NaN", "#N/A", "n/a"})
DATE_MIN = date(1970, 1, 1)
DATE_MAX = date(2099, 12, 31)
RANGE_TEXT = f"{DATE_MIN.isoformat()}..{DATE_MAX.isoformat()}"
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_STAMP = re.compile(r"(\d{8})_(\d{6})", re.ASCII)  # runs/index.csv: 20250921_130118
_ISO_TS = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:[Zz]|[+-]\d{2}:\d{2})?)?", re.ASCII)
NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
_NON_FINITE = re.compile(r"[+-]?(?:inf|infinity|nan)", re.ASCII | re.IGNORECASE)


def is_null(raw: object) -> bool:
    """True for None, an empty cell or a null token (see module doc)."""
    return raw is None or (isinstance(raw, str) and raw.strip() in NULL_TOKENS)


def parse_number(raw: str) -> float:
    """A finite float from a non-null cell written as ``NUMBER_RE`` (see module doc);
    ``ValueError`` with the reason otherwise (``"'x' is not a number"``, ``"is not
    finite"``). ``-0`` is returned as ``0.0`` (so messages never say ``-0``)."""
    if not isinstance(raw, str) or not NUMBER_RE.fullmatch(raw):
        if isinstance(raw, str) and _NON_FINITE.fullmatch(raw):
            raise ValueError("is not finite")
        raise ValueError(f"{raw!r} is not a number")
    f = float(raw)
    if not math.isfinite(f):
        raise ValueError("is not finite")
    return f + 0.0  # -0.0 + 0.0 == 0.0


def count_problem(value: float) -> str | None:
    """Why ``value`` is not a count (whole number >= 0), or None."""
    if value < 0:
        return f"{value:g} is negative (a count)"
    if value != math.floor(value):
        return f"{value:g} is not a whole number (a count)"
    return None


def check_date(d: date) -> date:
    """``d`` when within ``DATE_MIN..DATE_MAX``; ``ValueError`` otherwise."""
    if not DATE_MIN <= d <= DATE_MAX:
        raise ValueError(f"date {d.isoformat()} is out of range ({RANGE_TEXT})")
    return d


def parse_date(raw: str) -> date:
    """``YYYY-MM-DD`` in range; ``ValueError`` with the reason otherwise."""
    s = raw.strip()
    try:
        if not _DATE.fullmatch(s):
            raise ValueError
        d = date.fromisoformat(s)
    except ValueError:
        raise ValueError(f"date {raw!r} is not YYYY-MM-DD") from None
    return check_date(d)


def parse_timestamp(raw: str, *, naive_tz: str = "UTC") -> datetime:
    """An index ``timestamp`` (``YYYYMMDD_HHMMSS``, or ISO 8601 / RFC 3339) as aware UTC,
    its date in range; ``ValueError`` with the reason otherwise."""
    from ..timeutil import parse_ts

    s = raw.strip()
    m = _STAMP.fullmatch(s)
    try:
        if m is None and not _ISO_TS.fullmatch(s):
            raise ValueError
        ts = parse_ts(f"{m[1][:4]}-{m[1][4:6]}-{m[1][6:]}T{m[2][:2]}:{m[2][2:4]}:{m[2][4:]}" if m else s,
                      naive_tz=naive_tz)
    except (ValueError, OverflowError):
        raise ValueError(f"timestamp {raw!r} is not a date and time (YYYYMMDD_HHMMSS or ISO 8601)") from None
    try:
        check_date(ts.astimezone(UTC).date())
    except ValueError:
        raise ValueError(f"timestamp {s} is out of range ({RANGE_TEXT})") from None
    return ts


def show(value: object, limit: int = 60) -> str:
    """A value read from a JSON input as it appears in the file (JSON, never a Python
    repr), cut to ``limit`` characters, for messages."""
    try:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str, allow_nan=True)
    except (TypeError, ValueError):
        text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


__all__ = ["DATE_MAX", "DATE_MIN", "NULL_TOKENS", "NUMBER_RE", "check_date", "count_problem", "is_null", "parse_date",
           "parse_number", "parse_timestamp", "show"]
