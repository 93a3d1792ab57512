"""Unreadable and empty inputs: a benchmark folder or file that cannot be read stops the
job (even with --allow-bad-rows); an empty benchmark folder is a ``missing`` problem; no
usable baseline is an alert. Expected messages are written out by hand (the OS text for
EACCES is "Permission denied")."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from obslib.config import load_config
from obslib.demo import generate_demo
from obslib.errors import InputError
from obslib.inputs import Problem
from obslib.inputs.reports import read_benchmarks, read_router_telemetry
from obslib.inputs.state_archive import parse_snapshot
from obslib.storage import UnreadableInput, read_json
from obslib.timeutil import parse_ts, parse_week_start
from obslib.weekly.payload import build_weekly_payload

NOW = parse_ts("2026-11-29T12:00:00Z")
BENCH = {"trades": 10, "wins": 6, "total_pips": 12.5, "generated_at": "2026-11-20T00:00:00Z"}


def _bench_root(tmp_path: Path, *, baseline: bool = True, rolling_days: tuple[int, ...] = (90,)) -> Path:
    root = tmp_path / "repo"
    (root / "reports/baseline").mkdir(parents=True)
    if baseline:
        (root / "reports/baseline/EURUSD_x.json").write_text(json.dumps(BENCH))
    for d in rolling_days:
        (root / f"reports/rolling/{d}").mkdir(parents=True)
        (root / f"reports/rolling/{d}/EURUSD_x.json").write_text(json.dumps(BENCH))
    return root


def _deny_scandir(monkeypatch, denied: Path) -> None:
    """os.scandir raises EACCES for ``denied`` (root ignores chmod 000, so fake the OS)."""
    real = os.scandir

    def fake(path=".", *a, **kw):
        if Path(path) == denied:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real(path, *a, **kw)

    monkeypatch.setattr(os, "scandir", fake)


def _deny_read(monkeypatch, denied: Path) -> None:
    real = Path.read_text

    def fake(self, *a, **kw):
        if self == denied:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return real(self, *a, **kw)

    monkeypatch.setattr(Path, "read_text", fake)


@pytest.mark.parametrize("folder", ["reports/baseline", "reports/rolling", "reports/rolling/90"])
def test_unlistable_benchmark_folder_is_an_input_error(tmp_path, monkeypatch, folder):
    root = _bench_root(tmp_path)
    _deny_scandir(monkeypatch, root / folder)
    with pytest.raises(InputError) as ei:
        read_benchmarks(root, [])
    assert isinstance(ei.value, UnreadableInput)
    assert (ei.value.path, ei.value.reason) == (folder, "cannot read: Permission denied")
    assert str(ei.value) == f"{folder}: cannot read: Permission denied"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a chmod 000 folder anyway")
def test_chmod_000_baseline_folder_is_an_input_error(tmp_path):
    root = _bench_root(tmp_path)
    base = root / "reports/baseline"
    base.chmod(0)
    try:
        with pytest.raises(InputError, match=r"^reports/baseline: cannot read: Permission denied$"):
            read_benchmarks(root, [])
    finally:
        base.chmod(0o755)


def test_empty_benchmark_folders_are_missing_problems(tmp_path):
    root = _bench_root(tmp_path, baseline=False, rolling_days=(90, 180))
    (root / "reports/rolling/180/EURUSD_x.json").unlink()
    (root / "reports/baseline/notes.txt").write_text("not a report")
    problems: list[Problem] = []
    got = read_benchmarks(root, problems)
    assert [(b["kind"], b["days"], b["path"]) for b in got] == [("rolling", 90, "reports/rolling/90/EURUSD_x.json")]
    assert problems == [
        Problem("missing", "reports/baseline", "baseline benchmark folder has no *.json report"),
        Problem("missing", "reports/rolling/180", "rolling benchmark folder has no *.json report"),
    ]


def test_readable_folders_read_as_before(tmp_path):
    root = _bench_root(tmp_path, rolling_days=(180, 90))
    problems: list[Problem] = []
    got = read_benchmarks(root, problems)
    assert [(b["kind"], b["days"]) for b in got] == [("baseline", None), ("rolling", 90), ("rolling", 180)]
    assert problems == []


def test_unreadable_benchmark_file_is_fatal_not_malformed(tmp_path, monkeypatch):
    root = _bench_root(tmp_path)
    _deny_read(monkeypatch, root / "reports/rolling/90/EURUSD_x.json")
    problems: list[Problem] = []
    with pytest.raises(UnreadableInput) as ei:
        read_benchmarks(root, problems)
    assert str(ei.value) == "reports/rolling/90/EURUSD_x.json: cannot read: Permission denied"
    assert not [p for p in problems if p.kind == "malformed"]


def test_malformed_benchmark_file_is_still_a_problem(tmp_path):
    root = _bench_root(tmp_path)
    (root / "reports/baseline/EURUSD_x.json").write_text("{oops")
    problems: list[Problem] = []
    read_benchmarks(root, problems)
    assert [(p.kind, p.path, p.line) for p in problems] == [("malformed", "reports/baseline/EURUSD_x.json", 1)]


def test_unreadable_snapshot_is_fatal_malformed_one_is_a_problem(tmp_path, monkeypatch):
    snap = tmp_path / "s/USDJPY/conservative/20261120_000000.json"
    snap.parent.mkdir(parents=True)
    snap.write_text("[1,")
    problems: list[Problem] = []
    assert parse_snapshot(snap, "ops/state_archive/s/USDJPY/conservative/20261120_000000.json", problems) is None
    assert [p.kind for p in problems] == ["malformed"]
    _deny_read(monkeypatch, snap)
    with pytest.raises(UnreadableInput, match=r"^ops/state_archive/s/USDJPY/conservative/20261120_000000\.json: "
                                              r"cannot read: Permission denied$"):
        parse_snapshot(snap, "ops/state_archive/s/USDJPY/conservative/20261120_000000.json", [])


def test_unreadable_telemetry_names_the_relative_path(tmp_path, monkeypatch):
    p = tmp_path / "reports/portfolio_samples/router_demo/telemetry.json"
    p.parent.mkdir(parents=True)
    p.write_text("{}")
    _deny_read(monkeypatch, p)
    with pytest.raises(UnreadableInput, match=r"^reports/portfolio_samples/router_demo/telemetry\.json: cannot read: "
                                              r"Permission denied$"):
        read_router_telemetry(tmp_path, [])


def test_read_json_messages(tmp_path, monkeypatch):
    bad_utf8 = tmp_path / "latin1.json"
    bad_utf8.write_bytes(b'{"a": "\xe9"}')
    with pytest.raises(InputError) as ei:
        read_json(bad_utf8)
    assert ei.value.reason == "not UTF-8 text" and not isinstance(ei.value, UnreadableInput)
    with pytest.raises(UnreadableInput) as ei:
        read_json(tmp_path / "absent.json")
    assert ei.value.reason == "file not found"
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(UnreadableInput) as ei:
        read_json(tmp_path / "dir.json")  # a real OSError without faking: EISDIR
    assert ei.value.reason == "cannot read: Is a directory"
    ok = tmp_path / "ok.json"
    ok.write_text("{}")
    _deny_read(monkeypatch, ok)
    with pytest.raises(UnreadableInput) as ei:
        read_json(ok)
    assert ei.value.reason == "cannot read: Permission denied"


# --- the weekly payload -------------------------------------------------------------

def _demo(tmp_path: Path) -> Path:
    return generate_demo(tmp_path / "demo", NOW, seed=7)


def _build(root: Path, **kw):
    return build_weekly_payload(root, parse_week_start("2026-11-23"), cfg=load_config(env={}), now=NOW,
                                job_id="job-1", command="obs weekly run", sha=None, data_label="test", **kw)


def test_rolling_without_baseline_raises_no_baseline_alert(tmp_path):
    root = _demo(tmp_path)
    for f in (root / "reports/baseline").glob("*.json"):
        f.unlink()
    p = _build(root)
    assert p["runs"]["baseline"] == [] and len(p["runs"]["rolling"]) == 3
    by_id = {a["id"]: a for a in p["alerts"]}
    a = by_id["no-baseline:2026-11-23"]
    assert a["severity"] == "warning" and a["message"] == "no baseline benchmark usable for week 2026-11-23"
    assert "no-benchmarks:2026-11-23" not in by_id
    assert by_id["input-missing:reports/baseline:0"]["message"] == (
        "input missing: reports/baseline: baseline benchmark folder has no *.json report")


def test_no_benchmarks_at_all_keeps_the_single_no_benchmarks_alert(tmp_path):
    root = _demo(tmp_path)
    for f in (root / "reports").glob("*/**/*.json"):
        if "baseline" in f.parts or "rolling" in f.parts:
            f.unlink()
    ids = {a["id"] for a in _build(root)["alerts"]}
    assert "no-benchmarks:2026-11-23" in ids and "no-baseline:2026-11-23" not in ids


def test_demo_with_baseline_has_no_no_baseline_alert(tmp_path):
    ids = {a["id"] for a in _build(_demo(tmp_path))["alerts"]}
    assert not {"no-baseline:2026-11-23", "no-benchmarks:2026-11-23"} & ids


def test_unreadable_benchmark_stops_the_payload_even_with_allow_bad_rows(tmp_path, monkeypatch):
    root = _demo(tmp_path)
    (root / "reports/baseline/extra_broken.json").write_text("{")  # malformed: an alert with allow_bad_rows
    p = _build(root, allow_bad_rows=True)
    assert any(a["id"].startswith("input-malformed:reports/baseline/extra_broken.json") for a in p["alerts"])
    _deny_read(monkeypatch, (root / "reports/baseline/USDJPY_conservative.json"))
    with pytest.raises(UnreadableInput, match=r"^reports/baseline/USDJPY_conservative\.json: cannot read: "
                                              r"Permission denied$"):
        _build(root, allow_bad_rows=True)


def test_malformed_telemetry_stops_the_payload_even_with_allow_bad_rows(tmp_path):
    root = _demo(tmp_path)
    (root / "reports/portfolio_samples/router_demo/telemetry.json").write_text("{")
    with pytest.raises(InputError, match=r"^reports/portfolio_samples/router_demo/telemetry\.json:1: invalid JSON"):
        _build(root, allow_bad_rows=True)
