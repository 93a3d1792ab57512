"""`obs weekly run` end to end through the real CLI (subprocess, papermill, nbconvert)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import obs_subprocess_env

from obslib.schemas import errors as schema_errors
from obslib.weekly.payload import SCHEMA_FILE

OBS = [sys.executable, "-m", "obslib"]


def run_obs(args, cwd, **env):
    return subprocess.run([*OBS, *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env=obs_subprocess_env(**env))


def summary(proc) -> dict:
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stdout
    return json.loads(lines[0])


def test_weekly_run_on_demo(tmp_path):
    proc = run_obs(["weekly", "run", "--now", "2026-11-26T09:40:00Z"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    s = summary(proc)
    assert s["status"] == "dry_run" and s["week_start"] == "2026-11-23"
    wdir = tmp_path / "out/weekly_report/2026-11-23"
    assert {p.name for p in wdir.iterdir()} >= {"payload.json", "weekly_report.ipynb", "weekly_report.html"}
    payload = json.loads((wdir / "payload.json").read_text())
    assert schema_errors(payload, SCHEMA_FILE) == []
    assert payload["runs"]["baseline"] and payload["runs"]["rolling"]
    assert payload["utilisation"]["categories"] and payload["execution_health"]["slippage_bps"]
    assert payload["latency"]["p95_ms"] > 0 and payload["latency"]["breaches"]
    nb = nbformat.read(wdir / "weekly_report.ipynb", as_version=4)
    images = sum(1 for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                 if "image/png" in o.get("data", {}))
    assert images >= 3
    # the summary keeps the report's own alert counts (issue #11, observation 6) ...
    want = {sev: sum(1 for a in payload["alerts"] if a["severity"] == sev) for sev in ("critical", "warning", "info")}
    assert s["report_alerts"] == want and want["critical"] >= 1
    assert [a["id"] for a in s["alerts"]] == ["weekly-webhook-not-configured"]  # the delivery's, beside them
    # ... and one human line on stderr, nothing else (quiet under cron)
    assert "Traceback" not in proc.stderr and proc.stderr.splitlines() == [
        f"wrote out/weekly_report/2026-11-23/weekly_report.html \u2014 {want['critical']} critical, "
        f"{want['warning']} warning; dry run: no webhook configured ({s['delivery']['dry_run_file']})"]
    log = [json.loads(x) for x in (tmp_path / "ops/automation_runs.log").read_text().splitlines()]
    rec = [r for r in log if r["job_name"] == "weekly_report"][-1]
    assert rec["status"] == "dry_run" and rec["job_id"] == s["job_id"] and rec["duration_ms"] > 0
    assert not list(wdir.glob(".staging-*"))


def test_weekly_run_on_real_data(tmp_path, real_root):
    proc = run_obs(["weekly", "run", "--data-root", str(real_root), "--week-start", "2025-09-29",
                    "--now", "2026-11-29T12:00:00Z"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    p = json.loads((tmp_path / "out/weekly_report/2025-09-29/payload.json").read_text())
    assert p["runs"]["baseline"][0]["win_rate_lcb"] == pytest.approx(0.43588, abs=1e-4)
    assert p["latency"]["p95_ms"] is None


def _break(root: Path, case: str) -> tuple[str, str]:
    if case == "truncated_csv":
        with open(root / "runs/index.csv", "a") as fh:
            fh.write("grid_x,runs/grid_x,,2025")
        return "runs/index.csv:231", "truncated last line"
    if case == "non_numeric":
        text = (root / "runs/index.csv").read_text().splitlines()
        cells = text[5].split(",")
        cells[24] = "lots"  # trades
        text[5] = ",".join(cells)
        (root / "runs/index.csv").write_text("\n".join(text) + "\n")
        return "runs/index.csv:6", "'lots' is not a number"
    if case == "json_syntax":
        p = root / "reports/portfolio_samples/router_demo/telemetry.json"
        p.write_text(p.read_text()[:-30])
        return "reports/portfolio_samples/router_demo/telemetry.json:", "invalid JSON"
    (root / "runs/index.csv").unlink()
    return "runs/index.csv", "file not found"


@pytest.mark.parametrize("case", ["truncated_csv", "non_numeric", "json_syntax", "missing_file"])
def test_bad_input_fails_cleanly_and_keeps_earlier_outputs(tmp_path, real_copy, case):
    work = tmp_path / "work"
    week = work / "out/weekly_report/2025-09-29"
    week.mkdir(parents=True)
    (week / "payload.json").write_text('{"earlier": true}')
    where, why = _break(real_copy, case)
    proc = run_obs(["weekly", "run", "--data-root", str(real_copy), "--week-start", "2025-09-29"], work)
    assert proc.returncode != 0
    assert where in proc.stderr and why in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert summary(proc)["status"] == "error"
    assert (week / "payload.json").read_text() == '{"earlier": true}'
    # nothing published, no staging left and no partial notebook (the error says what is wrong);
    # only the week's lock file (operational state) may have appeared
    assert sorted(p.name for p in week.iterdir() if p.name != ".weekly.lock") == ["payload.json"]


def test_failing_cell_keeps_partial_notebook_and_old_artefacts(tmp_path, monkeypatch):
    import obslib.weekly.job as wj
    from obslib.config import load_config
    from obslib.notebook import NotebookFailed
    from obslib.runlog import JobContext
    from obslib.timeutil import parse_ts, parse_week_start

    nb = nbformat.read(wj.NOTEBOOK, as_version=4)
    nb.cells.insert(3, nbformat.v4.new_code_cell("raise RuntimeError('boom in cell')"))
    bad = tmp_path / "bad.ipynb"
    nbformat.write(nb, bad)
    monkeypatch.setattr(wj, "NOTEBOOK", bad)
    cfg = load_config(tmp_path, env={})
    now = parse_ts("2026-11-26T09:40:00Z")
    wdir = tmp_path / "out/weekly_report/2026-11-23"
    wdir.mkdir(parents=True)
    (wdir / "payload.json").write_text("old")
    ctx = JobContext("weekly_report", cfg.ops_dir, now)
    with pytest.raises(NotebookFailed, match="boom in cell") as ei:
        wj.build_report(cfg, ctx, now, parse_week_start("2026-11-23"))
    partial = wdir / "failed" / f"{ctx.job_id}.ipynb"
    assert partial.is_file() and str(partial.relative_to(tmp_path)) in str(ei.value)
    executed = nbformat.read(partial, as_version=4)
    assert any(o.get("ename") == "RuntimeError" for c in executed.cells for o in c.get("outputs", []))
    assert (wdir / "payload.json").read_text() == "old"
    assert not list(wdir.glob(".staging-*"))
    shutil.rmtree(tmp_path / "out/demo_repo")
