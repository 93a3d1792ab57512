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

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from ..inputs.latency_events import ERROR_STATUSES, MAX_LINE_BYTES, OK_STATUSES, _source
from .model import HOUR_S
from .table import PartTable
from .texts import PLAIN_RE, ValueTexts

_NUM_RE = r"^-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
MIN_LINES = 1000  # below this the per-line path is as fast


@dataclass
class Block:
    """Events of a block as columns: ``ts`` epoch seconds (int64), ``lat`` ms (float64,
    NaN = none), ``error`` (bool), ``code`` index into ``sources`` (the row's source as
    the per-line rule gives it, None for an empty cell), ``lines`` lines consumed,
    ``texts`` each latency's text as the exact sketch writes it."""

    ts: np.ndarray
    lat: np.ndarray
    error: np.ndarray
    code: np.ndarray
    sources: list[str | None]
    lines: int
    texts: ValueTexts | None = None  # the latencies' sketch text (``texts``), per event

    @property
    def size(self) -> int:
        return int(self.ts.size)

    def max_ts(self) -> int | None:
        return int(self.ts.max()) if self.ts.size else None


def numpy_of(arr, dtype) -> np.ndarray:
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


def _strings(arr) -> tuple[np.ndarray, np.ndarray]:
    """A null-free pyarrow string array's bytes (uint8) and offsets (int64, n + 1)."""
    off = np.frombuffer(arr.buffers()[1], dtype=np.int32, count=len(arr) + 1, offset=arr.offset * 4)
    data = arr.buffers()[2]
    return (np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)), off.astype(np.int64)


_TS_SHAPE = np.frombuffer(b"0000-00-00T00:00:00Z", dtype=np.uint8)
_DIGIT_AT = _TS_SHAPE == ord("0")


def _epoch_seconds(buf: np.ndarray, off: np.ndarray) -> np.ndarray | None:
    """Epoch seconds of timestamp cells (``buf`` bytes, ``off`` offsets), or None unless
    every cell is exactly ``YYYY-MM-DDTHH:MM:SSZ`` (ASCII digits) naming a real UTC time
    of years 1..9999 with seconds 0..59 (what ``datetime.fromisoformat`` accepts)."""
    n = off.size - 1
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if not bool((np.diff(off) == 20).all()) or int(off[0]) + 20 * n > buf.size:
        return None
    c = buf[int(off[0]):int(off[0]) + 20 * n].reshape(n, 20)
    if not bool((c[:, ~_DIGIT_AT] == _TS_SHAPE[~_DIGIT_AT]).all()):
        return None
    d = c[:, _DIGIT_AT] - np.uint8(ord("0"))  # (n, 14); a byte below "0" wraps above 9
    if not bool((d <= 9).all()):
        return None
    d = d.astype(np.int32)
    y = d[:, 0] * 1000 + d[:, 1] * 100 + d[:, 2] * 10 + d[:, 3]
    mo, dd, hh, mi, ss = (d[:, i] * 10 + d[:, i + 1] for i in (4, 6, 8, 10, 12))
    leap = (y % 4 == 0) & ((y % 100 != 0) | (y % 400 == 0))
    mdays = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])[np.clip(mo, 0, 12)] + (leap & (mo == 2))
    if not bool(((y >= 1) & (mo >= 1) & (mo <= 12) & (dd >= 1) & (dd <= mdays) & (hh <= 23) & (mi <= 59)
                 & (ss <= 59)).all()):
        return None
    # days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil)
    yy = y - (mo <= 2)
    era = yy // 400
    yoe = yy - era * 400
    doy = (153 * (mo + np.where(mo > 2, -3, 9)) + 2) // 5 + dd - 1
    days = (era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468).astype(np.int64)
    return days * 86400 + (hh * 3600 + mi * 60 + ss)


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
    import pyarrow.csv as pacsv

    try:  # the kernels themselves: ``pyarrow.compute`` builds ~1000 Python wrappers on import (~25 ms)
        import pyarrow._compute as pcx
    except ImportError:  # pragma: no cover - a pyarrow without the private module
        import pyarrow.compute as pcx

    def call(name: str, arr, options=None):
        return pcx.call_function(name, [arr], options)

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

    ts = _epoch_seconds(*_strings(col(i_ts)))
    if ts is None:
        return None
    if now is not None and ts.size and int(ts.max()) > now.timestamp():
        return None  # held or future rows: the per-line path decides
    st = call("dictionary_encode", col(i_status))  # a few distinct statuses, checked one by one
    words = st.dictionary.to_pylist()
    if not all(w.isascii() and w.lower() in OK_STATUSES | ERROR_STATUSES for w in words):
        return None
    error = np.array([w.lower() in ERROR_STATUSES for w in words], dtype=bool)[numpy_of(st.indices, np.int32)]
    lat_s = col(i_lat)
    lat_buf, lat_off = _strings(lat_s)
    empty = lat_off[1:] == lat_off[:-1]
    if (empty & ~error).any():
        return None  # "no latency_ms": a bad row
    plain = numpy_of(call("match_substring_regex", lat_s, options=pcx.MatchSubstringOptions(PLAIN_RE)), bool)
    if not (plain | empty).all() and not (  # (plain cells are a subset of the strict number rule)
            numpy_of(call("match_substring_regex", lat_s, options=pcx.MatchSubstringOptions(_NUM_RE)), bool) | empty).all():
        return None
    try:
        cells = call("replace_substring_regex", lat_s, options=pcx.ReplaceSubstringOptions("^$", "0")) \
            if empty.any() else lat_s
        lat = numpy_of(call("cast", cells, options=pcx.CastOptions(pa.float64())), np.float64)
    except (pa.ArrowInvalid, ValueError):
        return None
    if not np.isfinite(lat).all() or (lat < 0).any():
        return None
    lat[empty] = np.nan
    texts = ValueTexts.from_cells(lat_buf, lat_off, plain, lat, ~empty)
    if i_src is None:
        code = np.zeros(ts.size, dtype=np.int64)
        sources: list[str | None] = [None]
    else:
        enc = call("dictionary_encode", col(i_src))
        try:
            sources = [_source(v) for v in enc.dictionary.to_pylist()]
        except ValueError:
            return None
        code = numpy_of(enc.indices, np.int32).astype(np.int64)
    return Block(ts, lat, error, code, sources, nlines, texts)


def parts_from_block(b: Block, name_of: Callable[[str | None], str | None], *, window_s: int,
                     slo_of: Callable[[str], float]) -> PartTable:
    """The window parts of the block's events, each named ``name_of(row source)`` (None:
    not counted), exactly as ``model.parts_from_events`` builds them, as a ``PartTable``:
    sorted by (start, source), latencies of non-error events sorted, errors counted,
    ``bad`` above the SLO."""
    names_of_code = [name_of(s) for s in b.sources]
    uniq = sorted({n for n in names_of_code if n is not None})
    if not uniq or b.size == 0:
        return PartTable.empty()
    rank_of = {n: i for i, n in enumerate(uniq)}
    rank = np.array([rank_of[n] if n is not None else -1 for n in names_of_code], dtype=np.int64)
    r = rank[b.code]
    keep = r >= 0
    ts, lat, err, r = b.ts[keep], b.lat[keep], b.error[keep], r[keep]
    if ts.size == 0:
        return PartTable.empty()
    win = ts - ts % window_s
    w0 = int(win.min())
    nn = len(uniq)
    key = ((win - w0) // window_s) * nn + r
    valid = ~err & ~np.isnan(lat)
    # one stable sort by (hour, source, latency, window), the events without a latency last;
    # then by window (stable): by (part, latency), as each part's list.sort
    hour = win // HOUR_S
    hkey = (hour - int(hour.min())) * nn + r
    lv = np.where(valid, lat, np.inf)
    if np.signbit(lv).any():  # a -0.0: equal latencies (0.0, -0.0) must keep their order
        o_h = np.lexsort((key, lv, hkey))
    else:  # equal latencies are the same double with the same text: any order of them will do
        o_v = np.argsort(lv)
        o_h = o_v[np.argsort(hkey[o_v], kind="stable")]
    o = o_h[np.argsort(key[o_h], kind="stable")]
    ks = key[o]
    first = np.concatenate(([True], ks[1:] != ks[:-1]))
    uk = ks[first]  # (window, source) order
    part = np.cumsum(first) - 1
    vs = valid[o]
    pv, vv = part[vs], lat[o][vs]
    texts = b.texts.take(np.flatnonzero(keep)[o][vs]) if b.texts is not None else None
    at = np.full(o.size, -1, dtype=np.int64)
    at[o[vs]] = np.arange(int(vs.sum()))  # event -> its position in the parts' values
    by_hour = at[o_h[valid[o_h]]]
    count = np.bincount(pv, minlength=uk.size)
    nerr = np.bincount(part[err[o]], minlength=uk.size)
    slos = np.array([slo_of(n) for n in uniq], dtype=np.float64)
    bad = np.bincount(pv[vv > slos[uk[pv] % nn]], minlength=uk.size)
    return PartTable.from_sorted_values(uniq, uk % nn, w0 + (uk // nn) * window_s, np.full(uk.size, window_s),
                                        count + nerr, bad, nerr, count, vv, texts, by_hour)
