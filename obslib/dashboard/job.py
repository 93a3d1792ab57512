"""``obs dashboard run`` (``make dashboard``): execute ``notebooks/dashboard_bundle.ipynb``
with papermill; the notebook runs the export through obslib (``obslib.dashboard.report.run_export``
-> ``bundle.export_bundle``) under this job's id. The executed notebook and its HTML are
built in a staging folder and moved to ``out/dashboard/dashboard_bundle.{ipynb,html}``
only when the notebook ran to the end. A failing cell keeps the partial notebook as
``out/dashboard/failed/<job_id>.ipynb`` and raises; the published datasets are whatever
the export (if it ran) published, exactly as with ``obs dashboard export``.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..config import Config
from ..inputs import data_label, resolve_data_root
from ..notebook import execute_to_html, kernel_session
from ..provenance import commit_sha, source_command
from ..runlog import JobContext
from ..safepath import safe_child
from ..storage import fsync_dir
from ..timeutil import to_rfc3339
from .bundle import ExportResult, bundle_dir

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "dashboard_bundle.ipynb"
OUTPUTS = ("dashboard_bundle.ipynb", "dashboard_bundle.html")


@dataclass
class NotebookRun:
    result: ExportResult
    artefacts: list[str]


def run_notebook(cfg: Config, ctx: JobContext, now: datetime, *, pip_value: float) -> NotebookRun:
    """Execute the notebook (see module doc). Raises ``NotebookFailed`` or ``ObsError``."""
    with kernel_session(cfg.notebook.kernel_name) as km:  # boots while we prepare
        return _run_on_kernel(cfg, ctx, now, pip_value, km)


def _run_on_kernel(cfg: Config, ctx: JobContext, now: datetime, pip_value: float, km) -> NotebookRun:
    from .report import RESULT_FILE, load_result

    root = resolve_data_root(cfg, now)
    out = bundle_dir(cfg.work_root)
    staging = safe_child(out, ctx.job_id, what="JOB_ID", prefix=".nb-staging-")
    failed = safe_child(out / "failed", ctx.job_id, what="JOB_ID", suffix=".ipynb")
    staging.mkdir(parents=True, exist_ok=True)
    params = {"data_root": str(Path(root).resolve()), "as_of": to_rfc3339(now),
              "work_root": str(Path(cfg.work_root).resolve()), "out_dir": str(staging.resolve()),
              "job_id": ctx.job_id, "source_command": source_command(), "commit_sha": commit_sha() or "",
              "data_label": data_label(cfg), "pip_value": float(pip_value)}
    try:
        execute_to_html(NOTEBOOK, staging / OUTPUTS[0], staging / OUTPUTS[1], params,
                        failed_path=failed, work_root=cfg.work_root,
                        nb_cfg=cfg.notebook, km=km)
        result = load_result(staging / RESULT_FILE)
        for name in OUTPUTS:
            os.replace(staging / name, out / name)
        fsync_dir(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return NotebookRun(result, [f"out/dashboard/{n}" for n in OUTPUTS])
