"""Window parts as columns (``PartTable``) and their merged statistics per group, vectorised.

A first run turns a backlog of events into tens of thousands of window parts; as ``Part``
objects each costs microseconds to build, format and merge. A ``PartTable`` holds the same
parts as numpy columns, and ``group_stats`` merges them per group (a part for the sample
rows, an (hour, source) for the rollups) in a few array passes. It is an optimisation
only: ``to_parts()`` gives exactly the ``Part`` s of ``model.parts_from_events`` and
``group_stats`` exactly what ``Sketch.merge_all`` + ``Sketch.quantile`` give (same floats,
same sketch text; tested against the object path in ``tests/test_latency_table.py``).
Groups of more than ``EXACT_MAX`` latencies, and groups holding a part known only by its
bucket sketch, go through ``Sketch.merge_all`` itself, one group at a time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from .model import HOUR_S, Part
from .sketch import EXACT_MAX, METHOD_EXACT, METHOD_SKETCH, Sketch
from .texts import ValueTexts, repr_texts

_I64 = np.int64


def _exclusive_cumsum(a: np.ndarray) -> np.ndarray:
    out = np.zeros(a.size, dtype=_I64)
    if a.size > 1:
        np.cumsum(a[:-1], out=out[1:])
    return out


@dataclass
class PartTable:
    """``k`` window parts as columns. ``names`` sorted distinct source names; per part:
    ``src`` index into ``names``, ``start`` window start (epoch s), ``span`` its length
    (s), ``events`` (errors included), ``bad`` (latencies above the SLO), ``errors``,
    ``count`` latencies in its sketch, ``mx`` the sketch's exact maximum (ms, NaN when
    empty), ``off`` where its sorted latencies start in ``vals`` (ms, float64), and ``sk``
    (object) the ``Sketch`` of a part known only by its buckets (None elsewhere); ``vt``
    (optional) the text of each of ``vals`` as the sketch writes it; ``by_hour`` (optional)
    the positions of ``vals`` in (hour, source, latency, window) order, for the parts as
    built (``take`` and ``concat`` drop it)."""

    names: list[str]
    src: np.ndarray
    start: np.ndarray
    span: np.ndarray
    events: np.ndarray
    bad: np.ndarray
    errors: np.ndarray
    count: np.ndarray
    mx: np.ndarray
    off: np.ndarray
    vals: np.ndarray
    sk: np.ndarray
    vt: ValueTexts | None = None
    by_hour: np.ndarray | None = None

    # --- building -----------------------------------------------------------------------
    @classmethod
    def empty(cls) -> PartTable:
        z = np.zeros(0, dtype=_I64)
        return cls([], z, z, z, z, z, z, z, np.zeros(0), z, np.zeros(0), np.empty(0, dtype=object))

    @classmethod
    def from_sorted_values(cls, names: list[str], src, start, span, events, bad, errors, count,
                           vals: np.ndarray, vt: ValueTexts | None = None,
                           by_hour: np.ndarray | None = None) -> PartTable:
        """Parts whose latencies are all known: ``vals`` holds each part's sorted latencies,
        part after part, ``count[i]`` of them for part ``i``."""
        count = np.asarray(count, dtype=_I64)
        off = _exclusive_cumsum(count)
        mx = np.full(count.size, np.nan)
        has = count > 0
        mx[has] = vals[off[has] + count[has] - 1]
        a = [np.asarray(x, dtype=_I64) for x in (src, start, span, events, bad, errors)]
        return cls(list(names), *a, count, mx, off, np.asarray(vals, dtype=np.float64),
                   np.full(count.size, None, dtype=object), vt, by_hour)

    @classmethod
    def from_parts(cls, parts: Sequence[Part] | PartTable) -> PartTable:
        """The table of ``Part`` objects, in their order (a table is returned as it is)."""
        if isinstance(parts, PartTable):
            return parts
        if not parts:
            return cls.empty()
        names = sorted({p.source for p in parts})
        code = {n: i for i, n in enumerate(names)}
        vals: list[float] = []
        count, mx, sk = [], [], []
        for p in parts:
            s = p.sketch
            count.append(s.count)
            mx.append(np.nan if s.max is None else s.max)
            if s.exact is not None:
                vals += s.exact
                sk.append(None)
            else:
                sk.append(s)
        cnt = np.array(count, dtype=_I64)
        off = _exclusive_cumsum(np.where(np.array([x is None for x in sk]), cnt, 0))
        cols = [np.array(c, dtype=_I64) for c in zip(*((code[p.source], p.start, p.span_s, p.events, p.bad,
                                                        p.errors) for p in parts), strict=True)]
        obj = np.empty(len(sk), dtype=object)
        obj[:] = sk
        return cls(names, *cols, cnt, np.array(mx, dtype=np.float64), off, np.array(vals, dtype=np.float64), obj)

    @classmethod
    def concat(cls, tables: Sequence[PartTable]) -> PartTable:
        """One table of several, rows in order."""
        tables = [t for t in tables if len(t)]
        if not tables:
            return cls.empty()
        if len(tables) == 1:
            return tables[0]
        names = sorted({n for t in tables for n in t.names})
        code = {n: i for i, n in enumerate(names)}
        shift = _exclusive_cumsum(np.array([t.vals.size for t in tables], dtype=_I64))
        cat = np.concatenate
        return cls(names, cat([np.array([code[n] for n in t.names], dtype=_I64)[t.src] for t in tables]),
                   *(cat([getattr(t, c) for t in tables]) for c in ("start", "span", "events", "bad", "errors",
                                                                    "count", "mx")),
                   cat([t.off + s for t, s in zip(tables, shift.tolist(), strict=True)]),
                   cat([t.vals for t in tables]), cat([t.sk for t in tables]),
                   ValueTexts.concat([t.vt for t in tables]) if all(t.vt is not None for t in tables) else None)

    def take(self, idx: np.ndarray) -> PartTable:
        """The parts ``idx`` (indices or a boolean mask), in that order."""
        if idx.dtype == bool and bool(idx.all()):
            return self
        c = {f: getattr(self, f)[idx] for f in ("src", "start", "span", "events", "bad", "errors", "count", "mx",
                                               "off", "sk")}
        return PartTable(self.names, vals=self.vals, vt=self.vt, **c)

    def ordered(self) -> PartTable:
        """Sorted by (start, source), ties in their order (Python's stable ``sorted``)."""
        o = np.lexsort((self.src, self.start))
        return self if bool((o == np.arange(o.size)).all()) else self.take(o)

    # --- reading ------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.src.size)

    def __iter__(self) -> Iterator[Part]:
        return iter(self.to_parts())

    @property
    def total_events(self) -> int:
        return int(self.events.sum())

    def present(self) -> list[str]:
        """The source names that have a part."""
        return [self.names[i] for i in np.unique(self.src).tolist()]

    def sketch(self, i: int) -> Sketch:
        """Part ``i``'s sketch, as ``model.parts_from_events`` builds it."""
        s = self.sk[i]
        if s is not None:
            return s
        n = int(self.count[i])
        a = int(self.off[i])
        lats = self.vals[a:a + n].tolist()
        if n > EXACT_MAX:
            return Sketch.of(lats)
        return Sketch(n, None, None, lats, float(self.mx[i]) if n else None)

    def to_parts(self, idx: np.ndarray | None = None) -> list[Part]:
        """The parts (``idx``: only those) as ``Part`` objects."""
        rows = np.arange(len(self)) if idx is None else np.arange(len(self))[idx]
        cols = [c[rows].tolist() for c in (self.src, self.start, self.span, self.events, self.bad, self.errors)]
        return [Part(self.names[s], a, w, e, b, r, self.sketch(i))
                for i, s, a, w, e, b, r in zip(rows.tolist(), *cols, strict=True)]

    def hour_codes(self) -> tuple[np.ndarray, np.ndarray]:
        """(the distinct (hour, source) codes ``hour * len(names) + src`` in order, each
        part's index into them); hour = epoch hour of the part's start."""
        return np.unique(self.start // HOUR_S * len(self.names) + self.src, return_inverse=True)

    def hour_keys(self) -> list[tuple[int, str]]:
        """The distinct (epoch hour, source) of the parts, sorted."""
        nn = len(self.names)
        return [(c // nn, self.names[c % nn]) for c in self.hour_codes()[0].tolist()]

    def in_hours(self, keys: set[tuple[int, str]]) -> np.ndarray:
        """Boolean mask: the parts whose (epoch hour, source) is in ``keys``."""
        if not len(self) or not keys:
            return np.zeros(len(self), dtype=bool)
        codes, inv = self.hour_codes()
        nn = len(self.names)
        hit = np.array([(c // nn, self.names[c % nn]) in keys for c in codes.tolist()], dtype=bool)
        return hit[inv]

    # --- merging --------------------------------------------------------------------------
    def group_stats(self, gid: np.ndarray, ngroups: int, qs: Sequence[float],
                    by_value: np.ndarray | None = None) -> GroupStats:
        """Merge the parts per group (``gid[i]`` in ``0..ngroups-1``; within a group in
        table order): counts, and of the merged sketch its max, the ``qs`` quantiles
        (``Sketch.quantile``), method and text. ``by_value`` (optional): the positions of
        ``vals`` already sorted by (group, latency, table order)."""
        gid = np.asarray(gid, dtype=_I64)
        cnt = np.bincount(gid, weights=self.count, minlength=ngroups).astype(_I64)
        sums = {c: np.bincount(gid, weights=getattr(self, c), minlength=ngroups).astype(_I64)
                for c in ("events", "bad", "errors")}
        out = GroupStats(cnt, sums["events"], sums["bad"], sums["errors"], np.bincount(gid, minlength=ngroups),
                         np.full(ngroups, np.nan), {q: np.full(ngroups, np.nan) for q in qs},
                         np.where(cnt <= EXACT_MAX, METHOD_EXACT, METHOD_SKETCH).astype(object),
                         np.full(ngroups, "", dtype=object))
        exact = cnt <= EXACT_MAX
        self._exact_groups(gid, exact, out, by_value)
        big = np.flatnonzero(~exact[gid])
        if big.size:  # the bucket sketches: Sketch.merge_all itself, group by group
            big = big[np.argsort(gid[big], kind="stable")]
            for seg in np.split(big, np.flatnonzero(np.diff(gid[big])) + 1):
                g = int(gid[seg[0]])
                s = Sketch.merge_all([self.sketch(i) for i in seg.tolist()])
                out.max[g] = s.max
                out.text[g] = s.to_text()
                for q in qs:
                    out.quantiles[q][g] = s.quantile(q)
        return out

    def _exact_groups(self, gid: np.ndarray, exact: np.ndarray, out: GroupStats, by_value: np.ndarray | None
                      ) -> None:
        """The groups of at most ``EXACT_MAX`` latencies (every part's values are known)."""
        parts = np.flatnonzero(exact[gid] & (self.count > 0))
        if parts.size == 0:
            return
        if by_value is not None:  # (vals laid out part after part)
            owner = np.repeat(np.arange(len(self)), self.count)
            pos = by_value[exact[gid[owner[by_value]]]]
        else:
            n = self.count[parts]
            pos = np.arange(int(n.sum()), dtype=_I64) + np.repeat(self.off[parts] - _exclusive_cumsum(n), n)
            if parts.size > 1 and not bool((np.diff(gid[parts]) > 0).all()):
                pos = pos[np.lexsort((self.vals[pos], np.repeat(gid[parts], n)))]  # stable: 0.0/-0.0 keep order
        v = self.vals[pos]
        groups = np.flatnonzero(exact & (out.count > 0))
        gn = out.count[groups]
        g0 = _exclusive_cumsum(gn)
        for q, res in out.quantiles.items():  # sketch.type7, sketch._lerp
            h = (gn - 1) * q
            lo = np.floor(h)
            a = v[g0 + lo.astype(_I64)]
            b = v[g0 + np.minimum(lo.astype(_I64) + 1, gn - 1)]
            t = h - lo
            d = b - a
            res[groups] = np.where(a == b, a, np.where(t >= 0.5, b - d * (1 - t), a + d * t))
        # the merged max (Sketch.merge_all): the first largest part max (0.0 == -0.0)
        m = np.full(out.count.size, -np.inf)
        np.maximum.at(m, gid[parts], self.mx[parts])
        out.max[groups] = m[groups]
        for g in groups[m[groups] == 0].tolist():
            out.max[g] = max(float(self.mx[i]) for i in parts[gid[parts] == g].tolist())
        ends = g0 + gn
        out.text[groups] = self.vt.take(pos).joined(ends) if self.vt is not None else repr_texts(v, ends)


@dataclass
class GroupStats:
    """Per group (arrays of ``ngroups``): ``count`` latencies, ``events``, ``bad``,
    ``errors``, ``windows`` (parts merged), ``max`` (ms, NaN when empty), ``quantiles``
    {q: ms, NaN when empty}, ``method`` and ``text`` (object) of the merged sketch."""

    count: np.ndarray
    events: np.ndarray
    bad: np.ndarray
    errors: np.ndarray
    windows: np.ndarray
    max: np.ndarray
    quantiles: dict[float, np.ndarray]
    method: np.ndarray
    text: np.ndarray
