"""The weekly job (``obs weekly run`` / ``make weekly``): execute the report notebook,
export HTML, publish the week's artefacts atomically, then deliver the payload.

Layout: ``out/weekly_report/<week_start>/{weekly_report.ipynb, weekly_report.html,
payload.json}``. The notebook runs in a staging folder; only a fully successful run
replaces the week's files (each by ``os.replace``). A failing cell keeps the partial
executed notebook as ``out/weekly_report/<week_start>/failed/<job_id>.ipynb`` and exits
non-zero; earlier artefacts (this week's and other weeks') are untouched.
"""

from __future__ import annotations

import os
import shutil
from contextlib import nullcontext
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
from ..schemas import validate, validator
from ..storage import file_lock, fsync_dir, read_json
from ..timeutil import to_rfc3339, week_start_of
from .payload import SCHEMA_FILE, build_weekly_payload, content_checksum

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "weekly_report.ipynb"
ARTEFACTS = ("weekly_report.ipynb", "weekly_report.html", "payload.json")


def week_dir(cfg: Config, week_start: datetime) -> Path:
    """``out/weekly_report/<YYYY-MM-DD>/``."""
    return cfg.out_dir / "weekly_report" / week_start.date().isoformat()


def build_report(cfg: Config, ctx: JobContext, now: datetime, week_start: datetime | None,
                 allow_bad_rows: bool = False, km: Any = None) -> dict[str, Any]:
    """Execute the notebook for ``week_start`` (default: the week containing ``now``) and
    publish its artefacts. Returns ``{week_start, dir, payload, payload_path, artefacts}``.

    ``km``: the report kernel from ``notebook.kernel_session`` (started by the caller as
    early as possible); without it one is started here, first, so its start-up overlaps
    the rest. While the notebook runs, the payload is also built in this process as a
    preflight: bad input gives the library's clean ``InputError`` (file, line, reason),
    no partial notebook and nothing published. Raises ``NotebookFailed`` (partial notebook
    kept under ``failed/``) or another ``ObsError``."""
    ws = week_start or week_start_of(now)
    if ws > now:
        raise ObsError(f"week_start {ws.date().isoformat()} is in the future (now is {to_rfc3339(now)}): "
                       "a week is reported once it has started")
    with (nullcontext(km) if km is not None else kernel_session(cfg.notebook.kernel_name)) as km:
        root = resolve_data_root(cfg, now)
        label = data_label(cfg)
        wdir = week_dir(cfg, ws)
        wdir.mkdir(parents=True, exist_ok=True)
        # one run per week at a time; a second waits (bounded) instead of mixing artefacts
        with file_lock(wdir / ".weekly.lock", cfg.lock_timeout_s):
            cleanup_staging(wdir)  # left by a killed run; safe under the lock
            return _build_locked(cfg, ctx, now, ws, root, label, wdir, allow_bad_rows, km)


def _build_locked(cfg: Config, ctx: JobContext, now: datetime, ws: datetime, root: Path, label: str, wdir: Path,
                  allow_bad_rows: bool, km: Any) -> dict[str, Any]:
    staging = safe_child(wdir, ctx.job_id, what="JOB_ID", prefix=".staging-")
    failed = safe_child(wdir / "failed", ctx.job_id, what="JOB_ID", suffix=".ipynb")
    staging.mkdir(parents=True, exist_ok=True)
    params = {"week_start": ws.date().isoformat(), "data_root": str(Path(root).resolve()), "as_of": to_rfc3339(now),
              "out_dir": str(staging.resolve()), "work_root": str(Path(cfg.work_root).resolve()),
              "job_id": ctx.job_id, "source_command": source_command(), "commit_sha": commit_sha() or "",
              "data_label": label, "allow_bad_rows": allow_bad_rows}

    def preflight() -> None:  # the notebook's payload build, here: bad input -> a clean InputError
        build_weekly_payload(root, ws, cfg=cfg, now=now, job_id=ctx.job_id, command="preflight", sha=None,
                             data_label=label, allow_bad_rows=allow_bad_rows)

    try:
        execute_to_html(NOTEBOOK, staging / "weekly_report.ipynb", staging / "weekly_report.html", params,
                        failed_path=failed, work_root=cfg.work_root,
                        nb_cfg=cfg.notebook, km=km, alongside=(preflight, lambda: validator(SCHEMA_FILE)))
        payload = read_json(staging / "payload.json")
        validate(payload, SCHEMA_FILE, "weekly payload")
        for name in ARTEFACTS:
            os.replace(staging / name, wdir / name)
        fsync_dir(wdir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    rel = [str((wdir / n).relative_to(cfg.work_root)) for n in ARTEFACTS]
    return {"week_start": ws.date().isoformat(), "dir": str(wdir), "payload": payload,
            "payload_path": wdir / "payload.json", "artefacts": rel}


def cleanup_staging(wdir: Path) -> None:
    """Remove staging folders left by a killed run (safe: they are never read)."""
    for p in wdir.glob(".staging-*"):
        shutil.rmtree(p, ignore_errors=True)


def summary_line(result: dict, delivery: dict) -> dict:
    """The job's JSON summary (no payload body)."""
    p = result["payload"]
    return {"week_start": result["week_start"], "payload_checksum": content_checksum(p),
            "artefacts": result["artefacts"],
            "alerts": {s: sum(1 for a in p["alerts"] if a["severity"] == s) for s in ("critical", "warning", "info")},
            "runs": {"baseline": len(p["runs"]["baseline"]), "rolling": len(p["runs"]["rolling"])},
            "latency_p95_ms": p["latency"]["p95_ms"], **delivery}


__all__ = ["build_report", "week_dir", "summary_line", "cleanup_staging"]
