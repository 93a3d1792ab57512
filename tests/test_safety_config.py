"""Issue #12 item 6 (numbers): non-finite or out-of-range numeric flags and config values
are refused at flag parsing / config load with a message naming the flag or key."""

from __future__ import annotations

import pytest

from obslib.cli import main
from obslib.config import check_finite, load_config
from obslib.errors import ConfigError


@pytest.mark.parametrize("value, why", [("nan", "is not a finite number"), ("inf", "is not a finite number"),
                                        ("-inf", "is not a finite number"), ("0", "must be > 0"),
                                        ("-1", "must be > 0"), ("abc", "is not a number")])
@pytest.mark.parametrize("sub", ["export", "run"])
def test_pip_value_flag_is_refused(capsys, tmp_path, sub, value, why):
    with pytest.raises(SystemExit) as exc:
        main(["dashboard", sub, f"--pip-value={value}", "--work-root", str(tmp_path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --pip-value: {value!r} {why}" in err and "rows[0]" not in err
    assert not (tmp_path / "out").exists()  # refused before any work


def test_pip_value_in_the_library_is_refused_too(tmp_path):
    from datetime import UTC, datetime

    from obslib.dashboard.bundle import ExportRequest

    for bad in (float("nan"), float("inf"), -1.0, 0, "x"):
        with pytest.raises(ConfigError, match="pip_value"):
            ExportRequest(names=["turnover_summary"], data_root=tmp_path, work_root=tmp_path,
                          now=datetime(2026, 3, 16, tzinfo=UTC), job_id="j1", command="", commit_sha=None,
                          data_label="demo", pip_value=bad)


def test_log_tail_n_must_be_a_non_negative_integer(capsys, tmp_path):
    for bad in ("-3", "nan", "1.5"):
        with pytest.raises(SystemExit) as exc:
            main(["log", "tail", "-n", bad, "--work-root", str(tmp_path)])
        assert exc.value.code == 2
    assert "argument -n" in capsys.readouterr().err


@pytest.mark.parametrize("key, value", [
    ("OBS_WEBHOOK_BACKOFF_BASE_S", "nan"), ("OBS_WEBHOOK_READ_TIMEOUT_S", "inf"), ("OBS_LOCK_TIMEOUT_S", "-1"),
    ("LATENCY_SLO_MS", "nan"), ("OBS_LATENCY_SLO_MS", "0"), ("OBS_UTILISATION_WARNING_HEADROOM_FRAC", "1.5"),
    ("OBS_HISTORY_RETENTION_DAYS", "0"), ("OBS_WEBHOOK_MAX_ATTEMPTS", "0"), ("OBS_WEBHOOK_MAX_ATTEMPTS", "nan"),
])
def test_config_numbers_are_checked_at_load(tmp_path, key, value):
    with pytest.raises(ConfigError) as exc:
        load_config(tmp_path, env={key: value})
    assert "Traceback" not in str(exc.value) and value in str(exc.value)


def test_config_numbers_in_obs_toml(tmp_path):
    (tmp_path / "obs.toml").write_text("[webhook]\nconnect_timeout_s = nan\n")
    with pytest.raises(ConfigError, match="webhook.connect_timeout_s must be a finite number > 0"):
        load_config(tmp_path, env={})


def test_check_finite():
    assert check_finite("2.5", what="x", minimum=0) == 2.5
    with pytest.raises(ConfigError, match="x: 'nan' is not a finite number"):
        check_finite("nan", what="x")
    with pytest.raises(ConfigError, match="x must be >= 0"):
        check_finite(-1, what="x", minimum=0)
