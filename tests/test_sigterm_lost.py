"""A SIGTERM whose ``Terminated`` was lost (raised while Python ran a finaliser or a weakref
callback: printed as "Exception ignored" and dropped) still stops the job: at the next
commit step (``faults.checkpoint``) or, at the latest, when the job's body returns."""

from __future__ import annotations

import argparse
import json

import pytest

from obslib.commands._base import run_job
from obslib.errors import Terminated
from obslib.faults import checkpoint


@pytest.fixture
def lost_sigterm(monkeypatch):
    """As the handler leaves things when its raise was swallowed: the request is recorded."""
    monkeypatch.setattr(Terminated, "requested", True)


def test_a_commit_step_raises_a_lost_sigterm(lost_sigterm):
    with pytest.raises(Terminated):
        checkpoint("week.commit")


def test_no_sigterm_no_effect():
    assert Terminated.requested is False
    checkpoint("week.commit")  # a no-op


def test_a_job_whose_body_ends_after_a_lost_sigterm_reports_the_stop(tmp_path, monkeypatch, capsys):
    args = argparse.Namespace(work_root=str(tmp_path), data_root=None, config=None, now="2026-03-18T09:00:00Z")
    steps = []

    def body(cfg, ctx, now):
        steps.append("ran")
        monkeypatch.setattr(Terminated, "requested", True)  # the signal arrived; its exception was lost
        return {"status": "ok"}

    code = run_job(args, "latency_sample", body)
    assert steps == ["ran"] and code == 143
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["status"] == "error" and "terminated (SIGTERM)" in summary["error"]
    record = json.loads((tmp_path / "ops" / "automation_runs.log").read_text().strip().splitlines()[-1])
    assert record["status"] == "error" and "SIGTERM" in record["error"]
