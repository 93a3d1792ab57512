"""Helpers behind ``notebooks/weekly_report.ipynb``: parameter checks, the payload build,
tables with one-line readings, and the three plots. The notebook only calls these.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .config import load_config
from .errors import ObsError
from .inputs import resolve_data_root
from .schemas import validate
from .storage import atomic_write_bytes, pretty_json_bytes
from .timeutil import parse_ts, parse_week_start, utcnow, week_start_of
from .weekly import SCHEMA_FILE, build_weekly_payload, ev_history_frame

WEEKLY_PARAMS: dict[str, type | tuple] = {
    "week_start": str, "data_root": str, "as_of": str, "out_dir": str, "work_root": str, "job_id": str,
    "source_command": str, "commit_sha": str, "data_label": str, "allow_bad_rows": bool,
}


def check_params(params: dict[str, Any], spec: dict[str, type | tuple] = WEEKLY_PARAMS) -> None:
    """Raise ``ObsError`` naming an unknown parameter or one of the wrong type."""
    unknown = sorted(set(params) - set(spec))
    if unknown:
        raise ObsError(f"unknown notebook parameter(s) {unknown}; known: {sorted(spec)}")
    for k, v in params.items():
        if not isinstance(v, spec[k]):
            raise ObsError(f"notebook parameter {k!r} must be {spec[k].__name__}, got {type(v).__name__} ({v!r})")


@dataclass
class WeeklyReport:
    payload: dict
    payload_path: Path
    data_root: Path

    @property
    def week(self) -> str:
        return self.payload["week_start"][:10]


def prepare_weekly(*, week_start: str = "", data_root: str = "", as_of: str = "", out_dir: str = "",
                   work_root: str = "", job_id: str = "", source_command: str = "", commit_sha: str = "",
                   data_label: str = "", allow_bad_rows: bool = False) -> WeeklyReport:
    """Build, validate and write ``<out_dir>/payload.json``.

    Blank parameters mean: ``as_of`` now, ``week_start`` the week containing ``as_of``,
    ``data_root`` the demo repository (under ``work_root``, a temp folder when blank),
    ``out_dir`` a temp folder. Raises ``ObsError``/``InputError``/``ValidationError``.
    """
    check_params({k: v for k, v in locals().items()})
    now = parse_ts(as_of) if as_of else utcnow()
    ws = parse_week_start(week_start) if week_start else week_start_of(now)
    wr = Path(work_root) if work_root else Path(tempfile.mkdtemp(prefix="obs-weekly-"))
    cfg = load_config(wr, overrides={"data_root": data_root or None})
    root = resolve_data_root(cfg, now)
    payload = build_weekly_payload(root, ws, cfg=cfg, now=now, job_id=job_id or f"notebook-{now:%Y%m%dT%H%M%SZ}",
                                   command=source_command or "notebooks/weekly_report.ipynb",
                                   sha=commit_sha or None, data_label=data_label or ("demo" if cfg.uses_demo else
                                                                                     Path(root).name),
                                   allow_bad_rows=allow_bad_rows)
    validate(payload, SCHEMA_FILE, "weekly payload")
    out = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="obs-weekly-out-"))
    path = out / "payload.json"
    atomic_write_bytes(path, pretty_json_bytes(payload))
    return WeeklyReport(payload, path, Path(root))


def runs_table(p: dict) -> tuple[pd.DataFrame, str]:
    rows = [{"kind": "baseline", "run_id": b["run_id"], "ev_latest_pips": b["ev"]["latest"],
             "ev_trend_7d_pips": b["ev"]["trend_7d"], "win_rate_lcb": b["win_rate_lcb"],
             "avg_trades_per_day": None, "as_of": b.get("as_of"), "stale": b.get("stale")}
            for b in p["runs"]["baseline"]]
    rows += [{"kind": "rolling", "run_id": r["run_id"], "ev_latest_pips": r["ev"]["latest"], "ev_trend_7d_pips": None,
              "win_rate_lcb": None, "avg_trades_per_day": r["turnover"]["avg_trades_per_day"],
              "as_of": r.get("as_of"), "stale": r.get("stale")} for r in p["runs"]["rolling"]]
    df = pd.DataFrame(rows)
    if df.empty:
        return df, "No benchmark was usable for this week (see alerts)."
    stale = int(df["stale"].fillna(False).sum())
    b = p["runs"]["baseline"]
    lead = (f"Baseline EV {b[0]['ev']['latest']} pips/trade, win-rate LCB {b[0]['win_rate_lcb']}"
            if b else "No baseline")
    return df, f"{lead}; {len(df)} benchmark(s), {stale} stale."


def utilisation_table(p: dict) -> tuple[pd.DataFrame, str]:
    df = pd.DataFrame(p["utilisation"]["categories"])
    if df.empty:
        return df, "No router telemetry: utilisation unknown (see alerts)."
    bad = df[df["status"] != "ok"]
    reading = ("All categories within budget." if bad.empty else
               "Attention: " + ", ".join(f"{r.name} {r.status}" for r in bad.itertuples()) + ".")
    return df, reading


def execution_table(p: dict) -> tuple[pd.DataFrame, str]:
    eh = p["execution_health"]
    names = sorted(set(eh["slippage_bps"]) | set(eh["reject_rate"]))
    df = pd.DataFrame([{"strategy": n, "slippage_bps": eh["slippage_bps"].get(n),
                        "reject_rate": eh["reject_rate"].get(n)} for n in names])
    if df.empty:
        return df, "No execution health data."
    worst = df.sort_values("slippage_bps", ascending=False).iloc[0]
    return df, f"Highest slippage: {worst['strategy']} at {worst['slippage_bps']} bps."


def latency_table(p: dict) -> tuple[pd.DataFrame, str]:
    lat = p["latency"]
    df = pd.DataFrame(lat["sources"])
    if lat["p95_ms"] is None:
        return df, "No latency samples this week: latency is unknown, not zero."
    return df, (f"Week p95 {lat['p95_ms']:.0f} ms over {lat['samples']} samples (SLO {lat['slo_ms']:.0f} ms); "
                f"{len(lat['breaches'])} breach streak notification(s).")


def alerts_table(p: dict) -> tuple[pd.DataFrame, str]:
    df = pd.DataFrame(p["alerts"], columns=["severity", "message", "next_action", "id"])
    counts = df["severity"].value_counts().to_dict() if not df.empty else {}
    return df, ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "No alerts."


def latency_hourly(data_root: Path, p: dict) -> pd.DataFrame:
    """Per source per hour p95 (ms) over the week's samples (type-7), for the plot."""
    from .inputs.latency_events import read_latency_samples

    start, end = parse_ts(p["week_start"]), parse_ts(p["week_end"])
    s = pd.DataFrame(read_latency_samples(data_root, start, end, []))
    if s.empty:
        return s
    s["hour"] = pd.to_datetime(s["timestamp"]).dt.floor("h")
    return s.groupby(["source", "hour"])["p95_ms"].quantile(0.95).reset_index()


def plot_ev_lcb(data_root: Path, week_end: str, ax=None):
    """EV-gate win rate over time per archive key (snapshots dated before week_end): the
    win-rate LCB (solid) and the posterior mean alpha/(alpha+beta) (dotted, same colour)."""
    import matplotlib.pyplot as plt

    df = ev_history_frame(data_root)
    if ax is None:
        fig, ax = plt.subplots(figsize=(10, 4))
    else:
        fig = ax.figure
    if df.empty:
        ax.set_title("EV gate: no state-archive snapshots")
        return ax
    df = df[df["generated_at"] < parse_ts(week_end)]
    for key, g in df.groupby("key"):
        (line,) = ax.plot(g["generated_at"], g["win_rate_lcb"], marker=".", label=key.split("/")[0])
        ax.plot(g["generated_at"], g["win_rate_point"], linestyle=":", color=line.get_color(), alpha=0.7)
    ax.set_ylabel("win rate (fraction)")
    ax.set_title("EV gate: win-rate LCB (solid) and posterior mean alpha/(alpha+beta) (dotted)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.autofmt_xdate()
    fig.tight_layout()
    return ax


def plot_utilisation(p: dict, ax=None):
    import matplotlib.pyplot as plt

    df = pd.DataFrame(p["utilisation"]["categories"])
    ax = ax or plt.subplots(figsize=(6, 3))[1]
    if df.empty:
        ax.set_title("Utilisation: no telemetry")
        return ax
    x = range(len(df))
    ax.bar(x, df["utilisation_pct"].fillna(0), color=["tab:red" if s == "breach" else "tab:orange"
                                                      if s == "warning" else "tab:green" for s in df["status"]])
    ax.scatter(x, df["budget_pct"], marker="_", s=800, color="black", label="budget")
    ax.set_xticks(list(x), df["name"])
    ax.set_ylabel("percent of equity")
    ax.set_title("Utilisation against budget")
    ax.legend()
    return ax


def plot_latency(hourly: pd.DataFrame, slo_ms: float, ax=None):
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(9, 3.5))[1]
    if hourly.empty:
        ax.set_title("Latency: no samples this week")
        ax.axhline(slo_ms, color="red", linestyle="--", label="SLO")
        return ax
    for src, g in hourly.groupby("source"):
        ax.plot(g["hour"], g["p95_ms"], label=src)
    ax.axhline(slo_ms, color="red", linestyle="--", label=f"SLO {slo_ms:.0f} ms")
    ax.set_yscale("log")
    ax.set_ylabel("p95 latency (ms)")
    ax.set_title("Hourly p95 latency per source")
    ax.legend(fontsize=7)
    ax.figure.autofmt_xdate()
    return ax
