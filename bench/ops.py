"""Operations benchmark: `obs check` over a four-week run log, and run-log append/rotation cost.

Prints figures only (no assertions). Run: .venv/bin/python bench/ops.py
"""

from __future__ import annotations

import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from obslib.cli import main
from obslib.ops.runlog_ops import rotate_if_needed
from obslib.runlog import JobContext, runlog_path
from obslib.schedule import load_schedule

UTC = timezone.utc


def fill(ops: Path, start: datetime, days: int) -> int:
    n = 0
    for job in load_schedule():
        for t in job.expected_between(start - timedelta(seconds=1), start + timedelta(days=days)):
            JobContext(job_name=job.job_name, ops_dir=ops, now=t, schedule_trigger="cron").finish("ok")
            n += 1
    return n


def main_bench() -> None:
    root = Path(tempfile.mkdtemp(prefix="obs-bench-ops-"))
    start = datetime(2026, 3, 2, tzinfo=UTC)
    t0 = time.perf_counter()
    n = fill(root / "ops", start, 28)
    t_fill = time.perf_counter() - t0
    size = runlog_path(root / "ops").stat().st_size
    print(f"run log: {n} records, {size / 1e6:.2f} MB, appended in {t_fill:.2f} s ({t_fill / n * 1e3:.2f} ms/record, fsync each)")
    now = start + timedelta(days=28, hours=2, minutes=30)
    t0 = time.perf_counter()
    main(["check", "--work-root", str(root), "--now", now.strftime("%Y-%m-%dT%H:%M:%SZ"), "--no-send",
          "--since", start.strftime("%Y-%m-%dT%H:%M:%SZ")])
    print(f"obs check over 28 days (in-process, first check validates every line): {time.perf_counter() - t0:.2f} s")
    t0 = time.perf_counter()
    main(["check", "--work-root", str(root), "--now", (now + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
          "--no-send"])
    print(f"obs check, next night (validates only new lines): {time.perf_counter() - t0:.2f} s")
    t0 = time.perf_counter()
    rotate_if_needed(runlog_path(root / "ops"), 1)
    print(f"rotation of a {size / 1e6:.2f} MB log: {(time.perf_counter() - t0) * 1e3:.1f} ms")


if __name__ == "__main__":
    main_bench()
