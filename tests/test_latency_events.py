"""Event-log reading: formats, torn last line, replaced/shrunk files, bad lines, windows."""

from __future__ import annotations

import os

import pytest
from latency_fixtures import (
    EVENT_HEADER,
    REALDATA,
    T0,
    event_line,
    event_source,
    iso,
    make_cfg,
    minutes,
    raw_rows,
    sample,
)

from obslib.errors import InputError
from obslib.latency.events import read_new_events
from obslib.latency.sources import sample_event_log


def _write(p, text, mode="w"):
    with open(p, mode, encoding="utf-8") as fh:
        fh.write(text)


def test_modern_format_incremental(tmp_path):
    log = tmp_path / "ev.csv"
    _write(log, EVENT_HEADER + event_line(T0, 100) + event_line(T0, 300))
    r1 = read_new_events(log, None)
    assert [e.latency_ms for e in r1.events] == [100.0, 300.0]
    _write(log, event_line(T0, 500), "a")
    r2 = read_new_events(log, r1.cursor)
    assert [e.latency_ms for e in r2.events] == [500.0]
    r3 = read_new_events(log, r2.cursor)
    assert r3.events == [] and r3.cursor.offset == os.path.getsize(log)


def test_legacy_format_latency_is_ack_minus_emit(tmp_path):
    log = tmp_path / "legacy.csv"
    _write(log, "signal_id,ts_emit,ts_ack,status,detail\n"
                "s1,2025-10-13T09:00:00Z,2025-10-13T09:00:02.500Z,success,\n"
                "s2,2025-10-13T09:01:00Z,2025-10-13T09:03:00Z,success,slow\n")
    r = read_new_events(log, None)
    assert r.fmt == "legacy"
    assert [e.latency_ms for e in r.events] == [2500.0, 120000.0]
    assert iso(r.events[1].ts) == "2025-10-13T09:03:00Z"  # the event time is the ack


def test_torn_last_line_is_left_for_next_run(tmp_path):
    log = tmp_path / "ev.csv"
    _write(log, EVENT_HEADER + event_line(T0, 100) + "2025-10-13T09:00:05Z,77")
    r1 = read_new_events(log, None)
    assert [e.latency_ms for e in r1.events] == [100.0]
    assert r1.torn_bytes == len("2025-10-13T09:00:05Z,77") and not r1.problems
    _write(log, "7.000,success,,router\n", "a")  # the writer finishes the line
    r2 = read_new_events(log, r1.cursor)
    assert [e.latency_ms for e in r2.events] == [777.0]


def test_replaced_file_new_inode_counts_only_new_events(tmp_path):
    log = tmp_path / "ev.csv"
    _write(log, EVENT_HEADER + event_line(T0, 100) + event_line(T0 + minutes(1), 200))
    r1 = read_new_events(log, None)
    # the emitter rewrites the file (new inode) with different history plus a new event
    tmp = tmp_path / "ev.tmp"
    _write(tmp, EVENT_HEADER + event_line(T0 - minutes(5), 50) + event_line(T0 + minutes(1), 200)
           + event_line(T0 + minutes(2), 300))
    os.replace(tmp, log)
    r2 = read_new_events(log, r1.cursor)
    assert r2.replaced and not r2.continued_after_replace
    assert [e.latency_ms for e in r2.events] == [300.0]
    assert r2.replay_skipped == 2


def test_replaced_file_that_kept_content_continues_at_offset(tmp_path):
    log = tmp_path / "ev.csv"
    base = EVENT_HEADER + event_line(T0, 100)
    _write(log, base)
    r1 = read_new_events(log, None)
    tmp = tmp_path / "ev.tmp"
    _write(tmp, base + event_line(T0 + minutes(1), 200))
    os.replace(tmp, log)
    r2 = read_new_events(log, r1.cursor)
    assert r2.replaced and r2.continued_after_replace
    assert [e.latency_ms for e in r2.events] == [200.0]


def test_truncated_file_same_inode(tmp_path):
    log = tmp_path / "ev.csv"
    _write(log, EVENT_HEADER + event_line(T0, 100) + event_line(T0 + minutes(1), 200))
    r1 = read_new_events(log, None)
    with open(log, "r+", encoding="utf-8") as fh:  # copytruncate-style: same inode, shrunk
        fh.truncate(0)
        fh.write(EVENT_HEADER + event_line(T0 + minutes(3), 400))
    r2 = read_new_events(log, r1.cursor)
    assert r2.replaced
    assert [e.latency_ms for e in r2.events] == [400.0]


def test_bad_lines_reported_with_line_numbers(tmp_path):
    log = tmp_path / "ev.csv"
    _write(log, EVENT_HEADER + event_line(T0, 100) + "garbage\n" + "not-a-time,5,success,,r\n"
           + event_line(T0, 200))
    r = read_new_events(log, None)
    assert [e.latency_ms for e in r.events] == [100.0, 200.0]
    assert [(p.line, p.path) for p in r.problems] == [(3, "ev.csv"), (4, "ev.csv")]
    _write(log, "bad,row\n", "a")
    r2 = read_new_events(log, r.cursor)
    assert [p.line for p in r2.problems] == [6]


def test_unknown_header_and_missing_file(tmp_path):
    log = tmp_path / "ev.csv"
    _write(log, "a,b,c\n1,2,3\n")
    with pytest.raises(InputError, match="unrecognised event-log header"):
        read_new_events(log, None)
    with pytest.raises(InputError, match="not found"):
        read_new_events(tmp_path / "nope.csv", None)


def test_window_parts_by_event_time_and_error_events(tmp_path):
    log = tmp_path / "ev.csv"
    now = T0 + minutes(15)
    lines = [event_line(T0 - minutes(1), 99999)]  # the previous window: its own part, not dropped
    lines += [event_line(T0 + minutes(i + 1), v) for i, v in enumerate([10, 20, 30, 40, 1000])]
    _write(log, EVENT_HEADER + "".join(lines))
    s = sample_event_log(event_source(log), None, now, slo_of=lambda s: 500.0, window_s=900)
    assert [(p.start, p.events) for p in s.parts] == [(int((T0 - minutes(15)).timestamp()), 1),
                                                      (int(T0.timestamp()), 5)]
    w = s.parts[1]
    # hand-computed type 7: sorted [10,20,30,40,1000]; median 30; p95: h=3.8 -> 40+0.8*960 = 808
    assert w.sketch.quantile(0.5) == pytest.approx(30.0)
    assert w.sketch.quantile(0.95) == pytest.approx(808.0)
    assert (w.bad, w.errors) == (1, 0)
    _write(log, f"{iso(now + minutes(1))},,error,timeout,router\n", "a")
    s2 = sample_event_log(event_source(log), s.cursor, now + minutes(2), slo_of=lambda s: 500.0, window_s=900)
    assert [(p.events, p.errors, p.sketch.count) for p in s2.parts] == [(1, 1, 0)]


def test_sample_job_with_real_event_log_copy(tmp_path):
    if not REALDATA.exists():
        pytest.skip("../shared/realdata absent")
    data = tmp_path / "data"
    (data / "ops").mkdir(parents=True)
    (data / "ops" / "signal_latency.csv").write_bytes((REALDATA / "ops/signal_latency.csv").read_bytes())
    cfg = make_cfg(tmp_path, [event_source(data / "ops/signal_latency.csv", window_minutes=60)])
    # the single real event is at 2025-10-11T11:35:42Z, 2100 ms: one row for window 11:00
    out = sample(cfg, T0.replace(day=11, hour=12))
    assert out["events_read"] == 1 and out["windows"]["events"]["p95_ms"] == 2100.0
    out2 = sample(cfg, T0.replace(day=11, hour=12, minute=15))
    assert out2["events_read"] == 0
    rows = raw_rows(tmp_path)
    assert [(r["timestamp_utc"], r["samples_in_window"], r["latency_ms"]) for r in rows] == [
        ("2025-10-11T11:00:00Z", "1", "2100.000")]
