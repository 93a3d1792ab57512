"""The report notebook's helpers (``obslib.weekly.report``) and the kernel session, with expected
values computed by hand or by reading the files directly (not through the code under test)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from obslib.errors import ObsError
from obslib.notebook import kernel_session
from obslib.weekly import report

WEEK = {"week_start": "2026-11-23T00:00:00Z", "week_end": "2026-11-30T00:00:00Z"}


def _write_latency(root: Path, rows: list[tuple[str, float, str]]) -> None:
    (root / "ops").mkdir(parents=True, exist_ok=True)
    lines = ["timestamp_utc,latency_ms,status,detail,source"]
    lines += [f"{ts},{ms},success,,{src}" for ts, ms, src in rows]
    (root / "ops/signal_latency.csv").write_text("\n".join(lines) + "\n")


def _with_latency(root: Path) -> dict:
    """WEEK plus the payload's latency section (its ``hourly`` series comes from the latency
    query; the report helper only reshapes it)."""
    from obslib.config import load_config
    from obslib.timeutil import parse_ts
    from obslib.weekly.payload import _latency

    cfg = load_config(root / "work", env={}, overrides={"data_root": str(root)})
    lat = _latency(root, cfg, parse_ts(WEEK["week_start"]), parse_ts(WEEK["week_end"]), [], [], [])
    return {**WEEK, "latency": lat}


def test_latency_hourly_is_type7_p95_per_source_per_hour(tmp_path):
    rows = [(f"2026-11-24T10:{m:02d}:00Z", 100.0 * (i + 1), "feed_a") for i, m in enumerate(range(0, 50, 5))]
    rows += [("2026-11-24T11:15:00Z", 50.0, "feed_a"),
             ("2026-11-24T10:10:00Z", 10.0, "feed_b"), ("2026-11-24T10:59:59Z", 30.0, "feed_b"),
             ("2026-11-22T23:59:59Z", 9999.0, "feed_a"),   # before the week
             ("2026-11-30T00:00:00Z", 9999.0, "feed_b")]   # week_end is exclusive
    _write_latency(tmp_path, rows)
    got = report.latency_hourly(tmp_path, _with_latency(tmp_path))
    h10 = datetime(2026, 11, 24, 10, tzinfo=timezone.utc)
    h11 = datetime(2026, 11, 24, 11, tzinfo=timezone.utc)
    # feed_a 10:00: 100..1000 ms -> rank 0.95*9 = 8.55 -> 900 + 0.55*100 = 955
    # feed_b 10:00: 10, 30 -> 10 + 0.95*20 = 29
    assert got["feed_a"] == [(h10, pytest.approx(955.0)), (h11, pytest.approx(50.0))]
    assert got["feed_b"] == [(h10, pytest.approx(29.0))]


def test_latency_hourly_empty_week_is_empty(tmp_path):
    _write_latency(tmp_path, [("2026-11-01T10:00:00Z", 5.0, "feed_a")])
    assert report.latency_hourly(tmp_path, _with_latency(tmp_path)) == {}


def test_table_units_precision_alignment_and_blanks():
    from obslib.presentation import Col, Table

    cols = [Col("name", "name", "id"), Col("ev", "EV (pips/trade)", "num", 3), Col("rate", "reject rate (%)", "pct", 1),
            Col("n", "trades", "int"), Col("stale", "stale", "bool"), Col("t", "time (UTC)", "time")]
    t = Table(cols, [{"name": "a<b", "ev": 0.0593962, "rate": 0.012, "n": 4266, "stale": True,
                      "t": "2025-09-29T00:10:00Z"},
                     {"name": "c", "ev": float("nan"), "rate": None, "stale": False}], "reading")
    html = t._repr_html_()
    assert html.count("<tr>") == 3 and "<th></th>" not in html  # header + 2 rows, no index column
    assert [h.split(">")[-1] for h in re.findall(r"<th class=[^>]*>[^<]*", html)] == [
        "name", "EV (pips/trade)", "reject rate (%)", "trades", "stale", "time (UTC)"]
    cells = re.findall(r"<td[^>]*>(.*?)</td>", html)
    assert cells == ["a&lt;b", "0.059", "1.2", "4,266", "✓", "2025-09-29 00:10", "c", "", "", "", "", ""]
    numeric = re.findall(r'<td class="([^"]*)">0.059', html)
    assert numeric == ["obs-num obs-n"]  # numbers right-aligned (obs-n), text left
    assert '<td class="obs-id">a&lt;b' in html
    text = str(t).splitlines()
    assert text[0] == "reading" and text[1].split()[:3] == ["name", "EV", "(pips/trade)"]
    assert "True" not in str(t) and "False" not in str(t) and "nan" not in str(t) and "None" not in str(t)
    assert t.column("n") == [4266, None]


def test_long_table_is_cut_with_a_note():
    from obslib.presentation import Col, Table

    t = Table([Col("i", "i", "int")], [{"i": i} for i in range(30)], max_rows=8, note="Full data: x.parquet.")
    html = t._repr_html_()
    assert html.count("<tr>") == 9 and "22 more row(s) not shown. Full data: x.parquet." in html


HAND = {"week_start": "2026-11-23T00:00:00Z", "week_end": "2026-11-30T00:00:00Z", "generated_at": "2026-11-30T01:00:00Z",
        "runs": {"baseline": [{"run_id": "B", "ev": {"latest": 0.5, "trend_7d": -0.1}, "win_rate_lcb": 0.4,
                               "as_of": "2026-11-20T00:00:00Z", "stale": True}],
                 "rolling": [{"run_id": "R_rolling_90d", "window_days": 90, "ev": {"latest": 1.0},
                              "turnover": {"avg_trades_per_day": 0.25}, "as_of": "2026-11-20T00:00:00Z",
                              "stale": False}],
                 "week_summary": {"runs": 3, "trades": 30, "wins": 12, "ev_per_trade": 0.1, "win_rate_lcb": 0.25},
                 "week": [{"run_id": f"r{i}", "timestamp": "2026-11-24T10:00:00Z", "symbol": "USDJPY",
                           "mode": "bridge", "trades": 10, "wins": 4, "ev": {"latest": ev}, "win_rate_lcb": 0.2}
                          for i, ev in enumerate((0.5, -1.0, 0.2))]},
        "utilisation": {"categories": [{"name": "day", "utilisation_pct": 9.0, "budget_pct": 10.0,
                                        "headroom_pct": 1.0, "status": "warning"},
                                       {"name": "swing", "utilisation_pct": 2.0, "budget_pct": 10.0,
                                        "headroom_pct": 8.0, "status": "ok"}]},
        "execution_health": {"slippage_bps": {"s1": 2.5, "s2": 4.1}, "reject_rate": {"s1": 0.01},
                             "strategy_source": {"s1": "s1_v1", "s2": "strategies.s2.S2"}},
        "latency": {"p95_ms": None, "sources": [], "samples": 0, "slo_ms": 250.0, "breaches": []},
        "alerts": [{"id": "a", "severity": "warning", "message": "m", "owner": "o", "next_action": "docs/runbook.md#x"},
                   {"id": "b", "severity": "info", "message": "m", "owner": "o", "next_action": "docs/runbook.md#y"}],
        "provenance": {"data_root": "demo (seed 7)", "generated_at": "2026-11-30T01:00:00Z", "job_id": "j",
                       "source_command": "c", "commit_sha": None, "inputs": []}}


def test_section_tables_on_a_hand_made_payload():
    p = HAND
    runs = report.runs_table(p)
    assert runs.column("kind") == ["baseline", "rolling 90 d"] and runs.column("avg_trades_per_day") == [None, 0.25]
    assert runs.reading == "Baseline EV 0.500 pips/trade, win-rate LCB 40.0 %; 2 benchmark(s), 1 stale."
    assert report.utilisation_table(p).reading == "Attention: day warning."
    ex = report.execution_table(p)
    assert ex.column("reject_rate") == [0.01, None] and ex.column("source") == ["s1_v1", "strategies.s2.S2"]
    assert ex.cells()[0] == ["s1", "s1_v1", "2.5", "1.0"]  # reject rate shown in percent, as headed
    assert ex.reading == "Highest slippage: s2 at 4.1 bps."
    assert report.latency_table(p).reading.startswith("No latency samples this week")
    assert [r["run_id"] for r in report.best_runs_table(p).rows] == ["r0", "r2", "r1"]
    assert [r["run_id"] for r in report.worst_runs_table(p, 1).rows] == ["r1"]
    assert report.week_runs_table(p).rows == [p["runs"]["week_summary"]]
    assert "Every run is listed" in report.week_runs_table(p).note


def test_summary_banner_figures_and_alerts():
    prev = json.loads(json.dumps(HAND))
    prev["runs"]["week_summary"]["runs"] = 5
    prev["utilisation"]["categories"][0]["headroom_pct"] = 3.0
    s = report.summary(report.WeeklyReport(HAND, Path("payload.json"), Path("."), prev, "../../../docs/runbook.md"))
    assert s.status == "warning" and s.title == "Weekly observability report — 2026-11-23 — demo (seed 7)"
    assert s.facts[0] == "Week 2026-11-23 → 2026-11-29 (UTC)" and s.headline == "1 warning, 1 info."
    figs = {f.label: f for f in s.figures}
    assert (figs["Baseline EV"].value, figs["Baseline EV"].unit) == ("0.500", "pips/trade")
    assert figs["Baseline EV"].status == "warning"  # stale baseline
    head = figs["Worst utilisation headroom"]
    assert (head.value, head.status, head.change) == ("1.0", "warning", "-2.0 pp vs previous week")
    assert figs["Runs this week"].change == "-2 runs vs previous week"
    assert figs["Latency p95 vs SLO"].value == "no data" and figs["Latency p95 vs SLO"].status == "unknown"
    data, meta = s._repr_mimebundle_()
    assert meta == {"obslib": {"title": s.title}}
    assert 'id="obs-banner"' in data["text/html"] and 'id="obs-alerts"' in data["text/html"]
    assert '<a href="../../../docs/runbook.md#x">x</a>' in data["text/html"]
    assert "WARNING" in data["text/plain"]


def test_ev_history_one_key_per_strategy_before_the_cutoff(real_root):
    from obslib.inputs.strategy import strategy_id

    cutoff = "2025-10-06T00:00:00Z"
    arch = real_root / "ops/state_archive"
    expected: dict[tuple, int] = {}
    for f in arch.glob("*/*/*/*.json"):  # the layout's depth; count by file-name stamp
        stamp = datetime.strptime(f.name[:15], "%Y%m%d_%H%M%S").replace(tzinfo=timezone.utc)
        data = json.loads(f.read_text())
        if stamp < datetime(2025, 10, 6, tzinfo=timezone.utc) and "alpha" in data.get("ev_global", {}):
            folder, symbol, mode = f.relative_to(arch).parts[:3]
            key = (strategy_id(folder), f"{symbol} {mode}")
            expected[key] = expected.get(key, 0) + 1
    got = report.ev_history(real_root, cutoff)
    assert {(s, k): len(v) for s, series in got.items() for k, v in series.items()} == expected and expected
    assert sorted(got) == ["day_orb_5m", "mean_reversion", "session_momentum_continuation", "tokyo_micro_mean_reversion"]
    for series in got.values():
        for pts in series.values():
            assert [t for t, _, _ in pts] == sorted(t for t, _, _ in pts)
            for _, lcb, point in pts:
                assert 0 <= lcb <= point <= 1  # a lower confidence bound is below the posterior mean


def test_kernel_session_unknown_kernel_is_a_clear_error():
    with pytest.raises(ObsError, match="not installed: run `make install`"):
        with kernel_session("no-such-kernel-obslib-test"):
            pass


def test_console_entry_keeps_exit_codes_and_output(tmp_path):
    ok = subprocess.run([sys.executable, "-m", "obslib", "--version"], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and ok.stdout.startswith("obs ")
    bad = subprocess.run([sys.executable, "-m", "obslib", "weekly", "run", "--week-start", "2026-13-01",
                          "--work-root", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--week-start" in bad.stderr
    assert json.loads(bad.stdout)["status"] == "error"  # the summary line was flushed before the fast exit
    usage = subprocess.run([sys.executable, "-m", "obslib", "nope"], capture_output=True, text=True, timeout=60)
    assert usage.returncode == 2 and "invalid choice" in usage.stderr


def test_latency_table_without_sources_has_the_source_entry_columns():
    p = {"latency": {"p95_ms": None, "sources": [], "samples": 0, "slo_ms": 250.0, "breaches": []}}
    t = report.latency_table(p)
    # schemas/observability_weekly_report.schema.json latency.sources items: source, samples, p50_ms, p95_ms
    assert t.keys == ["source", "samples", "p50_ms", "p95_ms"] and t.rows == []
    assert [c.header for c in t.columns] == ["source", "samples", "p50 (ms)", "p95 (ms)"]
    p["latency"].update(p95_ms=300.0, samples=3,
                        sources=[{"source": "feed", "samples": 3, "p50_ms": 120.0, "p95_ms": 300.0}])
    assert report.latency_table(p).keys == ["source", "samples", "p50_ms", "p95_ms"]
    assert report.latency_table(p).reading.startswith("Week p95 300 ms over 3 samples (SLO 250 ms)")


@pytest.fixture
def plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    yield plt
    plt.close("all")


def test_plot_latency_without_samples_says_so_in_words(plt):
    ax = report.plot_latency({}, 250.0)
    assert not ax.axison  # no empty axis
    (note,) = ax.texts
    assert note.get_text() == "No latency samples this week: latency is unknown, not zero (SLO 250 ms)."


def test_plot_latency_few_points_markers_utc_and_linear_scale(plt):
    h = datetime(2026, 11, 24, 10, tzinfo=timezone.utc)
    ax = report.plot_latency({"feed": [(h, 100.0), (h.replace(hour=11), 300.0)]}, 250.0, "2026-11-23T00:00:00Z",
                             "2026-11-30T00:00:00Z")
    (line, slo) = ax.lines
    assert line.get_marker() == "o" and ax.get_yscale() == "linear"
    assert ax.get_xlabel() == "time (UTC)"
    assert ax.get_legend().get_bbox_to_anchor().x0 > ax.get_position().x1 * ax.figure.bbox.width - 1  # outside


def test_plot_ev_gate_one_colour_per_strategy_week_shaded(plt):
    t0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
    hist = {"day_orb_5m": {"USDJPY conservative": [(t0, 0.4, 0.5)], "USDJPY bridge": [(t0, 0.41, 0.5)]},
            "mean_reversion": {"USDJPY conservative": [(t0, 0.3, 0.4)]}}
    ax = report.plot_ev_lcb(Path("."), "2026-11-23T00:00:00Z", "2026-11-30T00:00:00Z", hist)
    bold = [ln for ln in ax.lines if ln.get_label() and not ln.get_label().startswith("_")][:3]
    assert [ln.get_label() for ln in bold] == ["day_orb_5m · USDJPY conservative", "day_orb_5m · USDJPY bridge",
                                                "mean_reversion · USDJPY conservative"]
    assert bold[0].get_color() == bold[1].get_color() != bold[2].get_color()
    assert bold[0].get_linestyle() != bold[1].get_linestyle()
    assert all(ln.get_marker() not in (None, "None", "") for ln in bold)  # single points stay visible
    assert [ln.get_ydata()[0] for ln in bold] == [40.0, 41.0, 30.0]  # percent
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "report week" in labels


def test_plot_utilisation_bars_budget_values_and_status_legend(plt):
    ax = report.plot_utilisation(HAND)
    bars = ax.patches[:2]
    assert [round(b.get_width(), 1) for b in bars] == [9.0, 2.0]
    assert bars[0].get_facecolor() != bars[1].get_facecolor()  # warning vs ok
    assert any(t.get_text().startswith("9.0 %") for t in ax.texts)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["ok", "warning", "breach", "budget", "cap"]
    budget_lines = [c for c in ax.collections if len(c.get_segments()) and c.get_segments()[0][0][0] == 10.0]
    assert len(budget_lines) == 2


