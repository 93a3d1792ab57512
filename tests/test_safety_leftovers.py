"""Issue #12 item 11: leftovers. Notebook helpers run with blank parameters leave nothing in
the system temp dir; files that grow with every run are pruned (documented defaults in
``obslib/retention.py``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from conftest import REPO, obs_subprocess_env

from obslib.config import load_config
from obslib.retention import prune_all
from obslib.storage import SCRATCH_PARENT, scratch_dir


def test_blank_parameter_runs_leave_no_temp_folders(tmp_path):
    """What nbval does: the report helpers with every parameter blank, in a fresh process."""
    code = ("from obslib.weekly.report import prepare_weekly\n"
            "from obslib.dashboard.report import run_export\n"
            "prepare_weekly(as_of='2026-03-16T01:00:00Z')\n"
            "run_export(as_of='2026-03-16T01:00:00Z')\n")
    env = obs_subprocess_env(TMPDIR=str(tmp_path))
    p = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    left = [str(x.relative_to(tmp_path)) for x in tmp_path.rglob("*")]
    assert left in ([], [f"{SCRATCH_PARENT}-{os.getuid()}"]), left


def test_scratch_folders_of_killed_processes_are_swept(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    parent = tmp_path / f"{SCRATCH_PARENT}-{os.getuid()}"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (parent / f"weekly-{dead.pid}-abc123").mkdir(parents=True)
    (parent / f"weekly-{os.getpid()}-live01").mkdir()
    d = scratch_dir("dashboard")
    names = sorted(p.name for p in parent.iterdir())
    assert f"weekly-{dead.pid}-abc123" not in names and f"weekly-{os.getpid()}-live01" in names and d.name in names


def _touch(p: Path, age_days: float, now: float) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("x")
    os.utime(p, (now - age_days * 86400, now - age_days * 86400))
    return p


def test_retention_prunes_each_growing_folder_by_its_default(tmp_path):
    cfg = load_config(tmp_path, env={})
    now = time.time()
    old = [
        _touch(tmp_path / "out/weekly_report/20260101T000000Z_2025-12-29_ab12cd34.json", 40, now),
        _touch(tmp_path / "out/weekly_report/2025-12-29/failed/weekly_report-x.ipynb", 40, now),
        _touch(tmp_path / "out/dashboard/failed/dashboard_export-x.ipynb", 40, now),
        _touch(tmp_path / "out/ops_alerts/nightly_check-x.json", 40, now),
        _touch(tmp_path / "ops/escalations/weekly_report-x.json", 100, now),
        _touch(tmp_path / "ops/automation_runs_archive/automation_runs-20250101T000000Z.log", 100, now),
        _touch(tmp_path / "out/weekly_report/2025-12-29/.payload.json.abcd.tmp", 1, now),
        _touch(tmp_path / "ops/weekly_report_history/.2025-12-29.json.abcd.tmp", 1, now),
    ]
    kept = [
        _touch(tmp_path / "out/weekly_report/20260301T000000Z_2026-03-02_ab12cd34.json", 5, now),
        _touch(tmp_path / "out/weekly_report/2025-12-29/payload.json", 400, now),  # the report itself: never
        _touch(tmp_path / "ops/escalations/weekly_report-y.json", 60, now),
        _touch(tmp_path / "ops/weekly_report_history/2025-12-29.json", 400, now),  # history: its own rules
        _touch(tmp_path / "out/weekly_report/notes.json", 400, now),  # not the kit's name pattern
        _touch(tmp_path / "out/weekly_report/2025-12-29/.payload.json.efgh.tmp", 0.01, now),  # maybe in use
    ]
    removed = prune_all(cfg, now_s=now)
    assert sorted(removed) == sorted(p.relative_to(tmp_path).as_posix() for p in old)
    assert all(not p.exists() for p in old) and all(p.exists() for p in kept)


def test_retention_is_configurable_and_checked(tmp_path):
    import pytest

    from obslib.errors import ConfigError

    (tmp_path / "obs.toml").write_text("[retention]\ndry_run_days = 1\n")
    assert load_config(tmp_path, env={}).retention.dry_run_days == 1
    with pytest.raises(ConfigError, match="retention.escalation_days must be a finite number > 0"):
        load_config(tmp_path, env={"OBS_RETENTION_ESCALATION_DAYS": "nan"})
