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


# --- finding 3: one strict number rule, unknown statuses are bad rows -----------------------

BAD_ROWS = [
    ("1_000", "success", "is not a number"),     # the QA inputs
    ("\uff15", "success", "is not a number"),    # full-width 5
    (" 2 ", "success", "is not a number"),
    ("100", "weird_status", "status 'weird_status' is not one of"),
    ("\u0663", "success", "is not a number"),    # same class: Arabic-Indic 3
    ("0x10", "success", "is not a number"),      # hex
    ("inf", "success", "is not a number"),
    ("1e999", "success", "is not a finite number"),
    ("-1", "success", "is not a finite number >= 0"),
    ("100", " success", "is not one of"),         # a status with a space around it
    ("100", "pending", "is not one of"),
]


@pytest.mark.parametrize("lat, status, why", BAD_ROWS)
def test_loose_numbers_and_unknown_statuses_are_bad_rows_with_file_line(tmp_path, lat, status, why):
    log = tmp_path / "data/ev.csv"
    # line 2 good (100), line 3 the bad row, line 4 good (300)
    write(log, EVENT_HEADER + "2026-11-24T10:00:00Z,100,success,,alpha\n"
          f"2026-11-24T10:01:00Z,{lat},{status},,alpha\n2026-11-24T10:02:00Z,300,OK,,alpha\n")
    cfg = cfg_for(tmp_path, log)
    out = sample(cfg, ts("2026-11-24T10:30:00Z"))
    assert out["bad_rows"] == 1 and out["events_read"] == 2
    (msg,) = [m for m in out["_messages"] if "ev.csv" in m]
    assert ":3" in msg and why in msg
    # the window holds 100 and 300 only: p50 = 200 (type 7, h = 0.5), samples 2
    assert brief(rollup_rows(tmp_path)) == {("2026-11-24T10:00:00Z", "alpha"): ("200.000", "290.000", "2")}


@pytest.mark.parametrize("lat, status, error", [("1.5", "success", False), (".5", "ok", False), ("2e3", "", False),
                                                ("7.", "Success", False), ("", "timeout", True),
                                                ("12", "FAILED", True)])
def test_accepted_numbers_and_statuses(lat, status, error):
    from obslib.inputs.latency_events import LineParser

    p = LineParser(EVENT_HEADER.strip().split(","), rel_path="ev.csv")
    problems: list = []
    e = p.parse(f"2026-11-24T10:01:00Z,{lat},{status},,alpha".encode(), 2, problems)
    assert problems == []
    assert e.error is error
    assert e.latency_ms == {"1.5": 1.5, ".5": 0.5, "2e3": 2000.0, "7.": 7.0, "": None, "12": 12.0}[lat]


def test_kit_sample_row_with_unknown_status_or_loose_count_is_a_bad_row(tmp_path):
    from obslib.latency.rollup import parse_sample_lines

    good = ("2026-11-24T10:00:00Z,alpha,100.000,100.000,ok,1,j,900,0,0,100.000,2026-11-24T10:15:00Z,x1:100\n")
    bad_status = good.replace(",ok,", ",weird,")
    bad_count = good.replace(",ok,1,", ",ok,1_0,")
    problems: list = []
    parts = parse_sample_lines((good + bad_status + bad_count).encode(), "raw.csv", problems, slo_of=lambda s: 1e9)
    assert len(parts) == 1 and parts[0].events == 1
    assert [(p.line, "weird" in p.reason or "1_0" in p.reason) for p in problems] == [(2, True), (3, True)]


# --- finding 4: one rounding for every view -------------------------------------------------

@pytest.mark.parametrize("values, p50, p95", [
    # 8 x 2000 + 3000: type 7 p95 h = 8*0.95 = 7.6 -> 2000 + 0.6*1000 = 2600 (float: 2599.9999999999995)
    ([2000] * 8 + [3000], 2000.0, 2600.0),
    # 3 x 100 + 2600: h = 3*0.95 = 2.85 -> 100 + 0.85*2500 = 2225 (float: 2224.999999999999); p50 h = 1.5 -> 100
    ([100] * 3 + [2600], 100.0, 2225.0),
])
def test_status_range_latest_window_and_rollup_print_the_same_p95(tmp_path, values, p50, p95):
    log = tmp_path / "data/ev.csv"
    write(log, EVENT_HEADER + "".join(f"2026-11-24T10:{i:02d}:00Z,{v},success,,alpha\n" for i, v in enumerate(values)))
    cfg = cfg_for(tmp_path, log)
    sample(cfg, ts("2026-11-24T10:15:30Z"))  # the last closed window is 10:00-10:15, all events
    from obslib.latency.job import latency_status

    st = latency_status(cfg, since=ts("2026-11-24T10:00:00Z"), until=ts("2026-11-24T11:00:00Z"))
    rng = st["range"]["sources"]["alpha"]
    assert (rng["p50_ms"], rng["p95_ms"]) == (p50, p95)
    assert st["sources"]["alpha"]["latest_p95_ms"] == p95
    assert json.dumps(rng["p95_ms"]) == json.dumps(p95)  # what the JSON line prints
    row = rollup_rows(tmp_path)[("2026-11-24T10:00:00Z", "alpha")]
    assert (float(row["p50_ms"]), float(row["p95_ms"])) == (p50, p95)
