"""The golden notebooks (tests/golden/, ``make golden``) that ``make test`` re-executes with
``pytest --nbval`` (strict: every output compared): they must be the current templates
executed, and a changed number must fail with a diff that names it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "golden"


@pytest.mark.parametrize("name", ["weekly_report.ipynb", "dashboard_bundle.ipynb"])
def test_golden_is_the_template_executed(name):
    template = nbformat.read(REPO / "notebooks" / name, as_version=4)
    golden = nbformat.read(GOLDEN / name, as_version=4)
    code = [c for c in template.cells if "parameters" not in c.metadata.get("tags", [])]
    gold = [c for c in golden.cells if "parameters" not in c.metadata.get("tags", [])]
    assert [(c.cell_type, c.source) for c in gold] == [(c.cell_type, c.source) for c in code], (
        f"tests/golden/{name} is not notebooks/{name} executed: run `make golden` and review the diff")
    assert all(c.get("outputs") or c.cell_type != "code" or not c.source.startswith("display")
               for c in golden.cells)


def test_a_changed_value_fails_strict_nbval_with_a_readable_diff(tmp_path):
    nb = nbformat.read(GOLDEN / "weekly_report.ipynb", as_version=4)
    summary = next(c for c in nb.cells if c.cell_type == "code" and c.source.startswith("display(report.summary"))
    (out,) = summary.outputs
    line = next(ln for ln in out.data["text/plain"].splitlines() if ln.startswith("Runs this week: "))
    changed = line.replace("Runs this week: ", "Runs this week: 9", 1)  # as if the demo had 90 more runs
    out.data["text/plain"] = out.data["text/plain"].replace(line, changed)
    nbformat.write(nb, tmp_path / "weekly_report.ipynb")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "--nbval", "-p", "no:cacheprovider",
                        "--nbval-sanitize-with", str(GOLDEN / "sanitize.cfg"), "--nbval-current-env",
                        str(tmp_path / "weekly_report.ipynb")], capture_output=True, text=True, timeout=600,
                       cwd=tmp_path)
    assert r.returncode != 0
    assert "1 failed" in r.stdout, r.stdout[-3000:]
    assert "Cell outputs differ" in r.stdout and "display(report.summary(rep))" in r.stdout
    # the diff shows the line as expected and as got (pytest may skip the identical start of the line)
    diff = [ln.strip() for ln in r.stdout.splitlines() if ln.strip().startswith(("- ", "+ "))]
    assert any(changed.endswith(d[2:]) for d in diff) and any(line.endswith(d[2:]) for d in diff), r.stdout
