"""The dashboard notebook's helpers (``obslib.dashboard.report``) on hand-made tables: the
per-week turnover aggregates (numpy, from the Arrow buffers), the latest EV snapshot per
series, the latency summary, and a kernel that never imports pandas. Every expected value
is worked out by hand from the rows written here."""

from __future__ import annotations

import math
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from obslib.dashboard import report as dr
from obslib.dashboard.result import ExportResult

UTC = timezone.utc
W1, W2 = datetime(2025, 9, 1, tzinfo=UTC), datetime(2025, 9, 8, tzinfo=UTC)
# run_id, week, trades/day, fills, wins, missing days, drawdown %
TURNOVER = [
    ("r1", W1, 1.0, 10, 6, 0, -0.5),
    ("r2", W1, 4.0, 20, 5, 2, -1.25),
    ("r3", W1, 2.0, None, 3, None, None),
    ("r3", W1, None, 4, 1, 1, -0.25),  # a second row of r3 in W1: still one run
    ("r1", W2, 3.0, 0, 0, 0, -0.1),
    ("r2", W2, 5.0, 8, 2, 0, None),
]


def _turnover(rows=TURNOVER) -> pa.Table:
    keys = ("run_id", "week_start", "avg_trades_per_day", "fills", "wins", "missing_day_count", "drawdown_pct")
    schema = pa.schema([("run_id", pa.string()), ("week_start", pa.timestamp("us", tz="UTC")),
                        ("avg_trades_per_day", pa.float64()), ("fills", pa.int64()), ("wins", pa.int64()),
                        ("missing_day_count", pa.int64()), ("drawdown_pct", pa.float64())])
    return pa.Table.from_pylist([dict(zip(keys, r, strict=True)) for r in rows], schema=schema)


# by hand: W1 trades {1, 4, 2} (the NaN row skipped) sorted 1, 2, 4 -> mean 7/3, median 2,
# p10 at rank 0.2: 1 + 0.2 * (2 - 1) = 1.2, p90 at rank 1.8: 2 + 0.8 * (4 - 2) = 3.6; runs r1 r2 r3 = 3;
# fills 10 + 20 + 4 = 34 (null skipped), wins 15, missing > 0: r2 and r3's second row = 2, drawdown -1.25.
# W2 trades {3, 5}: mean 4, median (3 + 5) / 2 = 4, p10 3.2, p90 4.8; runs 2; fills 8, wins 2, drawdown -0.1.
EXPECTED = [
    {"week_start": W1, "runs": 3, "mean": 7 / 3, "p10": 1.2, "median": 2.0, "p90": 3.6, "fills": 34.0, "wins": 15.0,
     "missing": 2, "drawdown": -1.25},
    {"week_start": W2, "runs": 2, "mean": 4.0, "p10": 3.2, "median": 4.0, "p90": 4.8, "fills": 8.0, "wins": 2.0,
     "missing": 0, "drawdown": -0.1},
]


def _close(got: list[dict], want: list[dict]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.keys() == w.keys()
        for k, v in w.items():
            assert g[k] == pytest.approx(v, rel=1e-12) if isinstance(v, float) else g[k] == v, (k, g[k], v)


def test_turnover_weeks_by_hand():
    _close(dr.turnover_weeks(_turnover()), EXPECTED)


def test_turnover_weeks_same_from_parquet_chunks_and_pandas(tmp_path):
    """Read back as the notebook reads it (run ids dictionary-encoded, several row groups,
    each with its own dictionary) and from a DataFrame: the same weeks."""
    p = tmp_path / "turnover_summary.parquet"
    pq.write_table(_turnover(), p, row_group_size=4)
    t = dr.read_dataset(p)
    assert pa.types.is_dictionary(t.schema.field("run_id").type) and t.column("run_id").num_chunks == 2
    _close(dr.turnover_weeks(t), EXPECTED)
    _close(dr.turnover_weeks(_turnover().to_pandas()), EXPECTED)
    reversed_rows = pa.Table.from_pylist(_turnover().to_pylist()[::-1], schema=_turnover().schema)
    _close(dr.turnover_weeks(reversed_rows), EXPECTED)


def test_turnover_table_reading_and_win_rate():
    t = dr.turnover_table(_turnover())
    # newest first; win rate = wins / fills (W1 15/34, W2 2/8)
    assert t.column("week_start") == [W2, W1]
    assert t.column("win_rate") == pytest.approx([0.25, 15 / 34])
    assert t.cells()[0] == ["2025-09-08", "2", "4.00", "4.00", "4.80", "25.0", "0", "-0.100"]
    # 3 runs, 2 weeks, 6 rows; median of {1, 4, 2, 3, 5} = 3; 2 rows with missing days; worst -1.25
    assert t.reading == ("3 runs × 2 weeks = 6 rows; median 3.00 trades/day; 2 run-week(s) with missing trading "
                         "days; worst weekly drawdown -1.250 % of equity.")


def test_turnover_key_figure_is_the_latest_week():
    run = dr.DashboardRun(ExportResult(sequence=1), Path("."), Path("."))
    (fig,) = [f for f in dr.key_figures(run, {"turnover_summary": _turnover()}) if f.label == "Turnover, last week"]
    assert (fig.value, fig.detail) == ("4.00", "mean of 2 runs · week of 2025-09-08")


def test_turnover_weeks_without_values_gives_blanks_not_zeros():
    rows = [("r1", W1, None, None, 1, None, None)]
    (week,) = dr.turnover_weeks(_turnover(rows))
    assert week["runs"] == 1 and week["fills"] == 0.0 and week["missing"] == 0
    assert all(math.isnan(week[k]) for k in ("mean", "p10", "median", "p90", "drawdown"))
    assert dr.turnover_table(_turnover(rows)).cells()[0][2:5] == ["", "", ""]


def test_plot_turnover_draws_the_weekly_aggregates():
    import matplotlib

    matplotlib.use("Agg")
    fig = dr.plot_turnover(_turnover())
    (ax,) = fig.axes
    matplotlib.pyplot.close(fig)
    lines = {ln.get_label(): list(ln.get_ydata()) for ln in ax.get_lines()}
    assert lines["mean"] == pytest.approx([7 / 3, 4.0]) and lines["median"] == pytest.approx([2.0, 4.0])
    assert ax.get_ylim()[1] == pytest.approx(4.8 * 1.2)  # the largest p90


def _ev(rows) -> pa.Table:
    keys = ("strategy", "strategy_source", "symbol", "mode", "generated_at", "win_rate_lcb", "win_rate_point",
            "ev_trend_7d")
    return pa.Table.from_pylist([dict(zip(keys, r, strict=True)) for r in rows])


def test_ev_table_shows_the_latest_snapshot_as_written():
    t0 = datetime(2025, 10, 1, 12, tzinfo=UTC)
    rows = [("b", "b.B", "USDJPY", "bridge", t0 + timedelta(days=2), 0.30, None, None),  # latest: no mean, no trend
            ("b", "b.B2", "USDJPY", "bridge", t0, 0.20, 0.55, 0.01),
            ("a", "a.A", "EURUSD", "conservative", t0 + timedelta(days=1), 0.41, 0.52, -0.002)]
    t = dr.ev_table(_ev(rows))
    assert t.cells() == [
        ["a", "EURUSD", "conservative", "1", "2025-10-02 12:00", "2025-10-02 12:00", "41.0", "52.0", "-0.2"],
        ["b", "USDJPY", "bridge", "2", "2025-10-01 12:00", "2025-10-03 12:00", "30.0", "", ""]]
    assert t.reading == ("3 snapshots over 2 series of 2 strategies; most: b USDJPY bridge (2). Latest win-rate LCB "
                         "range 30.0–41.0 %.")
    assert dr.strategy_table(_ev(rows)).cells() == [["a", "a.A"], ["b", "b.B, b.B2"]]


def test_latency_table_per_source():
    h = datetime(2025, 10, 1, tzinfo=UTC)
    t = pa.Table.from_pylist([
        {"hour_utc": h + timedelta(hours=1), "source": "feed", "p95_ms": 900.0, "breach_flag": None},
        {"hour_utc": h, "source": "feed", "p95_ms": 150000.0, "breach_flag": True},
        {"hour_utc": h, "source": "alt", "p95_ms": None, "breach_flag": False}])
    assert dr.latency_table(t).cells() == [["alt", "1", "2025-10-01 00:00", "", "", "0"],
                                           ["feed", "2", "2025-10-01 01:00", "900", "150,000", "1"]]


def test_the_kernel_reads_and_summarises_without_pandas(tmp_path):
    """Importing pandas costs the notebook ~0.3 s: the report helpers read the Parquet files
    with pyarrow and summarise them without it (and without the export code)."""
    out = tmp_path / "out" / "dashboard"
    out.mkdir(parents=True)
    pq.write_table(_turnover(), out / "turnover_summary.parquet")
    code = ("import sys\nfrom obslib.dashboard import report as dr\nfrom obslib.dashboard.result import ExportResult\n"
            f"run = dr.DashboardRun(ExportResult(sequence=1), {str(tmp_path)!r}, '.')\n"
            "frames = {n: run.frame(n) for n in ('ev_history', 'slippage_telemetry', 'turnover_summary', "
            "'latency_rollups')}\n"
            "str(dr.summary(run, frames)); str(dr.turnover_table(frames['turnover_summary']))\n"
            "print(sorted(m for m in ('pandas', 'pyarrow.dataset', 'obslib.dashboard.bundle') if m in sys.modules))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "[]"


def test_the_latency_plot_spans_the_stated_window_even_for_one_hour():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates

    hour = datetime(2025, 10, 3, 14, tzinfo=timezone.utc)
    rows = pa.table({"hour_utc": pa.array([hour], pa.timestamp("us", tz="UTC")), "source": ["router"],
                     "p95_ms": [420.0], "breach_flag": [False]})
    fig = dr.plot_latency(rows, slo_ms=1000.0, days=7)
    lo, hi = fig.axes[0].get_xlim()
    # 7 days before the last hour to the end of that hour (matplotlib dates are days)
    assert mdates.num2date(lo) == hour - timedelta(days=7)
    assert mdates.num2date(hi) == hour + timedelta(hours=1)
