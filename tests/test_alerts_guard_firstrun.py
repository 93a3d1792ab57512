"""Issue #11 observations 1, 6, 7 and issue #12 item 10, through the real CLI:
the production guard (no POST from demo data without --demo), --fail-on, cheap checks
before any notebook, a green first run and one finding per week of dry runs."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import REPO, obs_subprocess_env
from test_webhook_support import SECRET_RAW, Receiver

from obslib.cli import main
from obslib.runlog import JobContext

OBS = [sys.executable, "-m", "obslib"]
UTC = timezone.utc


def run_obs(args, cwd, **env):
    return subprocess.run([*OBS, *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env=obs_subprocess_env(**env))


def last_json(proc) -> dict:
    return json.loads([ln for ln in proc.stdout.splitlines() if ln.strip()][-1])


# --------------------------------------------------------------------------- production guard

@pytest.mark.parametrize("job", [["latency", "sample"], ["weekly", "run"], ["check"], ["dashboard", "export"]])
def test_demo_data_with_a_destination_is_refused_and_nothing_is_posted(tmp_path, job):
    with Receiver() as rx:
        p = run_obs([*job, "--work-root", str(tmp_path)], tmp_path, OBS_ALERT_WEBHOOK_URL=rx.url(),
                    OBS_WEBHOOK_SECRET=SECRET_RAW)
        assert p.returncode == 2, p.stderr
        assert "refusing to run on the generated demo data while OBS_ALERT_WEBHOOK_URL is set" in p.stderr
        assert "--demo" in p.stderr and rx.url() not in p.stderr + p.stdout
        assert rx.received == []
    assert not (tmp_path / "out" / "demo_repo").exists()  # refused before any work


def test_other_destinations_trigger_the_guard_too_and_demo_flag_allows_it(tmp_path):
    p = run_obs(["latency", "sample", "--work-root", str(tmp_path)], tmp_path,
                OBS_PAGERDUTY_ROUTING_KEY="R0UT1NGKEY0123456789abcdef012345")
    assert p.returncode == 2 and "OBS_PAGERDUTY_ROUTING_KEY is set" in p.stderr
    assert "R0UT1NGKEY" not in p.stderr
    with Receiver() as rx:
        p = run_obs(["latency", "sample", "--demo", "--work-root", str(tmp_path)], tmp_path,
                    OBS_SLACK_WEBHOOK_URL=rx.url("/services/T000/B000/slacktoken123"))
    assert p.returncode == 0, p.stderr
    work = tmp_path / "production"
    data = tmp_path / "research"
    data.mkdir()
    p = run_obs(["check", "--work-root", str(work), "--data-root", str(data)], tmp_path,
                OBS_WEEKLY_WEBHOOK_URL="http://127.0.0.1:9/x", OBS_WEBHOOK_SECRET=SECRET_RAW)
    assert p.returncode == 0, p.stderr  # a configured data root: not the demo


def test_weak_secret_is_refused_before_any_work_naming_the_variable(tmp_path):
    p = run_obs(["weekly", "run", "--work-root", str(tmp_path), "--demo"], tmp_path,
                OBS_WEEKLY_WEBHOOK_URL="http://127.0.0.1:9/x", OBS_WEBHOOK_SECRET="whsec_xyz!")
    assert p.returncode == 2 and "OBS_WEBHOOK_SECRET" in p.stderr and "xyz" not in p.stderr
    assert not (tmp_path / "out" / "weekly_report").exists()
    p = run_obs(["latency", "sample", "--work-root", str(tmp_path)], tmp_path,
                OBS_SLACK_WEBHOOK_URL="not a url")
    assert p.returncode == 2 and "OBS_SLACK_WEBHOOK_URL: not an absolute http(s) URL" in p.stderr


# --------------------------------------------------------------------------- cheap checks first (#12 item 10)

@pytest.fixture(scope="module")
def research(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("research") / "repo"
    assert main(["demo", "--out", str(root), "--as-of", "2026-11-26T09:00:00Z"]) == 0
    return root


@pytest.mark.parametrize("env", [
    {"OBS_WEEKLY_WEBHOOK_URL": "http://127.0.0.1:9/hook"},  # the input: URL set, secret missing
    {"OBS_WEBHOOK_SECRET": SECRET_RAW},  # same class: secret set, URL missing
], ids=["secret-missing", "url-missing"])
def test_require_delivery_fails_before_the_notebook_runs(tmp_path, research, env):
    p = run_obs(["weekly", "run", "--require-delivery", "--data-root", str(research), "--now",
                 "2026-11-26T09:40:00Z", "--work-root", str(tmp_path)], tmp_path, **env)
    assert p.returncode == 3, p.stderr
    assert "nothing was built or delivered" in p.stderr
    assert not (tmp_path / "out" / "weekly_report").exists()  # no notebook, nothing published
    rec = [json.loads(x) for x in (tmp_path / "ops/automation_runs.log").read_text().splitlines()][-1]
    assert rec["status"] == "error" and rec["duration_ms"] < 5000


def test_fail_on_turns_report_alerts_into_an_exit_code(tmp_path, research):
    p = run_obs(["weekly", "run", "--fail-on", "critical", "--data-root", str(research), "--now",
                 "2026-11-26T09:40:00Z", "--work-root", str(tmp_path)], tmp_path)
    s = last_json(p)
    payload = json.loads((tmp_path / "out/weekly_report/2026-11-23/payload.json").read_text())
    crit = sum(1 for a in payload["alerts"] if a["severity"] == "critical")
    assert crit >= 1 and s["report_alerts"]["critical"] == crit
    assert p.returncode == 4 and s["fail_on"] == "critical"
    with pytest.raises(SystemExit) as ei:
        main(["weekly", "run", "--fail-on", "sometimes"])
    assert ei.value.code == 2


# --------------------------------------------------------------------------- first run and dry runs

def only(*keep: str) -> str:
    """obs.toml disabling every scheduled job but ``keep``."""
    from obslib.schedule import load_schedule

    return "".join(f"[schedule.{j.name}]\nenabled = false\n" for j in load_schedule() if j.name not in keep)


def _record(ops: Path, job_name: str, start: datetime, status: str = "ok", **extra) -> None:
    ctx = JobContext(job_name=job_name, ops_dir=ops, now=start, schedule_trigger="cron")
    ctx.finish(status, completed_at=start + timedelta(seconds=5), **extra)


def test_fresh_clone_make_nightly_exits_0(tmp_path):
    p = subprocess.run(["make", "-s", "-C", str(REPO), "nightly", f"WORK_ROOT={tmp_path}"], capture_output=True,
                       text=True, timeout=300, env=obs_subprocess_env())
    assert p.returncode == 0, p.stdout + p.stderr
    s = json.loads(p.stdout.strip().splitlines()[0])
    assert s["status"] == "ok" and s["findings"] == []


def test_nothing_is_missed_before_the_first_recorded_run(tmp_path):
    (tmp_path / "obs.toml").write_text(only("latency_sample"))
    ops = tmp_path / "ops"
    first = datetime(2026, 3, 2, 12, 0, 30, tzinfo=UTC)  # the kit's first run: the 12:00 sample
    _record(ops, "latency", first)
    # then 12:15 and 12:30 ran, 12:45 was missed, 13:00 ran
    for m in (15, 30, 60):
        _record(ops, "latency", datetime(2026, 3, 2, 12, 0, tzinfo=UTC) + timedelta(minutes=m, seconds=20))
    rc = main(["check", "--work-root", str(tmp_path), "--now", "2026-03-02T13:19:00Z"])
    rep = json.loads((ops / "nightly_check.json").read_text())
    missed = [f for f in rep["findings"] if f["kind"] == "missed_run"]
    # the 24 h look-back would have started at 2026-03-01T13:19: ~90 earlier slots are not missed
    assert [f["expected_at"] for f in missed] == ["2026-03-02T12:45:00Z"] and rc == 0
    assert rep["monitoring_since"] == "2026-03-02T12:00:30Z"


def test_repeated_dry_runs_of_one_week_are_one_finding(tmp_path):
    (tmp_path / "obs.toml").write_text(only("weekly_report"))
    ops = tmp_path / "ops"
    t = datetime(2026, 3, 1, 23, 30, 10, tzinfo=UTC)  # Sunday's scheduled run, then two manual re-runs
    for k in range(3):
        _record(ops, "weekly_report", t + timedelta(minutes=5 * k), "dry_run", week_start="2026-02-23")
    _record(ops, "weekly_report", t + timedelta(minutes=20), "dry_run", week_start="2026-03-02")
    rc = main(["check", "--work-root", str(tmp_path), "--now", "2026-03-02T02:30:00Z", "--since",
               "2026-03-01T12:00:00Z"])
    rep = json.loads((ops / "nightly_check.json").read_text())
    und = sorted((f["id"], f["runs"]) for f in rep["findings"] if f["kind"] == "undelivered_run")
    assert und == [("undelivered_run:weekly_report:2026-02-23", 3), ("undelivered_run:weekly_report:2026-03-02", 1)]
    assert rc == 0


def test_a_busy_delivery_lock_is_found_before_the_notebook_runs(tmp_path, research):
    """Same class (#12 item 10, locks up front): another delivery of the week holds its lock."""
    lock = tmp_path / "ops/weekly_report_history/2026-11-23.lock"
    lock.parent.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", "import filelock,sys,time; l=filelock.FileLock(sys.argv[1]); "
                               "l.acquire(); print('held', flush=True); time.sleep(30)", str(lock)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        p = run_obs(["weekly", "run", "--require-delivery", "--data-root", str(research), "--now",
                     "2026-11-26T09:40:00Z", "--work-root", str(tmp_path)], tmp_path,
                    OBS_WEEKLY_WEBHOOK_URL="http://127.0.0.1:9/hook", OBS_WEBHOOK_SECRET=SECRET_RAW,
                    OBS_LOCK_TIMEOUT_S="0.5")
    finally:
        holder.kill()
        holder.wait()
    assert p.returncode == 0 and last_json(p)["status"] == "skipped", p.stderr
    assert not (tmp_path / "out" / "weekly_report").exists()
