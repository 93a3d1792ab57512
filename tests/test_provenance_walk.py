"""Every artefact of the daily chain carries its provenance (issue #14): each Parquet
file's schema metadata ``obslib.provenance``, a ``provenance`` block in every JSON
artefact (dataset documents, manifest, README.json, heartbeats, the nightly check file),
and a ``<file>.provenance.json`` sidecar for every CSV, whose ``file.sha256`` matches the
CSV's bytes. The chain runs through the real CLI on the demo data."""

from __future__ import annotations

import hashlib
import json

import pyarrow.parquet as pq

from obslib.cli import main

FIELDS = ("generated_at", "source_command", "commit_sha", "inputs", "schema_version")
# operational state of the kit, not artefacts: counters, cursors, journals, locks, the run log
STATE = {"automation_runs.log", "dashboard_export_sequence.json", "signal_latency_offsets.json",
         "signal_latency_state.json", "signal_latency_rollup_state.json",
         "active_alerts.json"}  # the alert router's state and outbox (obslib.alerting.state)


def _check_block(block: dict, where: str) -> None:
    assert isinstance(block, dict), where
    for k in FIELDS:
        assert k in block, f"{where}: no {k}"
    assert block["generated_at"].endswith("Z") and block["source_command"].startswith("obs "), where
    assert block["commit_sha"] == "c0ffee" * 6 + "c0ff", where
    for i in block["inputs"]:
        assert len(i["sha256"]) == 64 and i["path"], where


def test_every_artefact_has_its_provenance(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OBS_COMMIT_SHA", "c0ffee" * 6 + "c0ff")
    monkeypatch.setattr("sys.argv", ["obs", "chain"])
    from obslib import provenance

    monkeypatch.setattr(provenance, "_COMMIT", [])
    w = tmp_path / "work"
    for argv in (["latency", "sample", "--now", "2026-11-30T00:00:00Z"],
                 ["latency", "rollup", "--now", "2026-11-30T00:05:00Z"],
                 ["dashboard", "export", "--now", "2026-11-30T01:00:00Z"],
                 ["check", "--now", "2026-11-30T02:30:00Z"]):
        main([*argv, "--work-root", str(w)])
    capsys.readouterr()
    seen = {"parquet": 0, "json": 0, "csv": 0}
    out_files = [p for p in (w / "out" / "dashboard").iterdir()]
    ops_files = [p for p in (w / "ops").iterdir() if p.is_file()]
    for p in out_files + ops_files:
        if p.name.endswith((".lock", ".provenance.json")) or p.name in STATE:
            continue
        where = p.relative_to(w).as_posix()
        if p.suffix == ".parquet":
            meta = pq.read_schema(p).metadata
            _check_block(json.loads(meta[b"obslib.provenance"]), where)
            seen["parquet"] += 1
        elif p.suffix == ".json":
            _check_block(json.loads(p.read_text())["provenance"], where)
            seen["json"] += 1
        elif p.suffix == ".csv":
            side = json.loads(p.with_name(p.name + ".provenance.json").read_text())
            _check_block(side, where)
            assert side["file"] == {"path": p.name, "bytes": p.stat().st_size,
                                    "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}, where
            seen["csv"] += 1
        else:
            raise AssertionError(f"{where}: an artefact of unknown kind")
    # 4 Parquet; 4 datasets + manifest + README + 4 heartbeats + nightly check; 2 latency CSVs
    assert seen == {"parquet": 4, "json": 11, "csv": 2}
    # the rollup CSV names the live CSV it was computed from, with its sha256
    side = json.loads((w / "ops" / "signal_latency_rollup.csv.provenance.json").read_text())
    live = w / "ops" / "signal_latency.csv"
    assert side["inputs"] == [{"path": "ops/signal_latency.csv", "sha256": hashlib.sha256(live.read_bytes()).hexdigest()}]
    tu = pq.read_schema(w / "out" / "dashboard" / "turnover_summary.parquet").metadata
    prov = json.loads(tu[b"obslib.provenance"])
    assert "runs/index.csv" in {i["path"] for i in prov["inputs"]} and prov["schema_version"] == "1.0.0"
    assert prov["job_id"].startswith("dashboard_export-")
