"""Benchmark of the weekly job (`obs weekly run` on real data vs a trivial papermill run).

Prints, measured in one run (the machine is noisy: compare the ratio, not absolute times):
- wall time of `obs weekly run` on the real data (median of N runs, fresh work root each);
- wall time of papermill (CLI) executing a trivial one-cell notebook on the same kernel;
- their ratio (target <= 1.5, PASS/FAIL);
- the payload build on the cold path a real run pays: a fresh process importing obslib
  and building the payload once (what the job's preflight and the kernel each pay), and
  the warm library call (target <= 0.5 s; median of 5);
- where the last run spent its time (papermill start, first cell, cells, HTML).
Exit 1 when a target is missed. Run: `.venv/bin/python bench/weekly.py [--runs 3]`
(needs ../shared/realdata).
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
REAL = Path(os.environ.get("OBSLIB_REALDATA") or REPO.parent / "shared/realdata/research_repo")
BIN = Path(sys.executable).parent


def timed(cmd: list[str], cwd: Path, env: dict) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def breakdown(work: Path, started: float) -> str | None:
    """Where one `make weekly` run spent its time, in seconds from its start (wall clock):
    from papermill's metadata in the executed notebook and the HTML file's mtime."""
    import json
    from datetime import datetime

    nb_path = work / "out/weekly_report/2025-09-29/weekly_report.ipynb"
    if not nb_path.exists():
        return None
    nb = json.loads(nb_path.read_text())
    at = lambda iso: datetime.fromisoformat(iso).timestamp() - started  # noqa: E731
    code = [c["metadata"]["papermill"] for c in nb["cells"] if c["cell_type"] == "code"]
    pm, first, last = at(nb["metadata"]["papermill"]["start_time"]), at(code[0]["start_time"]), at(code[-1]["end_time"])
    html = nb_path.with_suffix(".html").stat().st_mtime - started
    return (f"papermill starts {pm:.2f}, first cell {first:.2f}, last cell ends {last:.2f} "
            f"(cells {last - first:.2f}), HTML written {html:.2f}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    if not REAL.is_dir():
        print("real data absent: ../shared/realdata/research_repo", file=sys.stderr)
        return 2
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBS_")}

    tmp = Path(tempfile.mkdtemp(prefix="obs-bench-weekly-"))
    try:
        triv = write_trivial_notebook(tmp / "trivial.ipynb")
        weekly, trivial = [], []
        for i in range(a.runs):  # interleaved so load changes hit both alike
            work = tmp / f"work{i}"
            work.mkdir()
            started = time.time()
            weekly.append(timed([str(BIN / "obs"), "weekly", "run", "--data-root", str(REAL), "--week-start",
                                 "2025-09-29", "--work-root", str(work)], REPO, env))
            trivial.append(timed([str(BIN / "papermill"), str(triv), str(tmp / f"out{i}.ipynb"), "-k", "obslib",
                                  "--no-progress-bar"], tmp, env))
        w, t = statistics.median(weekly), statistics.median(trivial)
        print(f"obs weekly run (real data, week 2025-09-29): median {w:.2f} s over {a.runs} runs "
              f"{[round(x, 2) for x in weekly]}")
        print(f"papermill trivial one-cell notebook:       median {t:.2f} s {[round(x, 2) for x in trivial]}")
        print(f"ratio obs weekly run / trivial papermill:  {w / t:.2f}")
        results = [check("obs weekly run / trivial papermill", w / t, 1.5, "x", bench="weekly.py")]
        last = breakdown(tmp / f"work{a.runs - 1}", started)
        if last:
            print(f"last make weekly, seconds from its start:  {last}")

        from obslib.config import load_config
        from obslib.timeutil import parse_ts, parse_week_start
        from obslib.weekly.payload import build_weekly_payload

        cold_code = ("from obslib.config import load_config; from obslib.timeutil import parse_ts, parse_week_start; "
                     "from obslib.weekly.payload import build_weekly_payload; "
                     f"build_weekly_payload(__import__('pathlib').Path({str(REAL)!r}), parse_week_start('2025-09-29'), "
                     f"cfg=load_config({str(tmp)!r}, env={{}}), now=parse_ts('2026-11-29T12:00:00Z'), job_id='bench', "
                     "command='bench', sha=None, data_label='real')")
        cold = statistics.median(timed([sys.executable, "-c", cold_code], tmp, env) for _ in range(3))
        print(f"payload build, cold (fresh process, imports included): median {cold:.3f} s")
        cfg = load_config(tmp, env={})
        ws, now = parse_week_start("2025-09-29"), parse_ts("2026-11-29T12:00:00Z")
        build_weekly_payload(REAL, ws, cfg=cfg, now=now, job_id="bench", command="bench", sha=None, data_label="real")
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            build_weekly_payload(REAL, ws, cfg=cfg, now=now, job_id="bench", command="bench", sha=None, data_label="real")
            times.append(time.perf_counter() - t0)
        print(f"payload build, warm (library call):        median {statistics.median(times):.3f} s")
        results.append(check("payload build, warm", statistics.median(times), 0.5, " s", bench="weekly.py"))
    finally:  # the work roots, notebooks and outputs are throw-away
        shutil.rmtree(tmp, ignore_errors=True)
    return exit_code(results)


if __name__ == "__main__":
    sys.exit(main())
