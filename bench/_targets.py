"""Shared by the benchmark scripts: each target is printed with PASS or FAIL, a script
exits non-zero when one is missed, and ``make bench`` ends with one table of them all.

``check(name, value, limit, unit)`` prints ``TARGET <name>: <value><unit> (target <= <limit>):
PASS|FAIL`` and, when ``$OBS_BENCH_RESULTS`` names a file, appends the result there as one
JSON line. ``exit_code(results)`` is 0 when every result passed. ``python bench/_targets.py
<file>`` prints the table of a results file and exits 1 when any target failed.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

RESULTS_ENV = "OBS_BENCH_RESULTS"


def check(name: str, value: float, limit: float, unit: str = "", *, bench: str = "") -> dict:
    """One target ``value <= limit``: printed and recorded. Returns the result dict."""
    ok = value <= limit
    res = {"bench": bench or Path(sys.argv[0]).name, "target": name, "value": round(value, 4), "limit": limit,
           "unit": unit, "result": "PASS" if ok else "FAIL"}
    print(f"TARGET {name}: {value:.3f}{unit} (target <= {limit:g}{unit}): {res['result']}", flush=True)
    path = os.environ.get(RESULTS_ENV)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(res) + "\n")
    return res


def exit_code(results: list[dict]) -> int:
    return 0 if all(r["result"] == "PASS" for r in results) else 1


def table(path: Path) -> int:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()] \
        if path.is_file() else []
    head = ("bench", "target", "value", "limit", "result")
    cells = [head] + [(r["bench"], r["target"], f"{r['value']:g}{r['unit']}", f"<= {r['limit']:g}{r['unit']}",
                       r["result"]) for r in rows]
    widths = [max(len(str(c[i])) for c in cells) for i in range(len(head))]
    for i, c in enumerate(cells):
        print("  ".join(str(x).ljust(w) for x, w in zip(c, widths, strict=True)))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    failed = sum(r["result"] != "PASS" for r in rows)
    print(f"{len(rows) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(table(Path(sys.argv[1])))


def write_trivial_notebook(path: Path) -> Path:
    """The one-cell ``x = 1`` notebook on the ``obslib`` kernel that every bench compares
    a job against (the cost of papermill itself)."""
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    nb.metadata["kernelspec"] = {"name": "obslib", "display_name": "obslib", "language": "python"}
    nbformat.write(nb, path)
    return path
