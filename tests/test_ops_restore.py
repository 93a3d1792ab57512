"""Disaster-recovery drill: export, deliver, delete out/, restore, verify, byte-identical.

The dashboard export and the weekly delivery go through the real CLI (``obs dashboard
export``, ``obs weekly deliver`` to a real receiver on 127.0.0.1); the weekly payload is
built by the same library call the report notebook makes (``obslib.weekly.report.prepare_weekly``)
so the drill stays fast. ``obs restore`` and ``obs dashboard verify`` run as real
subprocesses, as on-call would run them on a fresh machine.
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
from obslib.weekly.report import prepare_weekly

SECRET = "drill-secret-abcdef0123"
NOW = "2026-03-16T01:00:00Z"
WEEK = "2026-03-09"


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.fixture
def receiver():
    with post_receiver() as rx:
        yield rx


def obs(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "obslib", *args, "--work-root", str(root), "--now", NOW],
                          capture_output=True, text=True, cwd=REPO, env=obs_subprocess_env(**env), timeout=300)


def export_twice(root: Path, data: Path) -> None:
    """Generate the demo repository, then export the dashboard on two days (real CLI)."""
    assert main(["demo", "--out", str(data), "--as-of", NOW]) == 0
    for now in ("2026-03-15T01:00:00Z", NOW):
        assert main(["dashboard", "export", "--dataset", "all", "--work-root", str(root), "--data-root", str(data),
                     "--now", now]) == 0


def test_disaster_recovery_drill(tmp_path, monkeypatch, receiver):
    url, got = receiver
    root = tmp_path / "kit"
    data = tmp_path / "research_repo"
    # 1. export (twice: the restore must pick the newest) and deliver
    export_twice(root, data)
    prepare_weekly(week_start=WEEK, data_root=str(data), as_of=NOW, out_dir=str(root / "out/weekly_report" / WEEK),
                   work_root=str(root))
    monkeypatch.setenv("OBS_WEEKLY_WEBHOOK_URL", url)
    monkeypatch.setenv("OBS_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("OBS_DATA_ROOT", str(data))  # real destinations: never the generated demo
    assert main(["weekly", "deliver", "--week-start", WEEK, "--work-root", str(root), "--now", NOW]) == 0
    assert len(got) == 1
    published = {p.relative_to(root).as_posix(): sha(p) for p in (root / "out/dashboard").iterdir()
                 if p.is_file() and p.name != "heartbeat.json"}
    manifest = json.loads((root / "out/dashboard/manifest.json").read_text())
    assert {f"out/dashboard/{e['path']}" for e in manifest["datasets"]} <= set(published)

    # 2. lose out/ entirely
    shutil.rmtree(root / "out")

    # 3. restore from ops/ only, then verify
    p = obs(root, "restore")
    assert p.returncode == 0, p.stderr
    summary = json.loads(p.stdout.strip().splitlines()[-1])
    assert summary["status"] == "ok" and summary["weekly"]["week_start"] == WEEK
    assert summary["dashboard"]["sequence"] == manifest["sequence"]
    v = obs(root, "dashboard", "verify")
    assert v.returncode == 0, v.stdout + v.stderr

    # 4. byte-identical to what was published
    restored = {p.relative_to(root).as_posix(): sha(p) for p in (root / "out/dashboard").iterdir() if p.is_file()}
    assert restored == {k: v for k, v in published.items() if k in restored}
    assert set(restored) >= {f"out/dashboard/{e['path']}" for e in manifest["datasets"]} | {
        "out/dashboard/manifest.json", "out/dashboard/README.json"}
    for e in manifest["datasets"]:
        assert restored[f"out/dashboard/{e['path']}"] == e["checksum_sha256"]
    payload = (root / "out/weekly_report" / WEEK / "payload.json").read_bytes()
    assert payload == got[0]  # the exact bytes the receiver got
    receipt = json.loads((root / "ops/weekly_report_history" / f"{WEEK}.receipt.json").read_text())
    assert hashlib.sha256(payload).hexdigest() == receipt["payload_checksum_sha256"]
    assert SECRET not in p.stdout + p.stderr


def test_restore_skips_a_damaged_entry_and_refuses_a_tampered_payload(tmp_path):
    root = tmp_path / "kit"
    data = tmp_path / "research_repo"
    export_twice(root, data)
    hist = root / "ops/dashboard_export_history"
    older, newer = sorted((hist / "snapshots").iterdir())  # named <sequence>-<job_id>.json
    rec = json.loads(newer.read_text())
    m_sha = next(f["sha256"] for f in rec["files"] if f["path"] == "manifest.json")  # this export's own object
    victim = hist / "objects" / m_sha[:2] / f"{m_sha}.gz"
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    shutil.rmtree(root / "out")
    p = obs(root, "restore")
    assert p.returncode == 0, p.stderr
    s = json.loads(p.stdout.strip().splitlines()[-1])
    assert s["dashboard"]["job_id"] == json.loads(older.read_text())["job_id"]
    assert s["dashboard"]["skipped"][0].startswith(newer.stem) and s["dashboard"]["sequence"] == 1
    assert s["status"] == "warning" and s["weekly"] is None  # nothing delivered yet: said, not hidden
    # a weekly history file that no longer matches its receipt is refused
    hist_w = root / "ops/weekly_report_history"
    hist_w.mkdir(parents=True)
    (hist_w / f"{WEEK}.json").write_bytes(b'{"tampered":true}')
    (hist_w / f"{WEEK}.receipt.json").write_text(json.dumps({"payload_checksum_sha256": "0" * 64}))
    p = obs(root, "restore", "--week-start", WEEK)
    assert p.returncode != 0 and "does not match the receipt" in p.stderr and "Traceback" not in p.stderr
