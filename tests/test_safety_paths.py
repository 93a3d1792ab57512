"""Issue #12 item 1: external strings never become paths outside their root.

Each exact input from the issue runs through the real CLI (exit 2, nothing written or
deleted outside the work root); the library functions that build paths from a job id,
week, manifest entry or restore target are also called directly with crafted values
(defence in depth behind ``JobContext``), and a hypothesis property test checks that no
generated id writes outside the work root.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import REPO, obs_subprocess_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from obslib.cli import main
from obslib.config import load_config
from obslib.errors import InputError
from obslib.ops.notify import send_alerts
from obslib.runlog import JobContext
from obslib.safepath import UnsafePath, check_identifier, check_relpath, contained, is_identifier, safe_child
from obslib.webhook import DeliveryOutcome
from obslib.weekly.delivery import dry_run_weekly, escalate

NOW = "2026-03-16T01:00:00Z"
NOW_DT = datetime(2026, 3, 16, 1, tzinfo=UTC)


def snapshot(top: Path, skip: Path | None = None) -> dict[str, int]:
    """Every file under ``top`` (except under ``skip``) with its size."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(top):
        if skip is not None and Path(dirpath).resolve().is_relative_to(skip.resolve()):
            dirnames[:] = []
            continue
        for f in filenames + [d + "/" for d in dirnames]:
            p = Path(dirpath) / f.rstrip("/")
            out[str(p.relative_to(top))] = p.stat().st_size if p.is_file() else -1
    return out


def run_obs(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "obslib", *args], capture_output=True, text=True, cwd=cwd,
                          env=obs_subprocess_env(PYTHONPATH=str(REPO), **env), timeout=300)


@pytest.fixture
def jail(tmp_path):
    """``tmp/a/b/c/d/e/cwd`` as the current folder, ``W`` as the work root, and a victim
    folder where ``./../../../victim`` lands from there."""
    cwd = tmp_path / "a" / "b" / "c" / "d" / "e" / "cwd"
    cwd.mkdir(parents=True)
    victim = (cwd / "../../../victim").resolve()
    victim.mkdir()
    (victim / "keep.txt").write_text("precious")
    work = cwd / "W"
    work.mkdir()
    return SimpleNamespace(top=tmp_path, cwd=cwd, work=work, victim=victim)


# --------------------------------------------------------------------------- the exact CLI inputs

BAD_IDS = ["./../../../victim", "../../../../../wk_escape", "../esc_escape", "x/../../../esc", "/tmp/abs_escape",
           ".hidden", "a b", "..", "a..b", "x" * 129, "ok\n", "é"]


@pytest.mark.parametrize("job_id", ["./../../../victim", "../../../../../wk_escape", "../../../esc"])
@pytest.mark.parametrize("cmd", [
    ["dashboard", "export"],
    ["weekly", "run"],
    ["weekly", "run", "--require-delivery"],  # failing delivery: escalation file named after JOB_ID
    ["dashboard", "publish", "--to", "../pub"],
    ["restore"],
    ["check", "--no-send"],
])
def test_crafted_job_id_is_refused_with_exit_2_and_nothing_outside(jail, job_id, cmd):
    before = snapshot(jail.top, skip=jail.work)
    env = {"JOB_ID": job_id}
    if "--require-delivery" in cmd:  # a destination that refuses the connection
        env.update(OBS_WEEKLY_WEBHOOK_URL="http://127.0.0.1:9/hook", OBS_WEBHOOK_SECRET="s3cret-value-123")
    p = run_obs([*cmd, "--work-root", "W", "--now", NOW], jail.cwd, **env)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "is not a safe identifier" in p.stderr and "Traceback" not in p.stderr
    assert json.loads(p.stdout)["status"] == "error"
    assert snapshot(jail.top, skip=jail.work) == before
    assert (jail.victim / "keep.txt").read_text() == "precious"


def test_restore_job_id_and_week_start_flags_are_refused(jail):
    for args in (["--job-id", "../../../victim"], ["--week-start", "../../../victim"], ["--week-start", "2026-03-11"]):
        p = run_obs(["restore", *args, "--work-root", "W", "--now", NOW], jail.cwd)
        assert p.returncode == 2, p.stdout + p.stderr
        assert "Traceback" not in p.stderr
    p = run_obs(["restore", "--week-start", "2026-03-11", "--work-root", "W"], jail.cwd)
    assert "2026-03-11 is a Wednesday, not a Monday (its week starts on Monday 2026-03-09)" in p.stderr


# --------------------------------------------------------------------------- crafted manifests in the dashboard

@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A work root with one real dashboard export on the demo data."""
    root = tmp_path_factory.mktemp("exp") / "kit"
    data = root.parent / "repo"
    assert main(["demo", "--out", str(data), "--as-of", NOW]) == 0
    assert main(["dashboard", "export", "--work-root", str(root), "--data-root", str(data), "--now", NOW]) == 0
    return root


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_publish_refuses_a_manifest_job_id_that_leaves_the_target(exported, tmp_path, capsys):
    root = _copy(exported, tmp_path / "kit")
    mp = root / "out/dashboard/manifest.json"
    m = json.loads(mp.read_text())
    m["job_id"] = "../../esc_publish"
    mp.write_text(json.dumps(m))
    before = snapshot(tmp_path, skip=root)
    rc = main(["dashboard", "publish", "--to", str(tmp_path / "share" / "dash"), "--work-root", str(root), "--now", NOW])
    assert rc == 2
    assert "is not a safe identifier" in capsys.readouterr().err
    assert not (tmp_path / "esc_publish").exists()
    assert {k for k in snapshot(tmp_path, skip=root) if not k.startswith("share")} == set(before)


def test_restore_skips_a_history_entry_whose_manifest_names_a_path_outside(exported, tmp_path):
    root = _copy(exported, tmp_path / "kit")
    (entry,) = (root / "ops/dashboard_export_history/snapshots").iterdir()  # the one export's record
    m = json.loads(entry.read_text())
    first = m["files"][0]
    (root / "ops" / "esc_restore.json").write_bytes(b"x")  # a real file there
    first["path"] = "../../../esc_restore.json"
    entry.write_text(json.dumps(m))
    before = snapshot(tmp_path, skip=root)
    rc = main(["restore", "--work-root", str(root), "--now", NOW])
    assert rc == 2  # the only entry is unsafe: nothing to restore
    assert snapshot(tmp_path, skip=root) == before
    with pytest.raises(Exception, match="unsafe path|damaged"):
        from obslib.ops.restore import pick_dashboard_entry

        pick_dashboard_entry(load_config(root), m["job_id"])


def test_record_snapshot_and_export_request_refuse_crafted_ids(tmp_path):
    from obslib.dashboard.bundle import ExportRequest
    from obslib.dashboard.history import record_snapshot

    for bad in BAD_IDS:
        with pytest.raises(UnsafePath):
            record_snapshot(tmp_path / "ops", 1, bad, "2024-01-01T00:00:00Z", [])
        with pytest.raises(UnsafePath):
            ExportRequest(names=["ev_history"], data_root=tmp_path, work_root=tmp_path, now=NOW_DT, job_id=bad,
                          command="", commit_sha=None, data_label="demo")
    assert not any(tmp_path.parent.glob("esc*"))


# --------------------------------------------------------------------------- library functions behind JobContext

def _ctx(job_id: str) -> SimpleNamespace:
    return SimpleNamespace(job_id=job_id, job_name="weekly_report", artefacts=[], ops_dir=Path("."))


def _outcome() -> DeliveryOutcome:
    return DeliveryOutcome(ok=False, webhook_id="weekly-2026-03-09-0123456789abcdef", payload_checksum_sha256="0" * 64,
                           attempts=1, status_codes=[None], last_error="connection refused")


@pytest.mark.parametrize("bad", BAD_IDS)
def test_escalation_alert_and_dry_run_files_refuse_crafted_ids(tmp_path, bad):
    root = tmp_path / "deep" / "er" / "W"
    cfg = load_config(root)
    with pytest.raises(UnsafePath):
        escalate(what="x", outcome=_outcome(), cfg=cfg, ctx=_ctx(bad), now=NOW_DT, env={}, purpose="weekly")
    with pytest.raises(UnsafePath):
        send_alerts({"alerts": []}, cfg=cfg, ctx=_ctx(bad), now=NOW_DT, env={})
    with pytest.raises(InputError):
        dry_run_weekly({"week_start": "../../../x"}, cfg=cfg, now=NOW_DT)
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and not p.resolve().is_relative_to(root.resolve())]


def test_job_context_rejects_each_crafted_id():
    for bad in BAD_IDS:
        with pytest.raises(UnsafePath, match="JOB_ID"):
            JobContext(job_name="x", ops_dir=Path("ops"), now=NOW_DT, job_id=bad)


def test_safepath_rules(tmp_path):
    assert check_identifier("weekly_report-20260316T010000Z-0a1b2c3d", what="x")
    assert check_relpath("turnover_summary.parquet", what="x") and check_relpath("sub/a.json", what="x")
    for bad in ("../a", "/a", "a//b", "a/../b", "", "a/.b"):
        with pytest.raises(UnsafePath):
            check_relpath(bad, what="x")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "link").symlink_to(tmp_path)  # a link inside that points outside
    with pytest.raises(UnsafePath, match="outside"):
        contained(tmp_path / "in", tmp_path / "in" / "link" / "x", what="x")
    assert safe_child(tmp_path / "in", "ok", what="x", suffix=".json") == (tmp_path / "in" / "ok.json").resolve()
    # relative roots resolve against the current folder (never doubled)
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert safe_child(Path("in"), "ok", what="x") == (tmp_path / "in" / "ok").resolve()
    finally:
        os.chdir(old)


# --------------------------------------------------------------------------- property

ID_ALPHABET = st.sampled_from(list("aZ09._-/\\ ~$*:") + ["..", "../", "/", "\x00", "é", "\n"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ID_ALPHABET, min_size=0, max_size=12).map("".join))
def test_no_generated_job_id_writes_outside_the_work_root(job_id):
    with tempfile.TemporaryDirectory() as top:
        root = Path(top) / "a" / "b" / "W"
        root.mkdir(parents=True)
        cfg = load_config(root)
        try:
            ctx = JobContext(job_name="weekly_report", ops_dir=cfg.ops_dir, now=NOW_DT, job_id=job_id)
        except UnsafePath:
            assert not is_identifier(job_id)
            ctx = _ctx(job_id)  # the library must refuse it on its own too
        wrote = []
        for fn in (lambda: send_alerts({"alerts": []}, cfg=cfg, ctx=ctx, now=NOW_DT, env={}),
                   lambda: escalate(what="x", outcome=_outcome(), cfg=cfg, ctx=ctx, now=NOW_DT, env={},
                                    purpose="weekly"),
                   lambda: safe_child(root / "out" / "weekly_report" / "2026-03-09", ctx.job_id, what="JOB_ID",
                                      prefix=".staging-").mkdir(parents=True),
                   lambda: safe_child(root / "out" / "dashboard" / "failed", ctx.job_id, what="JOB_ID",
                                      suffix=".ipynb").parent.mkdir(parents=True, exist_ok=True)):
            try:
                fn()
                wrote.append(True)
            except UnsafePath:
                wrote.append(False)
        assert wrote == [is_identifier(ctx.job_id)] * 4
        outside = [p for p in Path(top).rglob("*") if not p.resolve().is_relative_to(root.resolve())
                   and p.resolve() not in (Path(top, "a").resolve(), Path(top, "a", "b").resolve())]
        assert outside == []
