"""Background writing of the bundle files (``dashboard/staging.py``) and the chunked row
encoder: history copies are separate files with the published bytes, no temp file is left
behind (also when a dataset fails), and the chunked JSON equals canonical JSON."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from dashboard_fixtures import make_repo, write_rollup

from obslib.cli import main
from obslib.dashboard import encode
from obslib.dashboard.staging import Stager
from obslib.storage import canonical_json_bytes

NOW = "2024-01-20T00:00:00Z"


def _export(capsys, repo: Path, work: Path) -> tuple[int, dict]:
    code = main(["dashboard", "export", "--work-root", str(work), "--data-root", str(repo), "--now", NOW])
    return code, json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) if folder.is_dir() else []


def _leftovers(work: Path) -> list[str]:
    """Hidden (temp/staging) names anywhere under out/ and the history."""
    return sorted(p.name for base in (work / "out", work / "ops" / "dashboard_export_history") if base.is_dir()
                  for p in base.rglob(".*"))


def test_versions_share_unchanged_files_and_no_temp_left(tmp_path, capsys):
    repo, work = make_repo(tmp_path / "repo"), tmp_path / "work"
    write_rollup(work)
    code, s = _export(capsys, repo, work)
    assert code == 0
    out = work / "out" / "dashboard"
    v1 = out.resolve()
    names = sorted(p.name for p in out.iterdir())
    assert len(names) == 10 and v1.name == f"0000000001-{s['job_id']}"
    code, s2 = _export(capsys, repo, work)  # same inputs: same content, so the same files (hard links)
    v2 = out.resolve()
    assert v2 != v1 and v1.is_dir()  # the previous version stays for readers still in it
    for name in names:
        if name not in ("manifest.json", "README.json"):
            assert (v1 / name).stat().st_ino == (v2 / name).stat().st_ino
    _export(capsys, repo, work)
    assert not v1.exists() and v2.is_dir()  # only current + previous kept
    assert _leftovers(work) == []


def test_failed_dataset_leaves_no_temp_files(tmp_path, capsys):
    repo, work = make_repo(tmp_path / "repo"), tmp_path / "work"
    write_rollup(work, "hour_utc,source,p50_ms,p95_ms,samples,breach_flag\n"
                       "2024-01-15T10:00:00Z,feed,90.0,50.0,10,false\n")  # p95 < p50: rule fails
    code, s = _export(capsys, repo, work)
    assert code == 1 and s["failed"][0]["dataset"] == "latency_rollups"
    assert s["failed"][0]["rule"] == "p95_ge_p50"
    out = work / "out" / "dashboard"
    assert not (out / "latency_rollups.json").exists() and (out / "turnover_summary.json").exists()
    assert _leftovers(work) == []


def test_stager_discard_removes_files(tmp_path):
    with Stager(tmp_path) as st:
        write = st.stream("a.json")
        write(b"[1,")
        write(b"2]")
        st.end("a.json")
        st.stage("b.json", b"{}")
        write = st.stream("c.json")
        write(b"partial")
        st.discard("c.json")
        st.stage("d.json", b"{}")
        st.discard("d.json")
        assert sorted(p.name for p in st.wait()) == ["a.json", "b.json"]
    assert (tmp_path / "a.json").read_bytes() == b"[1,2]"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.json"]


def test_chunked_rows_equal_canonical_json():
    rng = np.random.default_rng(7)
    n = 1000
    floats = rng.normal(size=n).round(3)
    floats[::7] = np.nan
    frame = pd.DataFrame({
        "run_id": [f"r{i % 13}" for i in range(n)],
        "week_start": pd.to_datetime(np.arange(n) % 5 * 7 + 19723, unit="D", utc=True),
        "fills": pd.array([None if i % 11 == 0 else i % 4 for i in range(n)], dtype="Int64"),
        "pnl_pips": floats,
        "missing_days": [("2024-01-0%d" % (i % 3 + 1),) * (i % 3) for i in range(n)],
    })
    kinds = {"run_id": "string", "week_start": "timestamp", "fills": "int", "pnl_pips": "float",
             "missing_days": "string_list"}
    cols = [encode.column(c, kinds[c], frame[c]) for c in frame.columns]
    got = []
    chunks = encode.rows_json_chunks(cols, n, chunk_rows=97, sink=got.append)
    assert got == chunks
    expected = [{"run_id": f"r{i % 13}",
                 "week_start": datetime.fromtimestamp((i % 5 * 7 + 19723) * 86400, timezone.utc)
                 .strftime("%Y-%m-%dT%H:%M:%SZ"),
                 "fills": None if i % 11 == 0 else i % 4,
                 "pnl_pips": None if np.isnan(floats[i]) else float(floats[i]),
                 "missing_days": ["2024-01-0%d" % (i % 3 + 1)] * (i % 3)} for i in range(n)]
    assert b"".join(chunks) == canonical_json_bytes(expected)
    assert encode.rows_json_chunks(cols, 0) == [b"[]"]


def test_unchanged_inputs_skip_the_build_and_any_change_rebuilds(tmp_path, capsys, monkeypatch):
    """inputkey.py: turnover_summary / ev_history are kept without rebuilding only while
    every input (and a daily.csv that was absent), the parameters and the code are unchanged."""
    from obslib.dashboard import bundle, inputkey

    repo, work = make_repo(tmp_path / "repo"), tmp_path / "work"
    write_rollup(work)
    assert _export(capsys, repo, work)[0] == 0
    out = work / "out" / "dashboard"
    m1 = json.loads((out / "manifest.json").read_text())
    key1 = {e["path"]: e.get("input_key") for e in m1["datasets"]}
    assert key1["turnover_summary.json"] and key1["ev_history.parquet"] and key1["latency_rollups.json"] is None

    def boom(*a, **kw):
        raise AssertionError("rebuilt although its inputs are unchanged")

    monkeypatch.setattr(bundle, "build_turnover_summary", boom)
    monkeypatch.setattr(bundle, "build_ev_history", boom)
    code, s = _export(capsys, repo, work)
    assert code == 0 and s["datasets"]["turnover_summary"]["rows"] == 3
    m2 = json.loads((out / "manifest.json").read_text())
    assert [(e["path"], e["checksum_sha256"]) for e in m2["datasets"]] == [
        (e["path"], e["checksum_sha256"]) for e in m1["datasets"]]
    # a daily.csv for run C, absent so far, appears: turnover must be rebuilt (boom: it fails, old kept)
    (repo / "runs" / "run_C_20240115_000000").mkdir()
    (repo / "runs" / "run_C_20240115_000000" / "daily.csv").write_text(
        "date,breakouts,gate_pass,gate_block,ev_pass,ev_reject,fills,wins,pnl_pips\n2024-01-09,1,1,0,1,0,1,1,2.0\n")
    code, s = _export(capsys, repo, work)  # the builder ran (and failed): that dataset only
    assert code == 1 and [f["dataset"] for f in s["failed"]] == ["turnover_summary"]
    assert "rebuilt although" in s["failed"][0]["error"]
    monkeypatch.undo()
    code, s = _export(capsys, repo, work)
    assert code == 0 and s["datasets"]["turnover_summary"]["rows"] == 4
    # the code that builds the datasets changes: rebuilt (same inputs)
    m3 = json.loads((out / "manifest.json").read_text())
    monkeypatch.setattr(inputkey, "code_digest", lambda: "edited")
    monkeypatch.setattr(bundle, "build_ev_history", boom)
    code, s = _export(capsys, repo, work)
    assert code == 1 and [f["dataset"] for f in s["failed"]] == ["ev_history"]
    assert "rebuilt although" in s["failed"][0]["error"]
    m4 = json.loads((out / "manifest.json").read_text())
    assert [e for e in m4["datasets"] if e["name"] == "ev_history"] == [
        e for e in m3["datasets"] if e["name"] == "ev_history"]  # the previous version stays
    assert m4["sequence"] == m3["sequence"] + 1
