"""The vectorised first-run path of the event-log reader: a whole block of complete
event-form lines parsed at once with pyarrow, grouped into window parts with numpy.

It is an optimisation only, never a second set of rules. ``parse_block`` returns None
(and the caller uses the per-line ``LineParser`` path, with its file:line reports, held
rows and cursor) unless EVERY line passes vectorised checks that are at least as strict
as the per-line rules (``obslib.inputs.latency_events``):

- UTF-8 (no byte-order mark at the block's start: pyarrow would drop it), no ``"`` (no CSV
  quoting), no ``\\r``, no blank line, no line over
  ``MAX_LINE_BYTES``, every row with the header's field count, a header without
  repeated names;
- timestamps exactly ``YYYY-MM-DDTHH:MM:SSZ`` that round-trip (no Feb 30, no leap
  second, year >= 1);
- latencies empty (error rows only) or matching the strict number rule, finite, >= 0;
- statuses ASCII and, lower case, one of ``OK_STATUSES`` or ``ERROR_STATUSES``;
- every distinct ``source`` value accepted by the per-line source rule;
- no event later than ``now``.

``parts_from_block`` then gives exactly the parts ``model.parts_from_events`` gives for
the same events (same order, same sorted latency lists, same counts, same sketches), so
the rows written are byte-identical (tested: fast path vs per-line path).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from ..inputs.latency_events import ERROR_STATUSES, MAX_LINE_BYTES, OK_STATUSES, _source
from .model import Part
from .sketch import EXACT_MAX, Sketch

_TS_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"
_NUM_RE = r"^-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
_ERR_RE = "^(?:" + "|".join(re.escape(x) for x in sorted(ERROR_STATUSES)) + ")$"
_OK_RE = "^(?:" + "|".join(re.escape(x) for x in sorted(OK_STATUSES)) + ")$"  # "" included
_YEAR1 = -62135596800  # 0001-01-01T00:00:00Z
MIN_LINES = 1000  # below this the per-line path is as fast


@dataclass
class Block:
    """Events of a block as columns: ``ts`` epoch seconds (int64), ``lat`` ms (float64,
    NaN = none), ``error`` (bool), ``code`` index into ``sources`` (the row's source as
    the per-line rule gives it, None for an empty cell), ``lines`` lines consumed."""

    ts: np.ndarray
    lat: np.ndarray
    error: np.ndarray
    code: np.ndarray
    sources: list[str | None]
    lines: int

    @property
    def size(self) -> int:
        return int(self.ts.size)

    def max_ts(self) -> int | None:
        return int(self.ts.max()) if self.ts.size else None


def _np(arr, dtype) -> np.ndarray:
    """A null-free pyarrow Array as a numpy copy, straight from its buffers (``to_numpy``
    would import pandas: ~0.2 s of a first run)."""
    if arr.null_count:
        raise ValueError("nulls")
    buf = arr.buffers()[1]
    if dtype is bool:
        bits = np.unpackbits(np.frombuffer(buf, dtype=np.uint8), bitorder="little")
        return bits[arr.offset:arr.offset + len(arr)].astype(bool)
    dt = np.dtype(dtype)
    return np.frombuffer(buf, dtype=dt, count=len(arr), offset=arr.offset * dt.itemsize).copy()


def parse_block(block: bytes, header: list[str], *, i_ts: int, i_lat: int, i_status: int, i_src: int | None,
                now: datetime | None) -> Block | None:
    """``block``: complete event-form lines (ending with a newline, header excluded).
    The columns, or None when any line needs the per-line path (see the module doc)."""
    nlines = block.count(b"\n")
    if nlines < MIN_LINES or not block.endswith(b"\n") or len(set(header)) != len(header):
        return None
    if b'"' in block or b"\r" in block or b"\n\n" in block or block.startswith((b"\n", b"\xef\xbb\xbf")):
        return None
    nl = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 10)
    if int(np.diff(np.concatenate(([-1], nl))).max()) - 1 > MAX_LINE_BYTES:
        return None
    try:
        block.decode("utf-8")
    except UnicodeDecodeError:
        return None
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    names = [f"c{i}" for i in range(len(header))]
    want = [i_ts, i_lat, i_status] + ([i_src] if i_src is not None else [])
    try:
        tbl = pacsv.read_csv(
            pa.BufferReader(block),
            read_options=pacsv.ReadOptions(column_names=names),
            parse_options=pacsv.ParseOptions(quote_char=False, newlines_in_values=False, ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(include_columns=[names[i] for i in want],
                                                 column_types={names[i]: pa.string() for i in want},
                                                 strings_can_be_null=False, quoted_strings_can_be_null=False))
    except (pa.ArrowInvalid, pa.ArrowException, ValueError):
        return None
    if tbl.num_rows != nlines:
        return None

    def col(i: int):
        return tbl.column(names[i]).combine_chunks()

    def all_true(arr) -> bool:
        return arr.null_count == 0 and bool(pc.all(arr).as_py())

    ts_s = col(i_ts)
    if not all_true(pc.match_substring_regex(ts_s, _TS_RE)):
        return None
    tsv = pc.strptime(ts_s, format="%Y-%m-%dT%H:%M:%SZ", unit="s", error_is_null=True)
    if tsv.null_count:
        return None
    # strptime normalises (Feb 30 -> Mar 1): every field must read back as written
    for fn, a, z in ((pc.year, 0, 4), (pc.month, 5, 7), (pc.day, 8, 10), (pc.hour, 11, 13), (pc.minute, 14, 16),
                     (pc.second, 17, 19)):
        written = pc.cast(pc.utf8_slice_codeunits(ts_s, a, z), pa.int64())
        if not all_true(pc.equal(fn(tsv), written)):
            return None
    ts = _np(tsv.cast(pa.int64()), np.int64)
    if ts.size and int(ts.min()) < _YEAR1:
        return None  # a date that does not exist (strptime normalises it)
    if now is not None and ts.size and int(ts.max()) > now.timestamp():
        return None  # held or future rows: the per-line path decides
    st = col(i_status)
    if not all_true(pc.string_is_ascii(st)):
        return None
    # (no Python scalars in pyarrow calls: converting one imports pandas, ~0.3 s)
    is_err = pc.match_substring_regex(st, _ERR_RE, ignore_case=True)
    is_ok = pc.match_substring_regex(st, _OK_RE, ignore_case=True)
    if not all_true(pc.or_(is_err, is_ok)):
        return None
    error = _np(is_err, bool)
    lat_s = col(i_lat)
    is_empty = pc.match_substring_regex(lat_s, "^$")
    empty = _np(is_empty, bool)
    if (empty & ~error).any():
        return None  # "no latency_ms": a bad row
    if not all_true(pc.or_(is_empty, pc.match_substring_regex(lat_s, _NUM_RE))):
        return None
    try:
        lat = _np(pc.cast(pc.replace_substring_regex(lat_s, pattern="^$", replacement="0"), pa.float64()),
                  np.float64)
    except (pa.ArrowInvalid, ValueError):
        return None
    lat = lat.astype(np.float64, copy=True)
    if not np.isfinite(lat).all() or (lat < 0).any():
        return None
    lat[empty] = np.nan
    if i_src is None:
        code = np.zeros(ts.size, dtype=np.int64)
        sources: list[str | None] = [None]
    else:
        enc = col(i_src).dictionary_encode()
        try:
            sources = [_source(v) for v in enc.dictionary.to_pylist()]
        except ValueError:
            return None
        code = _np(enc.indices, np.int32).astype(np.int64)
    return Block(ts, lat, error, code, sources, nlines)


def parts_from_block(b: Block, name_of: Callable[[str | None], str | None], *, window_s: int,
                     slo_of: Callable[[str], float]) -> list[Part]:
    """The window parts of the block's events, each named ``name_of(row source)`` (None:
    not counted), exactly as ``model.parts_from_events`` builds them: sorted by (start,
    source), latencies of non-error events sorted, errors counted, ``bad`` above the SLO."""
    names_of_code = [name_of(s) for s in b.sources]
    uniq = sorted({n for n in names_of_code if n is not None})
    if not uniq or b.size == 0:
        return []
    rank_of = {n: i for i, n in enumerate(uniq)}
    rank = np.array([rank_of[n] if n is not None else -1 for n in names_of_code], dtype=np.int64)
    r = rank[b.code]
    keep = r >= 0
    ts, lat, err, r = b.ts[keep], b.lat[keep], b.error[keep], r[keep]
    if ts.size == 0:
        return []
    win = ts - ts % window_s
    w0 = int(win.min())
    key = ((win - w0) // window_s) * len(uniq) + r
    uk = np.unique(key)
    valid = ~err & ~np.isnan(lat)
    kv, vv = key[valid], lat[valid]
    o = np.lexsort((vv, kv))
    kv, vv = kv[o], vv[o]
    lo = np.searchsorted(kv, uk, "left").tolist()
    hi = np.searchsorted(kv, uk, "right").tolist()
    nerr = np.bincount(np.searchsorted(uk, key[err]), minlength=uk.size).tolist()
    vals = vv.tolist()
    slos = [slo_of(n) for n in uniq]
    nn = len(uniq)
    out = []
    for i, k in enumerate(uk.tolist()):
        src_i = k % nn
        a, z = lo[i], hi[i]
        lats = vals[a:z]
        n = z - a
        bad = n - bisect.bisect_right(lats, slos[src_i])
        sk = Sketch(n, None, None, lats, lats[-1] if n else None) if n <= EXACT_MAX else Sketch.of(lats)
        out.append(Part(uniq[src_i], w0 + (k // nn) * window_s, window_s, n + nerr[i], bad, nerr[i], sk))
    return out
