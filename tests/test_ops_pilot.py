"""A simulated four-week pilot: every job on its cron schedule under a fake clock, with
injected faults, and `obs check` every night must report exactly those faults.

Fake clock: every run gets ``--now <its scheduled time>`` (or the injected late time),
``JOB_ID`` and ``SCHEDULE_TRIGGER=cron`` in its environment, like the crontab line.

Trade-off (kept the test under ~1 minute): 28 days x (96 latency samples + 24 rollups) is
3,360 cheap runs. A representative subset goes through the real CLI entry
(``obslib.cli.main``, in-process): every nightly ``obs check`` (28), the weekly report in
the two weeks that matter (the 503-until-escalation week and the 23:31 week, each a full
papermill run + signed delivery to a local receiver), every dashboard export from the
first fault day on (when ``obs dashboard`` is installed), and latency sample/rollup runs
around the skipped 03:15 run and around the future heartbeat. The other runs are
simulated by appending exactly what the real job appends, through the same library
functions: ``JobContext.finish`` (the run-log record run_job writes) and the jobs' own
heartbeat writer (``obslib.heartbeat.write_heartbeat``). ``obs check``
only reads the run log and the heartbeats, so it cannot tell the two apart; the real
runs prove the real jobs write what the simulation writes.

Injected faults and what the check must say (and nothing else, any night):
- latency sample skipped 2026-03-03 03:15  -> 03-04 check: missed_run latency_sample warning #missed-runs
- dashboard export fails 03-10 and 03-11    -> 03-10: failed_run warning, 03-11: failed_run critical
                                               (two consecutive bad windows) #dashboard-exports
- weekly delivery answered 503 (week of 03-09, run Sun 03-15 23:30) until it escalates
                                            -> 03-16: failed_run weekly_report critical #weekly-webhook
- rollup heartbeat written dated 3 days ahead at 03-18 02:05
                                            -> 03-18: future_heartbeat latency_rollup warning #missed-runs
- clean: the weekly run of 03-29 starts at 23:31 (inside its 15 min grace) -> nothing.
"""

from __future__ import annotations

import importlib.util
import json
import os
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from obslib.cli import main
from obslib.heartbeat import write_heartbeat
from obslib.latency.job import ROLLUP_JOB, SAMPLE_JOB
from obslib.ops.runlog_ops import read_lines
from obslib.runlog import JobContext
from obslib.schedule import load_schedule
from obslib.webhook import verify

UTC = timezone.utc
START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
END = START + timedelta(days=28, hours=2, minutes=30)  # through the 03-30 02:30 check
SECRET = "pilot-secret-0123456789"
DASHBOARD_CLI = importlib.util.find_spec("obslib.commands.dashboard_cmd") is not None

SKIP_LATENCY = datetime(2026, 3, 3, 3, 15, tzinfo=UTC)
DASH_FAIL = {datetime(2026, 3, 10, 1, tzinfo=UTC), datetime(2026, 3, 11, 1, tzinfo=UTC)}
WEEKLY_503 = datetime(2026, 3, 15, 23, 30, tzinfo=UTC)
WEEKLY_LATE = datetime(2026, 3, 29, 23, 30, tzinfo=UTC)  # started at 23:31
FUTURE_HB = datetime(2026, 3, 18, 2, 5, tzinfo=UTC)
REAL_LATENCY = {datetime(2026, 3, 3, h, m, tzinfo=UTC) for h, m in ((3, 0), (3, 30), (3, 45))} | {
    datetime(2026, 3, 18, 2, 15, tzinfo=UTC)}
REAL_ROLLUP = {datetime(2026, 3, 3, 3, 5, tzinfo=UTC), datetime(2026, 3, 18, 3, 5, tzinfo=UTC)}

EXPECTED = {  # check date -> sorted [(kind, job, severity, anchor)]
    "2026-03-04": [("missed_run", "latency_sample", "warning", "missed-runs")],
    "2026-03-10": [("failed_run", "dashboard_export", "warning", "dashboard-exports")],
    "2026-03-11": [("failed_run", "dashboard_export", "critical", "dashboard-exports")],
    "2026-03-16": [("failed_run", "weekly_report", "critical", "weekly-webhook")],
    "2026-03-18": [("future_heartbeat", "latency_rollup", "warning", "missed-runs")],
}


class Receiver:
    """A real HTTP receiver on 127.0.0.1: /weekly answers ``weekly_code``, /alerts 200."""

    def __init__(self):
        self.requests: list[tuple[str, dict, bytes]] = []
        self.weekly_code = 200
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests.append((self.path, dict(self.headers), body))
                code = outer.weekly_code if self.path == "/weekly" else 200
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def _stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class Pilot:
    def __init__(self, root: Path, data_root: Path, monkeypatch):
        self.root = root
        self.ops = root / "ops"
        self.data_root = data_root
        self.mp = monkeypatch
        self.n = 0
        self.checks: dict[str, tuple[int, dict]] = {}
        self.real_runs: dict[str, int] = {}

    def job_id(self, job_name: str, t: datetime) -> str:
        self.n += 1
        return f"{job_name}-{t.strftime('%Y%m%dT%H%M%SZ')}-p{self.n:05d}"

    def cli(self, job_name: str, t: datetime, args: list[str]) -> int:
        self.mp.setenv("JOB_ID", self.job_id(job_name, t))
        self.mp.setenv("SCHEDULE_TRIGGER", "cron")
        self.real_runs[job_name] = self.real_runs.get(job_name, 0) + 1
        return main([*args, "--work-root", str(self.root), "--now", _stamp(t)])

    def simulate(self, job_name: str, t: datetime, status: str = "ok") -> str:
        jid = self.job_id(job_name, t)
        ctx = JobContext(job_name=job_name, ops_dir=self.ops, now=t, job_id=jid, schedule_trigger="cron")
        ctx.finish(status, error="simulated failure" if status == "error" else None)
        return jid

    # one handler per scheduled job -------------------------------------------------
    def latency_sample(self, t):
        if t == SKIP_LATENCY:
            return  # fault: cron did not fire
        if t in REAL_LATENCY:
            assert self.cli("latency", t, ["latency", "sample", "--data-root", str(self.data_root)]) == 0
            return
        jid = self.simulate(SAMPLE_JOB, t)
        write_heartbeat(self.ops, SAMPLE_JOB, jid, t, "ok")

    def latency_rollup(self, t):
        if t in REAL_ROLLUP:
            assert self.cli("latency_rollup", t, ["latency", "rollup"]) == 0
            return
        jid = self.simulate(ROLLUP_JOB, t)
        hb_time = t + timedelta(days=3) if t == FUTURE_HB else t  # fault: a skewed clock
        write_heartbeat(self.ops, ROLLUP_JOB, jid, hb_time, "ok")

    def dashboard_export(self, t):
        fail = t in DASH_FAIL
        if DASHBOARD_CLI and t >= min(DASH_FAIL) - timedelta(days=1):
            root = str(self.root / "no-such-data-root") if fail else str(self.data_root)
            rc = self.cli("dashboard_export", t, ["dashboard", "export", "--dataset", "all", "--data-root", root])
            assert (rc != 0) == fail
            return
        jid = self.simulate("dashboard_export", t, "error" if fail else "ok")
        write_heartbeat(self.ops, "dashboard_export", jid, t, "error" if fail else "ok",
                        error="simulated failure" if fail else None)

    def dashboard_publish(self, t):  # no [publish] to in the pilot: the job runs and says so
        assert self.cli("dashboard_publish", t, ["dashboard", "publish"]) == 0

    def weekly_report(self, t):
        if t == WEEKLY_503:
            receiver.weekly_code = 503
            rc = self.cli("weekly_report", t, ["weekly", "run", "--require-delivery"])
            receiver.weekly_code = 200
            assert rc != 0
        elif t == WEEKLY_LATE:
            assert self.cli("weekly_report", t + timedelta(minutes=1), ["weekly", "run", "--require-delivery"]) == 0
        else:  # as the real job does: a run-log record and the weekly heartbeat
            jid = self.simulate("weekly_report", t)
            write_heartbeat(self.ops, "weekly_report", jid, t, "ok")

    def nightly_check(self, t):
        since = ["--since", _stamp(START)] if not self.checks else []
        rc = self.cli("nightly_check", t, ["check", *since])
        rep = json.loads((self.ops / "nightly_check.json").read_text())
        assert rep["generated_at"] == _stamp(t)
        self.checks[t.date().isoformat()] = (rc, rep)


receiver: Receiver


@pytest.fixture
def pilot_env(tmp_path, monkeypatch):
    global receiver
    with Receiver() as rcv:
        receiver = rcv
        monkeypatch.setenv("OBS_WEBHOOK_SECRET", SECRET)
        monkeypatch.setenv("OBS_WEEKLY_WEBHOOK_URL", rcv.url + "/weekly")
        monkeypatch.setenv("OBS_ALERT_WEBHOOK_URL", rcv.url + "/alerts")
        monkeypatch.setenv("OBS_WEBHOOK_BACKOFF_BASE_S", "0.01")
        monkeypatch.setenv("OBS_WEBHOOK_BACKOFF_MAX_S", "0.02")
        monkeypatch.setenv("OBS_COMMIT_SHA", "0" * 40)
        yield rcv


@pytest.mark.slow
def test_four_week_pilot(tmp_path, monkeypatch, pilot_env):
    root = tmp_path / "kit"
    data_root = tmp_path / "research_repo"
    assert main(["demo", "--out", str(data_root), "--as-of", "2026-03-16T00:00:00Z"]) == 0
    monkeypatch.setenv("OBS_DATA_ROOT", str(data_root))  # destinations are set: a configured data root
    pilot = Pilot(root, data_root, monkeypatch)
    jobs = load_schedule()
    order = {j.name: i for i, j in enumerate(jobs)}  # the nightly check runs after the 02:30 sample
    events = sorted(((t, j.name) for j in jobs for t in j.expected_between(START - timedelta(seconds=1), END)),
                    key=lambda e: (e[0], order[e[1]]))
    for t, name in events:
        getattr(pilot, name)(t)

    # every night: exactly the expected findings, right severity and anchor; clean otherwise
    assert len(pilot.checks) == 29
    got = {}
    for day, (rc, rep) in pilot.checks.items():
        fs = sorted((f["kind"], f["job"], f["severity"], f["next_action"].split("#")[1]) for f in rep["findings"])
        if fs or day in EXPECTED:
            got[day] = fs
        assert rc == (1 if any(f[2] == "critical" for f in fs) else 0), (day, fs)
    assert got == EXPECTED

    # the findings' details point at the fault itself
    missed = pilot.checks["2026-03-04"][1]["findings"][0]
    assert missed["expected_at"] == "2026-03-03T03:15:00Z" and missed["missed_count"] == 1
    weekly = pilot.checks["2026-03-16"][1]["findings"][0]
    assert weekly["escalation"] and (root / weekly["escalation"]).is_file()
    dash = pilot.checks["2026-03-11"][1]["findings"][0]
    assert dash["consecutive"] == 2 and dash["expected_at"] == "2026-03-11T01:00:00Z"
    late = pilot.checks["2026-03-30"][1]
    assert late["jobs"]["weekly_report"]["expected"] == 1 and late["jobs"]["weekly_report"]["started"] == 1
    assert late["jobs"]["weekly_report"]["last_started_at"] == "2026-03-29T23:31:00Z"

    # the weekly 503 week really retried until it escalated; the late week was delivered
    weekly_posts = [r for r in pilot_env.requests if r[0] == "/weekly"]
    assert len(weekly_posts) == 5 + 1
    assert (root / "ops" / "weekly_report_history" / "2026-03-23.receipt.json").is_file()

    # alerts went out signed, once per night with findings, through the signed webhook code
    alert_posts = [r for r in pilot_env.requests
                   if r[0] == "/alerts" and json.loads(r[2]).get("kind") == "ops_alerts"]
    sent = [json.loads(body) for _, _, body in alert_posts]
    assert sorted({a["id"] for doc in sent for a in doc["alerts"]}) == sorted(
        f["id"] for _, rep in pilot.checks.values() for f in rep["findings"])
    for _, headers, body in alert_posts:
        t = datetime.fromtimestamp(int(headers["webhook-timestamp"]), UTC)
        assert verify(body, headers, [SECRET], now=t).ok

    # the run log: every line is a valid record; cron-triggered; the secret is nowhere
    lines = list(read_lines(root / "ops"))
    assert lines and all(ln.record is not None and not ln.schema_errors for ln in lines)
    finals = [ln.record for ln in lines if "event" not in ln.record]
    assert {r["schedule_trigger"] for r in finals} == {"cron"}
    assert len({r["job_id"] for r in finals}) == len(finals)
    for p in root.rglob("*"):
        if p.is_file():
            assert SECRET.encode() not in p.read_bytes(), p
    assert pilot.real_runs["nightly_check"] == 29 and pilot.real_runs["weekly_report"] == 2
    assert pilot.real_runs["latency"] == len(REAL_LATENCY) and pilot.real_runs["latency_rollup"] == 2
    os.environ.pop("JOB_ID", None)
