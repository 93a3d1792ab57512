"""Dataset builders on a tiny hand-made repository; expected values worked out by hand."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone

import pandas as pd
import pytest
from dashboard_fixtures import DAILY_HEADER, make_repo, snapshot, write_daily, write_rollup

from obslib.dashboard.datasets import build_ev_history, build_latency_rollups, build_slippage_telemetry
from obslib.dashboard.turnover import build_turnover_summary
from obslib.inputs import Problem
from obslib.inputs.daily_frame import read_daily_frame

NOW = datetime(2024, 1, 20, tzinfo=timezone.utc)


@pytest.fixture
def repo(tmp_path):
    return make_repo(tmp_path / "repo")


def _row(df, run, week):
    sel = df[(df["run_id"] == run) & (df["week_start"] == pd.Timestamp(week, tz="UTC"))]
    assert len(sel) == 1
    return sel.iloc[0]


def test_turnover_by_hand(repo):
    res = build_turnover_summary(repo)
    df = res.frame
    assert len(df) == 3
    a1 = _row(df, "run_A_20240115_000000", "2024-01-01")
    assert (a1["days_reported"], a1["active_days"], a1["fills"], a1["wins"]) == (4, 3, 6, 3)
    assert a1["pnl_pips"] == -10.0
    assert a1["avg_trades_per_day"] == 1.5 and a1["avg_trades_active_day"] == 2.0 and a1["win_rate"] == 0.5
    assert a1["pnl_per_trade"] == -1.67 and a1["active_day_ratio"] == 0.75  # -10 / 6 pips, 2 decimals
    assert a1["drawdown_pips"] == 25.0 and a1["drawdown_pct"] == pytest.approx(-0.25)
    assert list(a1["missing_days"]) == ["2024-01-03", "2024-01-07"] and a1["missing_day_count"] == 2
    assert "week_end" not in df and "pip_value" not in df  # redundant: week_start + 7 days; one per export
    # per-run span: run A's rows run 2024-01-01 .. 2024-01-14, run B's 2024-01-08 .. 2024-01-11 (fixture)
    for row in (a1, _row(df, "run_A_20240115_000000", "2024-01-08")):
        assert (row["start_ts"], row["end_ts"]) == (pd.Timestamp("2024-01-01", tz="UTC"),
                                                    pd.Timestamp("2024-01-14", tz="UTC"))
    b_span = _row(df, "run_B_20240115_000000", "2024-01-08")
    assert (b_span["start_ts"], b_span["end_ts"]) == (pd.Timestamp("2024-01-08", tz="UTC"),
                                                      pd.Timestamp("2024-01-11", tz="UTC"))
    a2 = _row(df, "run_A_20240115_000000", "2024-01-08")
    assert (a2["days_reported"], a2["active_days"], a2["fills"], a2["wins"]) == (6, 3, 7, 4)
    assert a2["avg_trades_per_day"] == 1.167 and a2["avg_trades_active_day"] == 2.333  # 7/6, 7/3: 3 decimals
    assert a2["drawdown_pips"] == 8.0 and a2["drawdown_pct"] == pytest.approx(-0.08)
    assert a2["missing_day_count"] == 0 and list(a2["missing_days"]) == []
    b = _row(df, "run_B_20240115_000000", "2024-01-08")
    assert list(b["missing_days"]) == ["2024-01-10"]  # no Sundays in run B: Sunday never expected
    assert b["drawdown_pips"] == 2.0 and b["drawdown_pct"] == pytest.approx(-100 * 2 * 10 / 50000)
    assert b["equity"] == 50000.0
    assert any("1 of 3 runs" in w for w in res.warnings)
    assert ("data", "runs/run_A_20240115_000000/daily.csv") in res.inputs


def test_turnover_pip_value_and_all_zero_week(repo):
    write_daily(repo, "run_B_20240115_000000", [("2024-01-08", 0, 0, 0.0), ("2024-01-09", 0, 0, 0.0)])
    df = build_turnover_summary(repo, pip_value=1.0).frame
    b = _row(df, "run_B_20240115_000000", "2024-01-08")
    assert b["avg_trades_per_day"] == 0.0
    assert pd.isna(b["avg_trades_active_day"]) and pd.isna(b["win_rate"]) and pd.isna(b["pnl_per_trade"])
    assert b["drawdown_pct"] == 0.0 and not math.copysign(1, b["drawdown_pct"]) < 0
    a1 = _row(df, "run_A_20240115_000000", "2024-01-01")
    assert a1["drawdown_pct"] == pytest.approx(-0.025)


def test_daily_frame_reports_bad_rows_with_lines(repo):
    p = write_daily(repo, "run_B_20240115_000000", [("2024-01-08", 1, 1, 3.0)],
                    extra_lines="2024-01-09,5,3,2,3,0,x,0,1.0\n2024-01-10,5,3\n2024-01-11,5,3,2,3,0,,0,1.0\n"
                                "2024-01-12,5,3,2,3,0,2,1,4.0\n")
    assert p.read_text().startswith(DAILY_HEADER)
    problems: list[Problem] = []
    df = read_daily_frame(repo, ["runs/run_A_20240115_000000", "runs/run_B_20240115_000000", None], problems)
    by_line = {(pr.path, pr.line) for pr in problems}
    rel = "runs/run_B_20240115_000000/daily.csv"
    assert {(rel, 3), (rel, 4), (rel, 5)} == by_line  # 'x', too few fields, empty fills
    b = df[df["run_key"] == 1]
    assert len(b) == 2 and b["fills"].tolist() == [1.0, 2.0]
    assert len(df[df["run_key"] == 0]) == 10


def test_daily_frame_fast_path_lines_and_duplicates(repo):
    write_daily(repo, "run_B_20240115_000000",
                [("2024-01-08", 1, 1, 3.0), ("2024-01-09", 1, 0, -2.0), ("2024-01-09", 5, 5, 9.0)])
    problems: list[Problem] = []
    df = read_daily_frame(repo, ["runs/run_A_20240115_000000", "runs/run_B_20240115_000000"], problems)
    assert [(p.line, p.reason.split(" (")[0]) for p in problems] == [(4, "duplicate date 2024-01-09")]
    assert df[df["run_key"] == 1]["fills"].tolist() == [1.0, 1.0]


def test_ev_history_by_hand(repo):
    res = build_ev_history(repo)
    df = res.frame
    assert len(df) == 4
    one = df[df["strategy_source"] == "strat.One"].reset_index(drop=True)
    assert one["win_rate_point"].tolist() == pytest.approx([0.4, 0.5, 0.6])
    assert pd.isna(one.loc[0, "ev_trend_7d"]) and pd.isna(one.loc[1, "ev_trend_7d"])
    assert one.loc[2, "ev_trend_7d"] == pytest.approx(0.2)
    two = df[df["strategy_source"] == "strat.Two"].iloc[0]
    assert (two["symbol"], two["mode"]) == ("EURUSD", "bridge")
    assert two["win_rate_lcb"] == pytest.approx(0.41890, abs=5e-6)
    assert two["generated_at"] == pd.Timestamp("2024-01-02", tz="UTC")
    assert any("outside <strategy>/<symbol>/<mode>" in w for w in res.warnings)


def test_ev_history_duplicate_stamp(repo):
    k1 = repo / "ops" / "state_archive" / "strat.One" / "USDJPY" / "conservative"
    (k1 / "20240109_000000_copy.json").write_text(json.dumps(snapshot(30.0, 20.0)))
    res = build_ev_history(repo)
    assert len(res.frame) == 4 and any("same stamp and EV values" in w for w in res.warnings)
    (k1 / "20240109_000000_other.json").write_text(json.dumps(snapshot(31.0, 19.0)))
    from obslib.dashboard.rules import encode_and_check

    res = build_ev_history(repo)
    data, violations = encode_and_check("ev_history", res.frame, NOW, res.warnings)
    assert data is None and violations[0].rule == "generated_at_strictly_increasing"
    assert "20240109_000000_other.json" in violations[0].message


def test_slippage_by_hand(repo):
    res = build_slippage_telemetry(repo, NOW)
    df = res.frame
    assert df["strategy"].tolist() == ["alpha", "beta", "gamma"]  # canonical ids (version tag dropped)
    assert df["strategy_source"].tolist() == ["alpha_v1", "beta_v1", "gamma_v1"]
    sd = math.sqrt(((2 - 4) ** 2 + 0 + (6 - 4) ** 2) / 3)
    assert df["slippage_zscore"].tolist() == pytest.approx([-2 / sd, 0.0, 2 / sd])
    assert (df["generated_at"] == pd.Timestamp("2024-01-15T06:00:00Z")).all()
    assert set(df["generated_at_source"]) == {"portfolio_summary"}
    assert df["fill_count"].isna().all() and df["window_days"].isna().all()
    assert sum("not invented" in w for w in res.warnings) == 2


def test_slippage_time_precedence_and_single_strategy(tmp_path):
    tel = {"generated_at": "2024-01-16T01:02:03Z",
           "execution_health": {"solo": {"reject_rate": 0.5, "slippage_bps": 1.0, "fill_count": 12,
                                         "window_days": 14}}}
    root = make_repo(tmp_path / "r", telemetry=tel)
    df = build_slippage_telemetry(root, NOW).frame
    assert df.loc[0, "generated_at_source"] == "telemetry"
    assert df.loc[0, "generated_at"] == pd.Timestamp("2024-01-16T01:02:03Z")
    assert df.loc[0, "fill_count"] == 12 and df.loc[0, "window_days"] == 14
    assert pd.isna(df.loc[0, "slippage_zscore"])
    root2 = make_repo(tmp_path / "r2", telemetry={"execution_health": {"a": {"slippage_bps": 1.0}}},
                      summary_generated_at=None)
    df2 = build_slippage_telemetry(root2, NOW).frame
    assert df2.loc[0, "generated_at_source"] == "export_time" and df2.loc[0, "generated_at"] == pd.Timestamp(NOW)


def test_latency_rollups_streaks(tmp_path):
    write_rollup(tmp_path)
    res = build_latency_rollups(tmp_path)
    df = res.frame
    got = [(r.hour_utc.hour, r.source, r.streak_id, int(r.streak_length)) for r in df.itertuples()]
    assert got == [(0, "feed", None, 0), (0, "router", "router@2024-01-15T00:00:00Z", 1),
                   (1, "router", "router@2024-01-15T00:00:00Z", 2), (3, "router", "router@2024-01-15T03:00:00Z", 1),
                   (4, "router", None, 0)]
    assert any("1 hour(s) with no successful sample" in w for w in res.warnings)


def test_latency_rollups_absent_file(tmp_path):
    res = build_latency_rollups(tmp_path)
    assert len(res.frame) == 0 and "not found" in res.warnings[0]
