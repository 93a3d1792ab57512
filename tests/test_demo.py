"""The demo repository: deterministic, in the real formats, with data in the current week."""

from __future__ import annotations

import csv
import hashlib
from datetime import timedelta
from pathlib import Path

from obslib.demo import generate_demo
from obslib.timeutil import parse_ts, week_start_of

AS_OF = parse_ts("2026-11-26T09:40:00Z")  # a Thursday


def tree_hash(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_and_as_of_are_byte_identical(tmp_path):
    a = tree_hash(generate_demo(tmp_path / "a", AS_OF, seed=3))
    b = tree_hash(generate_demo(tmp_path / "b", AS_OF, seed=3))
    c = tree_hash(generate_demo(tmp_path / "c", AS_OF, seed=4))
    assert a == b
    assert a != c


def test_demo_contents_match_the_contract(tmp_path, real_root):
    root = generate_demo(tmp_path / "demo", AS_OF, seed=7)
    ws = week_start_of(AS_OF)
    with open(root / "runs/index.csv") as fh:
        rows = list(csv.DictReader(fh))
    real_header = (real_root / "runs/index.csv").read_text().splitlines()[0]
    assert (root / "runs/index.csv").read_text().splitlines()[0] == real_header
    assert len(rows) >= 50
    assert all((root / r["run_dir"] / "daily.csv").is_file() for r in rows)
    real_daily_header = next((real_root / "runs").glob("*/daily.csv")).read_text().splitlines()[0]
    assert (root / rows[0]["run_dir"] / "daily.csv").read_text().splitlines()[0] == real_daily_header
    snaps = sorted((root / "ops/state_archive").glob("*/*/*/*.json"))
    assert len(snaps) >= 60
    stamps = sorted(parse_ts(p.name[:8] + "T" + p.name[9:15] + "Z") for p in snaps)
    assert stamps[-1] - stamps[0] > timedelta(weeks=6) and stamps[-1] <= AS_OF
    assert any(s >= ws for s in stamps)
    for rel in ("reports/baseline/USDJPY_conservative.json", "reports/rolling/90/USDJPY_conservative.json",
                "reports/rolling/180/USDJPY_conservative.json", "reports/rolling/365/USDJPY_conservative.json",
                "reports/portfolio_samples/router_demo/telemetry.json", "reports/portfolio_summary.json",
                "data/sample_orb.csv"):
        assert (root / rel).is_file(), rel
    with open(root / "ops/signal_latency.csv") as fh:
        lat = list(csv.DictReader(fh))
    assert list(lat[0]) == ["timestamp_utc", "latency_ms", "status", "detail", "source"]
    assert sorted({r["source"] for r in lat}) == ["feed_ingest", "router_demo", "signal_bridge"]
    assert len(lat) == 14 * 96 * 3
    breaching = [r for r in lat if float(r["latency_ms"]) > 120000]
    assert len(breaching) == 4 and {r["source"] for r in breaching} == {"router_demo"}
    assert all(ws <= parse_ts(r["timestamp_utc"]) <= AS_OF for r in breaching)


def test_demo_never_replaces_a_folder_that_is_not_a_demo(tmp_path):
    import pytest

    from obslib.errors import ObsError

    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("x")
    with pytest.raises(ObsError, match="refusing to replace"):
        generate_demo(precious, AS_OF)
    assert (precious / "thesis.txt").read_text() == "x" and len(list(precious.iterdir())) == 1
    afile = tmp_path / "afile"
    afile.write_text("y")
    with pytest.raises(ObsError, match="not a folder"):
        generate_demo(afile, AS_OF)
    assert afile.read_text() == "y"
    empty = tmp_path / "empty"
    empty.mkdir()
    generate_demo(empty, AS_OF)  # an empty folder is fine, and a demo can be regenerated
    generate_demo(empty, AS_OF, seed=9)
    assert (empty / "runs/index.csv").is_file()


def test_demo_swap_never_touches_similarly_named_siblings(tmp_path):
    sibling = tmp_path / ".demo.old"
    sibling.mkdir()
    (sibling / "data").write_text("keep")
    generate_demo(tmp_path / "demo", AS_OF)
    generate_demo(tmp_path / "demo", AS_OF, seed=8)  # replaces the earlier demo
    assert (sibling / "data").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".demo.old", "demo"]
