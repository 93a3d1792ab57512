"""Issue #10 acceptance: the latency model end to end, with hand-computed values.

Every expected number here is worked out by hand in the comments (or with numpy on the
raw values), never by calling the code under test."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from latency_fixtures import EVENT_HEADER, make_cfg, sample

from obslib.config import LatencySource, load_config
from obslib.errors import ConfigError
from obslib.latency.job import latency_status, run_rollup
from obslib.latency.paths import LatencyPaths
from obslib.runlog import JobContext
from obslib.timeutil import parse_week_start
from obslib.weekly.payload import build_weekly_payload

UTC = timezone.utc


def ts(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def runs_index(root: Path) -> None:
    write(root / "runs/index.csv", "run_id,run_dir,timestamp,symbol,mode,trades,wins,total_pips\n")


def write(path: Path, text: str, mode: str = "w") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, mode, encoding="utf-8") as fh:
        fh.write(text)


def cfg_for(work: Path, log: Path, **latency):
    src = LatencySource(name="feed", kind="event_log", path=str(log), by_source_column=True)
    return make_cfg(work, [src], **latency)


def rollup_rows(work: Path) -> dict:
    text = (work / "ops/signal_latency_rollup.csv").read_text()
    return {(r["hour_utc"], r["source"]): r for r in csv.DictReader(io.StringIO(text))}


def alerts_written(work: Path) -> list[dict]:
    d = work / "out/latency_alerts"
    out = []
    for f in sorted(d.glob("*.json")) if d.exists() else []:
        out += json.loads(f.read_text())["alerts"]
    return out


# --- observation 1: percentile of the events, not of window medians ------------------------

def _hour_of_four_windows(work: Path) -> Path:
    log = work / "data/ev.csv"
    lines = [EVENT_HEADER]
    for m in (0, 15, 30, 45):
        for i, v in enumerate((100, 100, 100, 5000)):
            lines.append(f"2024-03-10T12:{m + i:02d}:00Z,{v},success,,api\n")
    write(log, "".join(lines))
    return log


def test_hour_is_the_percentile_of_its_16_events_and_status_shows_the_last_window(tmp_path):
    log = _hour_of_four_windows(tmp_path)
    cfg = cfg_for(tmp_path, log, slo_ms=1000.0)
    out = sample(cfg, ts("2024-03-10T13:00:30Z"))
    r = rollup_rows(tmp_path)[("2024-03-10T12:00:00Z", "api")]
    # 12 x 100 and 4 x 5000: type 7 p50 h = 15*0.5 = 7.5 -> 100; p95 h = 14.25 -> x14 = x15 = 5000
    assert (float(r["p50_ms"]), float(r["p95_ms"]), float(r["p99_ms"]), float(r["max_ms"])) == (100, 5000, 5000, 5000)
    assert (r["samples"], r["windows"], r["bad_events"], r["breach_flag"], r["method"]) == (
        "16", "4", "4", "true", "exact_type7")
    assert out["events_read"] == 16 and out["bad_rows"] == 0
    # the last window 12:45-13:00: 100,100,100,5000: h = 3*0.95 = 2.85 -> 100 + 0.85*4900 = 4265
    st = latency_status(cfg)["sources"]["api"]
    assert round(st["latest_p95_ms"], 6) == 4265.0
    assert (st["latest_window_start"], st["latest_status"], st["severity"], st["streak"]) == (
        "2024-03-10T12:45:00Z", "breach", "critical", 4)
    # the same range through status and through the weekly payload: 5000 (exact)
    rng = latency_status(cfg, since=ts("2024-03-04T00:00:00Z"), until=ts("2024-03-11T00:00:00Z"))["range"]
    assert rng["sources"]["api"]["p95_ms"] == 5000.0 and rng["sources"]["api"]["samples"] == 16
    p = build_weekly_payload(tmp_path / "data", parse_week_start("2024-03-04"),
                             cfg=_weekly_cfg(tmp_path, "ev.csv"), now=ts("2024-03-11T00:00:00Z"), job_id="t",
                             command="t", sha=None, data_label="t")
    api = next(s for s in p["latency"]["sources"] if s["source"] == "api")
    assert (api["p95_ms"], api["p50_ms"], api["samples"], api["bad_events"]) == (5000.0, 100.0, 16, 4)
    assert p["latency"]["hourly"] == [{"hour_utc": "2024-03-10T12:00:00Z", "source": "api", "p95_ms": 5000.0,
                                       "samples": 16, "method": "exact_type7"}]
    # one streak decision per run (net change), a stable id
    a = alerts_written(tmp_path)
    assert [(x["id"], x["severity"], x["previous_severity"]) for x in a] == [("latency-streak:api", "critical", "ok")]


def _weekly_cfg(work: Path, name: str, **latency):
    """A config whose data root holds ``ops/signal_latency.csv`` = data/<name>."""
    root = work / "data"
    runs_index(root)
    target = root / "ops/signal_latency.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        target.write_bytes((root / name).read_bytes())
    cfg = load_config(work / "wk", env={}, overrides={"data_root": str(root)})
    cfg.latency.slo_ms = 1000.0
    for k, v in latency.items():
        setattr(cfg.latency, k, v)
    return cfg


# --- observation 3: event time, events after now, the far future ---------------------------

def test_events_after_now_wait_and_far_future_is_a_bad_row_that_hides_nothing(tmp_path):
    log = tmp_path / "data/ev.csv"
    write(log, EVENT_HEADER + "2024-03-10T12:50:00Z,100,success,,api\n"
                              "2999-01-01T00:00:00Z,7,success,,api\n"          # far future: bad row
                              "2024-03-10T13:03:00Z,300,success,,api\n"        # 3 min after now: waits
                              "2024-03-10T12:55:00Z,200,success,,api\n")       # after the held one: waits too
    cfg = cfg_for(tmp_path, log, slo_ms=1000.0)
    out = sample(cfg, ts("2024-03-10T13:00:00Z"))
    assert (out["events_read"], out["future_rows"], out["bad_rows"], out["held_rows"]) == (1, 1, 1, 2)
    out2 = sample(cfg, ts("2024-03-10T13:15:00Z"))
    assert (out2["events_read"], out2["bad_rows"], out2["held_rows"]) == (2, 0, 0)
    rows = rollup_rows(tmp_path)
    # hour 12: 100 and 200 (the 12:55 event, held then counted); hour 13: 300
    assert rows[("2024-03-10T12:00:00Z", "api")]["samples"] == "2"
    assert float(rows[("2024-03-10T12:00:00Z", "api")]["max_ms"]) == 200
    assert rows[("2024-03-10T13:00:00Z", "api")]["samples"] == "1"
    assert "2999" not in (tmp_path / "ops/signal_latency.csv").read_text()
    # a late event for a window already written: another row, the rollup merges it
    write(log, "2024-03-10T12:51:00Z,400,success,,api\n", "a")
    sample(cfg, ts("2024-03-10T13:20:00Z"))
    r = rollup_rows(tmp_path)[("2024-03-10T12:00:00Z", "api")]
    assert (r["samples"], r["windows"], float(r["max_ms"])) == ("3", "3", 400.0)
    # 100, 200, 400: type 7 p95 h = 1.9 -> 200 + 0.9*200 = 380
    assert float(r["p95_ms"]) == 380.0


# --- observation 4: a record is complete only with its newline ------------------------------

def test_torn_last_line_with_full_field_count_is_counted_once_when_complete(tmp_path):
    log = tmp_path / "data/ev.csv"
    write(log, EVENT_HEADER + "2024-03-12T12:10:00Z,120,success,,api\n2024-03-12T12:15:00Z,130,success,,ap")
    cfg = cfg_for(tmp_path, log, slo_ms=1000.0)
    out = sample(cfg, ts("2024-03-12T12:20:00Z"))
    assert out["events_read"] == 1 and out["torn_bytes"] == len("2024-03-12T12:15:00Z,130,success,,ap")
    assert "ap," not in (tmp_path / "ops/signal_latency.csv").read_text()
    write(log, "i\n", "a")
    out = sample(cfg, ts("2024-03-12T12:25:00Z"))
    assert out["events_read"] == 1 and out["torn_bytes"] == 0
    out = sample(cfg, ts("2024-03-12T12:30:00Z"))
    assert out["events_read"] == 0
    r = rollup_rows(tmp_path)[("2024-03-12T12:00:00Z", "api")]
    assert (r["samples"], float(r["max_ms"])) == ("2", 130.0)


def test_weekly_reader_ignores_a_torn_sample_row_in_the_kit_layout(tmp_path):
    root = tmp_path / "data"
    runs_index(root)
    hdr = "timestamp_utc,source,latency_ms,p95_latency_ms,status,samples_in_window,job_id\n"
    write(root / "ops/signal_latency.csv", hdr + "2024-03-12T12:00:00Z,api,100.000,200.000,ok,3,j\n"
                                                 "2024-03-12T12:15:00Z,api,900.000,1.0")
    cfg = load_config(tmp_path / "wk", env={}, overrides={"data_root": str(root)})
    p = build_weekly_payload(root, parse_week_start("2024-03-11"), cfg=cfg, now=ts("2024-03-18T00:00:00Z"),
                             job_id="t", command="t", sha=None, data_label="t")
    # old layout: one value (the row's latency_ms 100) per row; the torn row is not read
    assert p["latency"]["p95_ms"] == 100.0 and p["latency"]["samples"] == 1


# --- observation 5: external rename-rotation ------------------------------------------------

def test_rename_rotation_finishes_the_old_file_first(tmp_path):
    log = tmp_path / "data/ev.csv"
    write(log, EVENT_HEADER + "2024-03-12T11:59:00Z,100,success,,api\n")
    cfg = cfg_for(tmp_path, log, slo_ms=1000.0)
    assert sample(cfg, ts("2024-03-12T12:00:00Z"))["events_read"] == 1
    write(log, "2024-03-12T12:05:00Z,200,success,,api\n2024-03-12T12:06:00Z,300,success,,api\n", "a")
    os.rename(log, tmp_path / "data/ev.csv.1")
    write(log, EVENT_HEADER + "2024-03-12T12:10:00Z,400,success,,api\n")
    out = sample(cfg, ts("2024-03-12T12:15:00Z"))
    assert out["events_read"] == 3 and out["lost_bytes"] == 0
    assert "finished rotated file ev.csv.1" in out["sources"]["feed"]["detail"]
    r = rollup_rows(tmp_path)[("2024-03-12T12:00:00Z", "api")]
    assert (r["samples"], float(r["p50_ms"])) == ("3", 300.0)   # 200, 300, 400
    assert sample(cfg, ts("2024-03-12T12:30:00Z"))["events_read"] == 0


def test_rotated_file_that_is_gone_reports_the_bytes_known_lost(tmp_path):
    log = tmp_path / "data/ev.csv"
    write(log, EVENT_HEADER + "2024-03-12T11:59:00Z,100,success,,api\n")
    cfg = cfg_for(tmp_path, log, slo_ms=1000.0)
    sample(cfg, ts("2024-03-12T12:00:00Z"))
    tail = "2024-03-12T12:00:0"  # a torn line the cursor saw but did not consume
    write(log, tail, "a")
    sample(cfg, ts("2024-03-12T12:01:00Z"))
    write(tmp_path / "data/ev.new", EVENT_HEADER + "2024-03-12T12:10:00Z,400,success,,api\n")
    os.replace(tmp_path / "data/ev.new", log)  # the old file is gone, nowhere in the folder
    out = sample(cfg, ts("2024-03-12T12:15:00Z"))
    assert out["lost_bytes"] == len(tail) and out["events_read"] == 1


# --- observation 6: a damaged archive is quarantined and the jobs go on ---------------------

@pytest.mark.parametrize("damage", ["truncate", "crc"])
def test_damaged_archive_is_quarantined_and_both_jobs_go_on(tmp_path, damage):
    log = tmp_path / "data/ev.csv"
    lines = [EVENT_HEADER] + [f"2024-03-12T{h:02d}:{m:02d}:00Z,{100 + h},success,,api\n"
                              for h in range(0, 6) for m in range(0, 60, 5)]
    write(log, "".join(lines))
    cfg = cfg_for(tmp_path, log, slo_ms=1000.0, rotate_bytes=200)
    out = sample(cfg, ts("2024-03-12T06:00:00Z"))
    assert out["rotated"]
    arch = tmp_path / out["rotated"]
    data = arch.read_bytes()
    if damage == "truncate":
        arch.write_bytes(data[:-12])
    else:
        arch.write_bytes(data[:-8] + bytes(8))  # CRC and size zeroed
    write(log, "2024-03-12T06:05:00Z,100,success,,api\n", "a")
    out = sample(cfg, ts("2024-03-12T06:10:00Z"))
    assert out["status"] == ("warning" if out["quarantined"] else "ok")
    ctx = JobContext(job_name="latency_rollup", ops_dir=cfg.ops_dir, now=ts("2024-03-12T06:20:00Z"))
    r = run_rollup(cfg, ctx, ts("2024-03-12T06:20:00Z"), full=True)
    quarantined = out["quarantined"] + r["quarantined"]
    assert len(quarantined) == 1 and arch.name in quarantined[0]
    assert any(arch.name in m for m in out["_messages"] + r["_messages"])
    assert not arch.exists()
    assert (tmp_path / "ops/signal_latency_archive/quarantine" / arch.name).exists()
    assert r["status"] == ("warning" if r["quarantined"] else "ok")
    # the hours of the quarantined archive keep their rollup rows (12 events each, 00..05h)
    rows = rollup_rows(tmp_path)
    assert [rows[(f"2024-03-12T{h:02d}:00:00Z", "api")]["samples"] for h in range(6)] == ["12"] * 6


# --- observation 7: an over-long field ------------------------------------------------------

def test_long_line_is_a_bad_row_and_sampling_goes_on(tmp_path):
    log = tmp_path / "data/ev.csv"
    write(log, EVENT_HEADER + "2024-03-12T12:01:00Z,100,success," + "x" * 131_073 + ",api\n"
               "2024-03-12T12:02:00Z,200,success,,api\n")
    cfg = cfg_for(tmp_path, log, slo_ms=1000.0)
    out = sample(cfg, ts("2024-03-12T12:15:00Z"))
    assert (out["bad_rows"], out["events_read"]) == (1, 1)
    assert any("ev.csv:2" in m and "longer than" in m for m in out["_messages"])
    assert sample(cfg, ts("2024-03-12T12:30:00Z"))["bad_rows"] == 0  # the cursor moved past it


# --- observation 8: naive and empty timestamps ----------------------------------------------

def test_naive_and_empty_timestamps_are_bad_rows_unless_configured(tmp_path):
    log = tmp_path / "data/ev.csv"
    body = ("2024-11-03T01:30:00,100,success,,api\n"   # no zone
            ",100,success,,api\n"                      # empty
            "2024-11-03T01:40:00Z,200,success,,api\n")
    write(log, EVENT_HEADER + body)
    cfg = cfg_for(tmp_path, log, slo_ms=1000.0)
    out = sample(cfg, ts("2024-11-03T02:00:00Z"))
    assert (out["bad_rows"], out["events_read"]) == (2, 1)
    msgs = " ".join(out["_messages"])
    assert "ev.csv:2" in msgs and "no time zone" in msgs and "ev.csv:3" in msgs and "empty timestamp_utc" in msgs
    work2 = tmp_path / "w2"
    cfg2 = cfg_for(work2, log, slo_ms=1000.0, naive_timestamps="utc")
    out2 = sample(cfg2, ts("2024-11-03T02:00:00Z"))
    assert (out2["bad_rows"], out2["events_read"]) == (1, 2)


# --- #12: source names ------------------------------------------------------------------------

def test_source_name_with_a_comma_is_refused_at_config_load(tmp_path):
    write(tmp_path / "obs.toml", '[[latency.sources]]\nname = "a,b"\nkind = "http_probe"\nurl = "http://x"\n')
    with pytest.raises(ConfigError, match="latency source name 'a,b' is not a safe identifier"):
        load_config(tmp_path, env={})


def test_bad_rows_are_capped_in_messages_but_all_counted(tmp_path):
    log = tmp_path / "data/ev.csv"
    write(log, EVENT_HEADER + "".join(f"nope{i},1,success,,api\n" for i in range(45)))
    cfg = cfg_for(tmp_path, log)
    out = sample(cfg, ts("2024-03-12T12:15:00Z"))
    assert out["bad_rows"] == 45
    bad = [m for m in out["_messages"] if m.startswith("bad input row")]
    assert len(bad) == 21 and bad[-1].endswith("and 25 more")


# --- absent data ------------------------------------------------------------------------------

def test_absent_data_warning_critical_resolved(tmp_path):
    log = tmp_path / "data/ev.csv"
    write(log, EVENT_HEADER + "2024-03-12T12:05:00Z,100,success,,api\n")
    cfg = cfg_for(tmp_path, log, slo_ms=1000.0)
    sample(cfg, ts("2024-03-12T12:15:00Z"))                    # window 12:00 has data
    sample(cfg, ts("2024-03-12T12:30:00Z"))                    # 12:15 empty: 1
    out = sample(cfg, ts("2024-03-12T12:45:00Z"))              # 12:30 empty: 2 -> warning
    assert [(n["id"], n["severity"]) for n in out["notifications"]] == [("latency-absent:api", "warning")]
    out = sample(cfg, ts("2024-03-12T13:00:00Z"))              # 3: no change
    assert out["notifications"] == []
    out = sample(cfg, ts("2024-03-12T13:15:00Z"))              # 4 -> critical
    assert [(n["severity"], n["previous_severity"]) for n in out["notifications"]] == [("critical", "warning")]
    write(log, "2024-03-12T13:20:00Z,100,success,,api\n", "a")
    out = sample(cfg, ts("2024-03-12T13:30:00Z"))              # one event -> resolved
    assert [(n["id"], n["severity"]) for n in out["notifications"]] == [("latency-absent:api", "resolved")]
    assert latency_status(cfg)["sources"]["api"]["absent"] == "ok"


# --- burn rate (Google SRE workbook) ----------------------------------------------------------

def _burn_run(tmp_path, windows: list[tuple[int, int]], now: datetime):
    """windows: (events, above SLO) per 15-minute window ending at now."""
    log = tmp_path / "data/ev.csv"
    lines = [EVENT_HEADER]
    start = now - timedelta(minutes=15 * len(windows))
    for i, (n, bad) in enumerate(windows):
        w = start + timedelta(minutes=15 * i)
        for j in range(n):
            v = 5000 if j < bad else 100
            lines.append(f"{(w + timedelta(seconds=j)).strftime('%Y-%m-%dT%H:%M:%SZ')},{v},success,,api\n")
    write(log, "".join(lines))
    cfg = cfg_for(tmp_path, log, slo_ms=1000.0)
    return sample(cfg, now)


def _burn(out):
    return [(n["severity"], n["previous_severity"]) for n in out["notifications"] if n["rule"] == "burn_rate"]


def test_burn_rate_80_percent_hour_pages(tmp_path):
    # 4 windows of 20 events, 16 above: 0.8 / 0.05 = 16 > 14.4 over 1 h and over the last 15 min
    assert _burn(_burn_run(tmp_path, [(20, 16)] * 4, ts("2024-03-12T13:00:00Z"))) == [("critical", "ok")]


def test_burn_rate_steady_35_percent_for_6_hours_warns_without_paging(tmp_path):
    # 24 windows of 20 events, 7 above: 0.35 / 0.05 = 7 > 6 over 6 h and 1 h, < 14.4
    out = _burn_run(tmp_path, [(20, 7)] * 24, ts("2024-03-12T18:00:00Z"))
    assert _burn(out) == [("warning", "ok")]
    st = json.loads((tmp_path / "ops/signal_latency_state.json").read_text())["rules"]["api"]["burn"]
    assert st["burn_6h"] == pytest.approx(7.0) and st["burn_1h"] == pytest.approx(7.0)


def test_burn_rate_3_percent_raises_nothing(tmp_path):
    # 0.03 / 0.05 = 0.6; p95 of 100 events with 3 above the SLO is 100 ms: no streak either
    out = _burn_run(tmp_path, [(100, 3)] * 24, ts("2024-03-12T18:00:00Z"))
    assert out["notifications"] == []


def test_per_source_slo_override(tmp_path):
    log = tmp_path / "data/ev.csv"
    write(log, EVENT_HEADER + "".join(f"2024-03-12T12:0{i}:00Z,500,success,,x\n" for i in range(4)))
    src = LatencySource(name="x", kind="event_log", path=str(log), match_source="x", slo_ms=400.0)
    cfg = make_cfg(tmp_path, [src], slo_ms=1000.0)
    sample(cfg, ts("2024-03-12T12:15:00Z"))
    r = rollup_rows(tmp_path)[("2024-03-12T12:00:00Z", "x")]
    assert (r["bad_events"], r["breach_flag"]) == ("4", "true")


# --- the demo week: three views agree -----------------------------------------------------------

def test_demo_week_payload_rollups_and_status_agree(tmp_path):
    from obslib.demo import generate_demo
    from obslib.latency.model import query
    from obslib.latency.rollup import rollup_parts

    as_of = ts("2025-10-15T12:07:00Z")
    root = generate_demo(tmp_path / "demo", as_of)
    cfg = load_config(tmp_path / "w", env={}, overrides={"data_root": str(root)})
    ctx = JobContext(job_name="latency", ops_dir=cfg.ops_dir, now=as_of)
    from obslib.latency.alerts import AlertTarget
    from obslib.latency.job import run_sample

    run_sample(cfg, ctx, as_of, data_root=root, target=AlertTarget())
    week = parse_week_start("2025-10-06")
    p = build_weekly_payload(root, week, cfg=cfg, now=as_of, job_id="t", command="t", sha=None, data_label="demo")
    pay = {s["source"]: s for s in p["latency"]["sources"]}
    assert sorted(pay) == ["feed_ingest", "router_demo", "signal_bridge"]
    st = latency_status(cfg, since=week, until=week + timedelta(days=7))["range"]["sources"]
    lo, hi = int(week.timestamp()), int((week + timedelta(days=7)).timestamp())
    merged = query(rollup_parts(tmp_path / "w/ops/signal_latency_rollup.csv"), by="range", slo_of=cfg.latency.slo_of,
                   start=lo, end=hi)
    raw = _demo_week_values(root, week)
    for src, row in pay.items():
        assert row["samples"] == st[src]["samples"] == merged[(lo, src)].samples == len(raw[src]) == 672
        assert row["p95_ms"] == round(st[src]["p95_ms"], 3) == round(merged[(lo, src)].p95, 3)
        # 672 events > 64: the DDSketch, within 1 % of the exact type-7 p95 (numpy)
        exact = float(np.percentile(raw[src], 95))
        assert abs(st[src]["p95_ms"] - exact) <= 0.01 * exact and st[src]["method"] == "ddsketch_a0.01"
    # the report's hourly series equals the rollup rows of the week
    roll = rollup_rows(tmp_path / "w")
    for h in p["latency"]["hourly"]:
        assert float(roll[(h["hour_utc"], h["source"])]["p95_ms"]) == pytest.approx(h["p95_ms"], abs=5e-4)


def _demo_week_values(root: Path, week: datetime) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    with open(root / "ops/signal_latency.csv") as fh:
        for r in csv.DictReader(fh):
            t = ts(r["timestamp_utc"])
            if week <= t < week + timedelta(days=7):
                out.setdefault(r["source"], []).append(float(r["latency_ms"]))
    return out


def test_archive_bytes_are_gzip(tmp_path):
    # the fixture the quarantine test relies on: a rotation writes a real gzip member
    log = tmp_path / "data/ev.csv"
    write(log, EVENT_HEADER + "".join(f"2024-03-12T01:{m:02d}:00Z,100,success,,api\n" for m in range(30)))
    cfg = cfg_for(tmp_path, log, rotate_bytes=100)
    out = sample(cfg, ts("2024-03-12T02:00:00Z"))
    with gzip.open(tmp_path / out["rotated"], "rt") as fh:
        assert fh.readline().startswith("timestamp_utc,source,")
    assert LatencyPaths.from_config(cfg).manifest.exists()


def test_kit_sample_row_with_an_empty_timestamp_is_a_counted_bad_row(tmp_path):
    """Observation 8, second half: the rollup reports it (file:line), it is not dropped silently."""
    from obslib.latency.store import OLD_COLUMNS

    ops = tmp_path / "ops"
    rows = [f"2025-10-13T09:{m:02d}:00Z,a,{10 * (i + 1)}.000,{10 * (i + 1)}.000,ok,1,j\n"
            for i, m in enumerate(range(0, 56, 8))]
    bad = ",a,99.000,99.000,ok,1,j\n"
    write(ops / "signal_latency.csv", ",".join(OLD_COLUMNS) + "\n" + "".join(rows[:3]) + bad + "".join(rows[3:]))
    cfg = make_cfg(tmp_path, [])
    ctx = JobContext(job_name="latency_rollup", ops_dir=cfg.ops_dir, now=ts("2025-10-13T10:00:00Z"))
    out = run_rollup(cfg, ctx, ts("2025-10-13T10:00:00Z"), full=True)
    assert (out["raw_rows_read"], out["bad_rows"]) == (7, 1)
    assert any("ops/signal_latency.csv:5" in m and "empty timestamp_utc" in m for m in out["_messages"])
    r = rollup_rows(tmp_path)[("2025-10-13T09:00:00Z", "a")]
    assert (r["samples"], float(r["max_ms"])) == ("7", 70.0)  # 10..70, the bad row not invented


def test_legacy_log_naive_ack_time_is_a_bad_row(tmp_path):
    log = tmp_path / "data/legacy.csv"
    write(log, "signal_id,ts_emit,ts_ack,status,detail\n"
               "s1,2024-03-12T12:00:00Z,2024-03-12T12:00:01.5Z,ok,\n"
               "s2,2024-03-12T12:01:00,2024-03-12T12:01:02,ok,\n")
    src = LatencySource(name="legacy", kind="event_log", path=str(log))
    cfg = make_cfg(tmp_path, [src])
    out = sample(cfg, ts("2024-03-12T12:15:00Z"))
    assert (out["events_read"], out["bad_rows"]) == (1, 1)
    r = rollup_rows(tmp_path)[("2024-03-12T12:00:00Z", "legacy")]
    assert float(r["p50_ms"]) == 1500.0


def test_dropped_and_held_rows_are_counted_in_the_run_log(tmp_path):
    from latency_fixtures import runlog

    log = tmp_path / "data/ev.csv"
    write(log, EVENT_HEADER + "bad,1,success,,api\n2024-03-12T12:20:00Z,1,success,,api\n2024-03-12T12:0")
    cfg = cfg_for(tmp_path, log)
    out = sample(cfg, ts("2024-03-12T12:16:00Z"))  # the summary line (the CLI prints it and logs it)
    from obslib.cli import main

    write(tmp_path / "w2/obs.toml", f'[[latency.sources]]\nname = "feed"\nkind = "event_log"\npath = "{log}"\n'
                                    "by_source_column = true\n")
    assert main(["latency", "sample", "--work-root", str(tmp_path / "w2"), "--now", "2024-03-12T12:16:00Z"]) == 0
    rec = [r for r in runlog(tmp_path / "w2") if r.get("job_name") == "latency"][-1]
    assert (rec["bad_rows"], rec["held_rows"], rec["torn_bytes"]) == (1, 1, len("2024-03-12T12:0"))
    assert (out["bad_rows"], out["held_rows"]) == (1, 1)


def test_configured_source_that_never_writes_is_absent(tmp_path):
    log = tmp_path / "data/ev.csv"
    write(log, EVENT_HEADER + "2024-03-12T11:50:00Z,100,success,,other\n")
    src = LatencySource(name="ghost", kind="event_log", path=str(log), match_source="ghost")
    cfg = make_cfg(tmp_path, [src])
    assert sample(cfg, ts("2024-03-12T12:00:00Z"))["notifications"] == []
    assert sample(cfg, ts("2024-03-12T12:15:00Z"))["notifications"] == []   # window 12:00 empty: 1
    out = sample(cfg, ts("2024-03-12T12:30:00Z"))                           # 12:15 empty: 2 -> warning
    assert [(n["id"], n["severity"]) for n in out["notifications"]] == [("latency-absent:ghost", "warning")]


def test_late_event_for_an_hour_past_raw_retention_merges_into_its_rollup(tmp_path):
    log = tmp_path / "data/ev.csv"
    write(log, EVENT_HEADER + "2024-03-01T10:05:00Z,100,success,,api\n2024-03-01T10:06:00Z,200,success,,api\n")
    cfg = cfg_for(tmp_path, log, raw_retention_days=1)
    sample(cfg, ts("2024-03-01T10:30:00Z"))
    write(log, "2024-03-05T09:00:00Z,50,success,,api\n", "a")
    sample(cfg, ts("2024-03-05T09:30:00Z"))          # raw rows of 2024-03-01 dropped by retention
    live = (tmp_path / "ops/signal_latency.csv").read_text()
    assert "2024-03-01T10" not in live
    write(log, "2024-03-01T10:07:00Z,300,success,,api\n", "a")   # a very late event
    sample(cfg, ts("2024-03-05T09:45:00Z"))
    r = rollup_rows(tmp_path)[("2024-03-01T10:00:00Z", "api")]
    # 100, 200, 300: the old hour keeps its two events and gains the late one
    assert (r["samples"], float(r["p50_ms"]), float(r["max_ms"])) == ("3", 200.0, 300.0)
