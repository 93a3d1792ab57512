"""The weekly payload: real-data acceptance numbers, empty weeks, definitions, determinism.

Expected numbers come from the raw input files and from the issue's acceptance list,
not from obslib."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from obslib.config import load_config
from obslib.errors import InputError
from obslib.schemas import errors as schema_errors
from obslib.storage import canonical_json_bytes
from obslib.timeutil import parse_ts, parse_week_start
from obslib.weekly.payload import (
    SCHEMA_FILE,
    build_weekly_payload,
    content_checksum,
    ev_trend_7d,
    utilisation_status,
)

NOW = parse_ts("2026-11-29T12:00:00Z")


def build(root, week, **kw):
    cfg = kw.pop("cfg", None) or load_config(env={})
    return build_weekly_payload(Path(root), parse_week_start(week), cfg=cfg, now=kw.pop("now", NOW),
                                job_id=kw.pop("job_id", "job-1"), command="obs weekly run", sha=None,
                                data_label="test", **kw)


def test_real_week_2025_09_29_acceptance(real_root):
    p = build(real_root, "2025-09-29")
    assert schema_errors(p, SCHEMA_FILE) == []
    raw = json.loads((real_root / "reports/baseline/USDJPY_conservative.json").read_text())
    (b,) = p["runs"]["baseline"]
    assert b["run_id"] == "USDJPY_conservative_20251002_214013"
    assert b["ev"]["latest"] == pytest.approx(raw["total_pips"] / raw["trades"], abs=1e-6)
    assert b["ev"]["latest"] == pytest.approx(0.7431, abs=1e-4)
    assert b["win_rate_lcb"] == pytest.approx(0.43588, abs=1e-4)
    assert b["ev"]["trend_7d"] is None  # the run's daily.csv is not in the data
    rolling = {r["window_days"]: r for r in p["runs"]["rolling"]}
    assert sorted(rolling) == [90, 180, 365]
    for days, ev, tpd in ((90, 4.1188, 0.5778), (180, 4.1188, 0.2889), (365, 0.8059, 0.3288)):
        assert rolling[days]["run_id"] == f"USDJPY_conservative_rolling_{days}d"
        assert rolling[days]["ev"]["latest"] == pytest.approx(ev, abs=1e-4)
        assert rolling[days]["turnover"]["avg_trades_per_day"] == pytest.approx(tpd, abs=1e-4)
    assert [c["name"] for c in p["utilisation"]["categories"]] == ["day", "scalping"]
    # canonical strategy ids, the raw telemetry names beside them
    assert p["execution_health"]["slippage_bps"] == {"day_orb_5m": 2.5, "tokyo_micro_mean_reversion": 4.1}
    assert p["execution_health"]["reject_rate"] == {"day_orb_5m": 0.012, "tokyo_micro_mean_reversion": 0.032}
    assert p["execution_health"]["strategy_source"] == {"day_orb_5m": "day_orb_5m_v1",
                                                        "tokyo_micro_mean_reversion": "tokyo_micro_mean_reversion_v0"}
    assert p["runs"]["week_summary"]["runs"] == 0 and p["runs"]["week"] == []  # no run stamped that week
    assert p["latency"]["p95_ms"] is None and p["latency"]["breaches"] == []
    assert any(a["message"] == "no latency samples in week 2025-09-29" for a in p["alerts"])
    assert all(not i["path"].startswith("/") for i in p["provenance"]["inputs"])


def test_real_current_week_is_stale_and_not_filled(real_root):
    p = build(real_root, "2026-11-23")
    stale = [a for a in p["alerts"] if a["id"].startswith("benchmark-stale:")]
    assert len(stale) == 4 and all(a["severity"] == "warning" for a in stale)
    assert all(r["stale"] for r in p["runs"]["baseline"] + p["runs"]["rolling"])
    assert p["latency"]["p95_ms"] is None and p["latency"]["samples"] == 0
    assert any("no latency samples in week 2026-11-23" == a["message"] for a in p["alerts"])


def test_benchmarks_from_after_the_week_are_never_used(real_root):
    p = build(real_root, "2025-09-22")  # all benchmarks are dated 2025-10-02
    assert p["runs"]["baseline"] == [] and p["runs"]["rolling"] == []
    assert sum(a["id"].startswith("benchmark-after-week:") for a in p["alerts"]) == 4


def _index_rows(root: Path) -> list[dict]:
    import csv

    with open(root / "runs/index.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_real_week_2025_09_22_runs(real_root):
    """The week's own runs: the 60 index rows stamped 2025-09-22 .. 2025-09-28 (UTC)."""
    from scipy.stats import beta

    p = build(real_root, "2025-09-22")
    assert schema_errors(p, SCHEMA_FILE) == []
    rows = sorted((r for r in _index_rows(real_root) if "20250922_000000" <= r["timestamp"] < "20250929_000000"),
                  key=lambda r: r["run_id"])
    assert len(rows) == 60
    trades = sum(int(r["trades"]) for r in rows)
    wins = sum(int(r["wins"]) for r in rows)
    pips = sum(float(r["total_pips"]) for r in rows)
    s = p["runs"]["week_summary"]
    assert (s["runs"], s["trades"], s["wins"]) == (60, trades, wins)
    assert s["ev_per_trade"] == pytest.approx(pips / trades, abs=1e-6)
    assert s["win_rate_lcb"] == pytest.approx(beta.ppf(0.05, wins + 1, trades - wins + 1), abs=1e-6)
    week = p["runs"]["week"]
    assert [w["run_id"] for w in week] == [r["run_id"] for r in rows]
    first, row = week[0], rows[0]
    assert (first["symbol"], first["mode"], first["trades"]) == (row["symbol"], row["mode"], int(row["trades"]))
    assert first["ev"]["latest"] == pytest.approx(float(row["total_pips"]) / int(row["trades"]), abs=1e-6)
    t, w = int(row["trades"]), int(row["wins"])
    assert first["win_rate_lcb"] == pytest.approx(beta.ppf(0.05, w + 1, t - w + 1), abs=1e-6)
    assert first["timestamp"] == "{}-{}-{}T{}:{}:{}Z".format(
        *(row["timestamp"][i:j] for i, j in ((0, 4), (4, 6), (6, 8), (9, 11), (11, 13), (13, 15))))


def test_week_runs_stamp_zone_and_cap(tmp_path):
    """Timestamps are read in run_stamp_tz; runs.week stops at 200, the summary counts all."""
    from obslib.inputs.runs import HEADER_V39
    from obslib.weekly.payload import WEEK_RUNS_MAX

    root = tmp_path / "repo"
    (root / "runs").mkdir(parents=True)
    lines = [",".join(HEADER_V39)]
    for i in range(WEEK_RUNS_MAX + 5):
        vals = {"run_id": f"r{i:04d}", "run_dir": f"runs/r{i:04d}", "timestamp": "20250923_080000",
                "symbol": "USDJPY", "mode": "bridge", "trades": "4", "wins": "2", "total_pips": "2.0"}
        lines.append(",".join(vals.get(c, "") for c in HEADER_V39))
    # 2025-09-22 05:00 in Tokyo is 2025-09-21 20:00 UTC: the week before when read in Asia/Tokyo
    lines.append(",".join({"run_id": "tokyo", "timestamp": "20250922_050000", "trades": "0", "wins": "0",
                           "total_pips": "0", "run_dir": "runs/tokyo"}.get(c, "") for c in HEADER_V39))
    (root / "runs/index.csv").write_text("\n".join(lines) + "\n")
    p = build(root, "2025-09-22")
    assert schema_errors(p, SCHEMA_FILE) == []
    assert p["runs"]["week_summary"]["runs"] == WEEK_RUNS_MAX + 6
    assert len(p["runs"]["week"]) == WEEK_RUNS_MAX and p["runs"]["week"][0]["run_id"] == "r0000"
    assert p["runs"]["week_summary"]["ev_per_trade"] == pytest.approx(0.5)
    tokyo = build(root, "2025-09-22", cfg=load_config(env={"OBS_RUN_STAMP_TZ": "Asia/Tokyo"}))
    assert tokyo["runs"]["week_summary"]["runs"] == WEEK_RUNS_MAX + 5
    zero = [w for w in p["runs"]["week"] if w["run_id"] == "tokyo"]
    assert zero == []  # sorted by run_id: 'tokyo' is past the cap; its counts are in the summary


def test_ev_trend_7d_by_hand():
    d0 = date(2024, 3, 31)  # last date with fills
    rows = [{"date": d0 - timedelta(days=i), "fills": f, "pnl_pips": pnl} for i, f, pnl in [
        (0, 2, 10.0), (3, 2, -2.0),           # window A [d0-6, d0]: 8 pips / 4 trades = 2.0
        (7, 1, 5.0), (13, 3, 4.0),            # window B [d0-13, d0-7]: 9 / 4 = 2.25
        (14, 10, 100.0)]]                     # outside both windows
    rows.append({"date": d0 + timedelta(days=1), "fills": 0, "pnl_pips": 0.0})  # no fills: not "with data"
    rows.sort(key=lambda r: r["date"])
    assert ev_trend_7d(rows, date(2025, 1, 1)) == pytest.approx(2.0 - 2.25)
    assert ev_trend_7d(rows[-3:], date(2025, 1, 1)) is None  # window B empty
    # rows dated on/after `before` are not used: with before=d0 the last fill day is d0-3
    # A = [d0-9, d0-3]: (-2 + 5) / 3 = 1.0; B = [d0-16, d0-10]: (4 + 100) / 13 = 8.0
    assert ev_trend_7d(rows, d0) == pytest.approx(1.0 - 8.0)


@pytest.mark.parametrize("util,budget,head,expected", [
    (18.5, 35.0, 16.5, "ok"), (12.0, 15.0, 3.0, "ok"),  # 3.0 is not under 20 % of 15
    (13.2, 15.0, 1.8, "warning"), (21.0, 20.0, -1.0, "breach"), (20.0, 20.0, 0.0, "warning"),
])
def test_utilisation_status_rule(util, budget, head, expected):
    assert utilisation_status(util, budget, head, 0.2) == expected


def _latency_root(tmp_path, rows):
    root = tmp_path / "repo"
    (root / "ops").mkdir(parents=True)
    (root / "runs").mkdir()
    (root / "runs" / "index.csv").write_text("run_id,run_dir,timestamp,symbol,mode,trades,wins,total_pips\n")
    lines = ["timestamp_utc,latency_ms,status,detail,source"] + [",".join(r) for r in rows]
    (root / "ops" / "signal_latency.csv").write_text("\n".join(lines) + "\n")
    return root


def test_latency_p95_and_breach_streaks_in_week(tmp_path):
    rows = [("2025-09-28T23:45:00Z", "999999", "success", "", "a"),   # before the week: ignored
            ("2025-09-29T00:00:00Z", "100", "success", "", "a"),
            ("2025-09-29T00:15:00Z", "130000", "success", "", "a"),
            ("2025-09-29T00:30:00Z", "140000", "success", "", "a"),   # 2nd breach -> warning
            ("2025-09-29T00:45:00Z", "150000", "success", "", "a"),   # 3rd -> critical
            ("2025-09-29T01:00:00Z", "200", "success", "", "a"),      # resolved
            ("2025-09-29T01:00:00Z", "50", "error", "down", "b")]     # error -> critical at once
    p = build(_latency_root(tmp_path, rows), "2025-09-29")
    # the events' latencies (an error event is counted, not a latency):
    vals = sorted([100, 130000, 140000, 150000, 200])  # type 7 p95: h = 4*0.95 = 3.8
    expected = vals[3] + 0.8 * (vals[4] - vals[3])     # 140000 + 0.8*10000 = 148000
    assert p["latency"]["p95_ms"] == pytest.approx(expected) and p["latency"]["samples"] == 6
    # streaks over event-time windows, stamped with the window's end
    assert [(b["timestamp"], b["source"], b["status"]) for b in p["latency"]["breaches"]] == [
        ("2025-09-29T00:45:00Z", "a", "warning"), ("2025-09-29T01:00:00Z", "a", "critical"),
        ("2025-09-29T01:15:00Z", "b", "critical")]


def test_malformed_row_fails_by_default_and_is_reported_when_allowed(tmp_path):
    root = _latency_root(tmp_path, [("2025-09-29T00:00:00Z", "fast", "success", "", "a")])
    with pytest.raises(InputError) as ei:
        build(root, "2025-09-29")
    assert ei.value.path == "ops/signal_latency.csv" and ei.value.line == 2
    p = build(root, "2025-09-29", allow_bad_rows=True)
    assert any(a["id"] == "input-malformed:ops/signal_latency.csv:2" for a in p["alerts"])
    assert p["provenance"]["input_problems"][0]["line"] == 2


def test_missing_index_fails(tmp_path):
    with pytest.raises(InputError, match="runs/index.csv"):
        build(tmp_path, "2025-09-29")


def test_payload_is_deterministic_and_checksum_ignores_run_fields(real_root):
    a = build(real_root, "2025-09-29")
    b = build(real_root, "2025-09-29")
    assert canonical_json_bytes(a) == canonical_json_bytes(b)
    c = build(real_root, "2025-09-29", job_id="job-2", now=parse_ts("2026-11-30T00:00:00Z"))
    assert canonical_json_bytes(a) != canonical_json_bytes(c)
    assert content_checksum(a) == content_checksum(c)


def test_schema_format_checker_rejects_bad_datetime(real_root):
    p = build(real_root, "2025-09-29")
    p["generated_at"] = "2025-13-01T00:00:00Z"
    assert any("is not a 'date-time'" in e for e in schema_errors(p, SCHEMA_FILE))


@pytest.mark.parametrize("edit, needle", [
    (lambda t: t.replace('"slippage_bps": 2.5', '"slippage_bps": NaN'), "non-finite number NaN"),
    (lambda t: t.replace('"reject_rate": 0.012', '"reject_rate": 1.5'), "reject_rate 1.5 is not a fraction"),
])
def test_bad_telemetry_values_fail_naming_the_file(real_copy, edit, needle):
    tel = real_copy / "reports/portfolio_samples/router_demo/telemetry.json"
    tel.write_text(edit(tel.read_text()))
    with pytest.raises(InputError) as ei:
        build(real_copy, "2025-09-29")
    assert ei.value.path == "reports/portfolio_samples/router_demo/telemetry.json"
    assert needle in str(ei.value)


def test_infinity_in_a_benchmark_is_reported_not_used(real_copy):
    b = real_copy / "reports/baseline/USDJPY_conservative.json"
    b.write_text(b.read_text().replace('"total_pips": 222.9371428573188', '"total_pips": Infinity'))
    with pytest.raises(InputError) as ei:  # a malformed benchmark is a bad row: strict by default
        build(real_copy, "2025-09-29")
    assert ei.value.path == "reports/baseline/USDJPY_conservative.json" and "Infinity" in str(ei.value)
