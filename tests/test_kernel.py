"""The ``obslib`` Jupyter kernel (``obslib.kernel``, registered by ``obslib.kernelspec``):
a real kernel process, driven over ZeroMQ by jupyter_client as papermill drives it."""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import struct
from contextlib import contextmanager
from pathlib import Path

import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

from obslib.kernel import PRELOAD_ENV, preload
from obslib.notebook import notebook_preload

REPO = Path(__file__).resolve().parents[1]


@contextmanager
def kernel(env: dict[str, str] | None = None, cwd: Path | None = None):
    """A running ``obslib`` kernel and a connected client; stopped on exit."""
    km = KernelManager(kernel_name="obslib")
    km.start_kernel(env={**os.environ, **(env or {})}, extra_arguments=["--HistoryManager.hist_file=:memory:"],
                    cwd=str(cwd or REPO / "notebooks"))
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        yield kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def run(kc, code: str) -> list[dict]:
    """Execute ``code``; the iopub messages it produced (stream, display_data, error)."""
    out: list[dict] = []
    reply = kc.execute_interactive(code, timeout=60, output_hook=out.append)
    assert reply["content"]["status"] in ("ok", "error")
    return [m for m in out if m["msg_type"] in ("stream", "display_data", "error")]


def stdout(msgs: list[dict]) -> str:
    return "".join(m["content"]["text"] for m in msgs if m["msg_type"] == "stream")


def test_the_kernelspec_runs_obslib_kernel_without_a_debugger():
    spec = KernelSpecManager().get_kernel_spec("obslib")
    assert spec.argv[1:3] == ["-m", "obslib.kernel"]
    assert spec.argv[3:] == ["-f", "{connection_file}"]
    assert spec.metadata.get("debugger") is False
    assert Path(spec.argv[0]).name.startswith("python")


def png_size(msgs: list[dict]) -> list[tuple[int, int]]:
    """(width, height) in pixels of each PNG the messages displayed (from the IHDR chunk)."""
    out = []
    for m in msgs:
        if m["msg_type"] == "display_data" and "image/png" in m["content"]["data"]:
            png = base64.b64decode(m["content"]["data"]["image/png"])
            assert png[:8] == b"\x89PNG\r\n\x1a\n"
            out.append(struct.unpack(">II", png[16:24]))
    return out


def test_obslib_figures_are_saved_as_laid_out_and_other_figures_keep_the_tight_bbox():
    fits = "ax.plot([0, 1], [0, 1])\nplt.show()"
    overflow = "ax.text(0.0, 0.5, 'x' * 300)\nplt.show()"
    with kernel() as kc:
        run(kc, "%matplotlib inline\nimport matplotlib.pyplot as plt\nfrom obslib.presentation import new_figure")
        ours = png_size(run(kc, "fig, (ax,) = new_figure(4, 2)\nfig.set_dpi(50)\n" + fits))
        assert ours == [(4 * 50, 2 * 50)]  # the figure's own size: measured without a draw, not cropped
        grown = png_size(run(kc, "fig, (ax,) = new_figure(4, 2)\nfig.set_dpi(50)\n" + overflow))
        assert len(grown) == 1 and grown[0][0] > 4 * 50 and grown[0][1] >= 2 * 50  # grown to hold the text
        theirs = png_size(run(kc, "fig, ax = plt.subplots(figsize=(4, 2), dpi=50)\n" + fits))
        assert len(theirs) == 1 and theirs[0] != (4 * 50, 2 * 50)  # an analyst's figure: the backend's tight bbox


def test_debugpy_is_not_loaded():
    with kernel() as kc:
        err = [m for m in run(kc, "import debugpy") if m["msg_type"] == "error"]
        assert err and err[0]["content"]["ename"] in ("ModuleNotFoundError", "ImportError")
        assert stdout(run(kc, "import sys; print('debugpy' in sys.modules and sys.modules['debugpy'] is not None)")
                      ).strip() == "False"


def test_the_kernel_preloads_what_it_is_told_and_skips_a_module_that_fails(tmp_path):
    (tmp_path / "exits_on_import.py").write_text("import sys\nsys.exit(3)\n")
    probe = "import os, sys; print('wave' in sys.modules, os.environ.get('OBSLIB_KERNEL_PRELOAD'))"
    with kernel({PRELOAD_ENV: "exits_on_import, wave, obslib_no_such_module_xyz"}, cwd=tmp_path) as kc:
        assert stdout(run(kc, probe)).split() == ["True", "None"]  # alive; imported; the variable not passed on
        err = [m for m in run(kc, "import exits_on_import") if m["msg_type"] == "error"]
        assert err and err[0]["content"]["ename"] == "SystemExit"  # the cell reports it, as without preload
        three_d = "import matplotlib.projections as p; print('3d' in p.get_projection_names())"
        assert stdout(run(kc, three_d)).strip() == "False"  # a job's kernel: no 3D toolkit, and no warning
    with kernel() as kc:
        assert stdout(run(kc, probe)).split() == ["False", "None"]  # nothing preloaded by default
        assert stdout(run(kc, three_d)).strip() == "True"  # any other kernel has 3D axes as usual


def test_preload_returns_what_it_imported():
    assert preload("json, ,obslib_no_such_module_xyz,os.path") == ["json", "os.path"]
    assert preload("") == []


@pytest.mark.parametrize("name", ["weekly_report.ipynb", "dashboard_bundle.ipynb"])
def test_each_report_notebook_lists_modules_that_exist_and_it_imports(name):
    nb_path = REPO / "notebooks" / name
    mods = notebook_preload(nb_path)
    assert "matplotlib.pyplot" in mods and any(m.startswith("obslib.") for m in mods)
    for m in mods:
        assert importlib.util.find_spec(m) is not None, m  # a typo would silently lose the preload
    code = "\n".join("".join(c["source"]) for c in json.loads(nb_path.read_text())["cells"] if c["cell_type"] == "code")
    own = next(m for m in mods if m.startswith("obslib."))
    assert f"from {own.rsplit('.', 1)[0]} import {own.rsplit('.', 1)[1]}" in code


def test_notebook_preload_of_a_notebook_without_the_list_or_unreadable(tmp_path):
    plain = tmp_path / "plain.ipynb"
    plain.write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    assert notebook_preload(plain) == ()
    broken = tmp_path / "broken.ipynb"
    broken.write_text("{not json")
    assert notebook_preload(broken) == ()
    assert notebook_preload(tmp_path / "missing.ipynb") == ()
    odd = tmp_path / "odd.ipynb"
    odd.write_text(json.dumps({"metadata": {"obslib": {"preload": ["json", 3, None, "os; rm -rf /", "a..b", " os.path "]}}}))
    assert notebook_preload(odd) == ("json", "os.path")  # module names only
    text = tmp_path / "text.ipynb"
    text.write_text(json.dumps({"metadata": {"obslib": {"preload": "json, os.path"}}}))
    assert notebook_preload(text) == ("json", "os.path")  # a string is a comma-separated list, not letters
    many = tmp_path / "many.ipynb"
    many.write_text(json.dumps({"metadata": {"obslib": {"preload": [f"m{i}" for i in range(500)]}}}))
    assert notebook_preload(many) == tuple(f"m{i}" for i in range(64))  # bounded (one environment variable)


def test_a_report_plot_is_saved_whole_even_when_its_labels_outgrow_the_margin():
    """The weekly latency plot with a source near 1.2e8 ms: the log axis' tick labels and the
    y label are wider than the fixed 0.8 in margin. The saved box holds every one of them
    (measured after a real draw), and a plot whose labels fit is saved exactly as laid out."""
    import matplotlib

    matplotlib.use("Agg")
    from datetime import datetime, timedelta, timezone

    from obslib.presentation import saved_bbox
    from obslib.weekly.report import plot_latency

    t = datetime(2026, 11, 30, tzinfo=timezone.utc)
    hourly = {"feed_ingest": [(t + timedelta(hours=i), 5000.0 + i * 100) for i in range(8)],
              "router_demo": [(t + timedelta(hours=i), 2000.0 if i != 4 else 1.2e8) for i in range(8)]}
    ax = plot_latency(hourly, 120000.0, "2026-11-30T00:00:00Z", "2026-12-07T00:00:00Z")
    fig = ax.figure
    box = saved_bbox(fig)
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    dpi = fig.dpi
    parts = [ax.yaxis.label, *[x for x in ax.get_yticklabels() if x.get_text()]]
    assert any(p.get_window_extent(r).x0 < 0 for p in parts)  # sticks out of the figure as laid out
    for p in parts:
        e = p.get_window_extent(r)
        assert e.x0 / dpi >= box.x0 - 1e-6 and e.x1 / dpi <= box.x1 + 1e-6, p.get_text()
    w, h = fig.get_size_inches()
    assert box.x0 < 0 and box.x1 >= w - 1e-9 and box.y0 <= 0 and box.y1 >= h - 1e-9  # grown, never cropped
    small = plot_latency({"feed": [(t, 100.0), (t + timedelta(hours=1), 300.0)]}, 250.0,
                         "2026-11-30T00:00:00Z", "2026-12-07T00:00:00Z").figure
    assert tuple(saved_bbox(small).bounds) == (0.0, 0.0, *small.get_size_inches())  # fits: as laid out
