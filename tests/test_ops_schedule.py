"""obs cron: one schedule, rendered as JSON and as a crontab that a cron parser accepts."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone

import pytest
from conftest import REPO, obs_subprocess_env
from croniter import croniter

from obslib.errors import ConfigError
from obslib.schedule import load_schedule

UTC = timezone.utc
SECRET = "s3cr3t-value-never-printed"
URL = "http://127.0.0.1:9/hook-secret-path"


def obs(*args: str, env_extra: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    env = obs_subprocess_env(OBS_WEBHOOK_SECRET=SECRET, OBS_WEEKLY_WEBHOOK_URL=URL, **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "obslib", *args], capture_output=True, text=True, env=env,
                          cwd=cwd or REPO, timeout=60)


def test_cron_json_has_the_issue_cadences(tmp_path):
    p = obs("cron", "--format", "json", "--work-root", str(tmp_path))
    assert p.returncode == 0, p.stderr
    entries = json.loads(p.stdout)
    by = {e["job"]: e for e in entries}
    assert by["latency_sample"]["cadence"] == "*/15 * * * *"
    assert by["latency_rollup"]["cadence"].split()[1:] == ["*", "*", "*", "*"]  # hourly
    assert by["dashboard_export"]["cadence"] == "0 1 * * *"  # 01:00 UTC daily
    assert by["weekly_report"]["cadence"] == "30 23 * * 0"  # Sundays 23:30 UTC
    assert by["nightly_check"]["cadence"].split()[2:] == ["*", "*", "*"]  # daily
    for e in entries:
        assert set(e) >= {"job", "command", "cadence", "timezone", "env_contract"}
        assert e["timezone"] == "UTC"
        assert e["env_contract"]["SCHEDULE_TRIGGER"] == "cron" and "JOB_ID" in e["env_contract"]
        assert e["command"].startswith("obs ")
    assert "OBS_WEBHOOK_SECRET" in by["weekly_report"]["env_contract"]["secrets"]
    assert SECRET not in p.stdout and URL not in p.stdout and SECRET not in p.stderr


def test_crontab_lines_parse_and_set_job_env(tmp_path):
    p = obs("cron", "--format", "crontab", "--work-root", str(tmp_path), "--env-file", "/etc/obslib/secrets.env")
    assert p.returncode == 2 and "without a configured data root" in p.stderr  # the demo is never scheduled
    p = obs("cron", "--format", "crontab", "--work-root", str(tmp_path), "--env-file", "/etc/obslib/secrets.env",
            "--data-root", str(tmp_path / "research"))
    assert p.returncode == 0, p.stderr
    assert f"OBS_DATA_ROOT={(tmp_path / 'research').resolve()}" in p.stdout.splitlines()
    assert SECRET not in p.stdout and URL not in p.stdout
    jobs = [ln for ln in p.stdout.splitlines() if ln and not ln.startswith("#") and "=" not in ln.split()[0]]
    assert len(jobs) == 6
    base = datetime(2026, 3, 1, tzinfo=UTC)
    for ln in jobs:
        fields = ln.split()
        expr = " ".join(fields[:5])
        assert croniter.is_valid(expr), ln
        croniter(expr, base).get_next(datetime)
        cmd = " ".join(fields[5:])
        assert "SCHEDULE_TRIGGER=cron" in cmd and "JOB_ID=" in cmd
        # cron turns a bare % into a newline: every % must be escaped
        assert all(cmd[i - 1] == "\\" for i, ch in enumerate(cmd) if ch == "%")
        assert str(tmp_path.resolve()) in cmd
    assert any(ln.startswith("30 23 * * 0 ") and "weekly run" in ln for ln in jobs)
    assert any("dashboard verify" in ln for ln in jobs)  # the nightly line verifies too


def test_crontab_command_runs_under_sh(tmp_path):
    """The rendered JOB_ID expression works in /bin/sh and yields <job>-<stamp>-<pid>."""
    from obslib.schedule import shell_command

    job = load_schedule()[0]
    cmd = shell_command(job, work_root=str(tmp_path), obs_bin="echo", log_dir="logs")
    cmd = cmd.replace("echo latency sample", 'sh -c \'echo "$JOB_ID $SCHEDULE_TRIGGER"\'')
    subprocess.run(["/bin/sh", "-c", cmd], check=True, timeout=30)
    out = (tmp_path / "logs" / "latency_sample.log").read_text().split()
    assert out[1] == "cron"
    name, stamp, pid = out[0].split("-")
    assert name == "latency" and len(stamp) == 16 and stamp.endswith("Z") and pid.isdigit()


def test_schedule_overrides_from_obs_toml(tmp_path):
    (tmp_path / "obs.toml").write_text('[schedule.dashboard_export]\ncron = "30 2 * * *"\ngrace_s = 60\n'
                                       '[schedule.latency_rollup]\nenabled = false\n')
    p = obs("cron", "--format", "json", "--work-root", str(tmp_path))
    by = {e["job"]: e for e in json.loads(p.stdout)}
    assert by["dashboard_export"]["cadence"] == "30 2 * * *" and by["dashboard_export"]["grace_s"] == 60
    assert "latency_rollup" not in by


@pytest.mark.parametrize("spec,words", [
    ({"dashboard_export": {"cron": "61 * * * *"}}, "not a valid"),
    ({"dashboard_export": {"colour": "red"}}, "unknown setting"),
    ({"nope": {"cron": "* * * * *"}}, "unknown job"),
    ({"weekly_report": {"grace_s": "ten"}}, "not an integer"),
])
def test_bad_overrides_are_clear_errors(spec, words):
    with pytest.raises(ConfigError, match=words):
        load_schedule(spec)


def test_bad_override_via_cli_exits_nonzero_without_traceback(tmp_path):
    (tmp_path / "obs.toml").write_text('[schedule.weekly_report]\ncron = "every sunday"\n')
    p = obs("cron", "--work-root", str(tmp_path))
    assert p.returncode != 0 and "schedule.weekly_report" in p.stderr and "Traceback" not in p.stderr
