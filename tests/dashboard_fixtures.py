"""A tiny hand-made research repository and work root for the dashboard tests.

Every number the tests expect is worked out by hand from the rows written here.
"""

from __future__ import annotations

import json
from pathlib import Path

INDEX_HEADER = (
    "run_id,run_dir,manifest_id,timestamp,symbol,mode,equity,or_n,k_tp,k_sl,k_tr,threshold_lcb,min_or_atr,"
    "rv_cuts,allow_low_rv,allowed_sessions,warmup,prior_alpha,prior_beta,include_expected_slip,rv_quantile,"
    "calibrate_days,ev_mode,size_floor,trades,wins,total_pips,sharpe,max_drawdown,win_rate,pnl_per_trade,"
    "state_path,gate_block,ev_reject,ev_bypass,dump_rows,state_loaded,state_archive_path,ev_profile_path"
)
DAILY_HEADER = "date,breakouts,gate_pass,gate_block,ev_pass,ev_reject,fills,wins,pnl_pips"

# run A: Mon 2024-01-01 .. Sun 2024-01-14, with Sundays; Wed 01-03 and Sun 01-07 missing.
RUN_A_DAYS = [  # date, fills, wins, pnl_pips
    ("2024-01-01", 2, 1, 10.0), ("2024-01-02", 0, 0, 0.0), ("2024-01-04", 3, 1, -25.0),
    ("2024-01-05", 1, 1, 5.0),
    ("2024-01-08", 4, 3, 12.0), ("2024-01-09", 0, 0, 0.0), ("2024-01-10", 0, 0, 0.0),
    ("2024-01-11", 2, 0, -8.0), ("2024-01-12", 1, 1, 4.0), ("2024-01-14", 0, 0, 0.0),
]
# run B: weekdays only (no Sunday), one week, Fri missing is outside range (ends Thu).
RUN_B_DAYS = [("2024-01-08", 1, 1, 3.0), ("2024-01-09", 1, 0, -2.0), ("2024-01-11", 0, 0, 0.0)]


def _index_row(run_id: str, equity: str) -> str:
    cols = INDEX_HEADER.split(",")
    vals = {c: "" for c in cols}
    vals.update(run_id=run_id, run_dir=f"runs/{run_id}", timestamp="20240115_000000", symbol="USDJPY",
                mode="conservative", equity=equity, trades="10", wins="5", total_pips="1.0")
    return ",".join(vals[c] for c in cols)


def write_daily(root: Path, run_id: str, days, extra_lines: str = "") -> Path:
    p = root / "runs" / run_id / "daily.csv"
    p.parent.mkdir(parents=True, exist_ok=True)
    body = "".join(f"{d},5,3,2,3,0,{f},{w},{pnl}\n" for d, f, w, pnl in days)
    p.write_text(DAILY_HEADER + "\n" + body + extra_lines)
    return p


def snapshot(alpha: float, beta: float, decay: float = 0.02) -> dict:
    return {"ev_global": {"alpha": alpha, "beta": beta, "prior_alpha": 0.0, "prior_beta": 0.0, "decay": decay,
                          "conf": 0.95}}


def make_repo(root: Path, *, telemetry: dict | None = None, summary_generated_at: str | None = "2024-01-15T06:00:00Z",
              with_no_daily_run: bool = True) -> Path:
    """Write the tiny repository at ``root`` and return it."""
    (root / "runs").mkdir(parents=True, exist_ok=True)
    rows = [_index_row("run_A_20240115_000000", "100000.0"), _index_row("run_B_20240115_000000", "50000.0")]
    if with_no_daily_run:
        rows.append(_index_row("run_C_20240115_000000", "100000.0"))
    (root / "runs" / "index.csv").write_text(INDEX_HEADER + "\n" + "\n".join(rows) + "\n")
    write_daily(root, "run_A_20240115_000000", RUN_A_DAYS)
    write_daily(root, "run_B_20240115_000000", RUN_B_DAYS)
    arch = root / "ops" / "state_archive"
    k1 = arch / "strat.One" / "USDJPY" / "conservative"
    k2 = arch / "strat.Two" / "EURUSD" / "bridge"
    for d in (k1, k2):
        d.mkdir(parents=True, exist_ok=True)
    (k1 / "20240101_000000.json").write_text(json.dumps(snapshot(20.0, 30.0)))
    (k1 / "20240105_120000.json").write_text(json.dumps(snapshot(25.0, 25.0)))
    (k1 / "20240109_000000.json").write_text(json.dumps(snapshot(30.0, 20.0)))
    (k2 / "20240102_000000_x.json").write_text(json.dumps(snapshot(26.73646, 23.26354)))
    (arch / "grid_flat_20240101_000000.json").write_text(json.dumps(snapshot(1.0, 1.0)))
    tel = telemetry if telemetry is not None else {
        "execution_health": {"alpha_v1": {"reject_rate": 0.01, "slippage_bps": 2.0},
                             "beta_v1": {"reject_rate": 0.03, "slippage_bps": 4.0},
                             "gamma_v1": {"reject_rate": 0.02, "slippage_bps": 6.0}}}
    tp = root / "reports" / "portfolio_samples" / "router_demo" / "telemetry.json"
    tp.parent.mkdir(parents=True, exist_ok=True)
    tp.write_text(json.dumps(tel))
    if summary_generated_at is not None:
        (root / "reports" / "portfolio_summary.json").write_text(json.dumps({"generated_at": summary_generated_at}))
    return root


ROLLUP_CSV = (
    "hour_utc,source,p50_ms,p95_ms,samples,breach_flag,method,error_samples\n"
    "2024-01-15T00:00:00Z,feed,100.0,200.0,4,false,type7_linear,0\n"
    "2024-01-15T00:00:00Z,router,1000.0,130000.0,4,true,type7_linear,0\n"
    "2024-01-15T01:00:00Z,router,1100.0,140000.0,4,true,type7_linear,0\n"
    "2024-01-15T02:00:00Z,router,,,0,false,type7_linear,4\n"
    "2024-01-15T03:00:00Z,router,900.0,125000.0,4,true,type7_linear,0\n"
    "2024-01-15T04:00:00Z,router,900.0,1250.0,4,false,type7_linear,0\n"
)


def write_rollup(work_root: Path, text: str = ROLLUP_CSV) -> Path:
    p = work_root / "ops" / "signal_latency_rollup.csv"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p
