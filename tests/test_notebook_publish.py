"""The executed notebooks as published: exactly one parameters cell, bounded outputs, the
run's own parameters (re-executable with papermill into another folder), and an HTML
page without code, without network references, titled by week and data."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import obs_subprocess_env

from obslib.config import load_config
from obslib.errors import ObsError
from obslib.nbpublish import MAX_CELL_OUTPUT_CHARS, publish_parameters, truncate_outputs
from obslib.notebook import check_parameters, execute_to_html, kernel_session

OBS = [sys.executable, "-m", "obslib"]
REPO = Path(__file__).resolve().parents[1]
WEEKLY_NB = REPO / "notebooks" / "weekly_report.ipynb"
NOW = "2026-11-26T09:40:00Z"


def run_obs(args, cwd):
    return subprocess.run([*OBS, *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env=obs_subprocess_env())


def papermill(src: Path, dst: Path, **params) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "papermill", str(src), str(dst), "--log-level", "ERROR", "--no-progress-bar"]
    for k, v in params.items():
        args += ["-p", k, str(v)]
    return subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=REPO, env=obs_subprocess_env())


def tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# --- parameters cell (issue #12 item 8) -----------------------------------------------------

def _with_parameter_cells(tmp_path: Path, n: int) -> Path:
    nb = nbformat.read(WEEKLY_NB, as_version=4)
    (first,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    if n == 0:
        first.metadata["tags"] = []
    for _ in range(n - 1):  # a later cell that would reset every value after papermill's injection
        nb.cells.insert(3, nbformat.v4.new_code_cell(first.source, metadata={"tags": ["parameters"]}))
    path = tmp_path / f"params{n}.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.mark.parametrize("n", [0, 2])
def test_notebook_without_exactly_one_parameters_cell_is_refused(tmp_path, n):
    with pytest.raises(ObsError, match=rf"params{n}.ipynb: {n} cells are tagged 'parameters'.*exactly one"):
        check_parameters(_with_parameter_cells(tmp_path, n), {"week_start": "2026-11-23"})


def test_weekly_job_refuses_two_parameters_cells_before_executing(tmp_path, monkeypatch):
    import obslib.weekly.job as wj
    from obslib.runlog import JobContext
    from obslib.timeutil import parse_ts, parse_week_start

    monkeypatch.setattr(wj, "NOTEBOOK", _with_parameter_cells(tmp_path, 2))
    cfg = load_config(tmp_path / "work", env={})
    now = parse_ts(NOW)
    ctx = JobContext("weekly_report", cfg.ops_dir, now)
    with pytest.raises(ObsError, match="2 cells are tagged 'parameters'"):
        wj.build_report(cfg, ctx, now, parse_week_start("2026-11-23"))
    wdir = cfg.out_dir / "weekly_report" / "2026-11-23"
    # refused before running: no payload, no partial notebook, no staging
    assert sorted(p.name for p in wdir.iterdir()) == [".weekly.lock"]


# --- bounded outputs (issue #12 item 4) -----------------------------------------------------

def test_truncate_outputs_keeps_the_head_and_says_how_much_there_was():
    text = "".join(f"line {i}\n" for i in range(200_000))
    nb = {"cells": [{"cell_type": "code", "outputs": [
        {"output_type": "stream", "name": "stdout", "text": text},
        {"output_type": "display_data", "data": {"text/plain": "x" * 10, "text/html": "<b>x</b>"}, "metadata": {}},
        {"output_type": "display_data", "data": {"image/png": "A" * 5_000_000, "text/plain": "<Figure>"},
         "metadata": {}}]},
        {"cell_type": "code", "outputs": [{"output_type": "stream", "name": "stdout", "text": "small\n"}]}]}
    assert truncate_outputs(nb) == 1
    outs = nb["cells"][0]["outputs"]
    assert len(outs) == 2  # the cut stream (with its note) and the image's note; the HTML after the cut goes
    assert outs[0]["text"].startswith("line 0\nline 1\n") and len(outs[0]["text"]) < MAX_CELL_OUTPUT_CHARS + 300
    # everything the cell showed: the stream, the HTML (preferred over its text) and the figure's text
    assert f"this cell printed {len(text) + len('<b>x</b>') + len('<Figure>'):,} characters" in outs[0]["text"]
    assert "(200,002 lines)" in outs[0]["text"]
    assert outs[1]["data"] == {"text/plain": "[image of 5,000,000 base64 characters left out: over "
                                             "obslib.nbpublish.MAX_IMAGE_CHARS]"}
    assert nb["cells"][1]["outputs"][0]["text"] == "small\n"


def test_a_cell_printing_200000_lines_publishes_a_small_notebook_and_page(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("n: int = 0", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("for i in range(n):\n    print(f'row {i}: ' + 'x' * 50)")],
        metadata={"kernelspec": {"name": "obslib", "display_name": "obslib", "language": "python"}})
    src = tmp_path / "loud.ipynb"
    nbformat.write(nb, src)
    cfg = load_config(tmp_path, env={})
    out, html = tmp_path / "out" / "loud.ipynb", tmp_path / "out" / "loud.html"
    with kernel_session(cfg.notebook.kernel_name) as km:
        execute_to_html(src, out, html, {"n": 200_000}, failed_path=tmp_path / "failed.ipynb", work_root=tmp_path,
                        nb_cfg=cfg.notebook, km=km)
    assert out.stat().st_size < 300_000 and html.stat().st_size < 600_000  # was 12.9 MB / 11 MB
    assert "output truncated: this cell printed" in html.read_text()
    published = nbformat.read(out, as_version=4)
    assert "row 0: " in published.cells[1].outputs[0]["text"]


# --- the run's parameters --------------------------------------------------------------------

def test_publish_parameters_sets_the_run_values_and_drops_the_injected_cell():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell('a: str = ""  # where\nout_dir: str = ""\nflag: bool = False\nx: float = 1.0',
                                  metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell('a = "v"\nout_dir = "/staging"', metadata={"tags": ["injected-parameters"]}),
        nbformat.v4.new_code_cell("print(a)")], metadata={"obslib": {"rerun_blank": ["out_dir"]}})
    publish_parameters(nb, {"a": 'va"l', "out_dir": "/staging", "flag": True, "x": 2.5})
    assert [c.source for c in nb.cells][1:] == ["print(a)"]
    src = nb.cells[0].source.splitlines()
    assert src[2:] == ['a: str = "va\\"l"  # where', 'out_dir: str = ""', "flag: bool = True", "x: float = 2.5"]


def test_weekly_report_page_and_rerun(tmp_path, real_root):
    """Acceptance on the real week 2025-09-22: 60 runs in the payload; the page has no code,
    no external URL and a title naming the week; the published notebook re-executes with
    papermill into another folder, gives the same payload and leaves the week folder alone."""
    from obslib.weekly.payload import content_checksum

    work = tmp_path / "work"
    work.mkdir()
    proc = run_obs(["weekly", "run", "--data-root", str(real_root), "--week-start", "2025-09-22", "--now", NOW], work)
    assert proc.returncode == 0, proc.stderr
    wdir = work / "out/weekly_report/2025-09-22"
    payload = json.loads((wdir / "payload.json").read_text())
    assert payload["runs"]["week_summary"]["runs"] == 60 and len(payload["runs"]["week"]) == 60
    page = (wdir / "weekly_report.html").read_text()
    assert re.search(r"<title>Weekly observability report — 2025-09-22 — research_repo</title>", page)
    assert not re.search(r'class="[^"]*(jp-InputArea-editor|jp-CodeMirrorEditor|jp-InputPrompt)', page)
    assert "prepare_weekly" not in page and "import matplotlib" not in page
    urls = re.findall(r'\b(?:src|href)\s*=\s*["\']([^"\']*)', page)
    assert urls and all(u.startswith(("data:", "#")) or "://" not in u for u in urls), urls
    assert 'id="obs-banner"' in page and page.index('id="obs-banner"') < page.index('id="obs-alerts"') < page.index(
        "The week's runs")
    before = tree(wdir)
    rerun = tmp_path / "rerun"
    rerun.mkdir()
    r = papermill(wdir / "weekly_report.ipynb", rerun / "out.ipynb", out_dir=rerun)
    assert r.returncode == 0, r.stderr[-3000:]
    again = json.loads((rerun / "payload.json").read_text())
    assert content_checksum(again) == content_checksum(payload)
    assert tree(wdir) == before
    # a re-run pointed at the published folder is refused
    r = papermill(wdir / "weekly_report.ipynb", rerun / "out2.ipynb", out_dir=wdir)
    assert r.returncode != 0 and "holds a published weekly report" in r.stderr
    assert tree(wdir) == before


def test_dashboard_notebook_reruns_into_another_folder(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    proc = run_obs(["dashboard", "run", "--work-root", str(work), "--now", NOW], REPO)
    assert proc.returncode == 0, proc.stderr
    out = work / "out/dashboard"
    page = (out / "dashboard_bundle.html").read_text()
    assert "<title>Dashboard bundle — 2026-11-26 — demo (seed 7)</title>" in page and "run_export" not in page
    before = tree(work / "out")
    rerun = tmp_path / "rerun"
    rerun.mkdir()
    r = papermill(out / "dashboard_bundle.ipynb", rerun / "out.ipynb", out_dir=rerun)
    assert r.returncode == 0, r.stderr[-3000:]
    assert tree(work / "out") == before
    published = json.loads((out / "manifest.json").read_text())
    again = json.loads((rerun / "out/dashboard/manifest.json").read_text())
    # the same datasets: content checksums (provenance, which names the job, left out)
    content = {(e["name"], e["format"]): e["content_sha256"] for e in published["datasets"]}
    assert len(content) == 8 and content == {(e["name"], e["format"]): e["content_sha256"] for e in again["datasets"]}
    assert json.loads((rerun / "export_result.json").read_text())["failed"] == []
