"""The sketch against the ``ddsketch`` library (a second method), its bound against numpy's
exact values, and property tests (hypothesis) of merging, rollups and the weekly p95."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from obslib.latency.model import Event, Part, parts_from_events, query
from obslib.latency.rollup import compute_rollups, parse_sample_lines
from obslib.latency.sketch import ALPHA, EXACT_MAX, Sketch, grouped_sketches, keys_of
from obslib.latency.store import HEADER, format_part

UTC = timezone.utc
T0 = datetime(2024, 3, 11, tzinfo=UTC)


def test_mapping_and_quantiles_equal_the_ddsketch_library():
    ddsketch = pytest.importorskip("ddsketch")  # the second method (a test dependency)
    rng = np.random.default_rng(5)
    v = np.concatenate([rng.lognormal(6, 1.5, 5000), [0.0, 0.0005, 1e6]])
    lib = ddsketch.DDSketch(relative_accuracy=0.01)
    for x in v:
        lib.add(float(x))
    mine = Sketch.of(v)
    m = ddsketch.LogarithmicMapping(0.01)
    assert keys_of(v[v > 0]).tolist() == [m.key(float(x)) for x in v[v > 0]]
    for q in (0.0, 0.01, 0.5, 0.9, 0.95, 0.99, 1.0):
        assert mine.sketch_quantile(q, clamp=False, interpolate=False) == lib.get_quantile_value(q)
    assert mine.count == lib.count and mine.zero == 1  # 0.0; 0.0005 has its own bucket


def test_exact_while_small_numpy_type7():
    rng = np.random.default_rng(1)
    for n in (1, 2, 7, EXACT_MAX):
        v = rng.lognormal(5, 1, n)
        s = Sketch.of(v)
        assert s.method == "exact_type7"
        for q in (0.5, 0.95, 0.99):
            assert s.quantile(q) == float(np.percentile(v, q * 100))
    assert Sketch.of(rng.lognormal(5, 1, EXACT_MAX + 1)).method == "ddsketch_a0.01"


def test_text_round_trip_and_size():
    rng = np.random.default_rng(2)
    for v in (rng.lognormal(5, 0.6, 600), rng.lognormal(8, 2, 100_000), np.array([3.5, 0.0, 12.25])):
        s = Sketch.of(v)
        t = s.to_text()
        assert "," not in t and Sketch.from_text(t) == s and Sketch.from_text(t).to_text() == t
    assert len(Sketch.of(rng.lognormal(5, 0.6, 600)).to_text()) <= 2048
    with pytest.raises(ValueError):
        Sketch.from_text("dd1:!!!")


def test_grouped_builder_equals_one_by_one():
    rng = np.random.default_rng(3)
    g = rng.integers(0, 20, 5000)
    v = rng.lognormal(4, 1, 5000)
    got = grouped_sketches(g, v)
    for k in range(20):
        assert got[k] == Sketch.of(v[g == k])


values = st.lists(st.floats(min_value=0.0, max_value=1e7, allow_nan=False, allow_infinity=False),
                  min_size=1, max_size=400)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values, st.integers(1, 8), st.randoms(use_true_random=False), st.sampled_from([0.5, 0.95, 0.99]))
def test_merged_quantile_within_the_bound_of_the_exact_union(vals, k, rnd, q):
    shuffled = list(vals)
    rnd.shuffle(shuffled)
    cuts = sorted(rnd.randint(0, len(shuffled)) for _ in range(k - 1))
    pieces = [shuffled[a:b] for a, b in zip([0] + cuts, cuts + [len(shuffled)], strict=True)]
    merged = Sketch.merge_all(Sketch.of(p) for p in pieces)
    assert merged == Sketch.of(vals)  # merge = sketch of the union, whatever the split
    srt = np.sort(np.asarray(vals))
    est = merged.quantile(q)
    if merged.method == "exact_type7":
        assert est == pytest.approx(float(np.percentile(srt, q * 100)), rel=1e-12, abs=1e-9)
    else:  # the stated bound: within alpha of exact type 7
        t7 = float(np.percentile(srt, q * 100))
        assert abs(est - t7) <= ALPHA * t7 + 1e-9 * max(1.0, t7)
        # and the library's rule (no interpolation) within alpha of the value at rank floor(q(n-1))
        xr = srt[int(np.floor(q * (len(srt) - 1)))]
        lib = merged.sketch_quantile(q, interpolate=False)
        assert abs(lib - xr) <= ALPHA * xr + 1e-9 * max(1.0, xr)


events = st.lists(st.tuples(st.integers(0, 7 * 24 * 3600 - 1), st.floats(0.0, 5e5, allow_nan=False),
                            st.sampled_from(["a", "b", "c"]), st.booleans()), min_size=1, max_size=300)


def _rows(evs, rnd, *, slo=1000.0):
    """Sample rows for ``evs`` written in random batches (late events: several parts per
    window), shuffled."""
    es = [Event(T0 + timedelta(seconds=t), v, err and v < 10, s) for t, v, s, err in evs]
    rnd.shuffle(es)
    lines = []
    i = 0
    while i < len(es):
        n = rnd.randint(1, 40)
        for p in parts_from_events(es[i:i + n], slo_of=lambda s: slo):
            lines.append(format_part(p, slo_ms=slo, job_id="j", sampled_at="2024-03-18T00:00:00Z"))
        i += n
    rnd.shuffle(lines)
    return es, lines


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events, st.randoms(use_true_random=False))
def test_rollups_idempotent_order_free_byte_identical_and_weekly_equals_merge(evs, rnd):
    es, lines = _rows(evs, rnd)
    slo_of = lambda s: 1000.0  # noqa: E731

    def rollup(ls):
        parts = parse_sample_lines((HEADER + "".join(ls)).encode(), "x", [], slo_of=slo_of)
        rows = compute_rollups(parts, slo_of)
        return "".join(rows[k] for k in sorted(rows)).encode()

    a = rollup(lines)
    again = list(lines)
    rnd.shuffle(again)
    assert rollup(again) == a                        # independent of row order
    assert rollup(lines) == a                        # byte-identical across runs
    _, lines2 = _rows(evs, random.Random(1))         # another split into batches/parts: the same
    drop_windows = lambda b: [ln.split(",")[:10] + ln.split(",")[11:] for ln in b.decode().splitlines()]  # noqa: E731
    assert drop_windows(rollup(lines2)) == drop_windows(a)  # numbers (``windows`` counts the rows merged)
    # the weekly p95 (query over the events' window parts for the week) equals the merge
    # of the hourly rollup rows for the same range
    from obslib.latency.model import HOUR_S

    lo = int(T0.timestamp())
    weekly = query(parts_from_events(es, slo_of=slo_of), by="range", slo_of=slo_of, start=lo, end=lo + 7 * 86400)
    hourly = []
    for line in a.decode().splitlines():
        f = line.split(",")
        hour = int(datetime.fromisoformat(f[0].replace("Z", "+00:00")).timestamp())
        hourly.append(Part(f[1], hour - hour % HOUR_S, HOUR_S, int(f[4]), int(f[11]), int(f[7]), Sketch.from_text(f[12])))
    merged = query(hourly, by="range", slo_of=slo_of, start=lo, end=lo + 7 * 86400)
    assert {k: (v.p95, v.samples, v.bad_events, v.error_samples) for k, v in weekly.items()} == \
        {k: (v.p95, v.samples, v.bad_events, v.error_samples) for k, v in merged.items()}
    # and the exact counts: samples per source = events of that source
    for (_, src), v in weekly.items():
        assert v.samples == sum(1 for e in es if e.source == src)


def test_dense_groups_equal_one_sketch_per_group():
    from obslib.latency.sketch import DenseGroups

    rng = np.random.default_rng(4)
    g = rng.integers(0, 30, 6000)
    g[g == 7] = 8  # an empty group
    v = rng.lognormal(5, 1.2, 6000)
    v[:5] = 0.0
    small = rng.integers(0, 30, 6000) == 3
    g = np.where(small & (rng.random(6000) < 0.98), 29, g)  # group 29: big; some groups small
    d = DenseGroups(g, 31, v)
    batched = DenseGroups()
    for lo in range(0, 6000, 700):  # in batches: the same result
        batched.add(g[lo:lo + 700], v[lo:lo + 700])
    for k in range(31):
        assert batched.sketch(k) == d.sketch(k) and batched.text(k) == d.text(k) == Sketch.of(v[g == k]).to_text()
    for q in (0.5, 0.95, 0.99):
        qs = d.quantiles(q)
        for k in range(31):
            s = Sketch.of(v[g == k])
            assert d.sketch(k) == s
            exp = s.quantile(q)
            assert (np.isnan(qs[k]) and exp is None) or qs[k] == exp
