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


def test_table_renders_html_and_text_with_blank_missing_values():
    t = report.Table(["name", "value_ms"], [{"name": "a<b", "value_ms": 1.5}, {"name": "c"}], "reading")
    html = t._repr_html_()
    assert html.count("<tr>") == 3
    assert [h.strip() for h in re.findall(r"<th[^>]*>(.*?)</th>", html)] == ["name", "value_ms"]
    assert "a&lt;b" in html  # escaped
    cells = re.findall(r"<td[^>]*>(.*?)</td>", html)
    assert [c.strip() for c in cells] == ["a&lt;b", "1.5", "c", ""]
    text = str(t).splitlines()
    assert text[0].split() == ["name", "value_ms"] and text[2].split() == ["a<b", "1.5"]
    assert t.column("value_ms") == [1.5, None]


def test_section_tables_on_a_hand_made_payload():
    p = {"runs": {"baseline": [{"run_id": "B", "ev": {"latest": 0.5, "trend_7d": -0.1}, "win_rate_lcb": 0.4,
                                "as_of": "x", "stale": True}],
                  "rolling": [{"run_id": "R", "ev": {"latest": 1.0}, "turnover": {"avg_trades_per_day": 0.25},
                               "as_of": "y", "stale": False}]},
         "utilisation": {"categories": [{"name": "day", "utilisation_pct": 9.0, "budget_pct": 10.0,
                                         "headroom_pct": 1.0, "status": "warning"}]},
         "execution_health": {"slippage_bps": {"s1": 2.5, "s2": 4.1}, "reject_rate": {"s1": 0.01}},
         "latency": {"p95_ms": None, "sources": [], "samples": 0, "slo_ms": 250.0, "breaches": []},
         "alerts": [{"id": "a", "severity": "warning", "message": "m", "owner": "o", "next_action": "n"},
                    {"id": "b", "severity": "info", "message": "m", "owner": "o", "next_action": "n"}]}
    runs = report.runs_table(p)
    assert runs.column("kind") == ["baseline", "rolling"] and runs.column("avg_trades_per_day") == [None, 0.25]
    assert runs.reading == "Baseline EV 0.5 pips/trade, win-rate LCB 0.4; 2 benchmark(s), 1 stale."
    assert report.utilisation_table(p).reading == "Attention: day warning."
    ex = report.execution_table(p)
    assert ex.column("reject_rate") == [0.01, None] and ex.reading == "Highest slippage: s2 at 4.1 bps."
    assert report.latency_table(p).reading.startswith("No latency samples this week")
    assert report.alerts_table(p).reading == "1 info, 1 warning"


def test_ev_history_counts_snapshots_before_the_cutoff(real_root):
    cutoff = "2025-10-06T00:00:00Z"
    arch = real_root / "ops/state_archive"
    expected: dict[str, int] = {}
    for f in arch.glob("*/*/*/*.json"):  # the layout's depth; count by file-name stamp
        stamp = datetime.strptime(f.name[:15], "%Y%m%d_%H%M%S").replace(tzinfo=timezone.utc)
        data = json.loads(f.read_text())
        if stamp < datetime(2025, 10, 6, tzinfo=timezone.utc) and "alpha" in data.get("ev_global", {}):
            key = "/".join(f.relative_to(arch).parts[:3])
            expected[key] = expected.get(key, 0) + 1
    got = report.ev_history(real_root, cutoff)
    assert {k: len(v) for k, v in got.items()} == expected and expected
    for pts in got.values():
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


def test_table_repr_is_the_plain_text_table():
    t = report.Table(["name", "n"], [{"name": "a", "n": 1}], "reading not shown")
    # tabulate's "simple" format written out by hand: header, dashes (column width >= 3 and
    # 2 spaces between), one row; cells left-aligned since number parsing is off
    assert repr(t) == "name    n\n------  ---\na       1"
    assert "Table(" not in repr(t) and "reading" not in repr(t)


def test_latency_table_without_sources_has_the_source_entry_columns():
    p = {"latency": {"p95_ms": None, "sources": [], "samples": 0, "slo_ms": 250.0, "breaches": []}}
    t = report.latency_table(p)
    # schemas/observability_weekly_report.schema.json latency.sources items: source, samples, p50_ms, p95_ms
    assert t.columns == ["source", "samples", "p50_ms", "p95_ms"] and t.rows == []
    assert str(t).split("\n")[0].split() == ["source", "samples", "p50_ms", "p95_ms"]
    p["latency"].update(p95_ms=300.0, samples=3,
                        sources=[{"source": "feed", "samples": 3, "p50_ms": 120.0, "p95_ms": 300.0}])
    assert report.latency_table(p).columns == ["source", "samples", "p50_ms", "p95_ms"]


def test_plot_latency_without_samples_shows_zero_to_120pct_of_slo_and_a_note():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ax = report.plot_latency({}, 250.0)
    try:
        assert ax.get_ylim() == pytest.approx((0.0, 300.0))
        assert ax.get_yscale() == "linear"
        (note,) = ax.texts
        assert note.get_text() == "no samples this week"
        assert note.get_transform() is ax.transAxes and note.get_position() == (0.5, 0.5)
        (slo,) = ax.lines
        assert list(slo.get_ydata()) == [250.0, 250.0]
    finally:
        plt.close(ax.figure)


def test_plot_ev_lcb_cycles_markers_every_ten_keys(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
    hist = {f"s{i:02d}/USDJPY/conservative": [(t0, 0.4, 0.5)] for i in range(23)}
    monkeypatch.setattr(report, "ev_history", lambda root, before: hist)
    ax = report.plot_ev_lcb(tmp_path, "2026-11-30T00:00:00Z")
    try:
        solid = [ln for ln in ax.lines if ln.get_linestyle() == "-"]
        assert len(solid) == 23
        assert [ln.get_marker() for ln in solid] == ["."] * 10 + ["x"] * 10 + ["^"] * 3
        # (colour, marker) pairs are all different although the 10 colours repeat
        assert len({(ln.get_color(), ln.get_marker()) for ln in solid}) == 23
    finally:
        plt.close(ax.figure)
