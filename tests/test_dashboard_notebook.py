"""``obs dashboard run`` (what ``make dashboard`` runs) from a fresh work root on the demo
data: the notebook executes the export, lands with its HTML in out/dashboard/, and the
bundle verifies. (``pytest --nbval-lax notebooks/`` executes the notebook with defaults.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_dashboard_run_then_verify_on_demo(tmp_path):
    work = tmp_path / "fresh"
    work.mkdir()
    env_now = "2026-01-15T10:00:00Z"
    r = subprocess.run([sys.executable, "-m", "obslib", "dashboard", "run", "--work-root", str(work), "--now", env_now],
                       capture_output=True, text=True, cwd=REPO, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["failed"] == [] and summary["sequence"] == 1
    out = work / "out" / "dashboard"
    nb = json.loads((out / "dashboard_bundle.ipynb").read_text())
    assert not [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    images = [o for c in nb["cells"] for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 4
    assert (out / "dashboard_bundle.html").stat().st_size > 10000
    m = json.loads((out / "manifest.json").read_text())
    assert m["job_id"] == summary["job_id"]  # the notebook exported under the run's job id
    v = subprocess.run([sys.executable, "-m", "obslib", "dashboard", "verify", "--work-root", str(work), "--now",
                        env_now], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert v.returncode == 0, v.stdout + v.stderr
