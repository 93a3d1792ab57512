"""Benchmark of the daily chain on the real data against a trivial one-cell papermill run,
side by side in one run (interleaved, median of ``--runs``):

``obs latency sample``, ``obs latency rollup``, ``obs dashboard run`` (export + notebook),
``obs dashboard verify`` and ``obs check``, each a fresh process as cron runs them, on one
work root (the first round starts empty, later rounds find the previous bundle: the daily
case). Target: the chain <= 3.0x the trivial papermill run. Prints each step's median too.
Exit 1 when the target is missed, 2 without the real data.
Run: ``.venv/bin/python bench/daily.py [--runs 3]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _targets import check, exit_code, write_trivial_notebook  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
REAL = Path(os.environ.get("OBSLIB_REALDATA") or REPO.parent / "shared" / "realdata" / "research_repo")
BIN = REPO / ".venv" / "bin" if (REPO / ".venv" / "bin" / "obs").exists() else Path(sys.executable).parent


def timed(cmd: list[str], env: dict, *, must_pass: bool = True) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, capture_output=True, check=False)
    took = time.perf_counter() - t0
    if must_pass and p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[1:3])} exited {p.returncode}: {p.stderr.decode()[-400:]}")
    return took


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    if not REAL.is_dir():
        print(f"real data not found at {REAL}", file=sys.stderr)
        return 2
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBS_") and k != "JOB_ID"}
    tmp = Path(tempfile.mkdtemp(prefix="obs-bench-daily-"))
    try:
        triv = write_trivial_notebook(tmp / "trivial.ipynb")
        work = tmp / "work"
        obs = str(BIN / "obs")
        common = ["--work-root", str(work), "--data-root", str(REAL), "--now", "2025-10-20T01:00:00Z"]
        steps = {"latency sample": [obs, "latency", "sample", *common],
                 "latency rollup": [obs, "latency", "rollup", *common],
                 "dashboard run": [obs, "dashboard", "run", *common],
                 "dashboard verify": [obs, "dashboard", "verify", *common],
                 "check": [obs, "check", *common]}
        per: dict[str, list[float]] = {k: [] for k in steps}
        chain, trivial = [], []
        for i in range(a.runs):  # interleaved, so load changes hit both alike
            total = 0.0
            for name, cmd in steps.items():
                took = timed(cmd, env, must_pass=name != "check")  # check exits 1 on (expected) missed runs
                per[name].append(took)
                total += took
            chain.append(total)
            trivial.append(timed([str(BIN / "papermill"), str(triv), str(tmp / f"out{i}.ipynb"), "-k", "obslib",
                                  "--no-progress-bar"], env))
        c, t = statistics.median(chain), statistics.median(trivial)
        for name, xs in per.items():
            print(f"  {name:<17} median {statistics.median(xs):.2f} s {[round(x, 2) for x in xs]}")
        print(f"daily chain: median {c:.2f} s {[round(x, 2) for x in chain]}")
        print(f"papermill trivial one-cell notebook: median {t:.2f} s {[round(x, 2) for x in trivial]}")
        results = [check("daily chain / trivial papermill", c / t, 3.0, "x", bench="daily.py")]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return exit_code(results)


if __name__ == "__main__":
    sys.exit(main())
