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


def test_history_copies_are_separate_files_and_no_temp_left(tmp_path, capsys):
    repo, work = make_repo(tmp_path / "repo"), tmp_path / "work"
    write_rollup(work)
    code, s = _export(capsys, repo, work)
    assert code == 0
    out, hist = work / "out" / "dashboard", work / "ops" / "dashboard_export_history"
    entry = hist / s["job_id"]
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(p.name for p in entry.iterdir()) and len(names) == 10
    for name in names:
        a, b = out / name, entry / name
        assert a.read_bytes() == b.read_bytes()
        assert a.stat().st_ino != b.stat().st_ino and a.stat().st_nlink == 1
    assert _hidden(out) == [] and _hidden(hist) == []


def test_failed_dataset_leaves_no_temp_files(tmp_path, capsys):
    repo, work = make_repo(tmp_path / "repo"), tmp_path / "work"
    write_rollup(work, "hour_utc,source,p50_ms,p95_ms,samples,breach_flag\n"
                       "2024-01-15T10:00:00Z,feed,90.0,50.0,10,false\n")  # p95 < p50: rule fails
    code, s = _export(capsys, repo, work)
    assert code == 1 and s["failed"][0]["dataset"] == "latency_rollups"
    assert s["failed"][0]["rule"] == "p95_ge_p50"
    out = work / "out" / "dashboard"
    assert not (out / "latency_rollups.json").exists() and (out / "turnover_summary.json").exists()
    assert _hidden(out) == [] and _hidden(work / "ops" / "dashboard_export_history") == []


def test_stager_discard_and_close_remove_temp_files(tmp_path):
    out, hist = tmp_path / "out", tmp_path / "hist"
    with Stager(out, hist, "job") as st:
        write = st.stream("a.json")
        write(b"[1,")
        write(b"2]")
        st.end("a.json")
        st.stage("b.json", b"{}")
        write = st.stream("c.json")
        write(b"partial")
        st.discard("c.json")
        st.publish("a.json")
    assert (out / "a.json").read_bytes() == b"[1,2]"
    assert sorted(p.name for p in out.iterdir()) == ["a.json"] and list(hist.iterdir()) == []


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
