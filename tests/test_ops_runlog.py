"""The run log stays healthy: schema, truncation with a marker, size rotation with no
record lost under concurrent writers, and ``obs log tail``."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import REPO, obs_subprocess_env

from obslib.cli import main
from obslib.ops.runlog_ops import archive_dir, read_lines, rotate_if_needed
from obslib.runlog import JobContext, append_record, runlog_path

UTC = timezone.utc
T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)


def finish(ops: Path, name: str, at: datetime, status: str = "ok", **extra) -> dict:
    ctx = JobContext(job_name=name, ops_dir=ops, now=at, schedule_trigger="cron")
    return ctx.finish(status, error="it broke" if status == "error" else None, **extra)


def test_records_validate_and_long_fields_are_cut_and_marked(tmp_path):
    ops = tmp_path / "ops"
    rec = finish(ops, "weekly_report", T0, "error", detail="x" * 10_000,
                 artefacts_extra=[f"a{i}" for i in range(1500)])
    lines = list(read_lines(ops))
    assert len(lines) == 1 and lines[0].schema_errors == []
    stored = lines[0].record
    assert stored == rec
    assert stored["detail"] == "x" * 4096 + "...[truncated 5904 chars]"
    assert len(stored["artefacts_extra"]) == 1001
    assert stored["artefacts_extra"][-1] == "...[truncated 500 items]"
    assert stored["artefacts_extra"][999] == "a999"


def test_schema_flags_broken_records(tmp_path):
    ops = tmp_path / "ops"
    append_record(ops, {"job_id": "j-1", "job_name": "latency", "schedule_trigger": "cron", "status": "ok"})
    runlog_path(ops).open("a").write('{"torn": \n')
    finish(ops, "latency", T0)
    lines = list(read_lines(ops))
    assert [bool(ln.schema_errors) or ln.record is None for ln in lines] == [True, True, False]
    assert any("started_at" in e for e in lines[0].schema_errors)
    assert lines[1].problem.startswith("not JSON")


def test_rotation_keeps_every_record(tmp_path):
    ops = tmp_path / "ops"
    for i in range(30):
        finish(ops, "latency", T0 + timedelta(minutes=15 * i))
        rotate_if_needed(runlog_path(ops), 2000)
    archives = sorted(archive_dir(ops).iterdir())
    assert len(archives) >= 2 and all(p.stat().st_size >= 2000 for p in archives)
    recs = [ln.record for ln in read_lines(ops)]
    assert [r["started_at"] for r in recs] == [
        (T0 + timedelta(minutes=15 * i)).strftime("%Y-%m-%dT%H:%M:%SZ") for i in range(30)]


WRITER = """
import sys
from datetime import datetime, timezone
from pathlib import Path
from obslib.ops.runlog_ops import install_rotation
from obslib.runlog import JobContext
install_rotation(1500)
ops, who, n = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
for i in range(n):
    ctx = JobContext(job_name="latency", ops_dir=ops, now=datetime(2026, 3, 2, tzinfo=timezone.utc),
                     job_id=f"{who}-{i}", schedule_trigger="cron")
    ctx.finish("ok")
"""


@pytest.mark.slow
def test_concurrent_writers_with_rotation_lose_nothing(tmp_path):
    ops = tmp_path / "ops"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(ops), f"w{k}", "60"], cwd=REPO,
                              env=obs_subprocess_env()) for k in range(4)]
    for p in procs:
        assert p.wait(timeout=120) == 0
    lines = list(read_lines(ops))
    assert all(ln.record is not None and not ln.schema_errors for ln in lines)
    ids = sorted(ln.record["job_id"] for ln in lines)
    assert ids == sorted(f"w{k}-{i}" for k in range(4) for i in range(60))  # each exactly once
    assert len(list(archive_dir(ops).iterdir())) > 10


def test_rotation_hook_is_installed_for_cli_jobs(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OBS_RUNLOG_ROTATE_BYTES", "300")
    ops = tmp_path / "ops"
    for i in range(4):
        finish(ops, "latency", T0 + timedelta(minutes=15 * i))
    main(["log", "tail", "--work-root", str(tmp_path)])  # registers the ops commands -> installs the hook
    finish(ops, "latency", T0 + timedelta(hours=2))
    assert list(archive_dir(ops).iterdir()), "log above 300 bytes was not rotated before the append"
    assert len(list(read_lines(ops))) == 5


def test_log_tail_filters(tmp_path, capsys):
    ops = tmp_path / "ops"
    finish(ops, "latency", T0)
    finish(ops, "dashboard_export", T0 + timedelta(hours=1), "error")
    finish(ops, "latency", T0 + timedelta(hours=2), "error")
    finish(ops, "weekly_report", T0 + timedelta(hours=3))
    capsys.readouterr()
    assert main(["log", "tail", "--work-root", str(tmp_path), "--status", "error", "--json"]) == 0
    out = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r["job_name"] for r in out] == ["dashboard_export", "latency"]
    assert main(["log", "tail", "--work-root", str(tmp_path), "--job", "latency_sample", "-n", "1"]) == 0
    text = capsys.readouterr().out.splitlines()
    assert len(text) == 1 and text[0].startswith("2026-03-02T02:00:00Z") and "latency" in text[0]
    assert "error: it broke" in text[0]
