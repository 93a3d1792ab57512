"""Issue #12 item 12: a week folder records its data root (``source.json``) and a run for
another data root never silently replaces it (exit 2 unless ``--replace``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from obslib.cli import main

NOW = "2026-03-16T01:00:00Z"
WEEK = "2026-03-09"


@pytest.fixture(scope="module")
def two_roots(tmp_path_factory):
    top = tmp_path_factory.mktemp("src")
    a = top / "repo_a"
    assert main(["demo", "--out", str(a), "--as-of", NOW]) == 0
    b = top / "repo_b"
    shutil.copytree(a, b)
    return a, b


def run(work: Path, *extra: str) -> int:
    return main(["weekly", "run", "--week-start", WEEK, "--work-root", str(work), "--now", NOW, *extra])


def test_week_folder_records_its_data_root_and_refuses_another(two_roots, tmp_path, capsys):
    a, b = two_roots
    work = tmp_path / "kit"
    assert run(work, "--data-root", str(a)) == 0
    week = work / "out/weekly_report" / WEEK
    src = json.loads((week / "source.json").read_text())
    assert src["data_root"] == str(a.resolve()) and src["data_label"] == "repo_a"
    before = {p.name: p.read_bytes() for p in week.iterdir() if p.is_file()}
    capsys.readouterr()

    # the same data root again: fine
    assert run(work, "--data-root", str(a)) == 0
    before["payload.json"] = (week / "payload.json").read_bytes()
    # another data root: refused before the notebook runs, nothing replaced
    assert run(work, "--data-root", str(b)) == 2
    err = capsys.readouterr().err
    assert f"holds the report built from data root {a.resolve()}" in err and "--replace" in err
    assert json.loads((week / "source.json").read_text())["data_root"] == str(a.resolve())
    assert (week / "payload.json").read_bytes() == before["payload.json"]
    assert not (week / "failed").exists()
    # the demo data (no --data-root) is another root too
    assert run(work) == 2
    # --replace does it, and the folder then says so
    assert run(work, "--data-root", str(b), "--replace") == 0
    assert json.loads((week / "source.json").read_text())["data_root"] == str(b.resolve())
    assert set(before) <= {p.name for p in week.iterdir()}


def test_a_folder_from_before_source_json_is_compared_by_its_payload_label(two_roots, tmp_path, capsys):
    a, b = two_roots
    work = tmp_path / "kit"
    assert run(work, "--data-root", str(a)) == 0
    week = work / "out/weekly_report" / WEEK
    (week / "source.json").unlink()
    assert run(work, "--data-root", str(a)) == 0  # same label: fine
    (week / "source.json").unlink()
    assert run(work) == 2  # the demo's label differs
    assert "holds the report built from data root repo_a" in capsys.readouterr().err
