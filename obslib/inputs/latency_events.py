"""Latency samples recorded in the research repository: ``ops/signal_latency.csv``.

Three row formats are accepted, told apart by the header:
- event form ``timestamp_utc,latency_ms,status,detail,source`` (one row per sample);
- the kit's sample form ``timestamp_utc,source,latency_ms,p95_latency_ms,status,...``;
- legacy ``signal_id,ts_emit,ts_ack,status,detail`` (latency = ack - emit, source
  ``legacy``).
Each row becomes ``{timestamp (aware UTC), source, latency_ms, p95_ms, status}`` where
``p95_ms`` is ``p95_latency_ms`` when present, else the row's own latency (ms), and
``status`` is normalised to ok|error|no_data|breach.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from ..timeutil import parse_ts
from . import Problem
from .csvfile import read_csv, to_float

LATENCY_REL = "ops/signal_latency.csv"
ERROR_STATUSES = {"error", "failed", "failure", "timeout", "err"}


def normalise_status(raw: str | None) -> str:
    """Map a source's status word to ok|error|no_data|breach."""
    s = (raw or "").strip().lower()
    if s in ERROR_STATUSES:
        return "error"
    if s in ("no_data", "breach"):
        return s
    return "ok"


def parse_latency_row(row: dict, *, rel_path: str, line: int, problems: list[Problem]) -> dict | None:
    """One CSV row (any of the three forms) as a sample dict, or None + a problem."""
    try:
        if "ts_emit" in row and "ts_ack" in row:
            emit, ack = parse_ts(row["ts_emit"] or ""), parse_ts(row["ts_ack"] or "")
            lat = (ack - emit).total_seconds() * 1000.0
            ts, source, p95 = ack, row.get("source") or "legacy", lat
            if lat < 0:
                raise ValueError("ts_ack is before ts_emit")
        else:
            ts = parse_ts(row.get("timestamp_utc") or "")
            source = row.get("source") or "unknown"
            ok, lat = to_float(row, "latency_ms", rel_path=rel_path, line=line, problems=problems)
            if not ok:  # the problem names the column and the value
                return None
            ok, p95 = to_float(row, "p95_latency_ms", rel_path=rel_path, line=line, problems=problems)
            if not ok:
                return None
            p95 = lat if p95 is None else p95
        for v in (lat, p95):
            if v is not None and (v != v or v in (float("inf"), float("-inf")) or v < 0):
                raise ValueError(f"latency {v!r} is not a finite non-negative number")
    except (TypeError, ValueError) as exc:
        problems.append(Problem("malformed", rel_path, str(exc), line))
        return None
    return {"timestamp": ts, "source": source, "latency_ms": lat, "p95_ms": p95,
            "status": normalise_status(row.get("status"))}


def read_latency_samples(data_root: Path, start: datetime, end: datetime,
                         problems: list[Problem]) -> list[dict]:
    """Samples with ``start <= timestamp < end``, sorted by (timestamp, source). A missing
    file is an optional input: [] plus a ``missing`` problem."""
    path = Path(data_root) / LATENCY_REL
    if not path.exists():
        problems.append(Problem("missing", LATENCY_REL, "latency sample file not found"))
        return []
    header, rows = read_csv(path, rel_path=LATENCY_REL, problems=problems)
    if not ({"timestamp_utc", "latency_ms"} <= set(header) or {"ts_emit", "ts_ack"} <= set(header)):
        problems.append(Problem("malformed", LATENCY_REL, f"unrecognised header {header}", 1))
        return []
    out = []
    for line, row in rows:
        s = parse_latency_row(row, rel_path=LATENCY_REL, line=line, problems=problems)
        if s and start <= s["timestamp"] < end:
            out.append(s)
    out.sort(key=lambda s: (s["timestamp"], s["source"]))
    return out
