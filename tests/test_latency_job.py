"""The latency sample/rollup/status jobs end to end: CLI contract, lock skip, sources,
alerts (files and real signed delivery), heartbeat, rotation manifest."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import jsonschema
import pytest
from latency_fixtures import (
    EVENT_HEADER,
    REALDATA,
    REPO,
    T0,
    event_line,
    event_source,
    iso,
    make_cfg,
    minutes,
    raw_rows,
    runlog,
    sample,
)

from obslib.config import LatencySource
from obslib.latency.alerts import AlertTarget
from obslib.latency.paths import LatencyPaths
from obslib.webhook import verify

SCHEMA = json.loads((REPO / "schemas/latency_alert.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def _cli(work: Path, *args: str, env_extra: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBS_")}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "obslib.cli", "latency", *args, "--work-root", str(work)],
                          capture_output=True, text=True, env=env, cwd=work, timeout=timeout)


def _data_root(tmp_path: Path, events: str, bars_newest: str = "2025-10-13 08:55:00") -> Path:
    data = tmp_path / "data"
    (data / "ops").mkdir(parents=True)
    (data / "data").mkdir()
    (data / "ops/signal_latency.csv").write_text(events)
    (data / "data/sample_orb.csv").write_text(
        "timestamp,symbol,tf,o,h,l,c,v,spread\n"
        "2025-10-13 08:50:00,USDJPY,5m,1,1,1,1,1,0.005\n"
        f"{bars_newest},USDJPY,5m,1,1,1,1,1,0.005\n")
    return data


def test_cli_sample_contract_with_declared_sources(tmp_path):
    events = EVENT_HEADER + "".join(event_line(T0 - minutes(10) + minutes(i), v) for i, v in
                                    enumerate([100, 200, 300, 400]))
    data = _data_root(tmp_path, events)
    work = tmp_path / "work"
    work.mkdir()
    (work / "obs.toml").write_text(
        '[[latency.sources]]\nname = "signal_events"\nkind = "event_log"\npath = "{data_root}/ops/signal_latency.csv"\n'
        '[[latency.sources]]\nname = "bar_feed"\nkind = "feed_freshness"\npath = "{data_root}/data/sample_orb.csv"\n')
    p = _cli(work, "sample", "--data-root", str(data), "--now", iso(T0 + minutes(2)))
    assert p.returncode == 0, p.stderr
    lines = p.stdout.strip().splitlines()
    assert len(lines) == 1
    out = json.loads(lines[0])
    for k in ("status", "samples_written", "rollups_written", "breach_count", "next_rotation_bytes", "skipped",
              "lock_wait_ms", "job_id"):
        assert k in out
    assert (out["status"], out["samples_written"], out["skipped"]) == ("ok", 2, False)
    # events 08:50-08:53 (window 08:45, closed at 09:02): [100,200,300,400] -> median 250,
    # p95 = 300 + 0.85*100 = 385 (type 7, by hand)
    ev = out["windows"]["signal_events"]
    assert (ev["p50_ms"], ev["samples"], ev["window_start"]) == (250.0, 4, "2025-10-13T08:45:00Z")
    assert ev["p95_ms"] == pytest.approx(385.0)
    assert out["sources"]["signal_events"]["events"] == 4 and out["sources"]["bar_feed"]["events"] == 1
    # bar feed: newest bar 08:55 + 5 min = 09:00; now 09:02 -> one event of 120000 ms (window 09:00)
    rows = raw_rows(work)
    assert [(r["timestamp_utc"], r["source"], r["latency_ms"], r["p95_latency_ms"], r["status"],
             r["samples_in_window"]) for r in rows] \
        == [("2025-10-13T08:45:00Z", "signal_events", "250.000", "385.000", "ok", "4"),
            ("2025-10-13T09:00:00Z", "bar_feed", "120000.000", "120000.000", "ok", "1")]
    assert {r["job_id"] for r in rows} == {out["job_id"]}
    hb = json.loads((work / "ops/latency_heartbeat.json").read_text())
    assert (hb["status"], hb["job_id"], hb["last_success_at"]) == ("ok", out["job_id"], "2025-10-13T09:02:00Z")
    rec = [r for r in runlog(work) if r.get("job_name") == "latency"]
    assert rec[-1]["status"] == "ok" and rec[-1]["job_id"] == out["job_id"] and "lock_wait_ms" in rec[-1]
    st = _cli(work, "status")
    assert st.returncode == 0
    status = json.loads(st.stdout)
    assert status["sources"]["signal_events"]["latest_p95_ms"] == pytest.approx(385.0)
    assert "signal_events" in st.stderr
    r = _cli(work, "rollup", "--now", iso(T0 + minutes(3)))
    assert r.returncode == 0 and json.loads(r.stdout)["rollups_written"] == 0


def test_lock_held_elsewhere_skips_with_exit_0_and_logs_wait(tmp_path):
    work = tmp_path / "work"
    (work / "ops").mkdir(parents=True)
    data = _data_root(tmp_path, EVENT_HEADER)
    holder = subprocess.Popen([sys.executable, "-c",
                               "import filelock,sys,time; l=filelock.FileLock(sys.argv[1]); l.acquire(); "
                               "print('held', flush=True); time.sleep(30)", str(work / "ops/signal_latency.lock")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        p = _cli(work, "sample", "--data-root", str(data), "--lock-timeout", "0.5")
    finally:
        holder.kill()
        holder.wait()
    assert p.returncode == 0
    out = json.loads(p.stdout)
    assert out["status"] == "skipped" and out["skipped"] is True and out["lock_wait_ms"] >= 450
    rec = [r for r in runlog(work) if r.get("job_name") == "latency"][-1]
    assert rec["status"] == "skipped" and rec["lock_wait_ms"] >= 450
    assert not (work / "ops/signal_latency.csv").exists()


def test_alert_files_streaks_across_processes(tmp_path):
    """Each run is a new process: the streak survives restarts; one file per severity change."""
    log = tmp_path / "data/ops/signal_latency.csv"
    data = _data_root(tmp_path, EVENT_HEADER, bars_newest="2030-01-01 00:00:00")
    work = tmp_path / "work"
    work.mkdir()
    plan = [150000, 150000, 150000, 160000, 1000]  # breach x4, then ok
    now = T0
    for v in plan:
        with open(log, "a") as fh:
            fh.write(event_line(now - minutes(1), v))
        p = _cli(work, "sample", "--data-root", str(data), "--now", iso(now),
                 env_extra={"OBS_LATENCY_BURN_PAGE": "1e9", "OBS_LATENCY_BURN_WARN": "1e9"})  # streaks only
        assert p.returncode == 0, p.stderr
        now += minutes(15)
    files = sorted((work / "out/latency_alerts").glob("*.json"))
    payloads = [json.loads(f.read_text()) for f in files]
    assert [[a["severity"] for a in p["alerts"]] for p in payloads] == [["warning"], ["critical"], ["resolved"]]
    for f, p in zip(files, payloads, strict=True):
        VALIDATOR.validate(p)
        a = p["alerts"][0]
        assert a["owner"] == "obs-oncall" and a["next_action"] == "docs/runbook.md#signal-latency"
        assert a["source"] == "router" and a["id"] == "latency-streak:router"  # named by its source column
        assert f.name.endswith(f"-{p['payload_id']}.json")
    assert [p["alerts"][0]["previous_severity"] for p in payloads] == ["ok", "warning", "critical"]
    # windows 08:45..09:30 breach (events at now - 1 min): streak 2, 3, then 4 ended
    assert [p["alerts"][0]["details"]["streak"] for p in payloads] == [2, 3, 0]
    assert payloads[2]["alerts"][0]["details"]["last_breach_at"] == iso(T0 + minutes(45))
    assert not list((work / "ops/latency_alert_outbox").glob("*.json"))


def test_real_signed_delivery_verifies_and_failed_delivery_is_retried(tmp_path, httpserver):
    httpserver.expect_ordered_request("/hook", method="POST").respond_with_data("busy", status=500)
    httpserver.expect_ordered_request("/hook", method="POST").respond_with_data("ok")
    url = httpserver.url_for("/hook") + "?token=sekrit-url-part"
    secrets = ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "old-secret-value")
    log = tmp_path / "ev.csv"
    log.write_text(EVENT_HEADER)
    cfg = make_cfg(tmp_path, [event_source(log)], burn_page=1e9, burn_warn=1e9)  # streak alerts only
    cfg.webhook.max_attempts = 1
    target = AlertTarget(url, secrets)
    now = T0
    outs = []
    for v in (150000, 150000):
        with open(log, "a") as fh:
            fh.write(event_line(now - minutes(1), v))
        outs.append(sample(cfg, now, target=target))
        now += minutes(15)
    # the warning's first delivery got a 500: the run says error (exit 3), the payload stays queued
    assert outs[1]["status"] == "error" and outs[1]["exit_code"] == 3 and outs[1]["alerts"]["pending"] == 1
    assert len(list(LatencyPaths.from_config(cfg).outbox_dir.glob("*.json"))) == 1
    with open(log, "a") as fh:
        fh.write(event_line(now - minutes(1), 150000))
    # the queued warning is superseded by the critical of the same streak: only the latest state is sent
    out3 = sample(cfg, now, target=target)
    assert out3["status"] == "ok" and len(out3["alerts"]["sent"]) == 1 and out3["alerts"]["pending"] == 0
    assert len(out3["alerts"]["superseded"]) == 1
    got = [(req.get_data(), {k.lower(): v for k, v in req.headers.items()}) for req, _ in httpserver.log]
    assert len(got) == 2
    bodies = []
    for body, headers in got:
        # the receiver's clock at receipt is the (fake) time the attempt was signed at
        received_at = datetime.fromtimestamp(int(headers["webhook-timestamp"]), timezone.utc)
        res = verify(body, headers, [secrets[1]], now=received_at)
        assert res.ok, res.reason
        payload = json.loads(body)
        VALIDATOR.validate(payload)
        assert headers["webhook-id"] == payload["payload_id"]
        bodies.append(payload)
    assert [p["alerts"][0]["severity"] for p in bodies] == ["warning", "critical"]
    # the URL and the secrets reach no file
    for f in tmp_path.rglob("*"):
        if f.is_file():
            text = f.read_bytes()
            assert b"sekrit-url-part" not in text and secrets[0].encode() not in text and b"old-secret" not in text


def test_other_source_kinds_and_an_unreadable_source(tmp_path, httpserver):
    from werkzeug import Response

    httpserver.expect_request("/ok").respond_with_data("")
    httpserver.expect_request("/down").respond_with_data("", status=503)
    httpserver.expect_request("/slow").respond_with_handler(lambda req: time.sleep(1.5) or Response(""))
    base = httpserver.url_for("").rstrip("/")
    bars = tmp_path / "bars.csv"
    bars.write_text("timestamp,symbol\n2025-10-13 08:30:00,USDJPY\n2025-10-13 08:35:00,USDJPY\n2025-10-13 08:3")
    srcs = [LatencySource(name="up", kind="http_probe", url=base + "/ok", timeout_s=5),
            LatencySource(name="down", kind="http_probe", url=base + "/down", timeout_s=5),
            LatencySource(name="slow", kind="http_probe", url=base + "/slow", timeout_s=0.3),
            LatencySource(name="bars", kind="feed_freshness", path=str(bars), bar_minutes=5),
            LatencySource(name="gone", kind="event_log", path=str(tmp_path / "missing.csv"))]
    out = sample(make_cfg(tmp_path, srcs), T0)
    s = out["sources"]
    rows = {r["source"]: r for r in raw_rows(tmp_path)}
    assert s["up"]["status"] == "ok" and float(rows["up"]["latency_ms"]) > 0 and rows["up"]["error_events"] == "0"
    assert s["down"]["detail"] == "HTTP 503" and rows["down"]["status"] == "error"
    assert "timeout" in s["slow"]["detail"] and rows["slow"]["status"] == "error"
    # newest complete bar 08:35 + 5 min = 08:40; now 09:00 -> 20 min = 1 200 000 ms (torn last line ignored)
    assert (rows["bars"]["latency_ms"], rows["bars"]["status"]) == ("1200000.000", "breach")
    # an unreadable source: an error event (so the streak goes critical), the reason in detail
    assert s["gone"]["status"] == "error" and "not found" in s["gone"]["detail"]
    assert rows["gone"]["status"] == "error" and rows["gone"]["timestamp_utc"] == "2025-10-13T09:00:00Z"
    assert out["samples_written"] == 5 and out["status"] == "ok"
    assert "127.0.0.1" not in json.dumps(out)


def test_heartbeat_keeps_last_success_across_failure(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    data = _data_root(tmp_path, EVENT_HEADER + event_line(T0 - minutes(1), 100))
    assert _cli(work, "sample", "--data-root", str(data), "--now", iso(T0)).returncode == 0
    (work / "ops/signal_latency_state.json").write_text("{not json")
    p = _cli(work, "sample", "--data-root", str(data), "--now", iso(T0 + minutes(15)))
    assert p.returncode == 2
    assert "Traceback" not in p.stderr and "signal_latency_state.json" in p.stderr
    assert json.loads(p.stdout)["status"] == "error"
    hb = json.loads((work / "ops/latency_heartbeat.json").read_text())
    assert hb["status"] == "error" and hb["last_success_at"] == iso(T0)
    assert hb["generated_at"] == iso(T0 + minutes(15))
    assert len(raw_rows(work)) == 1  # nothing already stored was lost


def test_rotation_archive_and_manifest(tmp_path):
    log = tmp_path / "ev.csv"
    log.write_text(EVENT_HEADER)
    cfg = make_cfg(tmp_path, [event_source(log)], rotate_bytes=300)
    now = T0.replace(day=31, month=10, hour=23, minute=0)
    outs = []
    for i in range(12):
        with open(log, "a") as fh:
            fh.write(event_line(now, 100 + i))
        outs.append(sample(cfg, now))
        now += minutes(15)
    paths = LatencyPaths.from_config(cfg)
    manifest = json.loads(paths.manifest.read_text())
    mschema = json.loads((REPO / "schemas/latency_archive_manifest.schema.json").read_text())
    jsonschema.Draft202012Validator(mschema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER) \
        .validate(manifest)
    assert len(manifest["entries"]) >= 2 and any(o["rotated"] for o in outs)
    for e in manifest["entries"]:
        f = paths.archive_dir / e["path"]
        assert hashlib.sha256(f.read_bytes()).hexdigest() == e["sha256"]
        lines = gzip.decompress(f.read_bytes()).decode().splitlines()
        assert len(lines) - 1 == e["rows"]
        stamps = [ln.split(",")[0] for ln in lines[1:]]
        assert (e["first_ts"], e["last_ts"]) == (min(stamps), max(stamps))
        assert e["path"].startswith(e["last_ts"][:4] + "/" + e["last_ts"][5:7] + "/")
    assert any(e["path"].startswith("2025/11/") for e in manifest["entries"])
    rows = raw_rows(tmp_path)
    assert [r["job_id"] for r in rows] == [o["job_id"] for o in outs]
    assert [r["latency_ms"] for r in rows] == [f"{100 + i:.3f}" for i in range(12)]


def test_feed_freshness_on_real_bars():
    if not REALDATA.exists():
        pytest.skip("../shared/realdata absent")
    from obslib.latency.sources import sample_feed_freshness

    src = LatencySource(name="bars", kind="feed_freshness", path=str(REALDATA / "data/sample_orb.csv"))
    # the newest real bar is 2018-01-25 06:35 (naive UTC), 5-minute bars: closed at 06:40
    s = sample_feed_freshness(src, datetime(2018, 1, 25, 7, 0, tzinfo=timezone.utc), slo_of=lambda s: 120000.0,
                              window_s=900)
    assert [(p.events, p.sketch.max, p.bad) for p in s.parts] == [(1, 1200000.0, 1)]


def test_default_demo_data_root(tmp_path):
    """No --data-root: the demo repository is generated and its event log read, one source
    per value of its ``source`` column (one demo event per source per 15 min)."""
    p = _cli(tmp_path, "sample", "--now", iso(T0))
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert sorted(out["windows"]) == ["feed_ingest", "router_demo", "signal_bridge"]
    for w in out["windows"].values():
        assert w["samples"] == 1 and w["status"] in ("ok", "breach")
