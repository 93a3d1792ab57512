"""Issue #12 item 2b: kill -9 ``obs weekly run`` at each file operation.

The run publishes the week folder (notebook, HTML, payload) and then writes the delivery
history (body + receipt, archiving the previous version). A real SIGKILL is delivered at
every checkpoint (``obslib.faults``, ``OBS_FAULT=crash:<name>``), on a work root whose
previous run delivered successfully. After each kill:

- ``obs weekly replay`` and ``obs restore`` work (the history body always matches its
  receipt: the two are one unit);
- once any reader or the next run has seen the week, its folder holds the notebook, HTML
  and payload of ONE run (never a mix);
- the next run succeeds and leaves no staging folder, temp file or journal behind.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, obs_subprocess_env, post_receiver

from obslib.cli import main

NOW = "2026-03-16T01:00:00Z"
WEEK = "2026-03-09"
SECRET = "crash-secret-0123456789"


@pytest.fixture(scope="module")
def receiver():
    with post_receiver() as (url, _got):
        yield url


# the tests copy the data root per trial, so every run passes --replace (the data-root rule
# of the week folder is tested in test_safety_week_source.py)
def obs(work: Path, data: Path, url: str, *args: str, fault: str = "") -> subprocess.CompletedProcess:
    env = obs_subprocess_env(OBS_WEEKLY_WEBHOOK_URL=url, OBS_WEBHOOK_SECRET=SECRET,
                             OBS_WEBHOOK_BACKOFF_BASE_S="0", OBS_WEBHOOK_BACKOFF_MAX_S="0")
    if fault:
        env["OBS_FAULT"] = fault
    return subprocess.run([sys.executable, "-m", "obslib", *args, "--work-root", str(work), "--data-root", str(data),
                           "--now", NOW], capture_output=True, text=True, cwd=REPO, env=env, timeout=300)


def change_data(data: Path) -> None:
    """Make the next run's payload differ (one more latency sample in the week)."""
    with open(data / "ops/signal_latency.csv", "a") as fh:
        fh.write("2026-03-10T02:00:00Z,999999.0,success,,router_demo\n")


@pytest.fixture(scope="module")
def template(tmp_path_factory, receiver):
    """A work root whose run A delivered week WEEK, plus the list of checkpoints a run
    that replaces A (run B) passes through."""
    top = tmp_path_factory.mktemp("crash")
    data, work = top / "repo", top / "kit"
    assert main(["demo", "--out", str(data), "--as-of", NOW]) == 0
    p = obs(work, data, receiver, "weekly", "run", "--week-start", WEEK, "--require-delivery", "--replace")
    assert p.returncode == 0, p.stderr
    probe_work, probe_data = top / "probe_kit", top / "probe_repo"
    shutil.copytree(work, probe_work)
    shutil.copytree(data, probe_data)
    change_data(probe_data)
    listing = top / "checkpoints.txt"
    p = obs(probe_work, probe_data, receiver, "weekly", "run", "--week-start", WEEK, "--require-delivery", "--replace",
            fault=f"list:{listing}")
    assert p.returncode == 0, p.stderr
    names = listing.read_text().split()
    return top, data, work, names


def test_every_file_operation_is_a_checkpoint(template):
    *_, names = template
    assert names == ["week.commit", "week.replace.weekly_report.ipynb", "week.replace.weekly_report.html",
                     "week.replace.source.json", "week.replace.payload.json", "history.journal", "history.archive_receipt",
                     "history.archive_body", "history.body", "history.receipt", "history.journal_done"]


def _nb_job_id(nb_path: Path) -> str:
    # the run's parameters as papermill recorded them (the published parameters cell leaves
    # job_id blank so that a re-run gets its own)
    params = json.loads(nb_path.read_text())["metadata"].get("papermill", {}).get("parameters", {})
    if not params.get("job_id"):
        raise AssertionError("no job_id in the notebook's papermill parameters")
    return params["job_id"]


def assert_one_run(week: Path) -> None:
    payload = json.loads((week / "payload.json").read_text())
    jid = payload["provenance"]["job_id"]
    assert _nb_job_id(week / "weekly_report.ipynb") == jid
    assert jid in (week / "weekly_report.html").read_text()


def leftovers(work: Path) -> list[str]:
    bad = []
    for p in work.rglob("*"):
        n = p.name
        if n.startswith(".staging-") or n.endswith(".tmp") or n.endswith(".pending.json") or n == ".commit":
            bad.append(str(p.relative_to(work)))
    return bad


@pytest.mark.slow
@pytest.mark.parametrize("point", ["week.commit", "week.replace.weekly_report.ipynb", "week.replace.weekly_report.html",
                                   "week.replace.source.json", "week.replace.payload.json", "history.journal", "history.archive_receipt",
                                   "history.archive_body", "history.body", "history.receipt",
                                   "history.journal_done"])
def test_kill_9_at_each_file_operation(template, receiver, tmp_path, point):
    top, data0, work0, names = template
    assert point in names
    data, work = tmp_path / "repo", tmp_path / "kit"
    shutil.copytree(data0, data)
    shutil.copytree(work0, work)
    change_data(data)
    p = obs(work, data, receiver, "weekly", "run", "--week-start", WEEK, "--require-delivery", "--replace", fault=f"crash:{point}")
    assert p.returncode == -9, (p.returncode, p.stderr)
    hist = work / "ops/weekly_report_history"
    week = work / "out/weekly_report" / WEEK

    # the history always replays: body and receipt are one unit
    r = obs(work, data, receiver, "weekly", "replay", "--week-start", WEEK)
    assert r.returncode == 0, r.stderr
    receipt = json.loads((hist / f"{WEEK}.receipt.json").read_text())
    assert hashlib.sha256((hist / f"{WEEK}.json").read_bytes()).hexdigest() == receipt["payload_checksum_sha256"]
    assert not list(hist.glob(".*.pending.json"))

    # the week folder, once a reader has looked (deliver recovers it), is one run's
    d = obs(work, data, receiver, "weekly", "deliver", "--week-start", WEEK)
    assert d.returncode == 0, d.stderr
    assert_one_run(week)

    # restore works from the history alone
    shutil.rmtree(work / "out")
    rs = obs(work, data, receiver, "restore", "--week-start", WEEK)
    assert rs.returncode == 0, rs.stderr
    assert (week / "payload.json").read_bytes() == (hist / f"{WEEK}.json").read_bytes()

    # the next run succeeds and nothing temporary survives it
    n = obs(work, data, receiver, "weekly", "run", "--week-start", WEEK, "--require-delivery", "--replace")
    assert n.returncode == 0, n.stderr
    assert_one_run(week)
    assert leftovers(work) == []


@pytest.mark.slow
@pytest.mark.parametrize("point", ["week.replace.weekly_report.html", "history.body"])
def test_kill_9_then_the_next_run_alone_repairs(template, receiver, tmp_path, point):
    """No reader in between: the next run rolls the killed one forward and leaves nothing."""
    top, data0, work0, _ = template
    data, work = tmp_path / "repo", tmp_path / "kit"
    shutil.copytree(data0, data)
    shutil.copytree(work0, work)
    change_data(data)
    p = obs(work, data, receiver, "weekly", "run", "--week-start", WEEK, "--require-delivery", "--replace", fault=f"crash:{point}")
    assert p.returncode == -9
    n = obs(work, data, receiver, "weekly", "run", "--week-start", WEEK, "--require-delivery", "--replace")
    assert n.returncode == 0, n.stderr
    assert_one_run(work / "out/weekly_report" / WEEK)
    assert leftovers(work) == []
    hist = work / "ops/weekly_report_history"
    receipt = json.loads((hist / f"{WEEK}.receipt.json").read_text())
    assert hashlib.sha256((hist / f"{WEEK}.json").read_bytes()).hexdigest() == receipt["payload_checksum_sha256"]
