"""bench/weekly.py removes its temp folder, whether the measurements finish or fail.
The subprocess timings and the payload build are faked: only the clean-up is tested."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench/weekly.py"


def _load(monkeypatch, tmp_path: Path, timed):
    spec = importlib.util.spec_from_file_location("obs_bench_weekly_under_test", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    (tmp_path / "real").mkdir()
    work = tmp_path / "bench-tmp"
    monkeypatch.setattr(mod, "REAL", tmp_path / "real")
    monkeypatch.setattr(mod, "timed", timed)

    def mkdtemp(prefix=""):
        work.mkdir()
        return str(work)

    monkeypatch.setattr(mod.tempfile, "mkdtemp", mkdtemp)
    monkeypatch.setattr(sys, "argv", ["weekly.py", "--runs", "1"])
    return mod, work


def test_bench_removes_its_temp_folder_on_success(tmp_path, monkeypatch, capsys):
    import obslib.weekly.payload

    mod, work = _load(monkeypatch, tmp_path, lambda cmd, cwd, env: 1.0)
    monkeypatch.setattr(obslib.weekly.payload, "build_weekly_payload", lambda *a, **kw: {})
    assert mod.main() == 0
    out = capsys.readouterr().out
    assert "ratio obs weekly run / trivial papermill:  1.00" in out
    assert "TARGET obs weekly run / trivial papermill: 1.000x (target <= 1.5x): PASS" in out
    assert not work.exists()


def test_bench_removes_its_temp_folder_on_failure(tmp_path, monkeypatch):
    def boom(cmd, cwd, env):
        raise RuntimeError("obs weekly run failed")

    mod, work = _load(monkeypatch, tmp_path, boom)
    with pytest.raises(RuntimeError, match="obs weekly run failed"):
        mod.main()
    assert not work.exists()
