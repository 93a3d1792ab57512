"""Acceptance: 8 processes x 20 `obs latency sample` runs against one event log while a
writer appends events. Every event is counted exactly once, every successful run has
exactly one row, skipped runs write nothing and are logged with their lock wait."""

from __future__ import annotations

import json
import multiprocessing as mp
import random
import time
from datetime import datetime, timezone

import pytest
from latency_fixtures import EVENT_HEADER, cli_child, raw_rows, runlog, write_obs_toml

PROCS, RUNS = 8, 20


def _hold_lock(lock: str, seconds: float) -> None:
    """A slow run (e.g. a long rotation): holds the job lock so that some runs must skip."""
    import filelock

    with filelock.FileLock(lock):
        time.sleep(seconds)


def _writer(log: str, n: int, seed: int) -> None:
    rng = random.Random(seed)
    for i in range(n):
        ts = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        with open(log, "a") as fh:
            fh.write(f"{ts},{rng.uniform(10, 5000):.3f},success,,w{i}\n")
        time.sleep(rng.uniform(0, 0.01))


@pytest.mark.slow
def test_eight_processes_twenty_runs_each(tmp_path):
    log = tmp_path / "events.csv"
    log.write_text(EVENT_HEADER)
    work = tmp_path / "work"
    write_obs_toml(work, log, lock_timeout_s=0.3)
    ctx = mp.get_context("fork")
    n_events = 600
    writer = ctx.Process(target=_writer, args=(str(log), n_events, 1))
    argv = [["latency", "sample", "--work-root", str(work)] for _ in range(RUNS)]
    workers = [ctx.Process(target=cli_child, args=(argv, str(tmp_path / f"out{i}.jsonl"))) for i in range(PROCS)]
    holder = ctx.Process(target=_hold_lock, args=(str(work / "ops/signal_latency.lock"), 1.5))
    (work / "ops").mkdir()
    holder.start()
    writer.start()
    for w in workers:
        w.start()
    for p in [holder, writer, *workers]:
        p.join(120)
        assert p.exitcode == 0
    # one more run consumes whatever the writer appended after the last worker run
    final = ctx.Process(target=cli_child, args=(["latency", "sample", "--work-root", str(work)],
                                                str(tmp_path / "final.jsonl")))
    final.start()
    final.join(60)
    summaries = [json.loads(line) for i in range(PROCS) for line in (tmp_path / f"out{i}.jsonl").read_text().splitlines()]
    summaries.append(json.loads((tmp_path / "final.jsonl").read_text()))
    assert len(summaries) == PROCS * RUNS + 1
    ok = {s["job_id"] for s in summaries if s["status"] == "ok"}
    skipped = {s["job_id"] for s in summaries if s["status"] == "skipped"}
    assert len(ok) + len(skipped) == PROCS * RUNS + 1
    assert len(ok) >= PROCS and len(skipped) >= PROCS  # the held lock made every process skip at least once

    rows = raw_rows(work)
    keys = [(r["job_id"], r["timestamp_utc"], r["source"]) for r in rows]
    assert len(keys) == len(set(keys)), "a run wrote a window part twice"
    assert {r["job_id"] for r in rows} <= ok, "skipped runs wrote nothing"
    assert sum(int(r["samples_in_window"]) for r in rows) == n_events, "every event counted exactly once"

    log_recs = {r["job_id"]: r for r in runlog(work) if r.get("job_name") == "latency"}
    assert set(log_recs) == ok | skipped
    for jid in skipped:
        assert log_recs[jid]["status"] == "skipped" and log_recs[jid]["lock_wait_ms"] >= 250
    print(f"ok runs {len(ok)}, skipped {len(skipped)}")
