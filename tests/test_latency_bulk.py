"""The vectorised first-run reader (``obslib.latency.bulk``) against the per-line path:
same log -> byte-identical sample rows, rollup, cursor and counts; any line the per-line
rules would reject (or hold) sends the whole read down the per-line path."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from latency_fixtures import EVENT_HEADER, T0, event_source, iso, make_cfg, sample

import obslib.latency.bulk as bulk
from obslib.inputs.latency_events import _NUMBER
from obslib.latency.events import read_new_events
from obslib.latency.sources import sample_event_log
from obslib.latency.store import format_part

N = 2400  # above bulk.MIN_LINES


def _lines(n: int = N, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        ts = T0 + timedelta(seconds=i * 7)
        src = f"src{i % 5}" if i % 97 else ""  # empty source cells too
        status = rng.choice(["success", "success", "OK", "ok", "", "error", "Timeout", "FAILED"])
        err = status.lower() in ("error", "timeout", "failed")
        lat = rng.choice([f"{rng.uniform(1, 3000):.3f}", "1e2", ".5", "5.", "0", "-0", "2E+3", "0012"])
        if err and i % 3 == 0:
            lat = ""
        if i < 200 and src:  # one busy window per source: more than EXACT_MAX events
            src = "src0"
        out.append(f"{iso(ts)},{lat},{status},d{i},{src}\n")
    return out


def _run(tmp_path: Path, name: str, lines: list[str], monkeypatch, fast: bool) -> dict:
    work = tmp_path / name
    (work / "data" / "ops").mkdir(parents=True)
    (work / "data" / "ops" / "signal_latency.csv").write_text(EVENT_HEADER + "".join(lines))
    monkeypatch.setattr(bulk, "MIN_LINES", 1000 if fast else 10**12)
    cfg = make_cfg(work)
    out = sample(cfg, T0 + timedelta(days=1))
    ops = work / "ops"
    jid = out["job_id"]
    return {"raw": (ops / "signal_latency.csv").read_text().replace(jid, "JOB"),
            "rollup": (ops / "signal_latency_rollup.csv").read_bytes(),
            "counts": {k: out[k] for k in ("events_read", "bad_rows", "samples_written", "rollups_written")}}


def test_fast_and_per_line_paths_write_identical_rows_and_rollups(tmp_path, monkeypatch):
    lines = _lines()
    calls = []
    real = bulk.parse_block

    def spy(*a, **kw):
        r = real(*a, **kw)
        calls.append(r is not None)
        return r

    monkeypatch.setattr("obslib.latency.events.parse_block", spy)
    fast = _run(tmp_path, "fast", lines, monkeypatch, True)
    assert calls == [True]  # the vectorised path was taken
    slow = _run(tmp_path, "slow", lines, monkeypatch, False)
    assert calls[-1] is False
    assert fast["raw"] == slow["raw"] and fast["rollup"] == slow["rollup"] and fast["counts"] == slow["counts"]
    assert fast["counts"]["events_read"] == N and fast["counts"]["bad_rows"] == 0
    # independent check of one busy window: 200 src0 events at 7 s steps from T0 fill
    # window [T0, T0+15min) with i = 0..128 (129 lines), less i = 0 and 97 (empty source cell,
    # counted under the log's name): 127 events
    first = next(r for r in fast["raw"].splitlines()[1:] if r.startswith(f"{iso(T0)},src0,"))
    assert first.split(",")[5] == "127"


def _read(log: Path, fast: bool, monkeypatch, now=None):
    monkeypatch.setattr(bulk, "MIN_LINES", 1000 if fast else 10**12)
    return read_new_events(log, None, now=now, bulk=True)


@pytest.mark.parametrize("bad", [
    "2025-02-30T00:00:00Z,10,success,,src1\n",        # a date that does not exist
    "2025-10-13T09:00:00+00:00,10,success,,src1\n",   # an offset, not Z (valid, per-line path)
    "2025-10-13T09:00:00.5Z,10,success,,src1\n",      # fractional seconds (valid, per-line path)
    "2025-10-13T09:00:00Z,1_000,success,,src1\n",     # not a strict number
    "2025-10-13T09:00:00Z,１０,success,,src1\n",        # full-width digits
    "2025-10-13T09:00:00Z,inf,success,,src1\n",
    "2025-10-13T09:00:00Z,1e999,success,,src1\n",     # overflows to inf
    "2025-10-13T09:00:00Z,-1,success,,src1\n",
    "2025-10-13T09:00:00Z,10,succes,,src1\n",         # unknown status
    "2025-10-13T09:00:00Z,10,ſuccess,,src1\n",        # non-ASCII status
    "2025-10-13T09:00:00Z,,success,,src1\n",          # no latency on a success
    "2025-10-13T09:00:00Z,10,success,,a/b\n",         # source not an identifier
    "2025-10-13T09:00:00Z,10,success,\"x,y\",src1\n",  # quoted field (valid, per-line path)
    "2025-10-13T09:00:00Z,10,success,,src1,extra\n",  # wrong field count
    "\n",                                               # blank line
    "2025-10-13T09:00:00Z,10,success,,src1\r\n",      # CRLF
    "2025-10-13T09:00:00Z,10,success,\xff,src1\n",     # (latin-1 written below: not UTF-8)
    "2026-01-01T00:00:00Z,10,success,,src1\n",        # after now: held / future
    "2025-10-13T09:00:00Z,10,success,,src1\x00\n",    # NUL in a source
])
def test_any_line_the_per_line_rules_treat_differently_falls_back(tmp_path, monkeypatch, bad):
    lines = _lines(1500)
    lines.insert(700, bad)
    log = tmp_path / "ev.csv"
    enc = "latin-1" if "\xff" in bad else "utf-8"
    log.write_bytes(EVENT_HEADER.encode() + "".join(lines).encode(enc))
    now = T0 + timedelta(days=1)
    fast = _read(log, True, monkeypatch, now)
    slow = _read(log, False, monkeypatch, now)
    assert fast.bulk is None
    assert [(e.ts, e.latency_ms, e.error, e.source) for e in fast.events] == \
        [(e.ts, e.latency_ms, e.error, e.source) for e in slow.events]
    assert [str(p) for p in fast.problems] == [str(p) for p in slow.problems]
    assert fast.cursor == slow.cursor and fast.held_rows == slow.held_rows


def test_byte_order_mark_on_the_first_data_line_is_a_bad_row_as_per_line(tmp_path, monkeypatch):
    log = tmp_path / "ev.csv"
    log.write_bytes(EVENT_HEADER.encode() + "\ufeff".encode() + "".join(_lines(1500)).encode())
    fast = _read(log, True, monkeypatch, T0 + timedelta(days=1))
    assert fast.bulk is None and [p.line for p in fast.problems] == [2]


def test_parts_and_cursor_match_per_line_path(tmp_path, monkeypatch):
    log = tmp_path / "ev.csv"
    log.write_text(EVENT_HEADER + "".join(_lines(3000, seed=3)) + "2025-10-13T09:00:00Z,1")  # torn tail waits
    src = event_source(log, name="events")
    src.by_source_column = True
    now = T0 + timedelta(days=1)
    out = {}
    for fast in (True, False):
        monkeypatch.setattr(bulk, "MIN_LINES", 1000 if fast else 10**12)
        s = sample_event_log(src, now=now, slo_of=lambda _s: 1000.0, window_s=900, cursor=None)
        out[fast] = ("".join(format_part(p, slo_ms=1000.0, job_id="J", sampled_at="T") for p in s.parts),
                     s.cursor, s.counts)
    assert out[True] == out[False]
    assert out[True][2]["torn_bytes"] == len("2025-10-13T09:00:00Z,1")


@settings(max_examples=150, deadline=None)
@given(st.lists(st.from_regex(_NUMBER, fullmatch=True).filter(lambda s: len(s) < 40), min_size=1, max_size=20))
def test_arrow_number_parse_equals_python_float(nums):
    """The strict number rule: pyarrow's cast and Python's float() agree bit for bit."""
    import math

    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        got = pc.cast(pa.array(nums), pa.float64()).to_pylist()
    except pa.ArrowInvalid:
        return  # the block path then falls back to the per-line path
    for s, g in zip(nums, got, strict=True):
        want = float(s)
        assert (math.isinf(want) and math.isinf(g)) or (g == want and math.copysign(1, g) == math.copysign(1, want))
