"""Acceptance: kill -9 at random points during sampling and rotation (>= 50 trials).

Each trial appends events, then runs the real ``obs latency sample`` in a forked process
that is killed with SIGKILL either by itself at a randomly chosen protocol checkpoint
(``OBS_LATENCY_FAULT=crash:<name>``; a point is kept until a run reaches it, so the
rare rotation points are covered too) or from outside after a random delay while the
checkpoints are slowed down. Rotation happens every few runs (tiny ``rotate_bytes``).
After one more run: no journal is left, every file parses, every event is counted
exactly once, no run's row appears twice, the archives match their manifest and the
rollups equal an independent recomputation.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import multiprocessing as mp
import os
import random
import signal
import time
from datetime import timedelta

import jsonschema
import pytest
from latency_fixtures import REPO, T0, check_rollup_file, cli_child, iso, raw_rows, write_obs_toml

CHECKPOINTS = ["locked", "recovered", "journal_written", "live_partial", "live_appended", "offsets_written",
               "state_written", "outbox_written", "journal_removed", "rolled_up", "rotation_journal_written",
               "archive_tmp_written", "archive_written", "manifest_written", "live_replaced", "retention_done"]
MIN_TRIALS, MIN_KILLS, MAX_TRIALS = 60, 55, 200
SLO = 1000.0


def _validator(name):
    schema = json.loads((REPO / "schemas" / name).read_text())
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


@pytest.mark.slow
def test_kill_minus_nine_at_random_points(tmp_path):
    rng = random.Random(int(os.environ.get("OBS_TEST_CRASH_SEED", "20251013")))
    log = tmp_path / "events.csv"
    log.write_text("timestamp_utc,latency_ms,status,detail,source\n")
    work = tmp_path / "work"
    write_obs_toml(work, log, latency_rotate_bytes=450, latency_slo_ms=SLO)
    ctx = mp.get_context("fork")
    n_events, now = 0, T0
    outcomes = {"self_kill": 0, "external_kill": 0, "completed": 0}
    crashed_at = set()
    completed_jobs = set()
    pending_points = CHECKPOINTS[:]
    rng.shuffle(pending_points)
    point = pending_points.pop()
    trial = 0
    while trial < MAX_TRIALS and (trial < MIN_TRIALS or outcomes["self_kill"] + outcomes["external_kill"] < MIN_KILLS):
        with open(log, "a") as fh:
            for _ in range(rng.randint(0, 3)):
                fh.write(f"{iso(now - timedelta(seconds=rng.randint(1, 200)))},"
                         f"{rng.lognormvariate(6.6, 0.8):.3f},success,,r\n")
                n_events += 1
        out = tmp_path / f"trial{trial}.jsonl"
        argv = ["latency", "sample", "--work-root", str(work), "--now", iso(now)]
        external = trial % 3 == 2
        env = {"OBS_LATENCY_FAULT": "sleep:0.004" if external else f"crash:{point}"}
        p = ctx.Process(target=cli_child, args=(argv, str(out), env))
        p.start()
        if external:
            time.sleep(rng.uniform(0.0, 0.12))
            os.kill(p.pid, signal.SIGKILL)
        p.join(60)
        if p.exitcode == -signal.SIGKILL:
            outcomes["external_kill" if external else "self_kill"] += 1
            if not external:  # the point was reached: move on to another one
                crashed_at.add(point)
                point = pending_points.pop() if pending_points else rng.choice(CHECKPOINTS)
        else:
            assert p.exitcode == 0
            outcomes["completed"] += 1
            completed_jobs.add(json.loads(out.read_text())["job_id"])
        now += timedelta(minutes=5)
        trial += 1
    final = ctx.Process(target=cli_child, args=(["latency", "sample", "--work-root", str(work), "--now", iso(now)],
                                                str(tmp_path / "final.jsonl")))
    final.start()
    final.join(60)
    assert final.exitcode == 0
    final_out = json.loads((tmp_path / "final.jsonl").read_text())
    assert final_out["status"] == "ok"
    completed_jobs.add(final_out["job_id"])
    print(outcomes, sorted(crashed_at))
    assert outcomes["self_kill"] + outcomes["external_kill"] >= MIN_KILLS
    assert {"live_partial", "journal_written", "live_appended", "rotation_journal_written"} <= crashed_at
    assert len(crashed_at & {"archive_tmp_written", "archive_written", "manifest_written", "live_replaced"}) >= 2

    ops = work / "ops"
    assert not (ops / "signal_latency_journal.json").exists()
    assert not (ops / "signal_latency_rotation.json").exists()
    # every file parses
    for name in ("signal_latency_offsets.json", "signal_latency_state.json", "latency_heartbeat.json",
                 "signal_latency_rollup_state.json"):
        json.loads((ops / name).read_text())
    live = list(csv.reader(io.StringIO((ops / "signal_latency.csv").read_text())))
    assert live[0] == ["timestamp_utc", "source", "latency_ms", "p95_latency_ms", "status", "samples_in_window",
                       "job_id", "window_s", "bad_events", "error_events", "max_ms", "sampled_at", "sketch"]
    assert all(len(r) == 13 for r in live)
    manifest = json.loads((ops / "signal_latency_archive/manifest.json").read_text())
    _validator("latency_archive_manifest.schema.json").validate(manifest)
    assert len(manifest["entries"]) >= 5
    on_disk = sorted(p.relative_to(ops / "signal_latency_archive").as_posix()
                     for p in (ops / "signal_latency_archive").rglob("*.csv.gz"))
    assert on_disk == sorted(e["path"] for e in manifest["entries"])
    for e in manifest["entries"]:
        data = (ops / "signal_latency_archive" / e["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == e["sha256"]
        body = gzip.decompress(data)
        assert hashlib.sha256(body).hexdigest() == e["source_sha256"]
        assert len(body.decode().splitlines()) - 1 == e["rows"]
    # no row lost, none duplicated
    rows = raw_rows(work)
    keys = [(r["job_id"], r["timestamp_utc"], r["source"]) for r in rows]
    assert len(keys) == len(set(keys))  # no window part written twice
    assert sum(int(r["samples_in_window"]) for r in rows) == n_events
    # alerts: every payload delivered (written) exactly once, valid
    assert not list((ops / "latency_alert_outbox").glob("*.json"))
    alert_files = list((work / "out/latency_alerts").glob("*.json"))
    assert alert_files
    v = _validator("latency_alert.schema.json")
    ids = [json.loads(f.read_text())["payload_id"] for f in alert_files]
    for f in alert_files:
        v.validate(json.loads(f.read_text()))
    assert len(ids) == len(set(ids))
    check_rollup_file(work, SLO, log)
    for line in (ops / "automation_runs.log").read_text().splitlines():
        json.loads(line)
