"""The weekly job under a scheduler's hard edges, with the real CLI in a subprocess:
SIGTERM mid-run, the report kernel killed mid-run, stdout that cannot be written. Each must
leave no kernel process, no staging folder, one run-log record and a clear exit code."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import obs_subprocess_env

WEEK = "2025-09-29"


def _start(real_root: Path, work: Path, **kw) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "obslib", "weekly", "run", "--data-root", str(real_root), "--week-start", WEEK,
           "--work-root", str(work), "--now", "2026-11-29T12:00:00Z"]
    kw.setdefault("stdout", subprocess.PIPE)
    return subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=obs_subprocess_env(), **kw)


def _kernel_pid(proc: subprocess.Popen, timeout_s: float = 20.0) -> int:
    """The report kernel: the job's child process running ``python -m obslib.kernel``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        kids = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        for k in kids:
            try:
                if b"obslib.kernel" in Path(f"/proc/{k}/cmdline").read_bytes():
                    return int(k)
            except OSError:
                continue
        time.sleep(0.05)
    raise AssertionError("no kernel child appeared")


def _wait_until_cells_run(kernel: int, proc: subprocess.Popen, timeout_s: float = 60.0) -> None:
    """Wait until the report's cells are executing in ``kernel``: its memory maps hold
    matplotlib, which the first code cell after the parameters imports (``%matplotlib
    inline``) and a kernel that has only booted never loads. Papermill writes nothing to
    disk mid-run, so this is the observable sign; polling it replaces a fixed sleep that
    lands before the first cell under load, or after the last one on a fast machine."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if "matplotlib" in Path(f"/proc/{kernel}/maps").read_text():
                return
        except OSError:
            break
        if proc.poll() is not None:
            break
        time.sleep(0.01)
    raise AssertionError(f"the kernel never started the report's cells (job exit {proc.poll()})")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"


def _final_records(work: Path) -> list[dict]:
    lines = (work / "ops/automation_runs.log").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["job_name"] == "weekly_report" and "event" not in r]


def test_sigterm_mid_run_stops_kernel_cleans_up_and_records(tmp_path, real_root):
    work = tmp_path / "w"
    proc = _start(real_root, work)
    kernel = _kernel_pid(proc)
    _wait_until_cells_run(kernel, proc)  # the notebook is running (not a fixed sleep: see the helper)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert err.strip() == "obs weekly_report: error: terminated (SIGTERM) before the job finished"
    summary = json.loads(out)
    assert summary["status"] == "error" and "SIGTERM" in summary["error"]
    assert not _alive(kernel)
    week = work / "out/weekly_report" / WEEK
    assert not list(week.glob(".staging-*")) and not (week / "payload.json").exists()
    recs = _final_records(work)
    assert [(r["job_id"], r["status"]) for r in recs] == [(summary["job_id"], "error")]


def test_killed_kernel_keeps_partial_notebook_and_says_one_line(tmp_path, real_root):
    work = tmp_path / "w"
    proc = _start(real_root, work)
    kernel = _kernel_pid(proc)
    _wait_until_cells_run(kernel, proc)  # mid-run: the first code cell runs, ~2 s of cells remain
    os.kill(kernel, signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "kernel error" in lines[0] and "partial notebook: out/weekly_report/" in lines[0]
    failed = list((work / "out/weekly_report" / WEEK / "failed").glob("*.ipynb"))
    assert [f.stem for f in failed] == [json.loads(out)["job_id"]]
    nb = json.loads(failed[0].read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "obslib" and len(nb["cells"]) > 5


def test_unwritable_stdout_after_success_is_one_record_and_exit_1(tmp_path, real_root):
    work = tmp_path / "w"
    with open("/dev/full", "w") as full:
        proc = _start(real_root, work, stdout=full)
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert "could not write the summary line to stdout: No space left on device" in err
    assert "Traceback" not in err
    week = work / "out/weekly_report" / WEEK
    assert {p.name for p in week.iterdir()} >= {"payload.json", "weekly_report.ipynb", "weekly_report.html"}
    recs = _final_records(work)
    assert len(recs) == 1 and recs[0]["status"] == "dry_run"  # the job's outcome, recorded once


def test_closed_stdout_still_runs_the_kernel(tmp_path, real_root):
    work = tmp_path / "w"
    cmd = [sys.executable, "-m", "obslib", "weekly", "run", "--data-root", str(real_root), "--week-start", WEEK,
           "--work-root", str(work), "--now", "2026-11-29T12:00:00Z"]
    proc = subprocess.run(" ".join(f"'{c}'" for c in cmd) + " >&-", shell=True, capture_output=False,
                          stderr=subprocess.PIPE, text=True, env=obs_subprocess_env(), timeout=120)
    assert proc.returncode == 1 and "stdout is closed" in proc.stderr
    assert (work / "out/weekly_report" / WEEK / "payload.json").is_file()


def _sigterm_caught(pid: int) -> bool:
    """The process has installed its SIGTERM handler (bit 15 of SigCgt in /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    return False


def test_sigterm_while_the_command_starts_is_still_recorded(tmp_path, real_root):
    """A SIGTERM that lands while obs is still importing is held back and raised once the
    job has its run-log context: exit 143, one record, no traceback."""
    work = tmp_path / "w"
    proc = _start(real_root, work)
    deadline = time.monotonic() + 20
    while not _sigterm_caught(proc.pid):
        assert time.monotonic() < deadline
        time.sleep(0.002)
    proc.send_signal(signal.SIGTERM)  # the handler is in, the command's imports are not done
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "Traceback" not in err, err
    assert json.loads(out)["error"] == "terminated (SIGTERM) before the job finished"
    assert [r["status"] for r in _final_records(work)] == ["error"]
