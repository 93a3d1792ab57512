"""The column contract of each dataset, shared by the JSON writer, the Parquet schema and
README.json. The JSON Schemas in ``schemas/dashboard/`` state the same columns with their
value rules and units; ``tests/test_dashboard_schemas.py`` checks the two agree.

Kinds: ``string``, ``float`` (JSON number, Parquet float64), ``int`` (JSON integer,
Parquet int64), ``bool``, ``timestamp`` (JSON RFC 3339 ``Z`` string, Parquet
timestamp[us, UTC]) and ``string_list`` (JSON array of strings, Parquet list<string>).
Every column may be null unless it is part of the key.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Dataset:
    name: str
    key: tuple[str, ...]
    columns: tuple[tuple[str, str], ...]
    description: str

    @property
    def column_names(self) -> list[str]:
        return [c for c, _ in self.columns]


SPECS: dict[str, Dataset] = {d.name: d for d in (
    Dataset("ev_history", ("strategy", "symbol", "mode", "generated_at"), (
        ("strategy", "string"), ("strategy_source", "string"), ("symbol", "string"), ("mode", "string"),
        ("generated_at", "timestamp"), ("ev_alpha", "float"), ("ev_beta", "float"), ("prior_alpha", "float"), ("prior_beta", "float"),
        ("ev_decay", "float"), ("conf", "float"), ("win_rate_point", "float"), ("win_rate_lcb", "float"),
        ("ev_trend_7d", "float"), ("source_path", "string")),
        "Every EV-gate state snapshot in ops/state_archive/<strategy>/<symbol>/<mode>/: the gate's "
        "pseudo-counts, the win-rate point estimate and its one-sided lower confidence bound (fractions), "
        "and the 7-day change of the point estimate."),
    Dataset("slippage_telemetry", ("generated_at", "strategy"), (
        ("generated_at", "timestamp"), ("generated_at_source", "string"), ("strategy", "string"),
        ("strategy_source", "string"), ("slippage_bps", "float"), ("reject_rate", "float"), ("fill_count", "int"), ("window_days", "int"),
        ("slippage_zscore", "float")),
        "Router execution health per strategy (slippage in basis points, reject rate as a fraction) from the "
        "router telemetry snapshot, with the slippage z-score across the snapshot's strategies."),
    Dataset("turnover_summary", ("run_id", "week_start"), (
        ("run_id", "string"), ("week_start", "timestamp"), ("start_ts", "timestamp"), ("end_ts", "timestamp"),
        ("days_reported", "int"), ("active_days", "int"), ("fills", "int"), ("wins", "int"),
        ("pnl_pips", "float"), ("avg_trades_per_day", "float"), ("avg_trades_active_day", "float"),
        ("win_rate", "float"), ("pnl_per_trade", "float"), ("active_day_ratio", "float"),
        ("drawdown_pips", "float"), ("drawdown_pct", "float"), ("equity", "float"),
        ("missing_day_count", "int"), ("missing_days", "string_list")),
        "Per backtest run and ISO week (Monday 00:00 UTC) with daily rows: trades per day, per active day, "
        "win rate, pnl per trade and the intra-week drawdown, with missing trading days flagged; start_ts/end_ts "
        "give each run's span (first and last day with data)."),
    Dataset("latency_rollups", ("hour_utc", "source"), (
        ("hour_utc", "timestamp"), ("source", "string"), ("p50_ms", "float"), ("p95_ms", "float"),
        ("samples", "int"), ("breach_flag", "bool"), ("method", "string"), ("streak_id", "string"),
        ("streak_length", "int"), ("p99_ms", "float"), ("max_ms", "float"), ("windows", "int"),
        ("bad_events", "int"), ("error_samples", "int")),
        "Hourly signal-latency rollups per source (ms) from ops/signal_latency_rollup.csv, with the "
        "consecutive-breach-hour streak each hour belongs to."),
)}


def refresh_command(name: str) -> str:
    """The command that refreshes one dataset."""
    return f"obs dashboard export --dataset {name}"
