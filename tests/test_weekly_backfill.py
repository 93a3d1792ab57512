"""``obs weekly run --from --to``: every week of the range, one job and one summary line each."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import obs_subprocess_env

OBS = [sys.executable, "-m", "obslib"]


def run_obs(args, cwd, **env):
    return subprocess.run([*OBS, *args], cwd=cwd, capture_output=True, text=True, timeout=600,
                          env=obs_subprocess_env(**env))


def test_backfill_reports_each_week_with_one_line_each(tmp_path, real_root):
    # 2025-09-17 is a Wednesday (week of 09-15), 2025-10-01 one too (week of 09-29): three weeks
    proc = run_obs(["weekly", "run", "--data-root", str(real_root), "--from", "2025-09-17", "--to", "2025-10-01",
                    "--now", "2026-11-29T12:00:00Z"], tmp_path, JOB_ID="backfill-1")
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(ln) for ln in proc.stdout.splitlines() if ln.strip()]
    assert [ln["week_start"] for ln in lines] == ["2025-09-15", "2025-09-22", "2025-09-29"]
    assert [ln["job_id"] for ln in lines] == ["backfill-1-2025-09-15", "backfill-1-2025-09-22", "backfill-1-2025-09-29"]
    assert all(ln["status"] == "dry_run" for ln in lines)
    for ln in lines:
        payload = json.loads((tmp_path / "out/weekly_report" / ln["week_start"] / "payload.json").read_text())
        assert payload["week_start"].startswith(ln["week_start"])
    runs = {ln["week_start"]: json.loads((tmp_path / "out/weekly_report" / ln["week_start"] / "payload.json")
                                         .read_text())["runs"]["week_summary"]["runs"] for ln in lines}
    assert runs == {"2025-09-15": 168, "2025-09-22": 60, "2025-09-29": 0}
    log = [json.loads(x) for x in (tmp_path / "ops/automation_runs.log").read_text().splitlines()]
    assert sum(1 for r in log if r["job_name"] == "weekly_report" and r.get("status") == "dry_run") == 3


@pytest.mark.parametrize("args,message", [
    (["--from", "2025-10-01", "--to", "2025-09-01"], "--to 2025-09-01 is before --from 2025-10-01"),
    (["--from", "2025-10-01"], "--from and --to go together"),
    (["--from", "2025-10-01", "--to", "2025-13-01"], "--to '2025-13-01' is not a date"),
    (["--from", "2025-10-01", "--to", "2025-10-08", "--week-start", "2025-09-29"], "use one or the other"),
    (["--from", "2026-11-01", "--to", "2026-12-31"], "the week of 2026-12-28 has not started yet"),
    (["--from", "2000-01-03", "--to", "2026-11-01"], "at most 260 in one command"),
])
def test_backfill_refuses_a_bad_range_before_any_work(tmp_path, args, message):
    proc = run_obs(["weekly", "run", *args, "--now", "2026-11-29T12:00:00Z"], tmp_path)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    (line,) = proc.stdout.splitlines()
    assert json.loads(line)["status"] == "error"
    assert not (tmp_path / "out/weekly_report").exists()
