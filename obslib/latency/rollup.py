"""Hourly rollups of the raw samples: ``ops/signal_latency_rollup.csv``.

One row per (``hour_utc``, ``source``)::

    hour_utc,source,p50_ms,p95_ms,samples,breach_flag,method,error_samples

``p50_ms``/``p95_ms`` are percentiles (ms, 3 decimals) of the ``latency_ms`` values (each
sample's window median) of the hour's ``ok``/``breach`` raw rows, by linear
interpolation (Hyndman-Fan type 7, ``method=type7_linear``); ``samples`` is their count,
``error_samples`` the count of ``error`` rows (an hour with only errors has empty
percentiles); ``breach_flag`` is ``p95_ms > slo_ms``. Rows are sorted by hour, then source.

Incremental: ``ops/signal_latency_rollup_state.json`` remembers the live file (device,
inode) and how many bytes were rolled up. Only hours that received new raw rows are
recomputed (from every raw row of those hours, live file and archives); after a rotation
the tail of the archived file is picked up through the manifest. Anything unexpected
(state missing, file replaced outside the job) falls back to a full recompute of the
hours still inside raw retention; older rollup rows are kept as they are. The file is
written atomically and only when its bytes change, so a rerun is byte-identical.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..storage import atomic_write_bytes, atomic_write_json
from ..timeutil import UTC, parse_ts
from .archive import floor_hour, raw_cutoff, read_archive_bytes, read_manifest
from .paths import LatencyPaths
from .store import RAW_COLUMNS, fmt_ms, read_json_or

ROLLUP_COLUMNS = ["hour_utc", "source", "p50_ms", "p95_ms", "samples", "breach_flag", "method", "error_samples"]
ROLLUP_HEADER = ",".join(ROLLUP_COLUMNS) + "\n"
METHOD = "type7_linear"
VALID_STATUSES = ("ok", "breach")


@dataclass
class RawArrays:
    """Raw rows as arrays: epoch hour, source code (into ``names``), latency ms, kind
    (1 = ok/breach, 2 = error, 0 = other)."""

    hour: np.ndarray
    code: np.ndarray
    latency: np.ndarray
    kind: np.ndarray
    names: list[str]

    def __len__(self) -> int:
        return int(self.hour.size)

    def select(self, mask: np.ndarray) -> RawArrays:
        """The rows where ``mask`` is true (same ``names``)."""
        return RawArrays(self.hour[mask], self.code[mask], self.latency[mask], self.kind[mask], self.names)


def _epoch_hour(ts: datetime) -> int:
    """Hours since the epoch of an aware time (the rollup key)."""
    return int(ts.timestamp()) // 3600


def _read_table(src: Path | bytes, what: str):
    import pyarrow as pa  # imported here: pyarrow's first use also imports pandas (~0.5 s)
    import pyarrow.csv as pacsv

    convert = pacsv.ConvertOptions(
        column_types={"timestamp_utc": pa.timestamp("s", tz="UTC"), "latency_ms": pa.float64(),
                      "source": pa.dictionary(pa.int32(), pa.string()),
                      "status": pa.dictionary(pa.int32(), pa.string())},
        include_columns=["timestamp_utc", "source", "latency_ms", "status"])
    data = pa.BufferReader(src) if isinstance(src, bytes) else str(src)
    try:
        return pacsv.read_csv(data, read_options=pacsv.ReadOptions(block_size=1 << 20), convert_options=convert)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(what, f"raw latency rows do not parse: {str(exc)[:200]}") from exc


def load_raw(sources: list[tuple[Path | bytes, str]]) -> RawArrays:
    """Read raw CSV files/bytes (header included; ``.gz`` paths are decompressed) into
    ``RawArrays`` with pyarrow (the full-recompute path, vectorised). ``sources`` is ``[(path_or_bytes, name_for_errors)]``. Raises
    ``InputError`` naming the file when a row does not parse."""
    import pyarrow as pa

    index: dict[str, int] = {}
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for src, what in sources:
        t = _read_table(src, what)
        ts = t.column("timestamp_utc")
        lat = t.column("latency_ms")
        for i in range(t.num_rows and ts.num_chunks):
            hours = ts.chunk(i).cast(pa.int64()).to_numpy(zero_copy_only=False) // 3600
            sc, st = t.column("source").chunk(i), t.column("status").chunk(i)
            smap = np.array([index.setdefault(v, len(index)) for v in sc.dictionary.to_pylist()], dtype=np.int32)
            kmap = np.array([1 if v in VALID_STATUSES else (2 if v == "error" else 0)
                             for v in st.dictionary.to_pylist()], dtype=np.int8)
            codes = smap[sc.indices.to_numpy(zero_copy_only=False)] if len(smap) else np.zeros(len(sc), np.int32)
            kinds = kmap[st.indices.to_numpy(zero_copy_only=False)] if len(kmap) else np.zeros(len(st), np.int8)
            lv = lat.chunk(i).to_numpy(zero_copy_only=False).astype(np.float64)
            parts.append((hours, codes, lv, kinds))
    names = sorted(index, key=index.get)
    if not parts:
        return RawArrays(np.empty(0, np.int64), np.empty(0, np.int32), np.empty(0), np.empty(0, np.int8), names)
    return RawArrays(*(np.concatenate([p[k] for p in parts]) for k in range(4)), names)


def load_raw_hours(chunks: list[tuple[bytes, str]], hours: set[int]) -> RawArrays:
    """Raw rows of the given epoch ``hours`` from raw CSV bytes (header lines skipped), in
    plain Python: the incremental path, which touches a few rows and so avoids pyarrow's
    start-up cost. Timestamps are the job's own ``YYYY-MM-DDTHH:MM:SSZ``. Raises
    ``InputError`` naming the file for a row that does not parse."""
    prefixes = {datetime.fromtimestamp(h * 3600, UTC).strftime("%Y-%m-%dT%H").encode("ascii"): h for h in hours}
    index: dict[str, int] = {}
    hr: list[int] = []
    code: list[int] = []
    lat: list[float] = []
    kind: list[int] = []
    for data, what in chunks:
        for n, line in enumerate(data.splitlines(), start=1):
            h = prefixes.get(line[:13])
            if h is None:
                continue
            parts = line.split(b",")
            try:
                src, status = parts[1].decode("utf-8"), parts[4].decode("ascii")
                value = float(parts[2]) if parts[2] else float("nan")
            except (IndexError, ValueError, UnicodeDecodeError) as exc:
                raise InputError(what, "raw latency row does not parse", line=n) from exc
            hr.append(h)
            code.append(index.setdefault(src, len(index)))
            lat.append(value)
            kind.append(1 if status in VALID_STATUSES else (2 if status == "error" else 0))
    return RawArrays(np.array(hr, dtype=np.int64), np.array(code, dtype=np.int32), np.array(lat, dtype=np.float64),
                     np.array(kind, dtype=np.int8), sorted(index, key=index.get))


BLOCK_ROWS = 1 << 16


def _block_quantiles(key: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, ...]:
    """(groups, p50, p95, counts) for one block: sort by (group, latency), type-7 lerp."""
    order = np.argsort(lat, kind="stable")
    order = order[np.argsort(key[order], kind="stable")]
    ks, vs = key[order], lat[order]
    groups, start, counts = np.unique(ks, return_index=True, return_counts=True)

    def q(p: float) -> np.ndarray:
        h = (counts - 1) * p
        lo = np.floor(h).astype(np.int64)
        hi = np.minimum(lo + 1, counts - 1)
        a, b = vs[start + lo], vs[start + hi]
        return a + (h - lo) * (b - a)

    return groups, q(0.5), q(0.95), counts


def compute_rollups(raw: RawArrays, slo_ms: float) -> dict[tuple[int, str], str]:
    """Rollup lines keyed by (epoch hour, source) for every hour/source in ``raw``.

    Vectorised and linear in the row count: rows are ordered by hour (a stable sort,
    nearly free on time-ordered files), cut into blocks of whole hours of about
    ``BLOCK_ROWS`` rows, and each block is sorted by (group, latency) on its own, so the
    cost per row does not grow with the total.
    """
    n_src = max(1, len(raw.names))
    valid = (raw.kind == 1) & ~np.isnan(raw.latency)
    hv, lv = raw.hour[valid].astype(np.int64), raw.latency[valid]
    kv = hv * n_src + raw.code[valid]
    if hv.size > 1 and not bool(np.all(hv[1:] >= hv[:-1])):
        o = np.argsort(hv, kind="stable")
        hv, lv, kv = hv[o], lv[o], kv[o]
    parts = []
    lo = 0
    while lo < hv.size:
        hi = min(hv.size, lo + BLOCK_ROWS)
        if hi < hv.size:  # extend to the end of the hour so no group straddles two blocks
            hi = int(np.searchsorted(hv, hv[hi - 1], side="right"))
        parts.append(_block_quantiles(kv[lo:hi], lv[lo:hi]))
        lo = hi
    err_groups, err_counts = np.unique(raw.hour[raw.kind == 2].astype(np.int64) * n_src
                                       + raw.code[raw.kind == 2], return_counts=True)
    stats: dict[int, list] = {}
    for groups, p50, p95, counts in parts:
        for g, a, b, c in zip(groups.tolist(), p50.tolist(), p95.tolist(), counts.tolist(), strict=True):
            stats[g] = [a, b, c, 0]
    for g, c in zip(err_groups.tolist(), err_counts.tolist(), strict=True):
        stats.setdefault(g, [None, None, 0, 0])[3] = c
    hour_text: dict[int, str] = {}
    out: dict[tuple[int, str], str] = {}
    for g, (a, b, c, e) in stats.items():
        hour, code = divmod(g, n_src)
        src = raw.names[code]
        hs = hour_text.get(hour)
        if hs is None:
            hs = hour_text[hour] = datetime.fromtimestamp(hour * 3600, UTC).strftime("%Y-%m-%dT%H:00:00Z")
        flag = "true" if (b is not None and b > slo_ms) else "false"
        out[(hour, src)] = f"{hs},{src},{fmt_ms(a)},{fmt_ms(b)},{c},{flag},{METHOD},{e}\n"
    return out


def read_rollup(path: Path) -> dict[tuple[int, str], str]:
    """Existing rollup lines keyed by (epoch hour, source); {} when missing."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    out = {}
    for i, line in enumerate(text.splitlines(keepends=True)[1:], start=2):
        parts = line.split(",")
        if len(parts) != len(ROLLUP_COLUMNS) or not line.endswith("\n"):
            raise InputError(path.name, "malformed rollup row", line=i)
        out[(_epoch_hour(parse_ts(parts[0])), parts[1])] = line
    return out


def _new_row_keys(chunks: list[bytes]) -> set[tuple[int, str]]:
    keys = set()
    for chunk in chunks:
        for line in chunk.splitlines():
            if not line or line.startswith(b"timestamp_utc,"):
                continue
            parts = line.split(b",", 2)
            keys.add((_epoch_hour(parse_ts(parts[0].decode("ascii"))), parts[1].decode("utf-8")))
    return keys


def _read_range(path: Path, start: int, end: int) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(start)
        data = fh.read(max(0, end - start))
    return data[: data.rfind(b"\n") + 1]


@dataclass
class RollupResult:
    """``rows_written``: rollup rows recomputed; ``full``: full recompute; ``changed``:
    the file's bytes changed; ``total_rows``: rows in the file; ``raw_rows``: raw rows read."""

    rows_written: int
    full: bool
    changed: bool
    total_rows: int
    raw_rows: int


def _all_sources(paths: LatencyPaths, manifest: dict, hours: tuple[int, int] | None) -> list:
    srcs: list[tuple[Path | bytes, str]] = []
    for e in manifest["entries"]:
        if hours is not None:
            lo, hi = hours
            if _epoch_hour(parse_ts(e["last_ts"])) < lo or _epoch_hour(parse_ts(e["first_ts"])) > hi:
                continue
        srcs.append((paths.archive_dir / e["path"], paths.rel(paths.archive_dir / e["path"])))
    if paths.live.exists():
        srcs.append((paths.live, paths.rel(paths.live)))
    return srcs


def update_rollups(paths: LatencyPaths, *, now: datetime, slo_ms: float, raw_retention_days: int,
                   rollup_retention_days: int, full: bool = False) -> RollupResult:
    """Bring the rollup file up to date (caller holds the latency lock). See the module
    docstring. Raises ``InputError`` for a raw or rollup file that does not parse."""
    state = read_json_or(paths.rollup_state, None)
    manifest = read_manifest(paths)
    try:
        st: os.stat_result | None = os.stat(paths.live)
    except FileNotFoundError:
        st = None
    live_end = st.st_size if st else 0
    chunks: list[bytes] = []
    full = full or state is None or not paths.rollup.exists()
    if not full:
        if st and (st.st_dev, st.st_ino) == (state["dev"], state["inode"]) and state["offset"] <= st.st_size:
            chunks.append(_read_range(paths.live, state["offset"], live_end))
        else:
            prev = [e for e in manifest["entries"]
                    if e.get("source_inode") == state["inode"] and e.get("source_bytes", -1) >= state["offset"]]
            if prev:
                data = read_archive_bytes(paths, max(prev, key=lambda e: e["created_at"]))
                chunks.append(data[state["offset"]:])
                if st:
                    chunks.append(_read_range(paths.live, 0, live_end))
            else:
                full = True
    cutoff_hour = _epoch_hour(raw_cutoff(now, raw_retention_days))
    existing = read_rollup(paths.rollup)
    computed: dict[tuple[int, str], str] = {}
    raw_rows = 0
    if full:
        raw = load_raw(_all_sources(paths, manifest, None))
        raw = raw.select(raw.hour >= cutoff_hour)
        raw_rows = len(raw)
        computed = compute_rollups(raw, slo_ms)
        merged = {k: v for k, v in existing.items() if k[0] < cutoff_hour}
    else:
        dirty = _new_row_keys(chunks)
        merged = {k: v for k, v in existing.items() if k not in dirty}
        if dirty:
            hours = {k[0] for k in dirty}
            srcs = []
            for src, what in _all_sources(paths, manifest, (min(hours), max(hours))):
                if isinstance(src, Path) and src.suffix == ".gz":
                    srcs.append((read_archive_bytes(paths, {"path": src.relative_to(paths.archive_dir).as_posix()}),
                                 what))
                else:
                    srcs.append((_read_range(src, 0, live_end), what))
            raw = load_raw_hours(srcs, hours)
            sel = np.array([(int(h), raw.names[c]) in dirty for h, c in zip(raw.hour, raw.code, strict=True)],
                           dtype=bool)
            raw = raw.select(sel)
            raw_rows = len(raw)
            computed = compute_rollups(raw, slo_ms)
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
    return RollupResult(len(computed), full, changed, len(merged), raw_rows)


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


__all__ = ["RAW_COLUMNS", "ROLLUP_COLUMNS", "compute_rollups", "load_raw", "update_rollups", "read_rollup",
           "mark_rolled_up", "rollup_is_current", "RollupResult", "RawArrays"]
