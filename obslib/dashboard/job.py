"""``obs dashboard run`` (``make dashboard``): the export, then the dashboard notebook,
overlapped as the weekly job does.

The Jupyter kernel is started first (``kernel_session``); while it boots, this process
runs the export (``bundle.export_bundle``: datasets, checks, the atomic switch of
``out/dashboard``, history, heartbeat) and writes its result to the notebook staging
folder (``out/dashboard.versions/.nb-<pid>-<job_id>/export_result.json``). The notebook
is then executed with papermill on the running kernel with ``result_file`` set: it reads
the files the export wrote (``report.load_run``) and never exports again. The executed
notebook and its HTML are built in the staging folder and moved, under the export lock,
into the current bundle version as ``out/dashboard/dashboard_bundle.{ipynb,html}`` only
when the notebook ran to the end (later exports carry them forward). A failing cell keeps
the partial notebook as ``out/dashboard/failed/<job_id>.ipynb`` and raises; the
published datasets are what the export published, exactly as with ``obs dashboard export``.
"""

from __future__ import annotations

import os
import shutil
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..config import Config
from ..errors import ObsError
from ..inputs import data_label, resolve_data_root
from ..notebook import execute_to_html, kernel_session
from ..provenance import commit_sha, source_command
from ..runlog import JobContext
from ..safepath import safe_child
from ..storage import atomic_write_json, file_lock, fsync_dir
from ..timeutil import to_rfc3339
from . import DATASETS, NOTEBOOK, _faults, layout
from .bundle import LOCK, ExportRequest, ExportResult, bundle_dir, export_bundle

OUTPUTS = ("dashboard_bundle.ipynb", "dashboard_bundle.html")


@dataclass
class NotebookRun:
    result: ExportResult
    artefacts: list[str]


def run_notebook(cfg: Config, ctx: JobContext, now: datetime, *, pip_value: float, km: Any = None) -> NotebookRun:
    """Export, then execute the notebook (see module doc). Raises ``NotebookFailed`` or ``ObsError``.
    The kernel boots while this process exports: the two overlap on the machine's two cores.
    ``km``: the kernel from ``notebook.kernel_session(..., notebook=NOTEBOOK)``, started by the
    caller before it imported this module (the export's imports take ~0.5 s); without it one
    is started here, first."""
    with (nullcontext(km) if km is not None else kernel_session(cfg.notebook.kernel_name, notebook=NOTEBOOK)) as km:
        return _run_on_kernel(cfg, ctx, now, pip_value, km)


def _run_on_kernel(cfg: Config, ctx: JobContext, now: datetime, pip_value: float, km) -> NotebookRun:
    from .report import RESULT_FILE

    root = resolve_data_root(cfg, now)
    req = ExportRequest(names=list(DATASETS), data_root=root, work_root=cfg.work_root, now=now, job_id=ctx.job_id,
                        command=source_command(), commit_sha=commit_sha(), data_label=data_label(cfg),
                        pip_value=pip_value, retention_days=cfg.history_retention_days,
                        lock_timeout_s=cfg.lock_timeout_s)
    result = export_bundle(req)
    out = bundle_dir(cfg.work_root)
    layout.versions_root(cfg.work_root).mkdir(parents=True, exist_ok=True)
    staging = layout.versions_root(cfg.work_root) / layout.temp_name("nb", ctx.job_id)
    staging.mkdir()
    try:
        atomic_write_json(staging / RESULT_FILE, asdict(result))
        _faults.checkpoint("nb_result_written")
        params = {"data_root": str(Path(root).resolve()), "as_of": to_rfc3339(now),
                  "work_root": str(Path(cfg.work_root).resolve()), "out_dir": str(staging.resolve()),
                  "job_id": ctx.job_id, "source_command": source_command(), "commit_sha": commit_sha() or "",
                  "data_label": data_label(cfg), "pip_value": float(pip_value),
                  "result_file": str((staging / RESULT_FILE).resolve())}
        execute_to_html(NOTEBOOK, staging / OUTPUTS[0], staging / OUTPUTS[1], params,
                        failed_path=safe_child(out / "failed", ctx.job_id, what="JOB_ID", suffix=".ipynb",
                                              base=cfg.work_root),
                        work_root=cfg.work_root,
                        nb_cfg=cfg.notebook, km=km)
        _faults.checkpoint("nb_executed")
        with file_lock(Path(cfg.work_root) / "ops" / LOCK, cfg.lock_timeout_s):
            cur = layout.current_version(cfg.work_root)
            if cur is None:
                raise ObsError("out/dashboard vanished while the notebook ran")
            for name in OUTPUTS:
                os.replace(staging / name, cur / name)
                _faults.checkpoint(f"nb_placed:{name}")
            fsync_dir(cur)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return NotebookRun(result, [f"out/dashboard/{n}" for n in OUTPUTS])
