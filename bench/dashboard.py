"""Benchmark of ``obs dashboard export --dataset all`` (no notebook), through the CLI.

Prints: the export time on the real data (``../shared/realdata/research_repo``), the
time at 10x the real runs (a synthetic data root whose ``runs/index.csv`` lists every run
10 times under new run ids, each ``runs/<id>/daily.csv`` a symlink to the real file;
target <= 10 s), and the peak memory (max RSS of the CLI process, from ``wait4``), plus
``obs dashboard verify`` on the real bundle. Usage: ``.venv/bin/python bench/dashboard.py
[--factor 10] [--repeat 1]``. Skips with a message when the real data is absent.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REAL = Path(os.environ.get("OBSLIB_REALDATA") or REPO.parent / "shared" / "realdata" / "research_repo")
OBS = [str(REPO / ".venv" / "bin" / "obs")] if (REPO / ".venv" / "bin" / "obs").exists() else [
    sys.executable, "-m", "obslib"]
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


def timed(args: list[str]) -> tuple[float, int, int, str]:
    """Run a CLI command; ``(seconds, exit code, max RSS in MiB, stdout)``."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t0
    out = proc.stdout.read() if proc.stdout else ""
    return elapsed, os.waitstatus_to_exitcode(status), int(usage.ru_maxrss / 1024), out.strip()[-300:]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--factor", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=1)
    a = ap.parse_args()
    if not REAL.is_dir():
        print(f"real data not found at {REAL}: skipped")
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="obs-bench-dashboard-"))
    try:
        work = tmp / "work"
        base = [*OBS, "dashboard", "export", "--dataset", "all", "--now", NOW, "--work-root", str(work)]
        best = None
        for _ in range(a.repeat):
            r = timed([*base, "--data-root", str(REAL)])
            best = r if best is None or r[0] < best[0] else best
        print(f"real data (164 daily files), CLI export all: {best[0]:.2f} s, exit {best[1]}, peak RSS {best[2]} MiB")
        v = timed([*OBS, "dashboard", "verify", "--now", NOW, "--work-root", str(work)])
        print(f"verify of the real bundle: {v[0]:.2f} s, exit {v[1]}, peak RSS {v[2]} MiB")
        syn = tmp / "synthetic"
        n = synthetic_root(REAL, syn, a.factor)
        work10 = tmp / "work10"
        r = timed([*OBS, "dashboard", "export", "--dataset", "all", "--now", NOW, "--work-root", str(work10),
                   "--data-root", str(syn)])
        verdict = "meets" if r[0] <= 10 else "MISSES"
        print(f"{a.factor}x real runs ({n} daily files), CLI export all: {r[0]:.2f} s ({verdict} the 10 s target), "
              f"exit {r[1]}, peak RSS {r[2]} MiB")
        size = sum(p.stat().st_size for p in (work10 / "out" / "dashboard").glob("*.*"))
        print(f"{a.factor}x bundle size: {size / 1e6:.1f} MB")
        if r[1] != 0:
            print(r[3])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
