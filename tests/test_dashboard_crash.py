"""Crash safety of the bundle (issue #12 items 2a and 3, issue #14 history): a real
``kill -9`` (``OBS_DASHBOARD_FAULT=crash:<checkpoint>``, ``obslib/dashboard/_faults.py``)
after each file operation of ``dashboard export`` and ``dashboard run``; four concurrent
exports; a work root in the old layout (real ``out/dashboard`` folder, full-copy history)."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dashboard_fixtures import make_repo, write_rollup

from obslib.cli import main

NOW = "2024-01-20T00:00:00Z"
LATER = "2024-01-21T00:00:00Z"


def _env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("JOB_ID", "OBS_DASHBOARD_FAULT")}
    env.update(extra)
    return env


def _sub(work: Path, repo: Path, *args: str, now: str = LATER, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "obslib", "dashboard", *args, "--work-root", str(work),
                           "--data-root", str(repo), "--now", now], capture_output=True, text=True,
                          env=_env(**env), timeout=300)


def _main(capsys, work: Path, *args: str, repo: Path | None = None, now: str = LATER) -> tuple[int, dict]:
    argv = ["dashboard", *args, "--work-root", str(work), "--now", now]
    if repo is not None:
        argv += ["--data-root", str(repo)]
    code = main(argv)
    return code, json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def leftovers(work: Path) -> list[str]:
    """Hidden temp/staging names anywhere under out/ and the history (none may survive a run)."""
    return sorted(p.relative_to(work).as_posix() for base in (work / "out", work / "ops" / "dashboard_export_history")
                  if base.is_dir() for p in base.rglob(".*"))


@pytest.fixture
def baseline(tmp_path, capsys):
    repo = make_repo(tmp_path / "repo")
    work = tmp_path / "base"
    write_rollup(work)
    assert _main(capsys, work, "export", repo=repo, now=NOW)[0] == 0
    # the next export changes turnover, so a crash lands between two different bundles
    daily = repo / "runs" / "run_B_20240115_000000" / "daily.csv"
    daily.write_text(daily.read_text().replace(",1,1,3.0", ",1,1,4.0"))
    return repo, work


def _checkpoints(tmp_path: Path, repo: Path, base: Path, command: str) -> list[str]:
    work = tmp_path / f"record-{command}"
    shutil.copytree(base, work, symlinks=True)
    rec = tmp_path / f"{command}.checkpoints"
    p = _sub(work, repo, command, OBS_DASHBOARD_FAULT=f"record:{rec}")
    assert p.returncode == 0, p.stderr
    return list(dict.fromkeys(rec.read_text().split()))


def _trial(tmp_path: Path, capsys, repo: Path, base: Path, command: str, cp: str) -> None:
    work = tmp_path / f"crash-{command}-{cp.replace(':', '_')}"
    shutil.copytree(base, work, symlinks=True)
    before = json.loads((work / "out" / "dashboard" / "manifest.json").read_text())["sequence"]
    p = _sub(work, repo, command, OBS_DASHBOARD_FAULT=f"crash:{cp}")
    assert p.returncode == -9, (cp, p.returncode, p.stderr[-500:])
    code, v = _main(capsys, work, "verify")  # the previous (or the complete new) bundle, and history
    assert code == 0, (cp, v)
    seq = json.loads((work / "out" / "dashboard" / "manifest.json").read_text())["sequence"]
    assert seq in (before, before + 1), cp
    code, s = _main(capsys, work, "export", repo=repo)
    assert code == 0 and s["sequence"] > seq, (cp, s)
    assert _main(capsys, work, "verify")[0] == 0, cp
    assert leftovers(work) == [], cp


@pytest.mark.slow
def test_kill_9_at_each_file_operation_of_export(tmp_path, capsys, baseline):
    repo, base = baseline
    cps = _checkpoints(tmp_path, repo, base, "export")
    expected = {"stage_created", "objects_staged", "swept", "staged_complete", "sequence_stored", "version_renamed",
                "switched", "objects_committed", "snapshot_recorded", "pruned", "heartbeat_written",
                "staged:turnover_summary.json", "staged:turnover_summary.parquet"}
    assert expected <= set(cps), cps
    for cp in cps:
        _trial(tmp_path, capsys, repo, base, "export", cp)


@pytest.mark.slow
def test_kill_9_at_each_file_operation_of_run(tmp_path, capsys, baseline):
    repo, base = baseline
    cps = [c for c in _checkpoints(tmp_path, repo, base, "run") if c.startswith("nb_")]
    assert cps == ["nb_result_written", "nb_executed", "nb_placed:dashboard_bundle.ipynb",
                   "nb_placed:dashboard_bundle.html"]
    for cp in cps:
        _trial(tmp_path, capsys, repo, base, "run", cp)


def test_stale_temp_files_of_old_runs_are_swept(tmp_path, capsys, baseline):
    repo, work = baseline
    out = work / "out" / "dashboard"
    dead = 2 ** 22 + 12345  # above the default pid_max: no such process
    junk = [out / ".turnover_summary.json.abc123.tmp", out / ".nb-staging-dashboard_export-x",
            work / "out" / "dashboard.versions" / f".stage-{dead}-job", work / "out" / f".link-{dead}-dashboard",
            work / "ops" / "dashboard_export_history" / ".job.ev_history.json.x.tmp",
            work / "ops" / "dashboard_export_history" / ".job.partial",
            work / "ops" / "dashboard_export_history" / "objects" / f".obj-{dead}-abc"]
    for j in junk:
        if j.name.startswith((".nb-", ".stage-", ".job.partial")):
            j.mkdir(parents=True)
            (j / "x").write_bytes(b"x" * 1000)
        else:
            j.parent.mkdir(parents=True, exist_ok=True)
            j.write_bytes(b"x")
    live = work / "out" / "dashboard.versions" / f".stage-{os.getpid()}-live"  # a running export's staging
    live.mkdir()
    assert _main(capsys, work, "export", repo=repo)[0] == 0
    assert not any(j.exists() for j in junk)
    assert live.is_dir()  # never swept while its process lives
    shutil.rmtree(live)
    assert leftovers(work) == []


def test_four_concurrent_exports_then_verify_clean(tmp_path, capsys, baseline):
    repo, work = baseline
    procs = [subprocess.Popen([sys.executable, "-m", "obslib", "dashboard", "export", "--work-root", str(work),
                               "--data-root", str(repo), "--now", f"2024-01-2{i}T00:00:00Z"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
             for i in (4, 3, 2, 1)]  # later clocks start first: order must follow the lock, not generated_at
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [o[1][-300:] for o in outs]
    seqs = sorted(json.loads(o[0].strip().splitlines()[-1])["sequence"] for o in outs)
    assert seqs == [2, 3, 4, 5]
    code, v = _main(capsys, work, "verify", now="2024-01-25T00:00:00Z")
    assert code == 0 and v["findings"] == 0, v
    snaps = sorted(p.name for p in (work / "ops" / "dashboard_export_history" / "snapshots").iterdir())
    assert [int(n.split("-", 1)[0]) for n in snaps] == [1, 2, 3, 4, 5]
    assert json.loads((work / "out" / "dashboard" / "manifest.json").read_text())["sequence"] == 5
    assert leftovers(work) == []


def test_old_layout_is_read_verified_migrated_and_restored(tmp_path, capsys, baseline):
    repo, work = baseline
    # turn the work root into the layout of earlier releases: a real out/dashboard folder and
    # full copies under ops/dashboard_export_history/<job_id>/
    out = work / "out" / "dashboard"
    target = out.resolve()
    out.unlink()
    shutil.copytree(target, out)
    shutil.rmtree(work / "out" / "dashboard.versions")
    hist = work / "ops" / "dashboard_export_history"
    (snap,) = (hist / "snapshots").iterdir()
    rec = json.loads(snap.read_text())
    legacy = hist / rec["job_id"]
    legacy.mkdir()
    for f in rec["files"]:
        (legacy / f["path"]).write_bytes(gzip.decompress(
            (hist / "objects" / f["sha256"][:2] / f"{f['sha256']}.gz").read_bytes()))
    shutil.rmtree(hist / "snapshots")
    shutil.rmtree(hist / "objects")
    code, v = _main(capsys, work, "verify")
    assert code == 0 and v["findings"] == 0, v
    code, s = _main(capsys, work, "export", repo=repo)
    assert code == 0 and s["sequence"] == 2  # the old entry's sequence is remembered
    assert out.is_symlink() and (work / "out" / "dashboard.versions" / "legacy-1").is_dir()
    assert _main(capsys, work, "verify")[0] == 0
    # restore the old-layout entry by its job id
    assert main(["restore", "--work-root", str(work), "--job-id", rec["job_id"], "--now", LATER]) in (0,)
    capsys.readouterr()
    m = json.loads((out / "manifest.json").read_text())
    assert m["sequence"] == 1 and m["job_id"] == rec["job_id"]
