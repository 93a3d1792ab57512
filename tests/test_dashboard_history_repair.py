"""History objects and snapshots that do not match what they claim (QA follow-up of #14):
a damaged object is named by ``verify`` and re-stored by ``restore`` from an intact file
with the same sha256; a snapshot naming an unsafe path is flagged by ``verify`` (the check
``restore`` uses); ``verify`` works on a read-only work root."""

from __future__ import annotations

import errno
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, obs_subprocess_env
from dashboard_fixtures import make_repo, write_rollup

from obslib.cli import main

T0, T1 = "2024-01-20T00:00:00Z", "2024-01-20T01:00:00Z"


@pytest.fixture
def work(tmp_path):
    repo = make_repo(tmp_path / "repo")
    work = tmp_path / "work"
    write_rollup(work)
    for now in (T0, T1):  # two exports of unchanged data: they share every dataset object
        assert main(["dashboard", "export", "--work-root", str(work), "--data-root", str(repo), "--now", now]) == 0
    return work


def run(capsys, *argv: str) -> tuple[int, dict, str]:
    code = main([*argv, "--now", T1])
    out = capsys.readouterr()
    return code, json.loads(out.out.strip().splitlines()[-1]), out.err


def live(work: Path, name: str) -> Path:
    return work / "out" / "dashboard" / name


def obj_rel(data: bytes) -> str:
    h = hashlib.sha256(data).hexdigest()
    return f"ops/dashboard_export_history/objects/{h[:2]}/{h}.gz"


@pytest.mark.parametrize("damage", ["append_junk", "truncate", "delete"])
def test_a_damaged_object_is_named_by_verify_and_repaired_by_restore(work, capsys, damage):
    data = live(work, "turnover_summary.json").read_bytes()
    rel = obj_rel(data)
    p = work / rel
    if damage == "append_junk":  # the QA input
        with open(p, "ab") as fh:
            fh.write(b"junk")
    elif damage == "truncate":
        p.write_bytes(p.read_bytes()[:-9])
    else:
        p.unlink()
    code, s, err = run(capsys, "dashboard", "verify", "--work-root", str(work))
    assert code == 1 and rel in err  # named, in both snapshots that share it
    assert err.count(rel) == 2
    code, s, err = run(capsys, "restore", "--work-root", str(work))
    assert code == 0, err
    (fixed,) = s["dashboard"]["objects"]["repaired"]
    assert fixed.startswith(rel + ":") and s["dashboard"]["objects"]["damaged"] == []
    with gzip.open(p, "rb") as fh:
        assert fh.read() == data
    assert run(capsys, "dashboard", "verify", "--work-root", str(work))[0] == 0


def test_a_damaged_object_without_an_intact_copy_is_reported(work, capsys):
    data = live(work, "turnover_summary.json").read_bytes()
    rel = obj_rel(data)
    with open(work / rel, "ab") as fh:
        fh.write(b"junk")
    shutil.rmtree(work / "out")  # the live bundle is gone: no other copy of those bytes
    code, s, err = run(capsys, "restore", "--work-root", str(work))
    assert code == 2 and "no intact dashboard export in history" in err and rel in err


@pytest.mark.parametrize("evil", ["../../../../../../tmp/qa_evil_restore.json", "/etc/passwd", "a/../../b.json"])
def test_verify_flags_a_snapshot_path_that_restore_refuses(work, capsys, evil):
    snaps = sorted((work / "ops" / "dashboard_export_history" / "snapshots").glob("*.json"))
    assert len(snaps) == 2
    doc = json.loads(snaps[-1].read_text())
    doc["files"][0]["path"] = evil
    snaps[-1].write_text(json.dumps(doc))
    code, s, err = run(capsys, "dashboard", "verify", "--work-root", str(work))
    assert code == 1 and s["codes"] == {"history_unsafe_path": 1}
    assert f"ops/dashboard_export_history/snapshots/{snaps[-1].name}" in err and evil in err
    code, s, err = run(capsys, "restore", "--work-root", str(work))  # restore skips the same entry
    assert code == 0 and s["dashboard"]["sequence"] == 1
    assert s["dashboard"]["skipped"][0].startswith(snaps[-1].stem + ": ") and "unsafe path" in s["dashboard"]["skipped"][0]
    assert not Path("/tmp/qa_evil_restore.json").exists()


def test_verify_flags_a_snapshot_sha_that_is_not_a_digest(work, capsys):
    snaps = sorted((work / "ops" / "dashboard_export_history" / "snapshots").glob("*.json"))
    doc = json.loads(snaps[-1].read_text())
    doc["files"][0]["sha256"] = "../../../../etc/passwd"
    snaps[-1].write_text(json.dumps(doc))
    code, s, err = run(capsys, "dashboard", "verify", "--work-root", str(work))
    assert code == 1 and s["codes"] == {"history_checksum_mismatch": 1} and "not a sha256" in err


@pytest.mark.parametrize("err_no", [errno.EROFS, errno.EACCES])
def test_verify_succeeds_when_the_run_log_cannot_be_written(work, capsys, monkeypatch, err_no):
    """Simulated read-only work root: the run-log append raises EROFS / EACCES."""
    import obslib.runlog as runlog

    def refuse(path, *a, **k):
        raise OSError(err_no, os.strerror(err_no), str(path) + ".lock")

    monkeypatch.setattr(runlog, "locked_append", refuse)
    code, s, err = run(capsys, "dashboard", "verify", "--work-root", str(work))
    assert code == 0 and s["status"] == "ok" and s["findings"] == 0
    assert "run-log record not written" in err and "automation_runs.log.lock" in err
    # a damaged bundle still fails: the note never hides a finding
    with open(live(work, "ev_history.json"), "ab") as fh:
        fh.write(b" ")
    assert run(capsys, "dashboard", "verify", "--work-root", str(work))[0] == 1
    # only read-only jobs may skip their record: a job that writes still fails
    assert run(capsys, "dashboard", "publish", "--work-root", str(work), "--to", str(work / "share"))[0] == 2


def _read_only_mirror(src: Path, mnt: Path):
    """A real read-only folder: ``chmod`` for a non-root user, a read-only bind mount as
    root (skips when mounting is not permitted)."""
    if os.geteuid() != 0:
        for d, _dirs, files in os.walk(src):
            for n in files:
                os.chmod(os.path.join(d, n), 0o444)
            os.chmod(d, 0o555)
        return src, lambda: [os.chmod(d, 0o755) for d, _, _ in os.walk(src)]
    mnt.mkdir()
    r = subprocess.run(["mount", "--bind", str(src), str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip("root without permission to mount: a read-only bind is not possible here")
    r = subprocess.run(["mount", "-o", "remount,ro,bind", str(mnt)], capture_output=True)
    if r.returncode != 0:
        subprocess.run(["umount", str(mnt)])
        pytest.skip("cannot remount read-only here")
    return mnt, lambda: subprocess.run(["umount", str(mnt)], check=True)


def test_verify_on_a_real_read_only_work_root(work, tmp_path):
    root, undo = _read_only_mirror(work, tmp_path / "ro")
    try:
        with pytest.raises(OSError):
            (root / "ops" / "probe").write_bytes(b"x")
        p = subprocess.run([sys.executable, "-m", "obslib", "dashboard", "verify", "--work-root", str(root),
                            "--now", T1], capture_output=True, text=True, cwd=REPO, env=obs_subprocess_env(),
                           timeout=120)
    finally:
        undo()
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout.strip().splitlines()[-1])["findings"] == 0
    assert "run-log record not written" in p.stderr
