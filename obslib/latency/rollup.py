"""Hourly rollups of the sample rows: ``ops/signal_latency_rollup.csv``.

One row per (``hour_utc``, ``source``)::

    hour_utc,source,p50_ms,p95_ms,samples,breach_flag,method,error_samples,
    p99_ms,max_ms,windows,bad_events,sketch

computed by ``model.query(parts, by="hour")`` over the sample rows (window parts) whose
window starts in the hour: p50/p95/p99 (ms, 3 decimals) of the events' latencies, exact
type 7 while the hour has at most ``sketch.EXACT_MAX`` latencies (``method=exact_type7``),
else the merged DDSketch (``ddsketch_a0.01``, within 1 % of the value at rank
``floor(q(n-1))``); ``max_ms`` exact; ``samples`` the events (errors included);
``windows`` the sample rows merged; ``bad_events`` events above the SLO; ``error_samples``
error events; ``breach_flag`` p95 > SLO; ``sketch`` the merged sketch, so any longer range
(day, week, beyond raw retention) is a merge of hourly rows (``rollup_parts``). Rows are
sorted by hour, then source.

Incremental: ``ops/signal_latency_rollup_state.json`` remembers the live file (device,
inode) and how many bytes were rolled up. Only hours that received new rows are
recomputed (from every row of those hours, live file and archives); after a rotation the
tail of the archived file is picked up through the manifest. Anything unexpected falls
back to a full recompute of the hours still inside raw retention.

The rollup is the durable record (raw rows are kept ``raw_retention_days``): a recompute
(``--full`` or incremental) never drops or shrinks the row of an hour whose raw rows are
unavailable. Rows of hours it did not recompute are kept as they are (hours before the
raw cutoff, hours whose rows were pruned under a shorter retention); an hour with raw
rows in a damaged archive (this run's, or any named in ``quarantine/``,
``archive.quarantined_hours``) keeps its existing row in a full recompute, and new rows
for it are merged into that row's sketch (like late rows for an hour past the cutoff).
An archive that fails its sha256 or does not decompress is quarantined
(``archive.quarantine_archive``) and reported (a warning: the jobs' status is
``warning``, the message on stderr); the rollup goes on. Only the rollup retention
(``rollup_retention_days``) removes rows. A sample row that does
not parse is a bad row (file:line), counted and skipped. The file is written atomically
and only when its bytes change, so a rerun is byte-identical.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..inputs import Problem
from ..storage import atomic_write_bytes, atomic_write_json
from ..timeutil import UTC, parse_ts
from .archive import (
    DamagedArchive,
    entry_hours,
    floor_hour,
    load_archive,
    quarantine_archive,
    quarantined_hours,
    raw_cutoff,
    read_manifest,
)
from .model import HOUR_S, Part, Stats, epoch, query, round_ms
from .paths import LatencyPaths
from .sketch import Sketch
from .store import OLD_COLUMNS, RAW_COLUMNS, format_rows, part_from_row, read_json_or
from .table import PartTable

ROLLUP_COLUMNS = ["hour_utc", "source", "p50_ms", "p95_ms", "samples", "breach_flag", "method", "error_samples",
                  "p99_ms", "max_ms", "windows", "bad_events", "sketch"]
ROLLUP_HEADER = ",".join(ROLLUP_COLUMNS) + "\n"


def _epoch_hour(ts: datetime) -> int:
    """Hours since the epoch of an aware time (the rollup key)."""
    return int(ts.timestamp()) // 3600


def parse_sample_lines(data: bytes, what: str, problems: list[Problem], *, slo_of: Callable[[str], float],
                       hours: set[int] | None = None, line0: int = 0) -> list[Part]:
    """The kit's own sample rows (either layout, told apart by the field count; header
    lines skipped; only complete lines) as ``Part`` s. ``hours`` (epoch hours) limits
    the rows parsed (by their timestamp prefix). A bad row adds a ``Problem``."""
    prefixes = None
    if hours is not None:
        prefixes = {datetime.fromtimestamp(h * 3600, UTC).strftime("%Y-%m-%dT%H").encode("ascii") for h in hours}
    out: list[Part] = []
    cut = data.rfind(b"\n") + 1
    for n, line in enumerate(data[:cut].split(b"\n")[:-1], start=line0 + 1):
        if not line or line.startswith(b"timestamp_utc,"):
            continue
        if prefixes is not None and line[:13] not in prefixes:
            continue
        try:
            fields = line.decode("utf-8").split(",")
            cols = RAW_COLUMNS if len(fields) == len(RAW_COLUMNS) else OLD_COLUMNS if len(fields) == len(
                OLD_COLUMNS) else None
            if cols is None:
                raise ValueError(f"{len(fields)} fields (a sample row has {len(RAW_COLUMNS)}, or "
                                 f"{len(OLD_COLUMNS)} in the old layout)")
            p = part_from_row(dict(zip(cols, fields, strict=True)), slo_of=slo_of)
        except (UnicodeDecodeError, ValueError) as exc:
            problems.append(Problem("malformed", what, str(exc)[:200], n))
            continue
        if p.events:
            out.append(p)
    return out


@lru_cache(maxsize=8192)
def _hour_text(start: int) -> str:
    return datetime.fromtimestamp(start, UTC).strftime("%Y-%m-%dT%H:00:00Z")


# one rollup row: hour, source, p50, p95, samples, breach_flag, method, error_samples, p99, max,
# windows, bad_events, sketch; an hour without latencies (errors only) has no p50/p95/p99/max
_ROW = "%s,%s,%.3f,%.3f,%d,%s,%s,%d,%.3f,%.3f,%d,%d,%s\n"
_ROW_NO_LATENCY = "%s,%s,,,%d,%s,%s,%d,,,%d,%d,%s\n"
_FLOAT_FIELDS = (2, 3, 8, 9)


def format_rollup_row(st: Stats) -> str:
    """One rollup CSV line for an hour's ``Stats``."""
    row = [_hour_text(st.start), st.source, st.p50, st.p95, st.samples, "true" if st.breach_flag else "false",
           st.method, st.error_samples, st.p99, st.max, st.windows, st.bad_events, st.sketch.to_text()]
    if st.sketch.count:
        return _ROW % tuple(row)
    return _ROW_NO_LATENCY % tuple(x for i, x in enumerate(row) if i not in _FLOAT_FIELDS)


def compute_rollups(parts: list[Part] | PartTable, slo_of: Callable[[str], float]) -> dict[tuple[int, str], str]:
    """Rollup lines keyed by (epoch hour, source): the lines of ``model.query(parts,
    by="hour")`` through ``format_rollup_row``, computed for all hours at once
    (``PartTable.group_stats``; the same bytes, tested)."""
    t = PartTable.from_parts(parts)
    if not len(t):
        return {}
    codes, gid = t.hour_codes()
    st = t.group_stats(gid, codes.size, (0.5, 0.95, 0.99), by_value=t.by_hour)
    nn = len(t.names)
    hour, src = codes // nn, codes % nn
    has = st.count > 0
    p95 = st.quantiles[0.95]
    slo = np.array([slo_of(n) for n in t.names], dtype=np.float64)[src]
    breach = has & (p95 > slo)
    near = np.flatnonzero(has & (np.abs(p95 - slo) <= 0.001))  # stats_of: the flag compares the rounded p95
    breach[near] = [round_ms(x) > y for x, y in zip(p95[near].tolist(), slo[near].tolist(), strict=True)]
    hours, inv = np.unique(hour, return_inverse=True)
    cols = [np.array([_hour_text(h * HOUR_S) for h in hours.tolist()], dtype=object)[inv],
            np.array(t.names, dtype=object)[src], _printed(st.quantiles[0.5]), _printed(p95), st.events,
            np.where(breach, "true", "false"), st.method, st.errors, _printed(st.quantiles[0.99]), _printed(st.max),
            st.windows, st.bad, st.text]
    lines = format_rows(cols, has, _ROW, _ROW_NO_LATENCY, _FLOAT_FIELDS).split("\n")
    names = t.names
    return {(h, names[s]): line + "\n" for h, s, line in zip(hour.tolist(), src.tolist(), lines, strict=False)}


def _printed(v: np.ndarray) -> np.ndarray:
    """``v`` (ms) such that ``%.3f`` prints ``fmt_ms(round_ms(v))``: below 2**42 ms ``%.3f`` of
    ``v`` and of ``round(v, 3)`` are the same text (both the correctly rounded 3-decimal
    value: ``round(v, 3)`` is within half an ulp < 0.0005 of it), so only larger values
    are rounded (in Python)."""
    big = np.flatnonzero(np.abs(v) >= 1e12)
    if big.size:
        v = v.astype(object)
        v[big] = [round_ms(x) for x in v[big].tolist()]
    return v


def read_rollup(path: Path) -> dict[tuple[int, str], str]:
    """Existing rollup lines keyed by (epoch hour, source); {} when missing. Lines of the
    old 8-column layout are kept as they are."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    out = {}
    for i, line in enumerate(text.splitlines(keepends=True)[1:], start=2):
        parts = line.split(",")
        if len(parts) not in (len(ROLLUP_COLUMNS), 8) or not line.endswith("\n"):
            raise InputError(path.name, "malformed rollup row", line=i)
        out[(_hour_of_text(parts[0]), parts[1])] = line
    return out


@lru_cache(maxsize=8192)
def _hour_of_text(text: str) -> int:
    """The epoch hour of a rollup row's ``hour_utc`` (cached: a file repeats each hour per source)."""
    return _epoch_hour(parse_ts(text))


def _line_parts(lines: dict[tuple[int, str], str], keys: set, problems: list[Problem], what: str) -> list[Part]:
    """Rollup lines (of ``keys``) as hour-long parts; a line without a sketch (old layout)
    cannot be merged: a problem, and the hour keeps only what can be read."""
    out = []
    for k in sorted(keys):
        line = lines.get(k)
        if line is None:
            continue
        f = line.rstrip("\n").split(",")
        if len(f) != len(ROLLUP_COLUMNS):
            problems.append(Problem("malformed", what, f"hour {k[0]} {k[1]}: an old rollup row has no sketch to "
                                                       "merge late rows into"))
            continue
        d = dict(zip(ROLLUP_COLUMNS, f, strict=True))
        try:
            out.append(Part(k[1], k[0] * HOUR_S, HOUR_S, int(d["samples"]), int(d["bad_events"]),
                            int(d["error_samples"]), Sketch.from_text(d["sketch"])))
        except ValueError as exc:
            problems.append(Problem("malformed", what, f"rollup sketch: {exc}"))
    return out


def rollup_parts(path: Path, *, problems: list[Problem] | None = None) -> list[Part]:
    """The rollup rows that carry a sketch, as hour-long ``Part`` s (to merge any range
    beyond raw retention with ``model.query``)."""
    out = []
    for (h, src), line in sorted(read_rollup(path).items()):
        f = line.rstrip("\n").split(",")
        if len(f) != len(ROLLUP_COLUMNS):
            continue
        d = dict(zip(ROLLUP_COLUMNS, f, strict=True))
        try:
            sk = Sketch.from_text(d["sketch"])
            out.append(Part(src, h * HOUR_S, HOUR_S, int(d["samples"]), int(d["bad_events"]),
                            int(d["error_samples"]), sk))
        except ValueError as exc:
            if problems is not None:
                problems.append(Problem("malformed", path.name, f"rollup sketch: {exc}"))
    return out


def _new_row_keys(chunks: list[bytes]) -> set[tuple[int, str]]:
    keys = set()
    for chunk in chunks:
        for line in chunk.splitlines():
            if not line or line.startswith(b"timestamp_utc,"):
                continue
            parts = line.split(b",", 2)
            try:
                keys.add((_epoch_hour(parse_ts(parts[0].decode("ascii"))), parts[1].decode("utf-8")))
            except (ValueError, IndexError, UnicodeDecodeError):
                continue  # a bad row: reported when the hour's rows are read
    return keys


def _read_range(path: Path, start: int, end: int) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(start)
        data = fh.read(max(0, end - start))
    return data[: data.rfind(b"\n") + 1]


@dataclass
class RollupResult:
    """``rows_written``: rollup rows recomputed; ``full``: full recompute; ``changed``:
    the file's bytes changed; ``total_rows``: rows in the file; ``raw_rows``: sample rows
    read; ``bad_rows``: sample rows that did not parse (``problems``); ``quarantined``:
    messages naming damaged archives moved aside."""

    rows_written: int
    full: bool
    changed: bool
    total_rows: int
    raw_rows: int
    bad_rows: int = 0
    problems: list[Problem] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)


class StoreReader:
    """Reads the sample rows of the live file and the archives (quarantining damaged
    archives) into parts. The one reader of the kit's own sample CSVs."""

    def __init__(self, paths: LatencyPaths, slo_of: Callable[[str], float], *, quarantine: bool = True):
        self.paths, self.slo_of, self.quarantine = paths, slo_of, quarantine
        self.problems: list[Problem] = []
        self.quarantined: list[str] = []
        self.lost_hours: set[int] = set()  # epoch hours covered by an archive that could not be read

    def archive_bytes(self, entry: dict) -> bytes | None:
        try:
            return load_archive(self.paths, entry)
        except DamagedArchive as exc:  # without the lock (status), only skipped and named
            try:
                self.lost_hours |= entry_hours(entry["first_ts"], entry["last_ts"])
            except (KeyError, ValueError):
                pass
            self.quarantined.append(quarantine_archive(self.paths, entry, str(exc)) if self.quarantine
                                    else f"{exc}; skipped")
            return None

    def chunks(self, hours: tuple[int, int] | None, live_end: int | None = None) -> list[tuple[bytes, str]]:
        out = []
        for e in read_manifest(self.paths)["entries"]:
            if hours is not None:
                lo, hi = hours
                if _epoch_hour(parse_ts(e["last_ts"])) < lo or _epoch_hour(parse_ts(e["first_ts"])) > hi:
                    continue
            data = self.archive_bytes(e)
            if data is not None:
                out.append((data, self.paths.rel(self.paths.archive_dir / e["path"])))
        if self.paths.live.exists():
            end = live_end if live_end is not None else self.paths.live.stat().st_size
            out.append((_read_range(self.paths.live, 0, end), self.paths.rel(self.paths.live)))
        return out

    def parts(self, *, hours: set[int] | None = None, live_end: int | None = None) -> list[Part]:
        span = (min(hours), max(hours)) if hours else None
        out: list[Part] = []
        for data, what in self.chunks(span, live_end):
            out += parse_sample_lines(data, what, self.problems, slo_of=self.slo_of, hours=hours)
        return out


def update_rollups(paths: LatencyPaths, *, now: datetime, slo_of: Callable[[str], float], raw_retention_days: int,
                   rollup_retention_days: int, full: bool = False,
                   fresh: tuple[int, int, list[Part] | PartTable] | None = None) -> RollupResult:
    """Bring the rollup file up to date (caller holds the latency lock). See the module
    docstring. ``fresh`` = (start, end, parts): the sample job's own rows, the byte range
    ``[start, end)`` of the live file it has just appended, as parts (so they are not parsed
    back); used only when the live file ends there. Raises ``InputError`` for a rollup file
    that does not parse."""
    state = read_json_or(paths.rollup_state, None)
    reader = StoreReader(paths, slo_of)
    manifest = read_manifest(paths)
    try:
        st: os.stat_result | None = os.stat(paths.live)
    except FileNotFoundError:
        st = None
    live_end = st.st_size if st else 0
    if fresh is not None and (st is None or live_end != fresh[1]):
        fresh = None
    chunks: list[bytes] = []
    full = full or state is None or not paths.rollup.exists()
    if not full:
        if fresh is not None and (st.st_dev, st.st_ino) == (state["dev"], state["inode"]) \
                and state["offset"] == fresh[0]:
            pass  # exactly the job's own rows are new: ``fresh`` holds them
        elif st and (st.st_dev, st.st_ino) == (state["dev"], state["inode"]) and state["offset"] <= st.st_size:
            chunks.append(_read_range(paths.live, state["offset"], live_end))
        else:
            prev = [e for e in manifest["entries"]
                    if e.get("source_inode") == state["inode"] and e.get("source_bytes", -1) >= state["offset"]]
            data = reader.archive_bytes(max(prev, key=lambda e: e["created_at"])) if prev else None
            if data is not None:
                chunks.append(data[state["offset"]:])
                if st:
                    chunks.append(_read_range(paths.live, 0, live_end))
            else:
                full = True
        if chunks:
            fresh = None
    cutoff_hour = _epoch_hour(raw_cutoff(now, raw_retention_days))
    existing = read_rollup(paths.rollup)
    computed: dict[tuple[int, str], str] = {}
    # the rollup is the durable record: an hour whose raw rows are gone or incomplete
    # (pruned, in a quarantined or missing archive) keeps its existing row
    lost = quarantined_hours(paths)
    fresh_t = PartTable.from_parts(fresh[2]) if fresh else None
    if full:
        stored = _tables(reader.parts(live_end=fresh[0]), fresh_t) if fresh else _tables(
            reader.parts(live_end=live_end))
        parts = stored.take(stored.start // HOUR_S >= cutoff_hour)
        lost |= reader.lost_hours
        keep = {k for k in existing if k[0] in lost}
        computed = {k: v for k, v in compute_rollups(parts, slo_of).items() if k not in keep}
        # rows known to be new (not yet in the rollup) for a kept hour are merged into its row
        new = fresh_t.to_parts(fresh_t.in_hours(keep)) if fresh else (
            parse_sample_lines(_read_range(paths.live, state["offset"], live_end), paths.rel(paths.live), [],
                               slo_of=slo_of, hours={k[0] for k in keep})
            if keep and state and st and (st.st_dev, st.st_ino) == (state["dev"], state["inode"])
            and state["offset"] <= live_end else [])
        late = [p for p in new if (p.start // HOUR_S, p.source) in keep]
        if late:
            touched = {(p.start // HOUR_S, p.source) for p in late}
            computed.update(compute_rollups(late + _line_parts(existing, touched, reader.problems, paths.rollup.name),
                                            slo_of))
        merged = dict(existing)
    else:
        dirty = set(fresh_t.hour_keys()) if fresh else _new_row_keys(chunks)
        # hours before the raw-retention cutoff, or with raw rows in a damaged archive, have
        # lost (some of) their sample rows: their rollup row stands for them, and the new
        # rows are merged into it
        old = {k for k in dirty if k[0] < cutoff_hour or (k[0] in lost and k in existing)}
        recent = dirty - old
        merged = {k: v for k, v in existing.items() if k not in dirty}
        parts = PartTable.empty()
        if recent:
            stored = (_tables(reader.parts(hours={k[0] for k in recent}, live_end=fresh[0]), fresh_t) if fresh
                      else _tables(reader.parts(hours={k[0] for k in recent}, live_end=live_end)))
            moved = {k for k in recent if k[0] in reader.lost_hours and k in existing}
            old |= moved
            recent -= moved
            parts = stored.take(stored.in_hours(recent))
        if old:
            late = fresh_t.take(fresh_t.in_hours(old)) if fresh else _tables([
                p for i, c in enumerate(chunks)
                    for p in parse_sample_lines(c, f"{paths.rel(paths.live)} (new rows {i})", reader.problems,
                                                slo_of=slo_of, hours={k[0] for k in old})
                    if (p.start // HOUR_S, p.source) in old])
            parts = _tables(parts, late, _line_parts(existing, old, reader.problems, paths.rollup.name))
        if len(parts):
            computed = compute_rollups(parts, slo_of)
    merged.update(computed)
    keep_from = _epoch_hour(floor_hour(now - timedelta(days=rollup_retention_days)))
    merged = {k: v for k, v in merged.items() if k[0] >= keep_from}
    body = io.StringIO()
    body.write(ROLLUP_HEADER)
    for k in sorted(merged):
        body.write(merged[k])
    data = body.getvalue().encode("utf-8")
    try:
        old = paths.rollup.read_bytes()
    except FileNotFoundError:
        old = None
    changed = old != data
    if changed:
        atomic_write_bytes(paths.rollup, data)
    if st is not None:
        atomic_write_json(paths.rollup_state, _state_of(st))
    return RollupResult(len(computed), full, changed, len(merged), len(parts),
                        len(reader.problems), reader.problems, reader.quarantined)


def _tables(*parts: list[Part] | PartTable) -> PartTable:
    """Parts (lists or tables) as one table, in order."""
    return PartTable.concat([PartTable.from_parts(p) for p in parts])


def _state_of(st: os.stat_result) -> dict:
    """The rollup state that marks the live file ``st`` as rolled up to its end."""
    return {"dev": st.st_dev, "inode": st.st_ino, "offset": st.st_size}


def mark_rolled_up(paths: LatencyPaths) -> None:
    """Record the live file (as it is now) as fully rolled up: used right after the job
    itself rewrote it (retention) when the rollup was up to date before."""
    atomic_write_json(paths.rollup_state, _state_of(os.stat(paths.live)))


def rollup_is_current(paths: LatencyPaths) -> bool:
    """True when the rollup state covers the whole live file."""
    state = read_json_or(paths.rollup_state, None)
    try:
        st = os.stat(paths.live)
    except FileNotFoundError:
        return False
    return bool(state) and {k: state[k] for k in ("dev", "inode", "offset")} == _state_of(st)


def store_query(paths: LatencyPaths, *, slo_of: Callable[[str], float], start: datetime, end: datetime,
                by: str = "range") -> tuple[dict, list[Problem], list[str]]:
    """``model.query`` over the sample rows (live + archives) with windows in
    ``[start, end)``; (stats, bad-row problems, quarantine messages)."""
    reader = StoreReader(paths, slo_of, quarantine=False)
    hours = set(range(epoch(start) // HOUR_S, (epoch(end) - 1) // HOUR_S + 1))
    parts = reader.parts(hours=hours if len(hours) <= 24 * 400 else None)
    return (query(parts, by=by, slo_of=slo_of, start=epoch(start), end=epoch(end)), reader.problems,
            reader.quarantined)


__all__ = ["RAW_COLUMNS", "ROLLUP_COLUMNS", "compute_rollups", "update_rollups", "read_rollup", "rollup_parts",
           "mark_rolled_up", "rollup_is_current", "RollupResult", "StoreReader", "store_query",
           "parse_sample_lines"]
