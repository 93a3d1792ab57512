"""The CLI error contract: one JSON summary line, a one-line stderr message, a non-zero
exit, no traceback, even when the disk refuses a write or the run log cannot be written."""

from __future__ import annotations

import argparse
import errno
import json

import pytest

from obslib.commands._base import run_job


def _args(tmp_path):
    return argparse.Namespace(work_root=str(tmp_path), config=None, data_root=None, now="2026-01-05T00:00:00Z")


def test_os_error_is_a_clean_failure(tmp_path, capsys):
    def body(cfg, ctx, now):
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path / "ops/x.lock"))

    assert run_job(_args(tmp_path), "demo_job", body) == 2
    out, err = capsys.readouterr()
    summary = json.loads(out)
    assert summary["status"] == "error" and summary["error"].endswith("x.lock: Read-only file system")
    assert "Traceback" not in err and err.count("\n") == 1
    rec = json.loads((tmp_path / "ops/automation_runs.log").read_text())
    assert rec["status"] == "error" and "Read-only file system" in rec["error"]


def test_unwritable_run_log_does_not_raise_a_second_error(tmp_path, capsys):
    (tmp_path / "ops").mkdir()
    (tmp_path / "ops/automation_runs.log").mkdir()  # a folder where the log file should be

    def body(cfg, ctx, now):
        raise OSError(errno.ENOSPC, "No space left on device", "out/x")

    assert run_job(_args(tmp_path), "demo_job", body) == 2
    out, err = capsys.readouterr()
    assert json.loads(out)["status"] == "error"
    assert "could not write the run log" in err and "Traceback" not in err


@pytest.mark.parametrize("argv, expected", [
    (["check", "--since", "garbage", "--no-send"], "--since 'garbage' is not an RFC 3339 timestamp"),
    (["check", "--since", "2150-01-01T00:00:00Z", "--no-send"], "is out of range (1970-01-01..2099-12-31)"),
    (["demo", "--as-of", "nope"], "--as-of 'nope' is not an RFC 3339 timestamp"),
    (["demo", "--as-of", "1969-12-31T00:00:00Z"], "is out of range (1970-01-01..2099-12-31)"),
])
def test_time_flags_share_one_rule(tmp_path, capsys, argv, expected):
    from obslib.cli import main

    rc = main([*argv, "--work-root", str(tmp_path)])
    out, err = capsys.readouterr()
    assert rc == 2 and json.loads(out)["status"] == "error"
    assert expected in err and "Traceback" not in err


def test_a_path_that_is_not_utf8_is_refused_up_front(tmp_path, capsys):
    """Undecodable bytes in --work-root / --data-root: a clear refusal (exit 2) naming the
    bytes, before any job writes (every artefact records these paths as UTF-8 JSON)."""
    import os

    from obslib.cli import main

    bad = os.fsdecode(os.fsencode(str(tmp_path)) + b"/wr\xff")
    code = main(["latency", "sample", "--work-root", bad])
    err = capsys.readouterr().err
    assert code == 2 and "work root" in err and "\\xff" in err and "not valid UTF-8" in err
    assert not os.path.exists(os.fsencode(bad))  # nothing created
    code = main(["weekly", "run", "--work-root", str(tmp_path / "ok"), "--data-root", bad])
    err = capsys.readouterr().err
    assert code == 2 and "data root" in err and "\\xff" in err
