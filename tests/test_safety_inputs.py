"""Issue #12 items 4, 5 and 13: one value contract per input file, bounded outputs, messages.

- item 5: the weekly reader (``runs.read_daily``) and the dashboard's vectorised reader
  (``daily_frame``) give the same rows and the same problems (file, line, reason) for
  every input, checked on the issue's exact values and by a hypothesis property; index
  rows with negative counts, wins > trades or impossible timestamps are bad rows; one
  dashboard dataset failing never stops the others.
- item 4: 20,000 malformed latency rows with ``--allow-bad-rows`` give a payload under
  256 KB with a bounded number of alerts, every problem still counted.
- item 13: telemetry messages name the file and show values as JSON (no Python reprs);
  a relative data root is named by its absolute path.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from obslib.cli import main
from obslib.config import load_config
from obslib.errors import InputError
from obslib.inputs import Problem
from obslib.inputs.daily_frame import read_daily_frame
from obslib.inputs.runs import DAILY_COLUMNS, HEADER_V39, read_daily, read_run_index
from obslib.inputs.values import NULL_TOKENS
from obslib.storage import canonical_json_bytes
from obslib.timeutil import parse_week_start
from obslib.weekly.payload import MAX_ALERTS_PER_FILE, build_weekly_payload

NOW = "2026-03-16T01:00:00Z"
NOW_DT = datetime(2026, 3, 16, 1, tzinfo=UTC)
HEADER = ",".join(DAILY_COLUMNS)
RUN = "runs/r1"
REL = f"{RUN}/daily.csv"


def write_daily(root: Path, body: str, run: str = RUN) -> None:
    (root / run).mkdir(parents=True, exist_ok=True)
    (root / run / "daily.csv").write_text(f"{HEADER}\n{body}")


def both(root: Path, runs: list[str] | None = None) -> tuple[list, list, list, list]:
    """``(rows, problems)`` of the weekly reader and of the dashboard reader, comparable."""
    runs = runs or [RUN]
    p1: list[Problem] = []
    rows1 = []
    for k, r in enumerate(runs):
        for rec in read_daily(root, r, p1) or []:
            rows1.append((k, rec["date"].isoformat(), *[rec[c] for c in DAILY_COLUMNS[1:]]))
    p2: list[Problem] = []
    df = read_daily_frame(root, runs, p2)
    rows2 = []
    for t in df.itertuples(index=False):
        d = (datetime(1970, 1, 1) + timedelta(days=int(t.day))).date().isoformat()
        rows2.append((int(t.run_key), d, *[None if v != v else float(v) for v in
                                           (getattr(t, c) for c in DAILY_COLUMNS[1:])]))
    return sorted(rows1), sorted(rows2), sorted(map(str, p1), key=str), sorted(map(str, p2), key=str)


GOOD = "2024-01-08,5,3,2,3,0,2,1,4.0\n"


@pytest.mark.parametrize("token", sorted(NULL_TOKENS))
def test_null_tokens_mean_the_same_in_weekly_and_dashboard(tmp_path, token):
    # an optional column: a missing value, the row is good
    write_daily(tmp_path, f"2024-01-08,{token},3,2,3,0,2,1,4.0\n" + "2024-01-09,1,1,0,1,0,1,1,1.0\n")
    r1, r2, p1, p2 = both(tmp_path)
    assert p1 == p2 == []
    assert r1 == r2 and r1[0][2] is None
    # a required column: a bad row "column 'fills' is empty", in both
    write_daily(tmp_path, f"2024-01-08,5,3,2,3,0,{token},1,4.0\n" + "2024-01-09,1,1,0,1,0,1,1,1.0\n")
    r1, r2, p1, p2 = both(tmp_path)
    assert p1 == p2 == [f"{REL}:2: column 'fills' is empty"]
    assert r1 == r2 and len(r1) == 1


@pytest.mark.parametrize("line, reason", [
    ("2024-01-08,5,3,2,3,0,-3,0,4.0", "column 'fills': -3 is negative (a count)"),
    ("2024-01-08,5,3,2,3,0,2.5,1,4.0", "column 'fills': 2.5 is not a whole number (a count)"),
    ("2024-01-08,5,3,2,3,0,2,5,4.0", "wins 5 > fills 2"),
    ("2999-01-01,5,3,2,3,0,2,1,4.0", "date 2999-01-01 is out of range (1970-01-01..2099-12-31)"),
    ("2026-99-99,5,3,2,3,0,2,1,4.0", "date '2026-99-99' is not YYYY-MM-DD"),
    ("2024-01-08,5,3,2,3,0,2,1,inf", "column 'pnl_pips' is not finite"),
    ("2024-01-08,5,3,2,3,0,2,1,1e999", "column 'pnl_pips' is not finite"),
    ("2024-01-08,-1,3,2,3,0,2,1,4.0", "column 'breakouts': -1 is negative (a count)"),
    ("NA,5,3,2,3,0,2,1,4.0", "date is empty"),
])
def test_bad_daily_rows_are_named_with_file_and_line_in_both_readers(tmp_path, line, reason):
    write_daily(tmp_path, "2024-01-09,1,1,0,1,0,1,1,1.0\n" + line + "\n")
    r1, r2, p1, p2 = both(tmp_path)
    assert p1 == p2 == [f"{REL}:3: {reason}"]
    assert r1 == r2 and [r[1] for r in r1] == ["2024-01-09"]


def test_duplicate_dates_are_reported_by_both_readers(tmp_path):
    write_daily(tmp_path, GOOD + "2024-01-08,1,1,0,1,0,1,1,1.0\n")
    r1, r2, p1, p2 = both(tmp_path)
    assert p1 == p2 == [f"{REL}:3: duplicate date 2024-01-08 (first occurrence kept)"]
    assert r1 == r2 and r1[0][7] == 2.0


CELL = st.sampled_from(["", "NA", "nan", "NaN", "null", "#N/A", "n/a", "0", "1", "2", "3", "-3", "2.5", "inf", "-inf",
                        "1e999", "x", " 1", "7", "NAN", "None"])
DATE = st.sampled_from(["2024-01-08", "2024-01-09", "2024-01-10", "2999-01-01", "2026-99-99", "", "NA", "2024-1-8",
                        "20240108", "1969-12-31", "2099-12-31", "2024-01-08T00:00", "2024-W02-1"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(DATE, st.lists(CELL, min_size=8, max_size=8)), min_size=1, max_size=6),
       st.booleans())
def test_weekly_and_dashboard_readers_agree_on_any_daily_file(rows, second_file):
    with tempfile.TemporaryDirectory() as top:
        root = Path(top)
        body = "".join(",".join([d, *cells]) + "\n" for d, cells in rows)
        write_daily(root, body)
        runs = [RUN]
        if second_file:  # the batched path (several files parsed as one) must agree too
            write_daily(root, GOOD, run="runs/r0")
            runs = ["runs/r0", RUN]
        r1, r2, p1, p2 = both(root, runs)
        assert p1 == p2
        assert r1 == r2


def write_index(root: Path, rows: list[dict]) -> None:
    (root / "runs").mkdir(parents=True, exist_ok=True)
    lines = [",".join(HEADER_V39)] + [",".join(str(r.get(c, "")) for c in HEADER_V39) for r in rows]
    (root / "runs/index.csv").write_text("\n".join(lines) + "\n")


def test_index_rows_with_impossible_values_are_bad_rows(tmp_path):
    good = {"run_id": "ok", "run_dir": "runs/ok", "timestamp": "20250921_130118", "symbol": "S", "mode": "m",
            "trades": "5", "wins": "3", "total_pips": "1"}
    write_index(tmp_path, [good, {**good, "run_id": "neg", "trades": "-5", "wins": "0"},
                           {**good, "run_id": "more", "wins": "6"}, {**good, "run_id": "ts", "timestamp": "2026-99-99"},
                           {**good, "run_id": "far", "timestamp": "2999-01-01T00:00:00Z"},
                           {**good, "run_id": "na", "timestamp": "NA", "wins": "N/A", "total_pips": "1"}])
    problems: list[Problem] = []
    rows = read_run_index(tmp_path, problems)
    assert [r["run_id"] for r in rows] == ["ok"]
    assert [str(p) for p in problems] == [
        "runs/index.csv:3: column 'trades': -5 is negative (a count)",
        "runs/index.csv:4: wins 6 > trades 5",
        "runs/index.csv:5: timestamp '2026-99-99' is not a date and time (YYYYMMDD_HHMMSS or ISO 8601)",
        "runs/index.csv:6: timestamp 2999-01-01T00:00:00Z is out of range (1970-01-01..2099-12-31)",
        "runs/index.csv:7: column 'wins' is empty",
    ]


# --------------------------------------------------------------------------- jobs on the demo data

@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("demo") / "repo"
    assert main(["demo", "--out", str(data), "--as-of", NOW]) == 0
    return data


@pytest.fixture
def repo(demo, tmp_path) -> Path:
    dst = tmp_path / "repo"
    shutil.copytree(demo, dst)
    return dst


def baseline_daily(repo: Path) -> Path:
    run_dir = json.loads((repo / "reports/baseline/USDJPY_conservative.json").read_text())["run_dir"]
    return repo / run_dir / "daily.csv"


def test_dashboard_export_with_a_2999_date_publishes_all_four_datasets(repo, tmp_path, capsys):
    daily = baseline_daily(repo)
    lines = daily.read_text().splitlines()
    n = len(lines) + 1
    daily.write_text("\n".join(lines + [lines[-1].replace(lines[-1].split(",")[0], "2999-01-01")]) + "\n")
    rc = main(["dashboard", "export", "--work-root", str(tmp_path / "kit"), "--data-root", str(repo), "--now", NOW])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 0, summary
    assert all(v["status"] == "ok" for v in summary["datasets"].values()), summary
    warnings = json.loads((tmp_path / "kit/out/dashboard/turnover_summary.json").read_text())["warnings"]
    rel = daily.relative_to(repo).as_posix()
    assert f"input malformed: {rel}:{n}: date 2999-01-01 is out of range (1970-01-01..2099-12-31)" in warnings


def test_one_failing_dataset_never_stops_the_others(repo, tmp_path, monkeypatch, capsys):
    import obslib.dashboard.bundle as bundle

    def boom(*a, **k):
        raise RuntimeError("pandas exploded")

    monkeypatch.setattr(bundle, "build_ev_history", boom)
    rc = main(["dashboard", "export", "--work-root", str(tmp_path / "kit"), "--data-root", str(repo), "--now", NOW])
    assert rc == 1
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["datasets"]["ev_history"]["status"] == "failed"
    assert "RuntimeError: pandas exploded" in summary["datasets"]["ev_history"]["error"]
    assert {k for k, v in summary["datasets"].items() if v["status"] == "ok"} == {
        "slippage_telemetry", "turnover_summary", "latency_rollups"}
    assert (tmp_path / "kit/out/dashboard/turnover_summary.parquet").is_file()


def test_weekly_reads_NA_in_daily_csv_as_the_dashboard_does(repo):  # noqa: N802
    daily = baseline_daily(repo)
    lines = daily.read_text().splitlines()
    cells = lines[-1].split(",")
    cells[1] = "NA"  # breakouts: optional
    daily.write_text("\n".join(lines[:-1] + [",".join(cells)]) + "\n")
    cfg = load_config(repo.parent / "kit")
    payload = build_weekly_payload(repo, parse_week_start("2026-03-09"), cfg=cfg, now=NOW_DT, job_id="j1",
                                   command="test", sha=None, data_label="demo")
    assert payload["provenance"]["input_problems"] == []


def test_20000_malformed_latency_rows_keep_the_payload_small(repo):
    lat = repo / "ops/signal_latency.csv"
    with open(lat, "a") as fh:
        for i in range(20_000):
            fh.write(f"2026-03-10T01:{i % 60:02d}:00Z,fast{i},success,,router_demo\n")
    cfg = load_config(repo.parent / "kit")
    with pytest.raises(InputError, match=r"signal_latency.csv:\d+: .*\+19999 more bad row"):
        build_weekly_payload(repo, parse_week_start("2026-03-09"), cfg=cfg, now=NOW_DT, job_id="j1", command="t",
                             sha=None, data_label="demo")
    payload = build_weekly_payload(repo, parse_week_start("2026-03-09"), cfg=cfg, now=NOW_DT, job_id="j1",
                                   command="test", sha=None, data_label="demo", allow_bad_rows=True)
    body = canonical_json_bytes(payload)
    assert len(body) <= 256 * 1024, len(body)
    inputs = [a for a in payload["alerts"] if a["id"].startswith("input-")]
    assert len(inputs) == MAX_ALERTS_PER_FILE + 1
    more = [a for a in inputs if a["id"] == "input-more:ops/signal_latency.csv"]
    assert more and "and 19980 more problem(s) (malformed: 19980)" in more[0]["message"]
    prov = payload["provenance"]
    assert prov["input_problems_total"] == {"malformed": 20_000}
    assert len(prov["input_problems"]) == 100 and prov["input_problems_omitted"] == 19_900
    from obslib.schemas import validate
    from obslib.weekly.payload import SCHEMA_FILE

    validate(payload, SCHEMA_FILE, "weekly payload")


def test_20000_malformed_latency_rows_via_the_cli(repo, tmp_path):
    lat = repo / "ops/signal_latency.csv"
    with open(lat, "a") as fh:
        for i in range(20_000):
            fh.write(f"2026-03-10T01:{i % 60:02d}:00Z,fast{i},success,,router_demo\n")
    work = tmp_path / "kit"
    rc = main(["weekly", "run", "--allow-bad-rows", "--week-start", "2026-03-09", "--work-root", str(work),
               "--data-root", str(repo), "--now", NOW])
    assert rc == 0
    p = work / "out/weekly_report/2026-03-09/payload.json"
    assert p.stat().st_size <= 256 * 1024


# --------------------------------------------------------------------------- messages (item 13)

def test_telemetry_messages_name_the_file_and_show_json(repo):
    tel = repo / "reports/portfolio_samples/router_demo/telemetry.json"
    doc = json.loads(tel.read_text())
    cfg = load_config(repo.parent / "kit")
    for key, value, expect in (("gross_exposure_pct", "abc", 'gross_exposure_pct is not a number: "abc"'),
                               ("execution_health", {"s": {"slippage_bps": [1]}},
                                "execution_health.s.slippage_bps is not a number: [1]"),
                               ("category_budget_pct", [1, 2], "category_budget_pct is not an object: [1, 2]"),
                               ("generated_at", {"x": 1}, 'generated_at {"x": 1} is not a timestamp')):
        tel.write_text(json.dumps({**doc, key: value}))
        with pytest.raises(InputError) as exc:
            build_weekly_payload(repo, parse_week_start("2026-03-09"), cfg=cfg, now=NOW_DT, job_id="j1",
                                 command="t", sha=None, data_label="demo")
        msg = str(exc.value)
        assert msg.startswith("reports/portfolio_samples/router_demo/telemetry.json: ") and expect in msg, msg
        assert "'" not in msg.split(": ", 1)[1]


def test_dashboard_telemetry_2999_warning_has_no_python_repr(repo, tmp_path, capsys):
    for rel in ("reports/portfolio_samples/router_demo/telemetry.json", "reports/portfolio_summary.json"):
        p = repo / rel
        p.write_text(json.dumps({**json.loads(p.read_text()), "generated_at": "2999-01-01T00:00:00Z"}))
    rc = main(["dashboard", "export", "--work-root", str(tmp_path / "kit"), "--data-root", str(repo), "--now", NOW])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "datetime.datetime" not in out + err
    warnings = json.loads((tmp_path / "kit/out/dashboard/slippage_telemetry.json").read_text())["warnings"]
    assert ('reports/portfolio_samples/router_demo/telemetry.json: generated_at "2999-01-01T00:00:00Z" is out of '
            'range (1970-01-01..2099-12-31): ignored') in warnings
    assert "datetime.datetime" not in json.dumps(warnings)


def test_relative_data_root_is_named_by_its_absolute_path(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rc = main(["weekly", "run", "--data-root", "rel/path", "--work-root", "W", "--now", NOW])
    assert rc == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'rel/path'}: data root not found" in err
