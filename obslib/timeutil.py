"""Time helpers: RFC 3339 UTC formatting/parsing, week bounds, run-id stamps.

All timestamps handled by obslib are timezone-aware UTC ``datetime`` objects and are
written as RFC 3339 with a ``Z`` suffix (DESIGN.md, "Time").
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

UTC = timezone.utc
_STAMP_RE = re.compile(r"(\d{8})_(\d{6})")


def utcnow() -> datetime:
    """The current time, UTC. Only edges (CLI, notebooks) should call this."""
    return datetime.now(UTC)


def to_rfc3339(ts: datetime) -> str:
    """Format an aware datetime as ``YYYY-MM-DDTHH:MM:SSZ`` (microseconds kept if non-zero).

    Raises ValueError for a naive datetime.
    """
    if ts.tzinfo is None:
        raise ValueError("naive datetime: obslib only writes timezone-aware UTC times")
    ts = ts.astimezone(UTC)
    # not strftime("%Y"): it writes year 1 as "1", not "0001"
    out = f"{ts.year:04d}-{ts.month:02d}-{ts.day:02d}T{ts.hour:02d}:{ts.minute:02d}:{ts.second:02d}"
    return f"{out}.{ts.microsecond:06d}Z" if ts.microsecond else f"{out}Z"


def parse_ts(value: str, *, naive_tz: str = "UTC") -> datetime:
    """Parse an ISO 8601 / RFC 3339 timestamp (``Z`` or offset) into aware UTC.

    A string without a zone is interpreted in ``naive_tz``. Accepts ``YYYY-MM-DD`` too
    (midnight). Raises ValueError on anything else.
    """
    s = str(value).strip()
    if not s:
        raise ValueError("empty timestamp")
    if s.endswith("Z") or s.endswith("z"):
        s = s[:-1] + "+00:00"
    ts = datetime.fromisoformat(s)
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=ZoneInfo(naive_tz))
    return ts.astimezone(UTC)


def week_start_of(ts: datetime) -> datetime:
    """Monday 00:00 UTC of the week containing ``ts``."""
    ts = ts.astimezone(UTC)
    d = ts.date() - timedelta(days=ts.weekday())
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


_WEEK_START_RE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)


def parse_week_start(value: str | date | datetime) -> datetime:
    """Parse a ``week_start``: exactly ``YYYY-MM-DD`` (not ``2026-W48`` or ``20261123``,
    which ``date.fromisoformat`` would take), a Monday, within the inputs' date range
    (``obslib.inputs.values.DATE_MIN..DATE_MAX``, 1970-01-01..2099-12-31). Returns 00:00 UTC.

    Raises ValueError when it is not a date in that form, out of range or not a Monday
    (naming that Monday).
    """
    from .inputs.values import DATE_MAX, DATE_MIN, RANGE_TEXT

    if isinstance(value, datetime):
        d = value.astimezone(UTC).date()
    elif isinstance(value, date):
        d = value
    else:
        s = str(value).strip()
        try:
            if not _WEEK_START_RE.fullmatch(s):
                raise ValueError(s)
            d = date.fromisoformat(s)
        except ValueError as exc:
            raise ValueError(f"week_start {value!r} is not a date (YYYY-MM-DD)") from exc
    if not DATE_MIN <= d <= DATE_MAX:
        raise ValueError(f"week_start {d.isoformat()} is out of range ({RANGE_TEXT})")
    if d.weekday() != 0:
        monday = d - timedelta(days=d.weekday())
        raise ValueError(f"week_start {d.isoformat()} is a {d.strftime('%A')}, not a Monday "
                         f"(its week starts on Monday {monday.isoformat()})")
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def _stamps(name: str, tz: str) -> list[datetime]:
    out = []
    for d, t in _STAMP_RE.findall(name):
        try:
            naive = datetime.strptime(d + t, "%Y%m%d%H%M%S")
        except ValueError:
            continue
        out.append(naive.replace(tzinfo=ZoneInfo(tz)).astimezone(UTC))
    return out


def stamp_from_name(name: str, tz: str = "UTC") -> datetime | None:
    """The last ``YYYYMMDD_HHMMSS`` stamp in a run id / file name, interpreted in ``tz``.

    Returns aware UTC, or None when the name carries no valid stamp.
    """
    stamps = _stamps(name, tz)
    return stamps[-1] if stamps else None


def first_stamp_from_name(name: str, tz: str = "UTC") -> datetime | None:
    """The first ``YYYYMMDD_HHMMSS`` stamp in a name (state-archive files start with one)."""
    stamps = _stamps(name, tz)
    return stamps[0] if stamps else None
