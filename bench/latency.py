#!/usr/bin/env python
"""Latency benchmarks (figures side by side; each target PASS/FAIL, exit 1 on a miss).

1. ``obs latency sample`` on a 10 MB event log (100 sources, 7 days; target <= 1 s for both,
   as the CLI): the first run, which reads the whole log as a backlog (as on a new install
   or after a backlog), and a steady run (15 minutes of new events), in-process and as the
   CLI in a fresh subprocess (median of 3 each); then ``obs latency rollup --full`` over the
   sample rows that first run wrote.
2. Hourly rollups (p50/p95/p99/max per hour and source) of 1e7 events over 100 sources and
   7 days from one CSV: obslib's sketches (``sketch.DenseGroups``) against DuckDB's exact
   ``quantile_cont`` installed with pip into a throwaway venv (or, where that cannot be
   installed, an exact numpy groupby), each in a fresh child process with its wall time and
   peak RSS (target: <= 1.0x DuckDB's wall, <= 600 MiB); the p95 relative error against the
   exact values; the sketch column's size per (hour, source) (target <= 2 KB).

Usage: ``python bench/latency.py [--events 10000000] [--no-duckdb] [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

UTC = timezone.utc
T_START = datetime(2025, 1, 6, tzinfo=UTC)
N_SOURCES = 100
DAYS = 7


def gen_events(path: Path, n: int, *, seed: int = 1, chunk: int = 2_000_000) -> None:
    """``n`` events (``timestamp_utc,latency_ms,status,detail,source``) over 100 sources and
    7 days, in time order, lognormal latencies (ms)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(seed)
    t0 = int(T_START.timestamp())
    span = DAYS * 86400
    names = np.array([f"src{i:03d}" for i in range(N_SOURCES)])
    with open(path, "wb") as fh:
        fh.write(b"timestamp_utc,latency_ms,status,detail,source\n")
        for lo in range(0, n, chunk):
            i = np.arange(lo, min(n, lo + chunk))
            ts = pa.array(t0 + (i * span) // n, pa.timestamp("s", tz="UTC"))
            src = rng.integers(0, N_SOURCES, i.size)
            lat = np.round(rng.lognormal(6.0 + (src % 5) * 0.3, 0.8, i.size), 3)
            table = pa.table({"timestamp_utc": pc.strftime(ts, format="%Y-%m-%dT%H:%M:%SZ"),
                              "latency_ms": pa.array(np.char.mod("%.3f", lat)),
                              "status": pa.array(np.full(i.size, "success")), "detail": pa.array(np.full(i.size, "")),
                              "source": pa.array(names[src])})
            pacsv.write_csv(table, fh, pacsv.WriteOptions(include_header=False, quoting_style="none"))


# --- child processes (each prints one JSON line) -------------------------------------------

OURS = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np, pyarrow as pa, pyarrow.csv as pacsv
sys.path.insert(0, sys.argv[2])
from obslib.latency.bulk import numpy_of  # (Array.to_numpy would import pandas: ~0.2 s, ~100 MiB)
from obslib.latency.readahead import csv_batches
from obslib.latency.sketch import DenseGroups
# streaming: 8 MB CSV blocks into the (hour, source) x bucket count matrix, the file read as
# two byte ranges by two pyarrow readers in threads (csv_batches) while the blocks are counted
with open(sys.argv[1], "rb") as fh:  # the first event's hour: group ids are hours since then
    fh.readline()
    h0 = int(np.datetime64(fh.readline().split(b",", 1)[0].decode().rstrip("Z"), "s").astype(np.int64)) // 3600
names, nsrc = {}, 128
d = DenseGroups()
for batch in csv_batches(sys.argv[1], convert_options=pacsv.ConvertOptions(
        column_types={"timestamp_utc": pa.timestamp("s", tz="UTC"), "latency_ms": pa.float64(),
                      "source": pa.dictionary(pa.int32(), pa.string())},
        include_columns=["timestamp_utc", "latency_ms", "source"]), block_size=4 << 20, depth=1):
    src = batch.column("source")
    m = np.array([names.setdefault(x, len(names)) for x in src.dictionary.to_pylist()], dtype=np.int64)
    codes = m[numpy_of(src.indices, np.int32)]
    hours = numpy_of(batch.column("timestamp_utc"), np.int64) // 3600  # (timestamp[s]: int64 seconds)
    assert int(hours.min()) >= h0 and len(names) <= nsrc  # (time-ordered input, <= 128 sources)
    d.add((hours - h0) * nsrc + codes, numpy_of(batch.column("latency_ms"), np.float64))
p95 = d.quantiles(0.95)
p50, p99 = d.quantiles(0.5), d.quantiles(0.99)
groups = np.flatnonzero(d.count)
texts = [d.text(int(g)) for g in groups.tolist()]
wall = time.perf_counter() - t0
by_name = sorted(names)
rank = np.array([by_name.index(n) for n in sorted(names, key=names.get)])
hour, code = groups // nsrc, groups % nsrc
order = np.lexsort((rank[code], hour))
np.save(sys.argv[3], p95[groups][order])
sizes = [len(x) for x in texts]
print(json.dumps({"wall_s": wall, "peak_mib": int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]) / 1024,
                  "groups": int(groups.size), "sketch_max_bytes": max(sizes), "sketch_mean_bytes": sum(sizes) / len(sizes)}))
"""

NUMPY_EXACT = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np, pyarrow as pa, pyarrow.csv as pacsv
t = pacsv.read_csv(sys.argv[1], convert_options=pacsv.ConvertOptions(
    column_types={"timestamp_utc": pa.timestamp("s", tz="UTC"), "latency_ms": pa.float64(),
                  "source": pa.dictionary(pa.int32(), pa.string())},
    include_columns=["timestamp_utc", "latency_ms", "source"]))
src = t.column("source").unify_dictionaries().combine_chunks()
names = src.dictionary.to_pylist()
order = np.argsort(np.array(names, dtype=object)).astype(np.int64)
rank = np.empty(len(names), np.int64); rank[order] = np.arange(len(names))
codes = rank[src.indices.to_numpy(zero_copy_only=False)]
hours = t.column("timestamp_utc").combine_chunks().cast(pa.int64()).to_numpy() // 3600
lat = t.column("latency_ms").combine_chunks().to_numpy()
gid = (hours - hours.min()) * len(names) + codes
del t, src, hours
o = np.lexsort((lat, gid)); g, v = gid[o], lat[o]
groups, start, n = np.unique(g, return_index=True, return_counts=True)
def q(p):
    h = (n - 1) * p; lo = np.floor(h).astype(np.int64); hi = np.minimum(lo + 1, n - 1)
    a, b = v[start + lo], v[start + hi]
    return a + (h - lo) * (b - a)
res = {p: q(p) for p in (0.5, 0.95, 0.99)}
mx = v[start + n - 1]
wall = time.perf_counter() - t0
xr = v[start + np.floor((n - 1) * 0.95).astype(np.int64)]  # the value at rank floor(q(n-1)): the sketch's bound
np.save(sys.argv[2], np.stack([res[0.95], xr]))  # groups in (hour, source name) order
print(json.dumps({"wall_s": wall, "peak_mib": int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]) / 1024,
                  "groups": int(groups.size)}))
"""

DUCKDB = r"""
import json, sys, time
t0 = time.perf_counter()
import duckdb
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
rows = con.execute(
    "SELECT date_trunc('hour', timestamp_utc) AS h, source, "
    "quantile_cont(latency_ms, [0.5, 0.95, 0.99]) AS q, max(latency_ms), count(*) "
    "FROM read_csv(?, header=true, columns={'timestamp_utc': 'TIMESTAMPTZ', 'latency_ms': 'DOUBLE', "
    "'status': 'VARCHAR', 'detail': 'VARCHAR', 'source': 'VARCHAR'}) GROUP BY ALL ORDER BY h, source",
    [sys.argv[1]]).fetchall()
wall = time.perf_counter() - t0
with open(sys.argv[2], "w") as fh:
    for h, s, q, m, c in rows:
        fh.write(f"{int(h.timestamp()) // 3600},{s},{q[1]!r}\n")
print(json.dumps({"wall_s": wall, "peak_mib": int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]) / 1024,
                  "groups": len(rows), "duckdb": duckdb.__version__}))
"""


def _child(python: str, code: str, *args: str) -> dict:
    """Run ``code`` in a fresh interpreter; its peak memory is its own ``VmHWM`` (the
    ``ru_maxrss`` of a child started from this process would include this one's, which
    survives exec on Linux)."""
    p = subprocess.run([python, "-c", code, *args], capture_output=True, text=True, timeout=1800)
    if p.returncode != 0:
        raise RuntimeError(p.stderr[-2000:])
    return json.loads([ln for ln in p.stdout.splitlines() if ln.startswith("{")][-1])


def duckdb_python(base: Path) -> str | None:
    """A throwaway venv with duckdb from pip (None when it cannot be installed)."""
    venv = base / "duckdb-venv"
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
        py = str(venv / "bin/python")
        subprocess.run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check", "duckdb"], check=True,
                       capture_output=True, timeout=900)
        return py
    except (subprocess.SubprocessError, OSError):
        return None


def bench_rollup(base: Path, n_events: int, use_duckdb: bool) -> dict:
    import numpy as np

    base.mkdir(parents=True, exist_ok=True)
    csv_path = base / "events.csv"
    t = time.perf_counter()
    gen_events(csv_path, n_events)
    gen_s = time.perf_counter() - t
    ours = _child(sys.executable, OURS, str(csv_path), str(REPO), str(base / "ours.npy"))
    exact = _child(sys.executable, NUMPY_EXACT, str(csv_path), str(base / "exact.npy"))
    ref = {"name": "numpy exact groupby", **exact}
    py = duckdb_python(base) if use_duckdb else None
    if py:
        duck = _child(py, DUCKDB, str(csv_path), str(base / "duck.csv"))
        ref = {"name": f"DuckDB {duck['duckdb']} quantile_cont", **duck}
    a, b = np.load(base / "ours.npy"), np.load(base / "exact.npy")
    assert a.shape == b[0].shape
    rel = np.abs(a - b[0]) / b[0]
    rel_r = np.abs(a - b[1]) / b[1]
    return {"csv_mb": csv_path.stat().st_size / 1e6, "gen_s": gen_s, "ours": ours, "reference": ref,
            "numpy_exact": exact, "p95_rel_err_max": float(rel.max()), "p95_rel_err_mean": float(rel.mean()),
            "p95_rank_err_max": float(rel_r.max())}


def _cli_sample(work: Path, data: Path, now: datetime) -> float:
    """Wall seconds of one ``obs latency sample`` in a fresh interpreter (imports included)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBS_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed package has its bytecode (compiled below)
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "obslib.cli", "latency", "sample", "--work-root", str(work),
                        "--data-root", str(data), "--now", now.strftime("%Y-%m-%dT%H:%M:%SZ")],
                       capture_output=True, text=True, env=env, cwd=work)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        raise RuntimeError(p.stderr)
    return wall


def _append_steady(log: Path, at: datetime) -> None:
    """15 minutes of new events from ``at``: 2 per source."""
    with open(log, "a") as fh:
        for i in range(2 * N_SOURCES):
            ts = (at + timedelta(seconds=4 * i)).strftime("%Y-%m-%dT%H:%M:%SZ")
            fh.write(f"{ts},{300 + i}.000,success,,src{i % N_SOURCES:03d}\n")


def bench_sample(base: Path, repeats: int = 3) -> dict:
    import statistics

    from obslib.config import load_config
    from obslib.latency.alerts import AlertTarget
    from obslib.latency.job import run_rollup, run_sample
    from obslib.runlog import JobContext

    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "obslib")], check=True)
    data = base / "data"
    (data / "ops").mkdir(parents=True)
    log = data / "ops/signal_latency.csv"
    n = 10 * 1024 * 1024 // 44
    gen_events(log, n)
    end = T_START + timedelta(days=DAYS)
    # the first run as cron runs it: a fresh process over the whole log (a new install), each
    # time in a fresh work root
    first_cli = []
    for i in range(repeats):
        work = base / f"cli-first-{i}"
        work.mkdir()
        first_cli.append(_cli_sample(work, data, end))
    work = base / "work"
    work.mkdir()
    cfg = load_config(work, env={}, overrides={"data_root": str(data)})

    def run(now):
        ctx = JobContext(job_name="latency", ops_dir=cfg.ops_dir, now=now)
        t = time.perf_counter()
        out = run_sample(cfg, ctx, now, data_root=data, target=AlertTarget())
        return time.perf_counter() - t, out

    first_s, out1 = run(end)
    _append_steady(log, end)
    steady_s, out2 = run(end + timedelta(minutes=15))
    steady_cli = []
    for i in range(repeats):
        at = end + timedelta(minutes=15 * (i + 1))
        _append_steady(log, at)
        steady_cli.append(_cli_sample(work, data, at + timedelta(minutes=15)))
    ctx = JobContext(job_name="latency_rollup", ops_dir=cfg.ops_dir, now=end)
    t = time.perf_counter()
    r = run_rollup(cfg, ctx, end + timedelta(minutes=15 * (repeats + 1) + 1), full=True)
    rollup_s = time.perf_counter() - t
    return {"log_mb": log.stat().st_size / 1e6, "events": n, "first_run_s": first_s,
            "first_rows": out1["rows_written"], "steady_s": steady_s, "steady_events": out2["events_read"],
            "cli_first_s": statistics.median(first_cli), "cli_first_all": first_cli,
            "cli_steady_s": statistics.median(steady_cli), "cli_steady_all": steady_cli,
            "rollup_full_s": rollup_s, "rollup_rows": r["rollup_rows"], "sample_rows_read": r["raw_rows_read"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--no-duckdb", action="store_true", help="compare with the numpy groupby only")
    ap.add_argument("--keep", help="keep the generated files in this folder")
    ap.add_argument("--only", choices=("sample", "rollup"), help="run one part only")
    args = ap.parse_args()
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="obslib-bench-latency-"))
    base.mkdir(parents=True, exist_ok=True)
    from _targets import check, exit_code

    results = []
    try:
        if args.only != "rollup":
            s = bench_sample(base / "sample")
            _print_sample(s)
            results.append(check("latency sample, first run over the whole 10 MB log (CLI)", s["cli_first_s"], 1.0,
                                 " s"))
            results.append(check("latency sample, steady 15-minute run (CLI)", s["cli_steady_s"], 1.0, " s"))
        if args.only != "sample":
            r = bench_rollup(base / "rollup", args.events, not args.no_duckdb)
            _print_rollup(r, args.events)
            o, ref = r["ours"], r["reference"]
            results.append(check(f"hourly rollups / {ref['name']} wall", o["wall_s"] / ref["wall_s"], 1.0, "x"))
            results.append(check("hourly rollups peak memory", o["peak_mib"], 600, " MiB"))
            results.append(check("sketch column per (hour, source)", o["sketch_max_bytes"], 2048, " B"))
            results.append(check("p95 relative error vs exact type 7", r["p95_rel_err_max"], 0.0100001, ""))
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    return exit_code(results)


def _print_sample(s: dict) -> None:
    runs = lambda xs: ", ".join(f"{x:.2f}" for x in xs)  # noqa: E731
    print(f"sample job, {s['log_mb']:.1f} MB event log ({s['events']} events, {N_SOURCES} sources, {DAYS} days):")
    print(f"  first run (the whole log as backlog, {s['first_rows']} window rows): {s['first_run_s']:.2f} s "
          f"in-process, {s['cli_first_s']:.2f} s as the CLI (median of {runs(s['cli_first_all'])}; target <= 1 s)")
    print(f"  steady run ({s['steady_events']} new events): {s['steady_s']:.3f} s in-process, "
          f"{s['cli_steady_s']:.2f} s as the CLI (median of {runs(s['cli_steady_all'])}; target <= 1 s)")
    print("  (CLI: a fresh `python -m obslib.cli latency sample`, imports included, bytecode compiled as installed)")
    print(f"  obs latency rollup --full over {s['sample_rows_read']} sample rows -> {s['rollup_rows']} "
          f"hourly rows: {s['rollup_full_s']:.2f} s")


def _print_rollup(r: dict, n_events: int) -> None:
    if True:
        o, ref = r["ours"], r["reference"]
        print(f"hourly rollups of {n_events:.0e} events ({N_SOURCES} sources x {DAYS} days, "
              f"{r['csv_mb']:.0f} MB CSV, {o['groups']} (hour, source)):")
        print(f"  {'method':<34} {'wall s':>8} {'peak MiB':>9}")
        print(f"  {'obslib sketches (DenseGroups)':<34} {o['wall_s']:>8.2f} {o['peak_mib']:>9.0f}")
        print(f"  {ref['name']:<34} {ref['wall_s']:>8.2f} {ref['peak_mib']:>9.0f}")
        if ref["name"] != "numpy exact groupby":
            ne = r["numpy_exact"]
            print(f"  {'numpy exact groupby':<34} {ne['wall_s']:>8.2f} {ne['peak_mib']:>9.0f}")
        print(f"  ratio obslib / reference: {o['wall_s'] / ref['wall_s']:.2f}x (target <= 1.0x, <= 600 MiB)")
        print(f"  p95 vs exact type 7: max relative error {r['p95_rel_err_max']:.4f}, mean {r['p95_rel_err_mean']:.4f} "
              f"(bound alpha = 0.01)")
        print(f"  sketch column: max {o['sketch_max_bytes']} B, mean {o['sketch_mean_bytes']:.0f} B per (hour, source) "
              f"(target <= 2048 B)")


if __name__ == "__main__":
    raise SystemExit(main())
