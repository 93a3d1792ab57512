"""Benchmark of the dashboard bundle on the real data (``../shared/realdata/research_repo``),
every figure measured side by side in one run (interleaved, median of ``--repeat``):

- ``bench/floor.py``: imports pandas/pyarrow and reads every input of the export once;
- ``obs dashboard export`` on a work root that already holds a bundle (the daily case),
  target <= 1.5x the floor; the first export into an empty work root is printed too;
- ``obs dashboard verify`` of that bundle and its history, target <= 1.0x the floor;
- history growth of two unchanged re-exports, target <= 10 % of one bundle's bytes;
- ``--factor N`` (default 10): an export of N x the real runs (a synthetic data root whose
  ``runs/index.csv`` lists every run N times, each ``daily.csv`` a symlink to the real
  file), target <= 10 s, with its peak RSS (``wait4``).

Each target is printed with PASS/FAIL; the exit code is 1 when one is missed (2 without
the real data). Usage: ``.venv/bin/python bench/dashboard.py [--repeat 5] [--factor 10]``.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _targets import check, exit_code  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
REAL = Path(os.environ.get("OBSLIB_REALDATA") or REPO.parent / "shared" / "realdata" / "research_repo")
PY = str(REPO / ".venv" / "bin" / "python") if (REPO / ".venv" / "bin" / "python").exists() else sys.executable
OBS = [PY, "-m", "obslib"]
NOW = "2025-10-20T00:00:00Z"


def synthetic_root(real: Path, dest: Path, factor: int) -> int:
    """Write a data root with ``factor`` x the real runs. Returns the number of daily files."""
    (dest / "runs").mkdir(parents=True)
    for sub in ("ops", "reports"):
        os.symlink(real / sub, dest / sub)
    with open(real / "runs" / "index.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    i_id, i_dir = header.index("run_id"), header.index("run_dir")
    out, n = [header], 0
    for k in range(factor):
        for r in body:
            r = list(r)
            src = real / r[i_dir] / "daily.csv"
            r[i_id] = f"{r[i_id]}_x{k}"
            r[i_dir] = f"runs/{r[i_id]}"
            if src.is_file():
                (dest / r[i_dir]).mkdir()
                os.symlink(src, dest / r[i_dir] / "daily.csv")
                n += 1
            out.append(r)
    with open(dest / "runs" / "index.csv", "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(out)
    return n


def timed(args: list[str]) -> float:
    """Run a command; its wall time in seconds. Raises on a non-zero exit."""
    env = {k: v for k, v in os.environ.items() if k not in ("JOB_ID", "OBS_DASHBOARD_FAULT")}
    t0 = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, env=env, check=False)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args[2:5])} exited {proc.returncode}: {proc.stderr.decode()[-500:]}")
    return elapsed


def timed_rss(args: list[str]) -> tuple[float, int, int]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    return time.perf_counter() - t0, os.waitstatus_to_exitcode(status), int(usage.ru_maxrss / 1024)


def history_bytes(work: Path) -> int:
    root = work / "ops" / "dashboard_export_history"
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def bundle_bytes(work: Path) -> int:
    return sum(p.stat().st_size for p in (work / "out" / "dashboard").iterdir() if p.is_file())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--factor", type=int, default=10)
    a = ap.parse_args()
    if not REAL.is_dir():
        print(f"real data not found at {REAL}", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="obs-bench-dashboard-"))
    results = []
    try:
        work = tmp / "work"
        common = ["--work-root", str(work), "--now", NOW]
        export = [*OBS, "dashboard", "export", "--data-root", str(REAL), *common]
        cold = timed(export)
        floor_cmd = [PY, str(REPO / "bench" / "floor.py"), "--data-root", str(REAL), "--work-root", str(work)]
        floors, exports, verifies = [], [], []
        for _ in range(a.repeat):  # interleaved, so load changes hit all alike
            floors.append(timed(floor_cmd))
            exports.append(timed(export))
            verifies.append(timed([*OBS, "dashboard", "verify", *common]))
        f, e, v = (statistics.median(x) for x in (floors, exports, verifies))
        print(f"floor (imports + read every input once): median {f:.3f} s {[round(x, 3) for x in floors]}")
        print(f"dashboard export (daily, bundle present): median {e:.3f} s {[round(x, 3) for x in exports]}")
        print(f"dashboard export (first, empty work root): {cold:.3f} s")
        print(f"dashboard verify:                         median {v:.3f} s {[round(x, 3) for x in verifies]}")
        results.append(check("export / floor", e / f, 1.5, "x", bench="dashboard.py"))
        results.append(check("verify / floor", v / f, 1.0, "x", bench="dashboard.py"))
        before, size = history_bytes(work), bundle_bytes(work)
        for _ in range(2):
            timed(export)
        grown = history_bytes(work) - before
        print(f"history growth of two unchanged re-exports: {grown} bytes (bundle {size} bytes)")
        results.append(check("2 re-exports: history growth / bundle", 100.0 * grown / size, 10.0, "%",
                             bench="dashboard.py"))
        if a.factor:
            syn = tmp / "synthetic"
            n = synthetic_root(REAL, syn, a.factor)
            s, code, rss = timed_rss([*OBS, "dashboard", "export", "--data-root", str(syn), "--work-root",
                                      str(tmp / "work10"), "--now", NOW])
            print(f"{a.factor}x real runs ({n} daily files): export {s:.2f} s, exit {code}, peak RSS {rss} MiB, "
                  f"bundle {bundle_bytes(tmp / 'work10') / 1e6:.1f} MB")
            results.append(check(f"export of {a.factor}x the real runs", s if code == 0 else float("inf"), 10.0, " s",
                                 bench="dashboard.py"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return exit_code(results)


if __name__ == "__main__":
    sys.exit(main())
