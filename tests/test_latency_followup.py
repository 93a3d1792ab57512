"""Issue #10 follow-up (QA findings): the rollup is the durable record, strict CLI times,
a strict latency reader, one rounding for every view. Expected values are worked out by
hand in the comments, never by calling the code under test."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from latency_fixtures import EVENT_HEADER, make_cfg, sample

from obslib.config import LatencySource
from obslib.latency.job import run_rollup
from obslib.runlog import JobContext

UTC = timezone.utc


def ts(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def write(path: Path, text: str, mode: str = "w") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, mode, encoding="utf-8") as fh:
        fh.write(text)


def obs(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBS_")}
    return subprocess.run([sys.executable, "-m", "obslib.cli", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=60)


def rollup_rows(work: Path) -> dict:
    text = (work / "ops/signal_latency_rollup.csv").read_text()
    return {(r["hour_utc"], r["source"]): r for r in csv.DictReader(io.StringIO(text))}


def brief(rows: dict) -> dict:
    return {k: (r["p50_ms"], r["p95_ms"], r["samples"]) for k, r in rows.items()}


def cfg_for(work: Path, log: Path, **latency):
    src = LatencySource(name="feed", kind="event_log", path=str(log), by_source_column=True)
    return make_cfg(work, [src], **latency)


def rollup(cfg, now: str, full: bool = False) -> dict:
    ctx = JobContext(job_name="latency_rollup", ops_dir=cfg.ops_dir, now=ts(now))
    return run_rollup(cfg, ctx, ts(now), full=full)


# --- finding 1: a damaged archive never costs rollup rows -----------------------------------

# hour 10: 4 x 100 ms -> p50 = p95 = 100; hour 11: 4 x 200 ms -> p50 = p95 = 200
QA_EVENTS = EVENT_HEADER + "".join(f"2026-11-24T10:{m}:00Z,100,success,,alpha\n2026-11-24T11:{m}:00Z,200,success,,alpha\n"
                                   for m in ("00", "05", "10", "20"))
QA_ROWS = {("2026-11-24T10:00:00Z", "alpha"): ("100.000", "100.000", "4"),
           ("2026-11-24T11:00:00Z", "alpha"): ("200.000", "200.000", "4")}


def test_qa_damaged_archive_and_full_rollup_keeps_rows_and_warns(tmp_path):
    write(tmp_path / "d/ops/signal_latency.csv", QA_EVENTS)
    base = ["--work-root", "w", "--data-root", "d"]
    r = obs(tmp_path, "latency", "sample", *base, "--now", "2026-11-24T12:00:00Z", "--rotate-bytes", "200")
    assert r.returncode == 0, r.stderr
    assert brief(rollup_rows(tmp_path / "w")) == QA_ROWS
    (arch,) = (tmp_path / "w/ops/signal_latency_archive").rglob("*.gz")
    arch.write_bytes(b"garbage")
    r = obs(tmp_path, "latency", "rollup", "--full", *base, "--now", "2026-11-24T12:30:00Z")
    assert r.returncode == 0
    assert json.loads(r.stdout)["status"] == "warning"
    assert "damaged archive quarantined" in r.stderr and arch.name in r.stderr
    assert brief(rollup_rows(tmp_path / "w")) == QA_ROWS
    # and again (the archive is in quarantine now; the live file has no rows of those hours)
    r = obs(tmp_path, "latency", "rollup", "--full", *base, "--now", "2026-11-24T12:45:00Z")
    assert r.returncode == 0 and json.loads(r.stdout)["status"] == "ok"
    assert brief(rollup_rows(tmp_path / "w")) == QA_ROWS


def test_missing_archive_late_row_is_merged_into_the_kept_hour(tmp_path):
    """Same class, another input: the archive is deleted (not garbled), a late event for its
    hour arrives, then a full rebuild runs."""
    log = tmp_path / "data/ev.csv"
    write(log, QA_EVENTS)
    cfg = cfg_for(tmp_path, log, rotate_bytes=200)
    out = sample(cfg, ts("2026-11-24T12:00:00Z"))
    assert out["rotated"]
    (tmp_path / out["rotated"]).unlink()
    write(log, "2026-11-24T10:30:00Z,400,success,,alpha\n", "a")
    out = sample(cfg, ts("2026-11-24T12:15:00Z"))
    assert out["status"] == "warning" and len(out["quarantined"]) == 1
    assert any("damaged archive quarantined" in m for m in out["_messages"])
    # hour 10 is now 100,100,100,100,400: type 7 p50 h = 4*0.5 = 2 -> 100;
    # p95 h = 4*0.95 = 3.8 -> x4 + 0.8*(x5 - x4) = 100 + 0.8*300 = 340
    want = {**QA_ROWS, ("2026-11-24T10:00:00Z", "alpha"): ("100.000", "340.000", "5")}
    assert brief(rollup_rows(tmp_path)) == want
    r = rollup(cfg, "2026-11-24T12:30:00Z", full=True)
    assert r["status"] == "ok"
    # the quarantine marker still says hour 10's raw rows are incomplete: the row stays
    assert brief(rollup_rows(tmp_path)) == want


@pytest.mark.parametrize("rotate_bytes", [200, 10_000_000])  # pruned from an archive / from the live file
def test_pruned_raw_rows_then_full_rebuild_keeps_their_hours(tmp_path, rotate_bytes):
    log = tmp_path / "data/ev.csv"
    write(log, EVENT_HEADER + "".join(f"2026-11-20T10:{m}:00Z,100,success,,alpha\n" for m in ("00", "05", "10")))
    cfg = cfg_for(tmp_path, log, rotate_bytes=rotate_bytes, raw_retention_days=1)
    sample(cfg, ts("2026-11-20T12:00:00Z"))
    write(log, "".join(f"2026-11-24T11:{m}:00Z,300,success,,alpha\n" for m in ("00", "05")), "a")
    out = sample(cfg, ts("2026-11-24T12:00:00Z"))
    assert out["retention"]["raw_rows_dropped"] + out["retention"]["archives_pruned"] >= 1
    # hour 11-20 10h: 3 x 100; hour 11-24 11h: 2 x 300
    want = {("2026-11-20T10:00:00Z", "alpha"): ("100.000", "100.000", "3"),
            ("2026-11-24T11:00:00Z", "alpha"): ("300.000", "300.000", "2")}
    assert brief(rollup_rows(tmp_path)) == want
    cfg.latency.raw_retention_days = 14  # a rebuild with a longer raw retention than the pruning used
    r = rollup(cfg, "2026-11-24T12:30:00Z", full=True)
    assert r["status"] == "ok" and r["full"]
    assert brief(rollup_rows(tmp_path)) == want


# --- finding 2: --since / --until are checked like every other time flag --------------------

@pytest.mark.parametrize("args, flag, why", [
    (["--since", "garbage"], "--since", "is not an RFC 3339 timestamp"),        # the QA inputs
    (["--until", "garbage"], "--until", "is not an RFC 3339 timestamp"),
    (["--since", "2026-11-24T12:00:00Z", "--until", "2026-11-24T10:00:00Z"], "--since", "is not before --until"),
    (["--since", "0001-01-01T00:00:00Z"], "--since", "is out of range (1970-01-01..2099-12-31)"),
    (["--until", "2026-13-01T00:00:00Z"], "--until", "is not an RFC 3339 timestamp"),  # same class: month 13
    (["--since", "2026-11-24T10:00:00Z", "--until", "2026-11-24T10:00:00Z"], "--since", "is not before --until"),
    (["--until", "1969-12-31T23:00:00Z"], "--until", "is out of range (1970-01-01..2099-12-31)"),
])
def test_status_time_flags_refuse_bad_values_with_exit_2(tmp_path, args, flag, why):
    r = obs(tmp_path, "latency", "status", "--work-root", "w", *args)
    assert r.returncode == 2, r.stderr
    assert "internal error" not in r.stderr
    err = json.loads(r.stdout)["error"]
    assert err.startswith(flag) and why in err


def test_rfc3339_writes_four_digit_years():
    from obslib.timeutil import to_rfc3339

    assert to_rfc3339(datetime(1, 1, 1, tzinfo=UTC)) == "0001-01-01T00:00:00Z"
    assert to_rfc3339(datetime(999, 12, 31, 23, 59, 59, 5, tzinfo=UTC)) == "0999-12-31T23:59:59.000005Z"
    assert to_rfc3339(datetime(2026, 11, 24, 10, 0, tzinfo=UTC)) == "2026-11-24T10:00:00Z"
