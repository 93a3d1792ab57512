"""The live raw-sample file ``ops/signal_latency.csv`` and its write-ahead journal.

Row format (one per (source, window) part written by a sample run)::

    timestamp_utc,source,latency_ms,p95_latency_ms,status,samples_in_window,job_id,
    window_s,bad_events,error_events,max_ms,sampled_at,sketch

``timestamp_utc`` is the start of the event-time window ``[timestamp_utc, +window_s)``;
``latency_ms``/``p95_latency_ms`` the part's p50/p95 (ms, 3 decimals, empty without a
latency); ``status`` ok|breach|error; ``samples_in_window`` the part's events (errors
included); ``bad_events`` the non-error events above the source's SLO; ``max_ms`` the
exact maximum; ``sampled_at`` the run's time; ``sketch`` the part's distribution
(``obslib.latency.sketch``). Late events for a window already written make another row
for that window: the rows merge. The old 7-column layout (a row = one window median at
the sample's time) is still read: one value, ``latency_ms``, in the window holding
``timestamp_utc``.

Commit protocol (caller holds ``ops/signal_latency.lock``): the run writes one journal
file atomically holding the exact bytes to append, the live file's size before the
append, the new event-log cursors, the new streak state and the alert payload (if any);
``apply_journal`` then truncates the live file back to that size, appends the bytes,
writes the cursors, the state and the outbox file (each atomically) and deletes the
journal. Every step is idempotent, so after a ``kill -9`` anywhere the next run's
``apply_journal`` finishes the commit exactly once, or (no journal yet) nothing of the
killed run is visible.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..storage import atomic_write_bytes, atomic_write_json, canonical_json_bytes, fsync_dir, read_json
from ..timeutil import UTC, parse_ts, to_rfc3339
from ._faults import checkpoint
from .model import HOUR_S, Part, epoch, floor_to
from .paths import LatencyPaths
from .sketch import Sketch
from .table import PartTable

OLD_COLUMNS = ["timestamp_utc", "source", "latency_ms", "p95_latency_ms", "status", "samples_in_window", "job_id"]
RAW_COLUMNS = OLD_COLUMNS + ["window_s", "bad_events", "error_events", "max_ms", "sampled_at", "sketch"]
HEADER = ",".join(RAW_COLUMNS) + "\n"
STATE_SCHEMA_VERSION = "2"


def fmt_ms(v: float | None) -> str:
    """Milliseconds with 3 decimals, or empty for None."""
    return "" if v is None else f"{v:.3f}"


def part_status(part: Part, slo_ms: float) -> str:
    """``error`` (an error event), ``breach`` (p95 > SLO), ``ok``; ``no_data`` when empty."""
    return _status(part.errors, part.sketch.quantile(0.95), slo_ms)


def _check_source(name: str) -> None:
    if any(c in name for c in ',"\n\r'):
        raise ValueError(f"latency source name {name!r} must not contain commas, quotes or newlines")


# one sample row: start, source, p50, p95, status, events, job_id, span_s, bad, errors, max,
# sampled_at, sketch; a part without latencies (errors only) has no p50/p95/max
_ROW = "%s,%s,%.3f,%.3f,%s,%d,%s,%d,%d,%d,%.3f,%s,%s\n"
_ROW_NO_LATENCY = "%s,%s,,,%s,%d,%s,%d,%d,%d,,%s,%s\n"
_FLOAT_FIELDS = (2, 3, 10)


def _status(errors: int, p95: float | None, slo_ms: float) -> str:
    """``part_status``'s rule."""
    return "error" if errors else "no_data" if p95 is None else "breach" if p95 > slo_ms else "ok"


def format_part(part: Part, *, slo_ms: float, job_id: str, sampled_at: str) -> str:
    """One raw CSV line (newline-terminated) for a window part. Source names are
    identifiers (checked at config load and per row), so nothing needs quoting."""
    _check_source(part.source)
    sk = part.sketch
    p95 = sk.quantile(0.95)
    row = [_start_text(part.start), part.source, sk.quantile(0.5), p95, _status(part.errors, p95, slo_ms),
           part.events, job_id, part.span_s, part.bad, part.errors, sk.max, sampled_at, sk.to_text()]
    if sk.count:
        return _ROW % tuple(row)
    return _ROW_NO_LATENCY % tuple(x for i, x in enumerate(row) if i not in _FLOAT_FIELDS)


def format_parts(parts: PartTable, *, slo_of: Callable[[str], float], job_id: str, sampled_at: str) -> str:
    """``"".join(format_part(p, slo_ms=slo_of(p.source), ...) for p in parts)``, the same
    bytes, with the parts' statistics computed for all of them at once (``PartTable``) and
    every row formatted by one ``%`` over the rows' fields."""
    k = len(parts)
    if k == 0:
        return ""
    for n in parts.present():
        _check_source(n)
    st = parts.group_stats(np.arange(k), k, (0.5, 0.95))
    has = st.count > 0
    p95 = st.quantiles[0.95]
    slo = np.array([slo_of(n) for n in parts.names], dtype=np.float64)[parts.src]
    status = np.where(parts.errors > 0, "error", np.where(~has, "no_data", np.where(p95 > slo, "breach", "ok")))
    starts, inv = np.unique(parts.start, return_inverse=True)
    cols = [np.array([_start_text(a) for a in starts.tolist()], dtype=object)[inv],
            np.array(parts.names, dtype=object)[parts.src], st.quantiles[0.5], p95, status, parts.events, job_id,
            int(parts.span[0]) if bool((parts.span == parts.span[0]).all()) else parts.span, parts.bad, parts.errors,
            st.max, sampled_at, st.text]
    return format_rows(cols, has, _ROW, _ROW_NO_LATENCY, _FLOAT_FIELDS)


def format_rows(cols: list, has: np.ndarray, row: str, row_without: str, float_fields: tuple[int, ...]) -> str:
    """Rows ``row % fields`` (``row_without`` and no ``float_fields`` where not ``has``),
    one ``%`` for all: ``cols`` are per-row arrays, or one value for every row (written
    into the row templates once)."""
    k = has.size
    specs, specs_without = row[:-1].split(","), row_without[:-1].split(",")
    per_row: dict[int, list] = {}
    for j, c in enumerate(cols):
        if isinstance(c, np.ndarray):
            per_row[j] = c.tolist() if c.dtype != object else list(c)
        else:  # a constant: its text in the templates
            specs[j] = specs_without[j] = (specs[j] % c).replace("%", "%%")
    row, row_without = ",".join(specs) + "\n", ",".join(specs_without) + "\n"
    if has.all():
        return (row * k) % tuple(itertools.chain.from_iterable(zip(*per_row.values(), strict=True)))
    m = np.empty((k, len(per_row)), dtype=object)
    for i, c in enumerate(per_row.values()):
        m[:, i] = c
    keep = np.ones(m.shape, dtype=bool)
    keep[np.ix_(~has, [list(per_row).index(j) for j in float_fields])] = False
    return "".join(np.where(has, row, row_without).tolist()) % tuple(m[keep].tolist())


@lru_cache(maxsize=8192)
def _start_text(start: int) -> str:
    """A window start (epoch s) as RFC 3339 (cached: a backlog repeats each start per source)."""
    return to_rfc3339(datetime.fromtimestamp(start, UTC))


def part_from_row(d: dict[str, str], *, naive_utc: bool = False, slo_of=None, window_s: int = 900) -> Part:
    """A raw row (dict by column name, either layout) as a ``Part``. Raises ValueError."""
    from ..inputs.latency_events import (
        ERROR_STATUSES,
        _latency,
        _source,
        event_time,
        parse_count,
        sample_status,
    )

    ts = event_time(d.get("timestamp_utc"), naive_utc=naive_utc)
    src = _source(d.get("source")) or "unknown"
    start = epoch(ts)
    if "sketch" in d:
        sample_status(d.get("status"))
        span = parse_count(d.get("window_s"), "window_s") or window_s
        if span <= 0 or HOUR_S % span:
            raise ValueError(f"window_s {span} does not divide an hour")
        try:
            sk = Sketch.from_text(d.get("sketch") or "")
            events, bad, errors = (parse_count(d.get(k), k) for k in ("samples_in_window", "bad_events",
                                                                      "error_events"))
        except ValueError as exc:
            raise ValueError(f"sketch/counts do not parse: {exc}") from exc
        if events != sk.count + errors or not 0 <= bad <= sk.count:
            raise ValueError(f"counts disagree: {events} events, {errors} errors, {sk.count} in the sketch")
        return Part(src, floor_to(start, span), span, events, bad, errors, sk)
    lat = _latency(d.get("latency_ms"), "latency_ms")
    status = sample_status(d.get("status"))
    error = status in ERROR_STATUSES
    if status == "no_data" or (lat is None and not error):
        return Part(src, floor_to(start, window_s), window_s, 0, 0, 0, Sketch())
    slo = slo_of(src) if slo_of else float("inf")
    if error:
        return Part(src, floor_to(start, window_s), window_s, 1, 0, 1, Sketch())
    return Part(src, floor_to(start, window_s), window_s, 1, int(lat > slo), 0, Sketch.of([lat]))


def read_json_or(path: Path, default: Any) -> Any:
    """A JSON file's content, ``default`` when missing. Raises ``InputError`` when corrupt."""
    if not path.exists():
        return default
    return read_json(path)


def file_size(path: Path) -> int:
    """Size in bytes, 0 when missing."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def first_row_time(path: Path):
    """Aware UTC time of the first data row of the live file, or None (empty/missing)."""
    try:
        with open(path, "rb") as fh:
            fh.readline()
            line = fh.readline()
    except FileNotFoundError:
        return None
    if not line.endswith(b"\n"):
        return None
    try:
        return parse_ts(line.split(b",", 1)[0].decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None


def write_journal(paths: LatencyPaths, *, job_id: str, append: str, offsets: dict, state: dict,
                  outbox_name: str | None, outbox_payload: dict | None) -> dict:
    """Record the run's whole commit atomically (see the module docstring). Returns the
    journal (for ``apply_journal``, which then need not read it back)."""
    size = file_size(paths.live)
    if size == 0:
        append = HEADER + append
    journal = {"job_id": job_id, "live_size_before": size, "append": append, "offsets": offsets,
               "state": state, "outbox_name": outbox_name, "outbox_payload": outbox_payload}
    atomic_write_bytes(paths.journal, canonical_json_bytes(journal))
    return journal


def _append_at(path: Path, size_before: int, data: bytes) -> None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        cur = os.fstat(fd).st_size
        if cur > size_before:
            os.ftruncate(fd, size_before)  # a torn or complete earlier attempt of this journal
            cur = size_before
        os.lseek(fd, cur, os.SEEK_SET)
        half = len(data) // 2
        for i, chunk in enumerate((data[:half], data[half:])):
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view):]
            if i == 0:
                checkpoint("live_partial")  # a torn append, for the crash trials
        os.fsync(fd)
    finally:
        os.close(fd)


def apply_journal(paths: LatencyPaths, written: dict | None = None) -> str | None:
    """Finish a pending commit, if any. Returns the journal's job id (None when none).
    ``written``: the journal this process has just written (``write_journal``), used
    instead of reading the file back."""
    j = written if written is not None else read_json_or(paths.journal, None)
    if j is None:
        return None
    _append_at(paths.live, int(j["live_size_before"]), j["append"].encode("utf-8"))
    fsync_dir(paths.live.parent)
    checkpoint("live_appended")
    atomic_write_json(paths.offsets, j["offsets"])
    checkpoint("offsets_written")
    atomic_write_json(paths.state, j["state"])
    checkpoint("state_written")
    if j.get("outbox_name") and j.get("outbox_payload") is not None:
        atomic_write_bytes(paths.outbox_dir / j["outbox_name"], canonical_json_bytes(j["outbox_payload"]))
        checkpoint("outbox_written")
    os.unlink(paths.journal)
    fsync_dir(paths.journal.parent)
    checkpoint("journal_removed")
    return j["job_id"]
