"""Hourly rollups: percentiles against an independent computation, idempotence,
incremental updates, rotation, retention."""

from __future__ import annotations

import csv
import io
import random

from latency_fixtures import (
    EVENT_HEADER,
    T0,
    check_rollup_file,
    event_line,
    event_source,
    expected_rollups,
    log_events,
    make_cfg,
    minutes,
    raw_rows,
    sample,
)

from obslib.latency.paths import LatencyPaths
from obslib.latency.rollup import update_rollups
from obslib.latency.store import HEADER


def _rollup(work):
    text = (work / "ops/signal_latency_rollup.csv").read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    return {(r["hour_utc"], r["source"]): r for r in rows}


def _check(work, slo):
    return check_rollup_file(work, slo)


def _feed(work, n_runs, rng, *, start=T0, step_min=5, slo=5000.0, rotate=10 * 1024 * 1024, error_every=0):
    log = work / "ev.csv"
    if not log.exists():
        log.write_text(EVENT_HEADER)
    cfg = make_cfg(work, [event_source(log, window_minutes=60)], slo_ms=slo, rotate_bytes=rotate)
    now = start
    for i in range(n_runs):
        with open(log, "a") as fh:
            for _ in range(rng.randint(0, 4)):
                fh.write(event_line(now - minutes(rng.uniform(0, step_min)), rng.lognormvariate(7.5, 1.0)))
            if error_every and i % error_every == error_every - 1:
                fh.write(event_line(now, 1.0, status="error"))
        sample(cfg, now)
        now += minutes(step_min)
    return cfg, now


def test_rollup_matches_independent_percentiles(tmp_path):
    rng = random.Random(4)
    cfg, _ = _feed(tmp_path, 60, rng, error_every=7)
    got = _check(tmp_path, 5000.0)
    assert len(got) >= 5
    assert any(r["breach_flag"] == "true" for r in got.values())
    assert any(r["error_samples"] != "0" for r in got.values())


def test_rollup_on_hand_written_raw_file(tmp_path):
    paths = LatencyPaths(tmp_path / "ops", tmp_path / "out")
    paths.ops_dir.mkdir()
    rows = [
        ("2025-10-13T09:00:00Z", "a", "10.000", "ok"), ("2025-10-13T09:15:00Z", "a", "20.000", "ok"),
        ("2025-10-13T09:30:00Z", "a", "30.000", "ok"), ("2025-10-13T09:45:00Z", "a", "200.000", "breach"),
        ("2025-10-13T09:45:00Z", "b", "", "no_data"), ("2025-10-13T10:00:00Z", "a", "", "error"),
        ("2025-10-13T10:15:00Z", "a", "7.000", "ok"),
    ]
    paths.live.write_text(HEADER + "".join(f"{t},{s},{v},{v},{st},1,j\n" for t, s, v, st in rows))
    update_rollups(paths, now=T0 + minutes(120), slo_of=lambda s: 100.0, raw_retention_days=14,
                   rollup_retention_days=90)
    # the old layout: each row is one value (its latency_ms). By hand: [10,20,30,200]:
    # p50 = 20 + 0.5*10 = 25; p95: h = 2.85 -> 30 + 0.85*170 = 174.5; p99: h = 2.97 -> 194.9;
    # hour 10: the error row (1 event, no latency) and 7
    assert paths.rollup.read_text() == (
        "hour_utc,source,p50_ms,p95_ms,samples,breach_flag,method,error_samples,p99_ms,max_ms,windows,bad_events,"
        "sketch\n"
        "2025-10-13T09:00:00Z,a,25.000,174.500,4,true,exact_type7,0,194.900,200.000,4,1,x1:10;20;30;200\n"
        "2025-10-13T10:00:00Z,a,7.000,7.000,2,false,exact_type7,1,7.000,7.000,2,0,x1:7\n")


def test_rerun_is_byte_identical_and_incremental(tmp_path):
    rng = random.Random(5)
    cfg, now = _feed(tmp_path, 30, rng)
    paths = LatencyPaths.from_config(cfg)
    before = paths.rollup.read_bytes()
    mtime = paths.rollup.stat().st_mtime_ns
    res = update_rollups(paths, now=now, slo_of=lambda s: 5000.0, raw_retention_days=14, rollup_retention_days=90)
    assert (res.rows_written, res.changed) == (0, False)
    assert paths.rollup.read_bytes() == before and paths.rollup.stat().st_mtime_ns == mtime
    full = update_rollups(paths, now=now, slo_of=lambda s: 5000.0, raw_retention_days=14, rollup_retention_days=90, full=True)
    assert full.full and paths.rollup.read_bytes() == before
    # tamper with the first hour: a later incremental run must not recompute it
    lines = before.decode().splitlines(keepends=True)
    first = lines[1].split(",")
    lines[1] = ",".join([first[0], first[1], "1.000", *first[3:]])
    paths.rollup.write_text("".join(lines))
    _feed(tmp_path, 3, rng, start=now)
    after = paths.rollup.read_text().splitlines(keepends=True)
    assert after[1] == lines[1]  # untouched hour kept as it was
    _check_new = expected_rollups(log_events(tmp_path / "ev.csv"), 5000.0)
    last_hour = max(_check_new)
    assert _rollup(tmp_path)[last_hour]["samples"] == str(_check_new[last_hour][2])


def test_rollup_across_rotation_and_archives(tmp_path):
    rng = random.Random(6)
    cfg, _ = _feed(tmp_path, 80, rng, rotate=1500)
    paths = LatencyPaths.from_config(cfg)
    assert len(list(paths.archive_dir.rglob("*.csv.gz"))) >= 3
    _check(tmp_path, 5000.0)
    # a full recompute from archives + live gives the same bytes
    before = paths.rollup.read_bytes()
    paths.rollup_state.unlink()
    update_rollups(paths, now=T0 + minutes(400), slo_of=lambda s: 5000.0, raw_retention_days=14, rollup_retention_days=90)
    assert paths.rollup.read_bytes() == before


def test_retention_raw_and_rollup(tmp_path):
    rng = random.Random(7)
    cfg, now = _feed(tmp_path, 40, rng, rotate=1500, step_min=60)  # 40 hours of samples
    paths = LatencyPaths.from_config(cfg)
    n_archives = len(list(paths.archive_dir.rglob("*.csv.gz")))
    all_rows = raw_rows(tmp_path)
    rollup_hours = sorted({h for h, _ in _rollup(tmp_path)})
    cfg.latency.raw_retention_days = 1
    cfg.latency.rollup_retention_days = 1
    later = now + minutes(60 * 8)
    out = sample(cfg, later)
    cutoff = (later - minutes(24 * 60)).strftime("%Y-%m-%dT%H:00:00Z")
    kept = raw_rows(tmp_path)
    assert all(r["timestamp_utc"] >= cutoff or r["job_id"] in _archive_jobs(paths) for r in kept)
    assert not any(r["timestamp_utc"] < cutoff for r in _live_rows(paths))
    assert out["retention"]["archives_pruned"] >= 1
    assert len(list(paths.archive_dir.rglob("*.csv.gz"))) < n_archives
    assert len(kept) < len(all_rows)
    assert min(h for h, _ in _rollup(tmp_path)) >= cutoff and rollup_hours[0] < cutoff


def _live_rows(paths):
    return list(csv.DictReader(io.StringIO(paths.live.read_text())))


def _archive_jobs(paths):
    import gzip
    import json
    jobs = set()
    for e in json.loads(paths.manifest.read_text())["entries"]:
        with gzip.open(paths.archive_dir / e["path"], "rt") as fh:
            jobs |= {r["job_id"] for r in csv.DictReader(fh)}
    return jobs
