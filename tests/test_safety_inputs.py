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
                        "1e999", "x", " 1", "7", "NAN", "None", "1_000", "\uff15", " 2 ", "2\t", "-0", "+5", ".5",
                        "5.", "1e3", "1E+2", "Infinity", "INF", "-nan", "0x10", "\u0661"])
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


# --------------------------------------------------------------------------- follow-up B: paths read from inputs

OUTSIDE_REL = "../../../../../../tmp/qa_outside"  # the QA inputs, verbatim


@pytest.mark.parametrize("run_dir", [OUTSIDE_REL, "/tmp/qa_outside", "runs/../../x", "runs/./r", "runs\\..\\x",
                                     "runs/ok/../../../../etc"])
def test_index_run_dir_outside_the_data_root_is_a_bad_row(tmp_path, run_dir):
    good = {"run_id": "ok", "run_dir": "runs/ok", "timestamp": "20250921_130118", "symbol": "S", "mode": "m",
            "trades": "5", "wins": "3", "total_pips": "1"}
    write_index(tmp_path, [good, {**good, "run_id": "bad", "run_dir": run_dir}])
    problems: list[Problem] = []
    rows = read_run_index(tmp_path, problems)
    assert [r["run_id"] for r in rows] == ["ok"]
    assert [str(p) for p in problems] == [
        f"runs/index.csv:3: run_dir {json.dumps(run_dir)} outside the data root (a relative path of "
        "[A-Za-z0-9._-] parts inside it is expected)"]


def test_index_run_dir_through_a_link_out_of_the_data_root_is_a_bad_row(tmp_path):
    # one more of the class: a lexically clean run_dir whose folder is a link outside
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "daily.csv").write_text(f"{HEADER}\n{GOOD}")
    root = tmp_path / "repo"
    (root / "runs").mkdir(parents=True)
    (root / "runs/evil").symlink_to(outside)
    good = {"run_id": "evil", "run_dir": "runs/evil", "timestamp": "20250921_130118", "symbol": "S", "mode": "m",
            "trades": "5", "wins": "3", "total_pips": "1"}
    write_index(root, [good])
    p1: list[Problem] = []
    assert read_run_index(root, p1) == [] and [p.line for p in p1] == [2]
    # the daily readers refuse it too when called with it directly (weekly and dashboard alike)
    p2: list[Problem] = []
    assert read_daily(root, "runs/evil", p2) is None
    p3: list[Problem] = []
    assert len(read_daily_frame(root, ["runs/evil", "/tmp/qa_outside", OUTSIDE_REL], p3)) == 0
    assert [str(p) for p in p2] == [str(p) for p in p3][:1] == [
        'runs/index.csv: run_dir "runs/evil" outside the data root (a relative path of [A-Za-z0-9._-] parts '
        'inside it is expected)']
    assert len(p3) == 3


@pytest.mark.parametrize("run_id, reason", [
    ("../x", 'run_id "../x" is not a safe identifier'),
    ("a/b", 'run_id "a/b" is not a safe identifier'),
    ("NA", "empty run_id"),
    ("x..y", 'run_id "x..y" is not a safe identifier'),  # one more: '..' inside
    (".hidden", 'run_id ".hidden" is not a safe identifier'),
])
def test_index_run_id_that_is_not_an_identifier_is_a_bad_row(tmp_path, run_id, reason):
    good = {"run_id": "ok", "run_dir": "", "timestamp": "20250921_130118", "symbol": "S", "mode": "m",
            "trades": "5", "wins": "3", "total_pips": "1"}
    write_index(tmp_path, [good, {**good, "run_id": run_id}])
    problems: list[Problem] = []
    rows = read_run_index(tmp_path, problems)
    assert [(r["run_id"], r["run_dir"]) for r in rows] == [("ok", None)]  # an empty run_dir is None
    assert len(problems) == 1 and str(problems[0]).startswith(f"runs/index.csv:3: {reason}")


def test_dashboard_never_reads_or_names_a_daily_csv_outside_the_data_root(repo, tmp_path, capsys):
    outside = tmp_path / "qa_outside"
    outside.mkdir()
    marker = "2026-03-10,99,0,0,0,0,77,77,777.0\n"  # rows nobody else has
    (outside / "daily.csv").write_text(f"{HEADER}\n{marker}")
    index = repo / "runs/index.csv"
    lines = index.read_text().splitlines()
    up = "../" * len(repo.resolve().parts)
    rows = [line.split(",") for line in lines[1:3]]
    rows[0][1] = f"{up}{str(outside).lstrip('/')}"  # relative, climbing out
    rows[1][1] = str(outside)                       # absolute
    index.write_text("\n".join([lines[0], *(",".join(r) for r in rows), *lines[3:]]) + "\n")
    kit = tmp_path / "kit"
    rc = main(["dashboard", "export", "--work-root", str(kit), "--data-root", str(repo), "--now", NOW])
    assert rc == 0, capsys.readouterr().err
    bundle = kit / "out/dashboard"
    turnover = json.loads((bundle / "turnover_summary.json").read_text())
    assert all(r["fills"] != 77 for r in turnover["rows"])
    assert sum("outside the data root" in w for w in turnover["warnings"]) == 2
    for name in ("manifest.json", "README.json"):
        assert str(outside) not in (bundle / name).read_text()
    assert not any(str(outside) in json.dumps(r) for r in turnover["rows"])


def test_weekly_baseline_paths_outside_the_data_root_are_problems(repo):
    rep = repo / "reports/baseline/USDJPY_conservative.json"
    doc = json.loads(rep.read_text())
    rep.write_text(json.dumps({**doc, "run_dir": "/tmp/qa_outside", "state_archive_path": "/etc/hostname"}))
    cfg = load_config(repo.parent / "kit")
    payload = build_weekly_payload(repo, parse_week_start("2026-03-09"), cfg=cfg, now=NOW_DT, job_id="j1",
                                   command="test", sha=None, data_label="demo", allow_bad_rows=True)
    reasons = [p["reason"] for p in payload["provenance"]["input_problems"]]
    assert any(r.startswith('run_dir "/tmp/qa_outside" outside the data root') for r in reasons), reasons
    assert any(r.startswith('state_archive_path "/etc/hostname" outside the data root') for r in reasons), reasons
    assert not any("not found" in r and "qa_outside" in r for r in reasons)
    assert "/etc/hostname" not in payload["provenance"].get("inputs", [])


# --------------------------------------------------------------------------- follow-up C: one strict number, dates

@pytest.mark.parametrize("cell, reason", [
    ("1_000", "column 'pnl_pips': '1_000' is not a number"),
    ("\uff15", "column 'pnl_pips': '\uff15' is not a number"),
    (" 2 ", "column 'pnl_pips': ' 2 ' is not a number"),
    ("\u0661", "column 'pnl_pips': '\u0661' is not a number"),  # one more: Arabic-Indic digit one
    ("0x10", "column 'pnl_pips': '0x10' is not a number"),
])
def test_numbers_python_float_takes_are_bad_rows_in_both_readers(tmp_path, cell, reason):
    write_daily(tmp_path, "2024-01-09,1,1,0,1,0,1,1,1.0\n" + f"2024-01-08,5,3,2,3,0,2,1,{cell}\n")
    r1, r2, p1, p2 = both(tmp_path)
    assert p1 == p2 == [f"{REL}:3: {reason}"]
    assert r1 == r2 and [r[1] for r in r1] == ["2024-01-09"]


def test_negative_zero_reads_as_zero_in_messages_and_values(tmp_path):
    write_daily(tmp_path, "2024-01-08,5,3,2,3,0,-0,1,4.0\n" + "2024-01-09,-0,1,0,1,0,1,1,-0\n")
    r1, r2, p1, p2 = both(tmp_path)
    assert p1 == p2 == [f"{REL}:2: wins 1 > fills 0"]
    assert r1 == r2 == [(0, "2024-01-09", 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0)]
    assert str(r2[0][2]) == "0.0" and str(r1[0][-1]) == "0.0"  # not -0.0


def test_index_numbers_and_timestamps_follow_the_same_contract(tmp_path):
    good = {"run_id": "ok", "run_dir": "runs/ok", "timestamp": "20250921_130118", "symbol": "S", "mode": "m",
            "trades": "5", "wins": "3", "total_pips": "1"}
    write_index(tmp_path, [good, {**good, "run_id": "u", "trades": "1_000"},
                           {**good, "run_id": "fw", "total_pips": "\uff15"},
                           {**good, "run_id": "sp", "wins": " 2 "},
                           {**good, "run_id": "dash", "timestamp": "20260601-120000"},
                           {**good, "run_id": "tee", "timestamp": "20260601T120000"},
                           {**good, "run_id": "na", "timestamp": "NA"},
                           {**good, "run_id": "iso", "timestamp": "2026-06-01T12:00:00Z"}])
    problems: list[Problem] = []
    rows = read_run_index(tmp_path, problems)
    assert [(r["run_id"], r["timestamp"]) for r in rows] == [("iso", "2026-06-01T12:00:00Z"), ("na", None),
                                                              ("ok", "20250921_130118")]
    assert [str(p) for p in problems] == [
        "runs/index.csv:3: column 'trades': '1_000' is not a number",
        "runs/index.csv:4: column 'total_pips': '\uff15' is not a number",
        "runs/index.csv:5: column 'wins': ' 2 ' is not a number",
        "runs/index.csv:6: timestamp '20260601-120000' is not a date and time (YYYYMMDD_HHMMSS or ISO 8601)",
        "runs/index.csv:7: timestamp '20260601T120000' is not a date and time (YYYYMMDD_HHMMSS or ISO 8601)",
    ]


@pytest.mark.parametrize("value, reason", [
    ("2026-W48", "week_start '2026-W48' is not a date (YYYY-MM-DD)"),
    ("20261123", "week_start '20261123' is not a date (YYYY-MM-DD)"),
    ("2026-W48-1", "week_start '2026-W48-1' is not a date (YYYY-MM-DD)"),  # one more ISO form fromisoformat takes
    ("1969-12-29", "week_start 1969-12-29 is out of range (1970-01-01..2099-12-31)"),
    ("2100-01-04", "week_start 2100-01-04 is out of range (1970-01-01..2099-12-31)"),
])
def test_week_start_is_exactly_yyyy_mm_dd_in_range(tmp_path, capsys, value, reason):
    with pytest.raises(ValueError) as exc:
        parse_week_start(value)
    assert str(exc.value) == reason
    rc = main(["weekly", "run", "--week-start", value, "--work-root", str(tmp_path / "w"), "--now", NOW])
    assert rc == 2 and reason in capsys.readouterr().err
    assert not (tmp_path / "w/out/weekly_report").exists()
    assert parse_week_start("2026-11-23") == datetime(2026, 11, 23, tzinfo=UTC)
    assert parse_week_start("1970-01-05") == datetime(1970, 1, 5, tzinfo=UTC)
