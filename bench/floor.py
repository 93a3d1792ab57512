"""The floor of the dashboard export: a script that only imports pandas and pyarrow and reads
every input file of the export once (``runs/index.csv``, every ``runs/<id>/daily.csv`` it
lists, every state-archive snapshot, the router telemetry, the portfolio summary and the
kit's latency rollup CSV). No parsing, no output: what any export must at least pay.

Usage: ``.venv/bin/python bench/floor.py --data-root DIR [--work-root DIR]``; prints
``{"files": N, "bytes": B}``. ``bench/dashboard.py`` times it beside the real commands.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path

import pandas  # noqa: F401 - the floor pays the imports the export needs
import pyarrow  # noqa: F401
import pyarrow.parquet  # noqa: F401


def inputs(data_root: Path, work_root: Path | None) -> list[Path]:
    """Every input file the export reads (see module doc)."""
    index = data_root / "runs" / "index.csv"
    files = [index]
    text = index.read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    for r in rows:
        d = data_root / (r.get("run_dir") or f"runs/{r['run_id']}") / "daily.csv"
        if d.is_file():
            files.append(d)
    files += sorted((data_root / "ops" / "state_archive").glob("*/*/*/*.json"))
    files += [data_root / "reports" / "portfolio_samples" / "router_demo" / "telemetry.json",
              data_root / "reports" / "portfolio_summary.json"]
    if work_root is not None:
        files.append(work_root / "ops" / "signal_latency_rollup.csv")
    return [f for f in dict.fromkeys(files) if f.is_file()]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", required=True, type=Path)
    ap.add_argument("--work-root", type=Path)
    a = ap.parse_args()
    n = total = 0
    for f in inputs(a.data_root, a.work_root):
        with open(f, "rb") as fh:
            total += len(fh.read())
        n += 1
    print(json.dumps({"files": n, "bytes": total}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
