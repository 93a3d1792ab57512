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


# --------------------------------------------------------------------------- transient filesystem errors

def _flaky_replace(monkeypatch, errnos):
    """``os.replace`` that raises the given errnos first, then works; returns the call log."""
    import os

    real, calls = os.replace, []

    def fake(src, dst, *a, **k):
        calls.append(dst)
        if len(calls) <= len(errnos):
            raise OSError(errnos[len(calls) - 1], os.strerror(errnos[len(calls) - 1]))
        return real(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", fake)
    monkeypatch.setattr("obslib.storage.time.sleep", lambda s: None)
    return calls


@pytest.mark.parametrize("code", ["EAGAIN", "EBUSY", "ESTALE", "EINTR"])
def test_transient_errors_on_a_write_are_retried(tmp_path, monkeypatch, code):
    import errno

    from obslib.storage import atomic_write_bytes

    calls = _flaky_replace(monkeypatch, [getattr(errno, code)] * 3)
    atomic_write_bytes(tmp_path / "f.json", b"{}")
    assert (tmp_path / "f.json").read_bytes() == b"{}" and len(calls) == 4
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]  # no temp file left by the failed attempts


def test_transient_errors_give_up_after_a_bounded_backoff(tmp_path, monkeypatch):
    import errno

    from obslib.storage import RETRY_DELAYS_S, atomic_write_bytes

    calls = _flaky_replace(monkeypatch, [errno.EBUSY] * 50)
    with pytest.raises(OSError) as exc:
        atomic_write_bytes(tmp_path / "f.json", b"{}")
    assert exc.value.errno == errno.EBUSY and exc.value.filename == str(tmp_path / "f.json")
    assert len(calls) == len(RETRY_DELAYS_S) + 1 and sum(RETRY_DELAYS_S) < 2
    assert list(tmp_path.iterdir()) == []


def test_other_errors_are_not_retried(tmp_path, monkeypatch):
    import errno

    from obslib.storage import atomic_write_bytes

    calls = _flaky_replace(monkeypatch, [errno.ENOSPC])
    with pytest.raises(OSError) as exc:
        atomic_write_bytes(tmp_path / "f.json", b"{}")
    assert exc.value.errno == errno.ENOSPC and len(calls) == 1


def test_a_job_survives_transient_errors_end_to_end(tmp_path, monkeypatch, capsys):
    """`obs demo` + `obs dashboard export` with EBUSY/ESTALE injected into the first
    renames: the job retries and succeeds."""
    import errno

    from obslib.cli import main

    calls = _flaky_replace(monkeypatch, [errno.EBUSY, errno.ESTALE, errno.EAGAIN, errno.EINTR])
    assert main(["demo", "--out", str(tmp_path / "repo"), "--as-of", "2026-03-16T01:00:00Z"]) == 0
    assert main(["dashboard", "export", "--work-root", str(tmp_path / "kit"), "--data-root", str(tmp_path / "repo"),
                 "--now", "2026-03-16T01:00:00Z"]) == 0
    assert len(calls) > 4
