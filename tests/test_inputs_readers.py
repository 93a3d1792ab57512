"""Input readers: header versions, malformed rows with file/line/reason, missing files."""

from __future__ import annotations

import csv
import io

import pytest

from obslib.errors import InputError
from obslib.inputs.runs import HEADER_VERSIONS, read_daily, read_run_index
from obslib.inputs.state_archive import read_state_archive


def _write_index(root, header, rows, tail_newline=True):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for r in rows:
        w.writerow([r.get(c, "") for c in header])
    text = buf.getvalue()
    if not tail_newline:
        text = text.rstrip("\n")
    (root / "runs").mkdir(parents=True, exist_ok=True)
    (root / "runs" / "index.csv").write_text(text)


@pytest.mark.parametrize("ncols", [28, 31, 38, 39])
def test_all_four_index_header_versions(tmp_path, ncols):
    header = HEADER_VERSIONS[ncols]
    assert len(header) == ncols
    _write_index(tmp_path, header, [{"run_id": "r1", "run_dir": "runs/r1", "timestamp": "20250101_000000",
                                     "symbol": "USDJPY", "mode": "conservative", "trades": "10", "wins": "6",
                                     "total_pips": "12.5"}])
    problems = []
    rows = read_run_index(tmp_path, problems)
    assert problems == []
    assert rows[0]["trades"] == 10.0 and rows[0]["total_pips"] == 12.5
    assert rows[0]["ev_profile_path"] is None  # absent or empty -> null


def test_malformed_rows_reported_with_line_and_reason(tmp_path):
    header = HEADER_VERSIONS[39]
    good = {"run_id": "ok", "run_dir": "runs/ok", "timestamp": "20250101_000000", "symbol": "S", "mode": "m",
            "trades": "1", "wins": "1", "total_pips": "1"}
    _write_index(tmp_path, header, [good, {**good, "run_id": "bad", "trades": "many"}])
    with open(tmp_path / "runs" / "index.csv", "a") as fh:
        fh.write("torn,runs/torn,2025")  # a truncated last line, no newline
    problems = []
    rows = read_run_index(tmp_path, problems)
    assert [r["run_id"] for r in rows] == ["ok"]
    got = sorted((p.line, p.reason) for p in problems)
    assert got[0] == (3, "column 'trades': 'many' is not a number")
    assert got[1] == (4, "truncated last line: 3 of 39 fields")
    assert all(p.path == "runs/index.csv" for p in problems)


def test_missing_index_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="runs/index.csv: file not found"):
        read_run_index(tmp_path, [])


def test_daily_rows_and_bad_date(tmp_path):
    d = tmp_path / "runs" / "r"
    d.mkdir(parents=True)
    (d / "daily.csv").write_text("date,fills,wins,pnl_pips\n2024-01-02,2,1,3.5\n2024-13-01,1,1,1\n")
    problems = []
    rows = read_daily(tmp_path, "runs/r", problems)
    assert len(rows) == 1 and rows[0]["pnl_pips"] == 3.5
    assert problems[0].line == 3 and "not YYYY-MM-DD" in problems[0].reason
    assert read_daily(tmp_path, "runs/none", []) is None


def test_real_state_archive_layout(real_root):
    problems = []
    snaps = read_state_archive(real_root, problems)
    assert len(snaps) == 79
    main = [s for s in snaps if s["strategy_source"] == "day_orb_5m.DayORB5m" and s["mode"] == "conservative"]
    assert len(main) == 66
    assert any("560 file(s)" in p.reason for p in problems)  # flat grid_* files are skipped, visibly


def test_real_index_reads_every_row(real_root):
    problems = []
    rows = read_run_index(real_root, problems)
    assert len(rows) == 229 and not [p for p in problems if p.kind == "malformed"]


def test_latency_value_that_is_not_a_number_names_the_column():
    from obslib.inputs.latency_events import LineParser

    problems = []
    parser = LineParser(["timestamp_utc", "latency_ms", "status", "source"], rel_path="ops/signal_latency.csv")
    assert parser.parse(b"2025-10-11T11:35:42Z,fast,success,router_demo", 2, problems) is None
    assert [str(p) for p in problems] == ["ops/signal_latency.csv:2: latency_ms 'fast' is not a number"]
