"""The embedded default input: a deterministic synthetic research repository.

``generate_demo(out_dir, as_of, seed)`` writes, in exactly the formats of the real
research repository (``../shared/realdata/research_repo``):

- ``runs/index.csv`` (39-column header) with 56 runs, each with ``runs/<id>/daily.csv``
  (weekdays over the 26 weeks before ``as_of``, a few days missing on purpose),
  ``metrics.json`` and ``params.json``;
- 64 EV-gate snapshots over 8 weeks in two ``<strategy>/<symbol>/<mode>`` folders;
- ``reports/baseline/USDJPY_conservative.json`` and ``reports/rolling/{90,180,365}/``;
- router telemetry (one category ok, one warning, one breach) and a portfolio summary;
- ``ops/signal_latency.csv``: 14 days of 15-minute samples for 3 sources with one
  breach episode (4 samples over the 120000 ms SLO) in the current week;
- ``data/sample_orb.csv``: two days of 5-minute bars ending at ``as_of``.

Everything is dated relative to ``as_of`` so the week containing it has data, and the
same ``seed`` and ``as_of`` give byte-identical files. No clock, no environment.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import random
import shutil
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from .errors import ObsError
from .inputs.runs import HEADER_V39
from .storage import atomic_write_bytes, file_lock, fsync_dir
from .timeutil import UTC, to_rfc3339, week_start_of

DEMO_VERSION = 1
MARKER = ".obs_demo.json"
LATENCY_SOURCES = ("router_demo", "signal_bridge", "feed_ingest")
STRATEGIES = (("day_orb_5m.DayORB5m", 40), ("tokyo_micro_mean_reversion.TokyoMicroMeanReversion", 24))


def _floor(ts: datetime, minutes: int) -> datetime:
    ts = ts.astimezone(UTC).replace(second=0, microsecond=0)
    return ts - timedelta(minutes=ts.minute % minutes)


def _stamp(ts: datetime) -> str:
    return ts.strftime("%Y%m%d_%H%M%S")


def _f(x: float, nd: int = 6) -> str:
    return repr(round(float(x), nd))


def _json(obj) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()


def _csv(header: list[str], rows: list[list]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue().encode()


def _times_in_window(n: int, start: datetime, end: datetime, cur_ws: datetime, rng: random.Random,
                     in_current: int) -> list[datetime]:
    """n times in [start, end), ``in_current`` of them inside [cur_ws, end)."""
    out = []
    span_old = (cur_ws - start).total_seconds()
    span_cur = max((end - cur_ws).total_seconds(), 60.0)
    for i in range(n - in_current):
        out.append(start + timedelta(seconds=span_old * (i + rng.random()) / (n - in_current)))
    for i in range(in_current):
        out.append(cur_ws + timedelta(seconds=span_cur * (i + 0.5 + 0.4 * (rng.random() - 0.5)) / in_current))
    return sorted(t.replace(microsecond=0) for t in out)


def _build(as_of: datetime, seed: int) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    rng = random.Random(seed)
    cur_ws = week_start_of(as_of)
    eight_weeks_ago = cur_ws - timedelta(weeks=7)

    # --- runs -------------------------------------------------------------------------
    run_times = _times_in_window(56, eight_weeks_ago, as_of, cur_ws, rng, in_current=4)
    first_day = (as_of - timedelta(weeks=26)).date()
    index_rows = []
    runs = []
    for i, rt in enumerate(run_times):
        grid = i % 4 != 3
        or_n, ktp, ksl = 4 + 2 * (i % 2), (0.6, 0.8, 1.0, 1.2)[i % 4], (0.4, 0.6, 0.8)[i % 3]
        run_id = (f"grid_USDJPY_conservative_or{or_n}_ktp{ktp}_ksl{ksl}_{_stamp(rt)}" if grid
                  else f"USDJPY_conservative_{_stamp(rt)}")
        edge = rng.uniform(-0.6, 1.2)
        daily_rows, trades, wins, pips = [], 0, 0, 0.0
        d = first_day
        equity, peak, mdd = 0.0, 0.0, 0.0
        while d <= rt.date():
            if d.weekday() < 5 and rng.random() > 0.03:  # ~3 % of trading days missing
                breakouts = rng.randint(20, 160)
                gate_pass = rng.randint(0, breakouts // 2)
                ev_pass = rng.randint(0, gate_pass)
                fills = min(ev_pass, rng.choice((0, 0, 1, 1, 2, 3)))
                w = sum(1 for _ in range(fills) if rng.random() < 0.55 + edge / 20)
                pnl = sum(rng.uniform(3, 9) if k < w else -rng.uniform(3, 8) for k in range(fills)) + edge * fills
                trades, wins, pips = trades + fills, wins + w, pips + pnl
                equity += pnl
                peak = max(peak, equity)
                mdd = min(mdd, equity - peak)
                daily_rows.append([d.isoformat(), breakouts, gate_pass, breakouts - gate_pass, ev_pass,
                                   gate_pass - ev_pass, fills, w, _f(pnl)])
            d += timedelta(days=1)
        rd = f"runs/{run_id}"
        files[f"{rd}/daily.csv"] = _csv(["date", "breakouts", "gate_pass", "gate_block", "ev_pass", "ev_reject",
                                         "fills", "wins", "pnl_pips"], daily_rows)
        metrics = {"trades": trades, "wins": wins, "total_pips": round(pips, 6), "max_drawdown": round(mdd, 6),
                   "win_rate": (wins / trades) if trades else 0.0, "sharpe": round(edge * 2.1, 6)}
        files[f"{rd}/metrics.json"] = _json(metrics)
        files[f"{rd}/params.json"] = _json({"symbol": "USDJPY", "mode": "conservative", "or_n": or_n,
                                            "k_tp": ktp, "k_sl": ksl, "equity": 100000.0})
        runs.append({"run_id": run_id, "time": rt, "dir": rd, "metrics": metrics})
        vals = {"run_id": run_id, "run_dir": rd, "timestamp": _stamp(rt), "symbol": "USDJPY", "mode": "conservative",
                "equity": "100000.0", "or_n": or_n, "k_tp": ktp, "k_sl": ksl, "threshold_lcb": "0.0",
                "min_or_atr": "0.4", "allow_low_rv": "True", "warmup": 50, "trades": trades, "wins": wins,
                "total_pips": _f(pips), "sharpe": _f(metrics["sharpe"]), "max_drawdown": _f(mdd),
                "win_rate": _f(metrics["win_rate"]),
                "pnl_per_trade": _f(pips / trades) if trades else "", "state_path": f"{rd}/state.json",
                "gate_block": rng.randint(150000, 250000), "ev_reject": rng.randint(150000, 250000),
                "ev_bypass": rng.randint(0, 20)}
        index_rows.append([vals.get(c, "") for c in HEADER_V39])
    files["runs/index.csv"] = _csv(HEADER_V39, index_rows)

    # --- state archive ----------------------------------------------------------------
    snapshots: dict[str, list[tuple[datetime, str]]] = {}
    for strategy, n in STRATEGIES:
        times = _times_in_window(n, eight_weeks_ago, as_of, cur_ws, rng, in_current=max(3, n // 8))
        p = rng.uniform(0.45, 0.62)
        folder = f"ops/state_archive/{strategy}/USDJPY/conservative"
        snapshots[strategy] = []
        for t in times:
            p = min(0.8, max(0.3, p + rng.gauss(0, 0.015)))
            alpha = 50 * p
            state = {"meta": {"symbol": "USDJPY", "last_timestamp": t.strftime("%Y-%m-%dT%H:%M:%S")},
                     "ev_global": {"alpha": round(alpha, 9), "beta": round(50 - alpha, 9), "prior_alpha": 0.0,
                                   "prior_beta": 0.0, "decay": 0.02, "conf": 0.95}}
            name = f"{folder}/{_stamp(t)}.json"
            files[name] = _json(state)
            snapshots[strategy].append((t, name))

    # --- benchmarks (newest main-strategy snapshot; baseline = newest plain run) --------
    base_run = [r for r in runs if r["run_id"].startswith("USDJPY_conservative_")][-1]
    snap_t, snap_path = snapshots["day_orb_5m.DayORB5m"][-1]
    m = base_run["metrics"]
    files["reports/baseline/USDJPY_conservative.json"] = _json({
        **m, "decay": 0.02, "run_dir": base_run["dir"], "state_path": f"{base_run['dir']}/state.json",
        "state_archive_path": snap_path, "index_csv": "runs/index.csv"})
    for days, trades in ((90, 52), (180, 98), (365, 171)):
        wins = int(trades * rng.uniform(0.5, 0.7))
        files[f"reports/rolling/{days}/USDJPY_conservative.json"] = _json({
            "trades": trades, "wins": wins, "win_rate": wins / trades,
            "total_pips": round(trades * rng.uniform(-0.5, 3.0), 6), "decay": 0.02,
            "state_archive_path": snap_path})

    # --- router telemetry and portfolio summary ----------------------------------------
    files["reports/portfolio_samples/router_demo/telemetry.json"] = _json({
        "active_positions": {"day_orb_5m_v1": 1, "tokyo_micro_mean_reversion_v0": 2, "swing_trend_v2": 1},
        "category_utilisation_pct": {"day": 18.5, "scalping": 13.2, "swing": 21.0},
        "category_caps_pct": {"day": 40.0, "scalping": 25.0, "swing": 25.0},
        "category_budget_pct": {"day": 35.0, "scalping": 15.0, "swing": 20.0},
        "category_budget_headroom_pct": {"day": 16.5, "scalping": 1.8, "swing": -1.0},
        "gross_exposure_pct": 52.7, "gross_exposure_cap_pct": 80.0,
        "execution_health": {"day_orb_5m_v1": {"reject_rate": 0.012, "slippage_bps": 2.5},
                             "swing_trend_v2": {"reject_rate": 0.004, "slippage_bps": 1.2},
                             "tokyo_micro_mean_reversion_v0": {"reject_rate": 0.032, "slippage_bps": 4.1}}})
    files["reports/portfolio_summary.json"] = _json({
        "generated_at": to_rfc3339(as_of - timedelta(hours=3)),
        "category_utilisation": [
            {"category": c, "utilisation_pct": u, "budget_pct": b, "budget_headroom_pct": round(b - u, 6),
             "budget_status": "ok" if u <= b else "breach"}
            for c, u, b in (("day", 18.5, 35.0), ("scalping", 13.2, 15.0), ("swing", 21.0, 20.0))],
        "gross_exposure": {"current_pct": 52.7, "cap_pct": 80.0, "headroom_pct": 27.3},
        "drawdowns": {"aggregate": {"max_drawdown_pct": 0.42}}})

    # --- latency samples: 14 days x 96 x 3 sources, one breach episode -----------------
    end = _floor(as_of, 15)
    start = end - timedelta(days=14) + timedelta(minutes=15)
    episode_start = max(end - timedelta(hours=3), cur_ws)
    rows = []
    t = start
    while t <= end:
        for si, src in enumerate(LATENCY_SOURCES):
            r = random.Random(f"{seed}:{src}:{_stamp(t)}")
            lat = math.exp(r.gauss(math.log(1500 * (si + 1)), 0.35))
            status, detail = "success", ""
            if src == "router_demo" and episode_start <= t < episode_start + timedelta(minutes=60):
                lat, detail = 150000 + r.uniform(0, 60000), "router backlog"
            rows.append([to_rfc3339(t), f"{lat:.6f}", status, detail, src])
        t += timedelta(minutes=15)
    files["ops/signal_latency.csv"] = _csv(["timestamp_utc", "latency_ms", "status", "detail", "source"], rows)

    # --- bars ----------------------------------------------------------------------------
    bar_end = _floor(as_of, 5) - timedelta(minutes=5)
    bars, price = [], 150.0
    t = bar_end - timedelta(days=2)
    while t <= bar_end:
        o = price
        c = o + rng.gauss(0, 0.02)
        h, lo = max(o, c) + abs(rng.gauss(0, 0.01)), min(o, c) - abs(rng.gauss(0, 0.01))
        bars.append([t.strftime("%Y-%m-%d %H:%M:%S"), "USDJPY", "5m", f"{o:.5f}", f"{h:.5f}", f"{lo:.5f}",
                     f"{c:.5f}", f"{rng.uniform(10, 900):.5f}", "0.005", "0.000000", "0.000000", "0.000000",
                     f"{(o + c) / 2:.5f}", "0.000000", "0.500000"])
        price = c
        t += timedelta(minutes=5)
    files["data/sample_orb.csv"] = _csv(
        ["timestamp", "symbol", "tf", "o", "h", "l", "c", "v", "spread", "zscore", "micro_zscore", "micro_trend",
         "mid_price", "trend_score", "pullback"], bars)
    files["README.md"] = (f"Synthetic research repository generated by obslib.demo (seed={seed}, "
                          f"as_of={to_rfc3339(as_of)}). Not real data.\n").encode()
    return files


def check_replaceable(out: Path) -> None:
    """Refuse to replace anything but an earlier demo repository: ``out`` must be missing,
    an empty folder, or a folder carrying the demo marker. Raises ``ObsError`` otherwise
    (never deletes a research repository, a home folder or a file)."""
    if not out.exists() and not out.is_symlink():
        return
    if out.is_symlink() or not out.is_dir():
        raise ObsError(f"{out}: exists and is not a folder; the demo repository needs a new or empty folder")
    if (out / MARKER).is_file() or not any(out.iterdir()):
        return
    raise ObsError(f"{out}: refusing to replace a non-empty folder that is not a demo repository "
                   f"(no {MARKER}); choose a new or empty folder")


def generate_demo(out_dir: str | Path, as_of: datetime, seed: int = 7) -> Path:
    """Write the demo repository to ``out_dir`` (replacing a previous *demo* repository
    atomically: built in a sibling temp folder, then swapped in). Raises ``ObsError`` when
    ``out_dir`` is a file or a non-empty folder without the demo marker. ``as_of`` (aware) is floored to the
    minute. Returns ``out_dir``."""
    as_of = as_of.astimezone(UTC).replace(second=0, microsecond=0)
    out = Path(out_dir).resolve()
    check_replaceable(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # unique sibling names: never touches anything that happens to be called .<name>.old
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=out.parent))
    try:
        for rel_path, data in _build(as_of, seed).items():
            p = tmp / rel_path
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
        atomic_write_bytes(tmp / MARKER, _json({"as_of": to_rfc3339(as_of), "seed": seed, "version": DEMO_VERSION}))
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.rmdir(old)
            out.rename(old)
        tmp.rename(out)
        fsync_dir(out.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return out


def ensure_demo(out_dir: str | Path, as_of: datetime, seed: int = 7) -> Path:
    """The demo repository for ``as_of`` floored to 15 minutes, generated (under a lock)
    only when missing or made for another as-of/seed/version. Returns its path."""
    as_of = _floor(as_of, 15)
    out = Path(out_dir)
    want = {"as_of": to_rfc3339(as_of), "seed": seed, "version": DEMO_VERSION}
    with file_lock(out.with_name(f".{out.name}.lock"), timeout_s=120):
        try:
            have = json.loads((out / MARKER).read_text())
        except (OSError, ValueError):
            have = None
        if have != want:
            generate_demo(out, as_of, seed)
    return out
