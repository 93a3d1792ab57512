"""Issue #11 observation 5: check-in pings (healthchecks.io protocol) for every job and
``ops/metrics/obslib.prom``, parsed with prometheus_client's own parser. Real subprocesses
and a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from urllib.parse import parse_qs, urlsplit

from conftest import obs_subprocess_env
from prometheus_client.parser import text_string_to_metric_families
from test_webhook_support import Receiver, Reply

OBS = [sys.executable, "-m", "obslib"]


def obs(*args, cwd, **env):
    return subprocess.run([*OBS, *args], capture_output=True, text=True, timeout=120, cwd=cwd,
                          env=obs_subprocess_env(**env))


def pings(rx):
    out = []
    for r in rx.received:
        parts = urlsplit(r.path)
        out.append((parts.path, parse_qs(parts.query).get("rid", [None])[0], r.body))
    return out


def test_each_job_pings_start_then_success_or_fail_with_a_run_id_and_the_summary(tmp_path):
    data = tmp_path / "research"
    data.mkdir()
    w = ["--work-root", str(tmp_path / "kit")]
    with Receiver() as rx:
        env = {"OBS_PING_URL_LATENCY_ROLLUP": rx.url("/ping/rollup-uuid-0001"),
               "OBS_PING_URL_NIGHTLY_CHECK": rx.url("/ping/check-uuid-0002"),
               "OBS_PING_URL_DASHBOARD_EXPORT": rx.url("/ping/dash-uuid-0003")}
        ok1 = obs("latency", "rollup", *w, cwd=tmp_path, **env)
        ok2 = obs("check", *w, cwd=tmp_path, **env)
        bad = obs("dashboard", "export", "--data-root", str(tmp_path / "missing"), *w, cwd=tmp_path, **env)
        got = pings(rx)
    assert ok1.returncode == 0 and ok2.returncode == 0 and bad.returncode != 0
    assert [p for p, _, _ in got] == ["/ping/rollup-uuid-0001/start", "/ping/rollup-uuid-0001",
                                      "/ping/check-uuid-0002/start", "/ping/check-uuid-0002",
                                      "/ping/dash-uuid-0003/start", "/ping/dash-uuid-0003/fail"]
    for (_, rid_start, start_body), (_, rid_end, end_body), proc in zip(got[0::2], got[1::2], (ok1, ok2, bad),
                                                                         strict=True):
        summary = json.loads(proc.stdout.strip().splitlines()[-1])
        assert rid_start == rid_end and uuid.UUID(rid_start).version == 5  # one run id per run
        assert start_body == b"" and json.loads(end_body) == summary  # the body is the summary line
    for p in (ok1, ok2, bad):
        assert "rollup-uuid" not in p.stdout + p.stderr and "check-uuid" not in p.stdout + p.stderr


def test_sample_and_weekly_jobs_ping_too(tmp_path):
    w = ["--work-root", str(tmp_path)]
    with Receiver() as rx:
        env = {"OBS_PING_URL_LATENCY_SAMPLE": rx.url("/hc/sample-0001"),
               "OBS_PING_URL_WEEKLY_REPORT": rx.url("/hc/weekly-0002")}
        assert obs("latency", "sample", *w, cwd=tmp_path, **env).returncode == 0
        assert obs("weekly", "run", *w, "--now", "2026-11-26T09:40:00Z", cwd=tmp_path, **env).returncode == 0
        got = pings(rx)
    assert [p for p, _, _ in got] == ["/hc/sample-0001/start", "/hc/sample-0001",
                                      "/hc/weekly-0002/start", "/hc/weekly-0002"]
    assert json.loads(got[3][2])["report_alerts"]["critical"] >= 1  # the summary line is the body


def test_a_failing_ping_never_fails_the_job(tmp_path):
    with Receiver(default=Reply(status=500)) as rx:
        p = obs("latency", "rollup", "--work-root", str(tmp_path), cwd=tmp_path,
                OBS_PING_URL_LATENCY_ROLLUP=rx.url("/p/abcdef123456"))
    assert p.returncode == 0, p.stderr
    assert "check-in" in p.stderr and "abcdef123456" not in p.stderr
    p = obs("latency", "rollup", "--work-root", str(tmp_path), cwd=tmp_path,
            OBS_PING_URL_LATENCY_ROLLUP="http://127.0.0.1:9/p/nothing-listens")
    assert p.returncode == 0, p.stderr


def test_metrics_file_parses_with_prometheus_client(tmp_path):
    w = ["--work-root", str(tmp_path)]
    assert obs("latency", "sample", *w, "--now", "2026-03-02T12:00:00Z", cwd=tmp_path).returncode == 0  # demo data
    assert obs("latency", "rollup", *w, "--now", "2026-03-02T12:05:00Z", cwd=tmp_path).returncode == 0
    assert obs("check", *w, "--now", "2026-03-02T12:10:00Z", cwd=tmp_path).returncode == 0
    assert obs("dashboard", "export", "--data-root", str(tmp_path / "missing"), *w, "--now",
               "2026-03-02T12:20:00Z", cwd=tmp_path).returncode != 0
    text = (tmp_path / "ops/metrics/obslib.prom").read_text()
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in fams.values() for s in f.samples}
    assert samples[("obslib_job_last_success_timestamp_seconds", (("job", "latency_rollup"),))] == 1772453100.0
    assert samples[("obslib_job_last_success_timestamp_seconds", (("job", "nightly_check"),))] == 1772453400.0
    assert ("obslib_job_last_success_timestamp_seconds", (("job", "dashboard_export"),)) not in samples
    assert samples[("obslib_job_last_status", (("job", "dashboard_export"), ("status", "error")))] == 1.0
    assert samples[("obslib_job_duration_seconds", (("job", "latency_rollup"),))] >= 0
    assert samples[("obslib_job_skipped_runs_total", (("job", "latency_rollup"),))] == 0
    for sev in ("critical", "warning", "info"):
        assert ("obslib_active_alerts", (("severity", sev),)) in samples
    raw = (tmp_path / "ops/signal_latency.csv").stat().st_size
    assert samples[("obslib_latency_raw_bytes", ())] == raw
    assert samples[("obslib_latency_bytes_to_rotation", ())] == 10 * 1024 * 1024 - raw
    state = json.loads((tmp_path / "ops/signal_latency_state.json").read_text())["rules"]["router_demo"]
    assert samples[("obslib_latency_p95_ms", (("source", "router_demo"),))] == state["latest"]["p95_ms"]
    assert samples[("obslib_latency_breach_streak", (("source", "router_demo"),))] == state["streak"]["streak"]
    assert samples[("obslib_latency_burn_rate", (("source", "router_demo"), ("window", "1h")))] == \
        state["burn"]["burn_1h"]
    assert not list((tmp_path / "ops/metrics").glob("*.tmp*"))  # written atomically, nothing left beside


def test_summary_channel_posts_one_line_per_run_to_slack(tmp_path):
    data = tmp_path / "research"
    data.mkdir()
    with Receiver() as rx:
        p = obs("latency", "rollup", "--work-root", str(tmp_path), "--data-root", str(data), cwd=tmp_path,
                OBS_ALERTS_SUMMARY_CHANNEL="slack", OBS_SLACK_WEBHOOK_URL=rx.url("/services/T1/B2/summarytoken1"))
        assert p.returncode == 0, p.stderr
        bodies = [json.loads(r.body) for r in rx.received]
    assert len(bodies) == 1 and bodies[0]["text"].startswith("INFO: latency_rollup ok in ")
    assert bodies[0]["blocks"][0]["type"] == "header"
