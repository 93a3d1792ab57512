"""A deterministic, mergeable latency sketch: DDSketch's logarithmic mapping (alpha = 1 %)
plus the exact values while there are few of them.

The mapping is the one of the ``ddsketch`` library's ``LogarithmicMapping(0.01)`` (tests
check it against the library): ``gamma = 1 + 2*alpha/(1-alpha)``, ``multiplier = ln 2 /
log1p(2*alpha/(1-alpha))``, a value ``v > 0`` goes to the bucket ``key = ceil(log2(v) *
multiplier)`` and a bucket stands for ``2**(key/multiplier) * 2/(1+gamma)``; values
``<= 2.2e-308`` (zero latencies) are counted in ``zero``. The q-quantile is the bucket
holding rank ``r = floor(q*(n-1))`` (0-based), as ``DDSketch.get_quantile_value``, and
then, as type 7 does between values, interpolated linearly towards the bucket of rank
``r + 1`` by ``q*(n-1) - r``; clamped to the exact maximum (which only moves it closer).

Bound: each bucket's value is within ``alpha`` of every value in it, so the library's rule
gives ``|v_r - x_r| <= alpha * x_r`` for the value ``x_r`` at rank ``r``, and the
interpolated estimate ``(1-f) v_r + f v_(r+1)`` is within ``alpha`` of the exact type-7
value ``(1-f) x_r + f x_(r+1)``: ``|estimate - type7| <= alpha * type7``.

Exact part: while ``count <= EXACT_MAX`` the sorted values themselves are kept and the
quantiles are exact type 7 (``method = exact_type7``). Merging adds bucket counts (and
concatenates the exact values while the union still has at most ``EXACT_MAX``), so a
sketch is a function of the multiset of values only: any split into windows, any order
of merging gives the same sketch and the same text (``to_text``).

Text form (no commas, so it fits a CSV field):

- ``x1:<v1>;<v2>;...`` the sorted exact values (shortest round-trip decimal, ``.0`` dropped);
- ``dd1:<base64>``: little-endian ``<B width, i first key, I bins, d max, Q zero>`` then
  ``bins`` uint8 gaps (key step from the previous bin, a zero-count bin fills a gap over 255)
  and ``bins`` counts of ``width`` bytes (1, 2, 4 or 8).
"""

from __future__ import annotations

import base64
import math
import struct
import sys
from collections.abc import Iterable, Sequence

import numpy as np

ALPHA = 0.01
EXACT_MAX = 64
_GM = 2 * ALPHA / (1 - ALPHA)
GAMMA = 1 + _GM
MULTIPLIER = math.log(2) / math.log1p(_GM)
MIN_POSITIVE = sys.float_info.min * GAMMA
_LN2 = math.log(2)
_HEAD = struct.Struct("<BiIdQ")
METHOD_EXACT = "exact_type7"
METHOD_SKETCH = "ddsketch_a0.01"


def keys_of(values: np.ndarray) -> np.ndarray:
    """Bucket keys (int64) of positive values (ms), vectorised; same as the library's
    ``LogarithmicMapping(0.01).key``."""
    v = np.asarray(values, dtype=np.float64)
    return np.ceil(np.log(v) / _LN2 * MULTIPLIER).astype(np.int64)


def value_of(key: int) -> float:
    """The value a bucket stands for (the library's ``LogarithmicMapping.value``)."""
    return math.pow(2.0, key / MULTIPLIER) * (2.0 / (1 + GAMMA))


def _fmt(v: float) -> str:
    s = repr(float(v))
    return s[:-2] if s.endswith(".0") else s


def type7(sorted_values: Sequence[float], q: float) -> float | None:
    """Linear (Hyndman-Fan type 7) quantile, q in [0, 1], of already sorted values."""
    n = len(sorted_values)
    if n == 0:
        return None
    h = (n - 1) * q
    lo = math.floor(h)
    hi = min(lo + 1, n - 1)
    return _lerp(float(sorted_values[lo]), float(sorted_values[hi]), h - lo)


def _lerp(a: float, b: float, t: float) -> float:
    """numpy's lerp (so exact results equal ``np.percentile``)."""
    if a == b:
        return a
    d = b - a
    return b - d * (1 - t) if t >= 0.5 else a + d * t


class Sketch:
    """Latencies (ms, >= 0) of a set of events. ``bins`` maps key -> count (positive
    values), ``zero`` counts values too small to map, ``exact`` holds the sorted values
    while ``count <= EXACT_MAX`` (else None), ``max`` the exact maximum (None when empty).
    While exact, ``bins``/``zero`` are derived from the values when first needed (so small
    windows never touch numpy); equality compares the distribution, not how it was built."""

    __slots__ = ("count", "exact", "max", "_bins", "_zero")

    def __init__(self, count: int = 0, zero: int | None = 0, bins: dict[int, int] | None = None,
                 exact: list[float] | None = None, max: float | None = None):  # noqa: A002
        self.count = count
        self.exact = exact if exact is not None else ([] if count == 0 else None)
        self.max = max
        self._bins = bins if bins is not None or self.exact is not None else {}
        self._zero = zero
        if self.exact is not None and bins is None:
            self._zero = None

    @property
    def bins(self) -> dict[int, int]:
        if self._bins is None:
            self._derive()
        return self._bins

    @property
    def zero(self) -> int:
        if self._zero is None:
            self._derive()
        return self._zero

    def _derive(self) -> None:
        arr = np.asarray(self.exact, dtype=np.float64)
        pos = arr[arr > MIN_POSITIVE]
        bins: dict[int, int] = {}
        if pos.size:
            k, c = np.unique(keys_of(pos), return_counts=True)
            bins = dict(zip(k.tolist(), c.tolist(), strict=True))
        self._bins, self._zero = bins, int(arr.size - pos.size)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sketch):
            return NotImplemented
        return (self.count, self.max, self.exact, self.zero, self.bins) == (
            other.count, other.max, other.exact, other.zero, other.bins)

    def __repr__(self) -> str:
        return f"Sketch(count={self.count}, max={self.max}, exact={self.exact is not None}, bins={len(self.bins)})"

    # --- building -----------------------------------------------------------------------
    @classmethod
    def of(cls, values: Iterable[float]) -> Sketch:
        """The sketch of ``values`` (ms; finite and >= 0, the caller checks)."""
        if not isinstance(values, np.ndarray):
            vals = sorted(float(v) for v in values)
            if len(vals) <= EXACT_MAX:
                return cls(len(vals), None, None, vals, vals[-1] if vals else None)
            values = np.asarray(vals, dtype=np.float64)
        return cls.of_sorted(np.sort(np.asarray(values, dtype=np.float64)))

    @classmethod
    def of_sorted(cls, arr: np.ndarray) -> Sketch:
        n = int(arr.size)
        if n == 0:
            return cls()
        if n <= EXACT_MAX:
            vals = arr.tolist()
            return cls(n, None, None, vals, vals[-1])
        pos = arr[arr > MIN_POSITIVE]
        bins: dict[int, int] = {}
        if pos.size:
            k, c = np.unique(keys_of(pos), return_counts=True)
            bins = dict(zip(k.tolist(), c.tolist(), strict=True))
        return cls(n, n - int(pos.size), bins, None, float(arr[-1]))

    def merge(self, other: Sketch) -> Sketch:
        """A new sketch of the union (neither input changes)."""
        return Sketch.merge_all([self, other])

    def copy(self) -> Sketch:
        if self.exact is not None:
            return Sketch(self.count, None, None, list(self.exact), self.max)
        return Sketch(self.count, self.zero, dict(self.bins), None, self.max)

    @staticmethod
    def merge_all(sketches: Iterable[Sketch]) -> Sketch:
        """The sketch of the union of several (in any order: the result is the same)."""
        parts = [s for s in sketches if s.count]
        if not parts:
            return Sketch()
        if len(parts) == 1:
            return parts[0].copy()
        n = sum(s.count for s in parts)
        mx = max(s.max for s in parts)
        if n <= EXACT_MAX:  # every part is exact then
            return Sketch(n, None, None, sorted(v for s in parts for v in s.exact), mx)
        bins: dict[int, int] = {}
        for s in parts:
            for k, c in s.bins.items():
                bins[k] = bins.get(k, 0) + c
        return Sketch(n, sum(s.zero for s in parts), bins, None, mx)

    # --- reading ------------------------------------------------------------------------
    @property
    def method(self) -> str:
        """``exact_type7`` while the values are kept, else ``ddsketch_a0.01``."""
        return METHOD_EXACT if self.exact is not None else METHOD_SKETCH

    def quantile(self, q: float, *, clamp: bool = True) -> float | None:
        """The q-quantile (q in [0, 1]) in ms; None when empty. Exact type 7 while the
        values are kept, else the DDSketch estimate (see the module docstring)."""
        if self.count == 0:
            return None
        if self.exact is not None:
            return type7(self.exact, q)
        return self.sketch_quantile(q, clamp=clamp)

    def _value_at_rank(self, rank: float, keys: list[int]) -> float:
        """The value of the bucket holding 0-based ``rank`` (the library's rule)."""
        if rank < self.zero:
            return 0.0
        rank -= self.zero
        run = 0
        key = keys[-1]
        for key in keys:
            run += self.bins[key]
            if run > rank:
                break
        return value_of(key)

    def sketch_quantile(self, q: float, *, clamp: bool = True, interpolate: bool = True) -> float | None:
        """The sketch's estimate even when exact values are kept. ``interpolate=False`` is
        the ``ddsketch`` library's ``get_quantile_value`` (the bucket of rank q(n-1));
        the default interpolates linearly between the buckets of ranks floor(h) and
        floor(h)+1 (h = q(n-1)), as type 7 does between the values, so the estimate is
        within ``ALPHA`` of the exact type-7 value; clamped to the exact maximum."""
        if self.count == 0:
            return None
        keys = sorted(self.bins)
        h = q * (self.count - 1)
        if not interpolate:
            v = self._value_at_rank(h, keys)
        else:
            lo = math.floor(h)
            a = self._value_at_rank(lo, keys)
            b = self._value_at_rank(min(lo + 1, self.count - 1), keys)
            v = _lerp(a, b, h - lo)
        return min(v, self.max) if clamp and self.max is not None else v

    def count_above(self, threshold: float) -> int:
        """Values strictly above ``threshold`` (ms): exact while the values are kept, else
        counted by bucket (a bucket's values are within alpha of its value)."""
        if self.exact is not None:
            return sum(1 for v in self.exact if v > threshold)
        return sum(c for k, c in self.bins.items() if value_of(k) > threshold)

    # --- text ---------------------------------------------------------------------------
    def to_text(self) -> str:
        """The text form (see the module docstring); ``""`` for an empty sketch."""
        if self.count == 0:
            return ""
        if self.exact is not None:
            return "x1:" + ";".join([r[:-2] if (r := repr(v)).endswith(".0") else r
                                     for v in map(float, self.exact)])  # _fmt, inlined
        keys = sorted(self.bins)
        ks: list[int] = []
        cs: list[int] = []
        prev = None
        for k in keys:
            if prev is not None:
                while k - prev > 255:
                    prev += 255
                    ks.append(255)
                    cs.append(0)
                ks.append(k - prev)
            else:
                ks.append(0)
            cs.append(self.bins[k])
            prev = k
        top = max(cs) if cs else 0
        width, dt = next((w, d) for w, d, lim in ((1, "<u1", 1 << 8), (2, "<u2", 1 << 16), (4, "<u4", 1 << 32),
                                                  (8, "<u8", 1 << 64)) if top < lim)
        head = _HEAD.pack(width, keys[0] if keys else 0, len(cs), float(self.max), self.zero)
        body = np.array(ks, dtype=np.uint8).tobytes() + np.array(cs, dtype=dt).tobytes()
        return "dd1:" + base64.b64encode(head + body).decode("ascii")

    @classmethod
    def from_text(cls, text: str) -> Sketch:
        """Parse ``to_text`` output. Raises ValueError for anything else."""
        text = (text or "").strip()
        if not text:
            return cls()
        if text.startswith("x1:"):
            vals = [float(v) for v in text[3:].split(";")]
            if any(not math.isfinite(v) or v < 0 for v in vals) or vals != sorted(vals) or len(vals) > EXACT_MAX:
                raise ValueError("exact sketch values must be sorted, finite, >= 0 and at most "
                                 f"{EXACT_MAX}")
            return cls(len(vals), None, None, vals, vals[-1])
        if text.startswith("dd1:"):
            try:
                raw = base64.b64decode(text[4:], validate=True)
                width, k0, nb, mx, zero = _HEAD.unpack_from(raw)
            except (ValueError, struct.error) as exc:
                raise ValueError(f"sketch does not decode: {exc}") from exc
            dt = {1: "<u1", 2: "<u2", 4: "<u4", 8: "<u8"}.get(width)
            if dt is None or len(raw) != _HEAD.size + nb * (1 + width) or not math.isfinite(mx):
                raise ValueError("sketch has the wrong length or width")
            gaps = np.frombuffer(raw, dtype=np.uint8, count=nb, offset=_HEAD.size).astype(np.int64)
            counts = np.frombuffer(raw, dtype=dt, count=nb, offset=_HEAD.size + nb)
            keys = k0 + np.cumsum(gaps)
            keep = counts > 0
            bins = dict(zip(keys[keep].tolist(), counts[keep].tolist(), strict=True))
            n = int(counts.sum()) + int(zero)
            if n <= EXACT_MAX:
                raise ValueError("a bucket sketch must hold more than the exact limit")
            return cls(n, int(zero), bins, None, float(mx))
        raise ValueError(f"unknown sketch form {text[:12]!r}")


def grouped_sketches(groups: np.ndarray, values: np.ndarray) -> dict[int, Sketch]:
    """Sketches of ``values`` grouped by the int64 ``groups`` (same length), vectorised:
    one sort by (group, value), then each group's slice. Returns {group: Sketch}."""
    groups = np.asarray(groups, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    if groups.size == 0:
        return {}
    order = np.lexsort((values, groups))
    g, v = groups[order], values[order]
    uniq, start, counts = np.unique(g, return_index=True, return_counts=True)
    pos = v > MIN_POSITIVE
    keys = np.zeros(v.size, dtype=np.int64)
    keys[pos] = keys_of(v[pos])
    out: dict[int, Sketch] = {}
    for gi, s, c in zip(uniq.tolist(), start.tolist(), counts.tolist(), strict=True):
        seg = v[s:s + c]
        segpos = pos[s:s + c]
        npos = int(segpos.sum())
        bins: dict[int, int] = {}
        if npos:
            kk = keys[s:s + c][segpos]  # sorted, since values are sorted
            cut = np.flatnonzero(np.diff(kk)) + 1
            bk = kk[np.concatenate(([0], cut))]
            bc = np.diff(np.concatenate(([0], cut, [kk.size])))
            bins = dict(zip(bk.tolist(), bc.tolist(), strict=True))
        out[gi] = (Sketch(c, None, None, seg.tolist(), float(seg[-1])) if c <= EXACT_MAX
                   else Sketch(c, c - npos, bins, None, float(seg[-1])))
    return out


class DenseGroups:
    """Sketches of many groups at once, for bulk rollups (bench, backfills): dense group ids
    ``gid`` (int, >= 0) and ``values`` (ms), added in batches with ``add`` (memory: the
    (group x bucket) count matrix plus one batch). One ``bincount`` over (group, key) per
    batch instead of a sort; quantiles for every group in a few array passes; the exact
    values of groups that stay at or under ``EXACT_MAX``. ``sketch(g)`` equals ``Sketch.of``
    of that group's values, ``text(g)`` its ``to_text()`` (both tested)."""

    def __init__(self, gid: np.ndarray | None = None, ngroups: int = 0, values: np.ndarray | None = None):
        self.ngroups = 0
        self.kmin = 0
        self.width = 0
        self._counts = np.zeros((0, 0), dtype=np.int32)  # rows beyond ngroups: room to grow
        self.count = np.zeros(0, dtype=np.int64)
        self.max = np.zeros(0)
        self.exact: dict[int, list[float]] = {}
        self._cum: np.ndarray | None = None
        self._grow(ngroups, None, None)
        if gid is not None and values is not None:
            self.add(gid, values)

    @property
    def counts(self) -> np.ndarray:
        """The (group x bucket) count matrix (int32, int64 once a group could overflow it)."""
        return self._counts[:self.ngroups]

    @property
    def zero(self) -> np.ndarray:
        return self.count - self.counts.sum(axis=1)

    def _grow(self, ngroups: int, kmin: int | None, kmax: int | None) -> None:
        """Room for ``ngroups`` groups and keys ``kmin..kmax``: rows grow by half again (a
        time-ordered feed adds groups batch after batch), keys by what is needed."""
        g = max(ngroups, self.ngroups)
        lo = self.kmin if self.width else (kmin if kmin is not None else 0)
        hi = self.kmin + self.width - 1 if self.width else (kmax if kmax is not None else -1)
        if kmin is not None:
            lo, hi = min(lo, kmin), max(hi, kmax)
        width = max(0, hi - lo + 1)
        if (lo, width) != (self.kmin, self.width) or g > self._counts.shape[0]:
            rows = g if (lo, width) != (self.kmin, self.width) and g <= self._counts.shape[0] else max(
                g, self._counts.shape[0] * 3 // 2)
            counts = np.zeros((rows, width), dtype=self._counts.dtype)
            if self.width:
                off = self.kmin - lo
                counts[:self.ngroups, off:off + self.width] = self.counts
            self._counts, self.kmin, self.width = counts, lo, width
        self.count = np.concatenate([self.count, np.zeros(g - self.ngroups, dtype=np.int64)])
        self.max = np.concatenate([self.max, np.full(g - self.ngroups, -np.inf)])
        self.ngroups = g

    def add(self, gid: np.ndarray, values: np.ndarray) -> None:
        """Add a batch (same length arrays; values finite and >= 0)."""
        gid = np.asarray(gid, dtype=np.int64)
        values = np.asarray(values, dtype=np.float64)
        if gid.size == 0:
            return
        self._cum = None
        pos = values > MIN_POSITIVE
        keys = keys_of(values[pos])
        self._grow(int(gid.max()) + 1, int(keys.min()) if keys.size else None,
                   int(keys.max()) if keys.size else None)
        if self._counts.dtype == np.int32 and int(self.count.max(initial=0)) + gid.size > np.iinfo(np.int32).max:
            self._counts = self._counts.astype(np.int64)
        gp = gid[pos]
        if keys.size:
            klo, khi = int(keys.min()), int(keys.max())
            w = khi - klo + 1
            gl, gh = int(gp.min()), int(gp.max())
            block = np.bincount((gp - gl) * w + (keys - klo), minlength=(gh - gl + 1) * w).reshape(gh - gl + 1, w)
            self.counts[gl:gh + 1, klo - self.kmin:klo - self.kmin + w] += block
        bc = np.bincount(gid, minlength=self.ngroups)
        before = self.count.copy()
        self.count += bc
        # the exact maximum: only values in each group's top bucket of this batch can be it
        top = np.full(self.ngroups, np.iinfo(np.int64).min)
        allkeys = np.full(values.size, np.iinfo(np.int64).min // 2)
        allkeys[pos] = keys
        np.maximum.at(top, gid, allkeys)
        cand = allkeys == top[gid]
        np.maximum.at(self.max, gid[cand], values[cand])
        # exact values while a group stays small
        stay = (self.count <= EXACT_MAX) & (bc > 0)
        for g in np.flatnonzero((self.count > EXACT_MAX) & (before <= EXACT_MAX)).tolist():
            self.exact.pop(g, None)
        if stay.any():
            sel = stay[gid]
            sg, sv = gid[sel], values[sel]
            o = np.lexsort((sv, sg))
            sg, sv = sg[o], sv[o]
            cut = np.flatnonzero(np.diff(sg)) + 1
            for a, b in zip(np.concatenate(([0], cut)).tolist(), np.concatenate((cut, [sg.size])).tolist(),
                            strict=True):
                g = int(sg[a])
                self.exact[g] = sorted(self.exact.get(g, []) + sv[a:b].tolist())

    def quantiles(self, q: float) -> np.ndarray:
        """The q-quantile of every group (NaN for an empty group): exact type 7 for the
        small groups, else the DDSketch estimate clamped to the max."""
        out = np.full(self.ngroups, np.nan)
        n = self.count
        big = np.flatnonzero(n > EXACT_MAX)
        if big.size:
            h = q * (n[big] - 1)
            lo = np.floor(h)
            if self._cum is None:  # (cached until the next add: several quantiles are usual)
                self._cum = np.cumsum(self.counts, axis=1, dtype=self._counts.dtype)
            cum = self._cum[big]
            zero = self.zero[big]
            bucket = np.array([value_of(k) for k in range(self.kmin, self.kmin + self.width)])

            def at(rank: np.ndarray) -> np.ndarray:
                r = rank - zero
                return np.where(r < 0, 0.0, bucket[np.argmax(cum > r[:, None], axis=1)])

            a = at(lo)
            b = at(np.minimum(lo + 1, n[big] - 1))
            t = h - lo
            est = np.where(a == b, a, np.where(t >= 0.5, b - (b - a) * (1 - t), a + (b - a) * t))
            out[big] = np.minimum(est, self.max[big])
        for g, v in self.exact.items():
            out[g] = type7(v, q)
        return out

    def sketch(self, g: int) -> Sketch:
        n = int(self.count[g]) if g < self.ngroups else 0
        if n == 0:
            return Sketch()
        if n <= EXACT_MAX:
            v = self.exact[g]
            return Sketch(n, None, None, list(v), v[-1])
        row = self.counts[g]
        nz = np.flatnonzero(row)
        return Sketch(n, int(n - row.sum()), dict(zip((nz + self.kmin).tolist(), row[nz].tolist(), strict=True)),
                      None, float(self.max[g]))

    def text(self, g: int) -> str:
        """``self.sketch(g).to_text()`` without building the dict (vectorised)."""
        n = int(self.count[g]) if g < self.ngroups else 0
        if n <= EXACT_MAX:
            return self.sketch(g).to_text()
        row = self.counts[g]
        nz = np.flatnonzero(row)
        gaps = np.diff(nz)
        if gaps.size and int(gaps.max()) > 255:
            return self.sketch(g).to_text()
        cs = row[nz]
        top = int(cs.max()) if cs.size else 0
        width, dt = next((w, d) for w, d, lim in ((1, "<u1", 1 << 8), (2, "<u2", 1 << 16), (4, "<u4", 1 << 32),
                                                  (8, "<u8", 1 << 64)) if top < lim)
        head = _HEAD.pack(width, int(nz[0]) + self.kmin if nz.size else 0, int(nz.size), float(self.max[g]),
                          int(n - cs.sum()))
        body = np.concatenate(([0], gaps)).astype(np.uint8).tobytes() + cs.astype(dt).tobytes()
        return "dd1:" + base64.b64encode(head + body).decode("ascii")
