"""Issue #12 items 6 and 7 (the parts in the schedule, check and webhook commands):
meaning validated at config load and flag parsing, staleness computed from the schedule.
Each with the issue's exact input and one more of the same class."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from obslib.cli import main
from obslib.errors import ConfigError
from obslib.heartbeat import write_heartbeat
from obslib.schedule import fires_within_a_year, load_schedule

UTC = timezone.utc
ALL = tuple(j.name for j in load_schedule())  # every scheduled job (others may add jobs)


@pytest.mark.parametrize("cron", ["0 0 31 2 *", "0 0 30 2 *", "0 0 29 2 *"])
def test_a_cron_that_does_not_fire_within_a_year_is_refused_at_config_load(cron):
    with pytest.raises(ConfigError, match=r"schedule\.dashboard_export: cron .* does not fire within a year"):
        load_schedule({"dashboard_export": {"cron": cron}})
    assert not fires_within_a_year(cron)
    assert fires_within_a_year("0 1 * * 1-5") and fires_within_a_year("0 0 31 * *")


def test_obs_check_with_a_never_firing_cron_says_so_instead_of_an_internal_error(tmp_path, capsys):
    (tmp_path / "obs.toml").write_text('[schedule.dashboard_export]\ncron = "0 0 31 2 *"\n')
    assert main(["check", "--work-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "does not fire within a year" in err and "internal error" not in err


@pytest.mark.parametrize("args", [
    ["check", "--lookback-hours", "-5"], ["check", "--lookback-hours", "nan"], ["check", "--lookback-hours", "0"],
    ["webhook", "verify", "--body", "b", "--headers", "h", "--tolerance-s", "nan"],
    ["webhook", "verify", "--body", "b", "--headers", "h", "--tolerance-s", "inf"],
    ["webhook", "verify", "--body", "b", "--headers", "h", "--tolerance-s", "-1"],
])
def test_meaningless_numbers_are_refused_at_flag_parsing(args, capsys):
    with pytest.raises(SystemExit) as ei:
        main(args)
    assert ei.value.code == 2
    err = capsys.readouterr().err
    assert "finite" in err or ">" in err


def test_verify_library_refuses_a_non_finite_tolerance():
    from obslib.signing import sign_headers, verify

    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    body = b"{}"
    old = sign_headers(body, "wid", ["a-sixteen-byte-secret"], datetime(2026, 3, 2, 11, 53, 20, tzinfo=UTC))
    for tol in (float("nan"), float("inf"), -1):
        res = verify(body, old, ["a-sixteen-byte-secret"], tolerance_s=tol, now=now)
        assert not res.ok and res.code == "malformed"  # a 400-second-old signature is never accepted this way


# --------------------------------------------------------------------------- staleness from the schedule (#12 item 7)

def _check(root, now: str) -> dict:
    main(["check", "--work-root", str(root), "--now", now, "--since", "2026-03-05T00:00:00Z", "--no-send"])
    return json.loads((root / "ops/nightly_check.preview.json").read_text())


def _only(root, job: str, cron: str) -> None:
    (root / "obs.toml").write_text("".join(f"[schedule.{j}]\nenabled = false\n" for j in ALL if j != job)
                                   + f'[schedule.{job}]\ncron = "{cron}"\nheartbeat_required = false\n')


def test_weekday_job_is_not_stale_on_the_weekend(tmp_path):
    """The issue's input: [schedule.dashboard_export] cron = "0 1 * * 1-5"."""
    _only(tmp_path, "dashboard_export", "0 1 * * 1-5")
    fri = datetime(2026, 3, 6, 1, 30, tzinfo=UTC)  # Friday's run
    write_heartbeat(tmp_path / "ops", "dashboard_export", "dashboard_export-x", fri, "ok")
    for now in ("2026-03-07T02:30:00Z", "2026-03-08T02:30:00Z", "2026-03-09T01:29:00Z"):  # Sat, Sun, Mon in grace
        rep = _check(tmp_path, now)
        assert [f for f in rep["findings"] if f["kind"] == "stale_heartbeat"] == [], now
        assert rep["jobs"]["dashboard_export"]["heartbeat"]["state"] == "fresh"
        assert rep["jobs"]["dashboard_export"]["heartbeat"]["stale_after"] == "2026-03-09T01:30:00Z"
    rep = _check(tmp_path, "2026-03-09T02:30:00Z")  # Monday: its 01:00 run + 30 min grace has passed
    assert rep["jobs"]["dashboard_export"]["heartbeat"]["state"] == "stale"
    # with no run in the log it is the same fault as Monday's missed run (one finding); with runs logged
    # elsewhere it is a stale_heartbeat of its own
    assert [(f["kind"], f["last_expected_at"]) for f in rep["findings"]] == [("missed_run", "2026-03-09T01:00:00Z")]


def test_business_hours_job_is_not_stale_overnight(tmp_path):
    """Same class: an hourly job that runs 09:05-17:05 only."""
    _only(tmp_path, "latency_rollup", "5 9-17 * * *")
    write_heartbeat(tmp_path / "ops", "latency_rollup", "latency_rollup-x", datetime(2026, 3, 5, 17, 6, tzinfo=UTC),
                    "ok")
    rep = _check(tmp_path, "2026-03-06T02:30:00Z")  # 9.4 h old; an interval rule said stale after 1 h + grace
    assert rep["jobs"]["latency_rollup"]["heartbeat"]["state"] == "fresh"
    rep = _check(tmp_path, "2026-03-06T09:16:00Z")  # 09:05 + 600 s grace passed without a new heartbeat
    assert rep["jobs"]["latency_rollup"]["heartbeat"]["state"] == "stale"


# --------------------------------------------------------------------------- obs config show

def test_config_show_names_the_source_of_every_value_and_never_a_secret(tmp_path):
    import subprocess
    import sys

    from conftest import obs_subprocess_env

    (tmp_path / "obs.toml").write_text('lock_timeout_s = 12\n[webhook]\nmax_attempts = 4\n')
    secret = "obs-config-show-secret-0123"
    env = obs_subprocess_env(OBS_WEBHOOK_READ_TIMEOUT_S="9", OBS_WEBHOOK_SECRET=secret,
                             OBS_SLACK_WEBHOOK_URL="https://hooks.example.test/services/T/B/cfgtoken12345")
    p = subprocess.run([sys.executable, "-m", "obslib", "config", "show", "--json", "--work-root", str(tmp_path),
                        "--data-root", str(tmp_path)], capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    src = {r["key"]: (r["value"], r["source"].split(" ")[0]) for r in doc["settings"]}
    assert src["lock_timeout_s"] == (12.0, "obs.toml") and src["webhook.max_attempts"] == (4, "obs.toml")
    assert src["webhook.read_timeout_s"] == (9.0, "environment")
    assert src["data_root"] == (str(tmp_path), "flag") and src["alerts.repeat_interval_s"] == (14400.0, "default")
    states = {d["name"]: d["state"] for d in doc["destinations"]}
    assert states["OBS_WEBHOOK_SECRET"] == "set (redacted)" and states["OBS_PAGERDUTY_ROUTING_KEY"] == "not set"
    assert secret not in p.stdout and "cfgtoken12345" not in p.stdout
    bad = subprocess.run([sys.executable, "-m", "obslib", "config", "show", "--work-root", str(tmp_path)],
                         capture_output=True, text=True, timeout=60,
                         env=obs_subprocess_env(OBS_WEBHOOK_SECRET="whsec_xyz!"))
    assert bad.returncode == 2 and "OBS_WEBHOOK_SECRET" in bad.stderr and "xyz" not in bad.stderr
