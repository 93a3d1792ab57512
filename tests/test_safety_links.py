"""Issue #12 follow-up A: a link inside the work root never carries a write or a delete
outside it.

``out/weekly_report -> /elsewhere`` (the QA input), ``out/latency_alerts -> /elsewhere``,
a week folder that is a link under ``--replace``, and more of the class (``ops/`` links, a
link to a file, a dangling link) are refused with exit 2 before any job writes or deletes
(``safepath.check_work_tree`` in ``config_from_args``); the library functions that delete
or build paths check against the work root, not against a subfolder that may itself be a
link (``retention``, ``safe_child(base=...)``). Links that stay inside the work root, and
a work root that is itself a link, keep working.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from obslib.cli import main
from obslib.config import load_config
from obslib.retention import prune_all
from obslib.safepath import UnsafePath, check_work_tree, safe_child

NOW = "2026-11-29T23:30:00Z"
OLD = 1767225600.0  # 2026-01-01T00:00:00Z: older than every retention period at NOW
DRY = "20260101T000000Z_2025-12-29_deadbeef.json"  # a dry-run payload name retention deletes when old


def tree(top: Path) -> dict[str, bytes]:
    """Every file under ``top`` with its bytes (what must stay untouched)."""
    return {p.relative_to(top).as_posix(): p.read_bytes() for p in sorted(top.rglob("*")) if p.is_file()}


@pytest.fixture
def victim(tmp_path) -> Path:
    """A folder outside the work root holding an old file that looks like the kit's own."""
    v = tmp_path / "victim"
    v.mkdir()
    f = v / DRY
    f.write_text("{}")
    os.utime(f, (OLD, OLD))
    return v


def _refused(capsys, argv: list[str], link: str) -> str:
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert f"{link} in the work root" in err and "outside the work root" in err, err
    assert "Traceback" not in err
    return err


def test_symlinked_weekly_report_folder_is_refused_and_nothing_deleted(tmp_path, victim, capsys):
    # the QA input: out/weekly_report -> victim holding an old dry-run payload
    w = tmp_path / "qa_sym"
    (w / "out").mkdir(parents=True)
    (w / "out/weekly_report").symlink_to(victim)
    before = tree(victim)
    err = _refused(capsys, ["weekly", "run", "--work-root", str(w), "--week-start", "2026-11-23", "--now", NOW],
                   "out/weekly_report")
    assert str(victim) in err
    assert tree(victim) == before  # the old file was neither deleted nor joined by a new one
    assert not (w / "ops").exists()  # refused before the run log or any lock was written


def test_symlinked_latency_alerts_folder_is_refused(tmp_path, victim, capsys):
    w = tmp_path / "w"
    (w / "out").mkdir(parents=True)
    (w / "out/latency_alerts").symlink_to(victim)
    before = tree(victim)
    _refused(capsys, ["latency", "sample", "--work-root", str(w), "--now", NOW], "out/latency_alerts")
    assert tree(victim) == before


def test_week_folder_that_is_a_link_is_refused_under_replace(tmp_path, victim, capsys):
    w = tmp_path / "w"
    (w / "out/weekly_report").mkdir(parents=True)
    (victim / "payload.json").write_text('{"mine": true}')
    (w / "out/weekly_report/2026-11-23").symlink_to(victim)
    before = tree(victim)
    _refused(capsys, ["weekly", "run", "--work-root", str(w), "--week-start", "2026-11-23", "--replace",
                      "--now", NOW], "out/weekly_report/2026-11-23")
    assert tree(victim) == before


@pytest.mark.parametrize("link, target", [
    ("ops/escalations", "dir"),          # the ops tree: escalation records are written and pruned there
    ("ops", "dir"),                      # a kit tree itself
    ("out/ops_alerts/x.json", "file"),   # a link to a file outside
    ("out/weekly_report/gone", "none"),  # a dangling link to a place outside
])
def test_any_link_out_of_the_kit_trees_is_refused(tmp_path, victim, capsys, link, target):
    w = tmp_path / "w"
    p = w / link
    p.parent.mkdir(parents=True, exist_ok=True)
    p.symlink_to({"dir": victim, "file": victim / DRY, "none": tmp_path / "nowhere"}[target])
    before = tree(victim)
    _refused(capsys, ["dashboard", "export", "--work-root", str(w), "--now", NOW], link)
    assert tree(victim) == before and not (tmp_path / "nowhere").exists()


def test_links_that_stay_inside_and_a_linked_work_root_are_fine(tmp_path):
    real = tmp_path / "real"
    (real / "out/dashboard.versions/1-x").mkdir(parents=True)
    (real / "out/dashboard").symlink_to("dashboard.versions/1-x")  # the dashboard's own layout
    (real / "ops").mkdir()
    (real / "ops/alias").symlink_to(real / "out")
    (tmp_path / "linked").symlink_to(real)
    check_work_tree(real)
    check_work_tree(tmp_path / "linked")
    check_work_tree(tmp_path / "missing")  # a first run: nothing to check yet


def test_retention_never_deletes_through_a_linked_subfolder(tmp_path, victim):
    # called directly (behind the CLI's check): containment is against the work root
    w = tmp_path / "w"
    (w / "out").mkdir(parents=True)
    (w / "out/weekly_report").symlink_to(victim)
    (w / "out/ops_alerts").mkdir()
    mine = w / "out/ops_alerts/old.json"
    mine.write_text("{}")
    os.utime(mine, (OLD, OLD))
    removed = prune_all(load_config(w), now_s=OLD + 400 * 86400)
    assert removed == ["out/ops_alerts/old.json"]  # its own old file goes; the victim's stays
    assert (victim / DRY).is_file()


def test_safe_child_checks_against_the_work_root_not_the_linked_folder(tmp_path, victim):
    w = tmp_path / "w"
    (w / "out").mkdir(parents=True)
    (w / "out/weekly_report").symlink_to(victim)
    with pytest.raises(UnsafePath, match="outside"):
        safe_child(w / "out/weekly_report", "job-1", what="JOB_ID", suffix=".json", base=w)
    # the same call without base (the old behaviour) would have blessed the victim folder
    assert safe_child(w / "out/weekly_report", "job-1", what="JOB_ID").parent == victim.resolve()
    from obslib.weekly.delivery import dry_run_weekly

    cfg = SimpleNamespace(out_dir=w / "out", work_root=w)
    with pytest.raises(UnsafePath):
        dry_run_weekly({"week_start": "2026-11-23"}, cfg=cfg, now=__import__("datetime").datetime(2026, 11, 29))
    assert [p.name for p in victim.iterdir()] == [DRY]
