"""The weekly job (``obs weekly run`` / ``make weekly``): execute the report notebook,
export HTML, publish the week's artefacts atomically, then deliver the payload.

Layout: ``out/weekly_report/<week_start>/{weekly_report.ipynb, weekly_report.html,
source.json, payload.json}``. The notebook runs in a staging folder; only a fully
successful run replaces the week's files: a ``.commit`` marker written into the staging
folder is the commit point, then each file is ``os.replace``d (payload last); a run killed
between the renames is finished ("rolled forward") under the week's lock by the next run or
reader (``recover_week``), so the folder never keeps a mix of two runs. ``source.json``
records the data root; a run for another data root does not replace the folder unless
``--replace``. A failing cell keeps the partial
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
from ..errors import ConfigError, ObsError
from ..faults import checkpoint
from ..inputs import data_label, resolve_data_root
from ..notebook import execute_to_html, kernel_session
from ..provenance import commit_sha, source_command
from ..runlog import JobContext
from ..safepath import safe_child
from ..schemas import validate
from ..storage import (
    atomic_write_bytes,
    atomic_write_json,
    file_lock,
    fsync_dir,
    read_json,
    read_json_object,
    retry_transient,
)
from ..timeutil import to_rfc3339, week_start_of
from . import NOTEBOOK
from .payload import SCHEMA_FILE, content_checksum
from .prebuilt import build_payloads, hand_over

ARTEFACTS = ("weekly_report.ipynb", "weekly_report.html", "payload.json")
SOURCE_FILE = "source.json"  # which data root the week folder was built from
SWITCHED = ("weekly_report.ipynb", "weekly_report.html", SOURCE_FILE, "payload.json")  # payload last
COMMIT_MARK = ".commit"


def week_dir(cfg: Config, week_start: datetime) -> Path:
    """``out/weekly_report/<YYYY-MM-DD>/``."""
    return cfg.out_dir / "weekly_report" / week_start.date().isoformat()


def build_report(cfg: Config, ctx: JobContext, now: datetime, week_start: datetime | None,
                 allow_bad_rows: bool = False, km: Any = None, replace: bool = False) -> dict[str, Any]:
    """Execute the notebook for ``week_start`` (default: the week containing ``now``) and
    publish its artefacts. Returns ``{week_start, dir, payload, payload_path, artefacts}``.

    ``km``: the report kernel from ``notebook.kernel_session`` (started by the caller as
    early as possible); without it one is started here, first, so its start-up overlaps
    the rest. The payloads are built once, in this process while the kernel starts, and
    handed to the notebook (``obslib.weekly.prebuilt``): bad input gives the library's
    clean ``InputError`` (file, line, reason) before any cell runs, no partial notebook
    and nothing published. Raises ``NotebookFailed`` (partial notebook
    kept under ``failed/``) or another ``ObsError``. A week folder built from another
    data root (its ``source.json``) is not replaced unless ``replace`` (``--replace``):
    ``ObsError`` (exit 2) before the notebook runs."""
    ws = week_start or week_start_of(now)
    if ws > now:
        raise ObsError(f"week_start {ws.date().isoformat()} is in the future (now is {to_rfc3339(now)}): "
                       "a week is reported once it has started")
    with (nullcontext(km) if km is not None else kernel_session(cfg.notebook.kernel_name, notebook=NOTEBOOK)) as km:
        root = resolve_data_root(cfg, now)
        label = data_label(cfg)
        wdir = week_dir(cfg, ws)
        wdir.mkdir(parents=True, exist_ok=True)
        # one run per week at a time; a second waits (bounded) instead of mixing artefacts
        with file_lock(wdir / ".weekly.lock", cfg.lock_timeout_s):
            cleanup_staging(wdir)  # left by a killed run; safe under the lock
            source = source_record(cfg, root, label)
            if not replace:
                check_same_source(cfg, wdir, source)
            return _build_locked(cfg, ctx, now, ws, root, label, wdir, allow_bad_rows, km, source)


def source_record(cfg: Config, root: Path, label: str) -> dict[str, str]:
    """``source.json`` of a week folder: ``{data_root (absolute), data_label}``."""
    return {"data_root": str(Path(root).resolve()), "data_label": label}


def check_same_source(cfg: Config, wdir: Path, source: dict[str, str]) -> None:
    """Refuse (``ObsError``, exit 2) to replace a week folder built from another data root.
    Folders from before ``source.json`` are compared by their payload's data label."""
    rec = read_json_object(wdir / SOURCE_FILE)
    if rec is not None:
        theirs = str(rec.get("data_root", ""))
        same = theirs == source["data_root"]
    else:
        payload = read_json_object(wdir / "payload.json")
        if payload is None:
            return
        theirs = str((payload.get("provenance") or {}).get("data_root") or "")
        same = not theirs or theirs == source["data_label"]  # no record: nothing to compare
    if not same:
        where = wdir.relative_to(cfg.work_root) if wdir.is_relative_to(cfg.work_root) else wdir
        raise ConfigError(f"{where} holds the report built from data root {theirs}; this run reads "
                          f"{source['data_root']}: not replaced. Pass --replace to replace it, or use "
                          "another --work-root for this data")


def _build_locked(cfg: Config, ctx: JobContext, now: datetime, ws: datetime, root: Path, label: str, wdir: Path,
                  allow_bad_rows: bool, km: Any, source: dict[str, str]) -> dict[str, Any]:
    staging = safe_child(wdir, ctx.job_id, what="JOB_ID", prefix=".staging-", base=cfg.work_root)
    failed = safe_child(wdir / "failed", ctx.job_id, what="JOB_ID", suffix=".ipynb", base=cfg.work_root)
    staging.mkdir(parents=True, exist_ok=True)
    params = {"week_start": ws.date().isoformat(), "data_root": str(Path(root).resolve()), "as_of": to_rfc3339(now),
              "out_dir": str(staging.resolve()), "work_root": str(Path(cfg.work_root).resolve()),
              "job_id": ctx.job_id, "source_command": source_command(), "commit_sha": commit_sha() or "",
              "data_label": label, "allow_bad_rows": allow_bad_rows,
              "config_file": str(cfg.config_file) if cfg.config_file else ""}

    try:
        # one payload build per run (obslib.weekly.prebuilt), here while the kernel starts: bad
        # input stops the job with a clean InputError before any cell runs
        hand_over(staging, params, build_payloads(cfg, params))
        execute_to_html(NOTEBOOK, staging / "weekly_report.ipynb", staging / "weekly_report.html", params,
                        failed_path=failed, work_root=cfg.work_root, nb_cfg=cfg.notebook, km=km)
        payload = read_json(staging / "payload.json")
        validate(payload, SCHEMA_FILE, "weekly payload")
        atomic_write_json(staging / SOURCE_FILE, {**source, "job_id": ctx.job_id})
        for name in ARTEFACTS:  # everything the switch needs is durable before the commit point
            with open(staging / name, "rb") as fh:
                os.fsync(fh.fileno())
        checkpoint("week.commit")
        atomic_write_bytes(staging / COMMIT_MARK, b"{}")  # commit point: from here the run is rolled forward
        _switch(staging, wdir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    rel = [str((wdir / n).relative_to(cfg.work_root)) for n in ARTEFACTS]
    return {"week_start": ws.date().isoformat(), "dir": str(wdir), "payload": payload,
            "payload_path": wdir / "payload.json", "artefacts": rel}


def _switch(staging: Path, wdir: Path) -> None:
    """Move the staged artefacts into the week folder (each ``os.replace``), payload last.
    Idempotent: a file already moved is skipped, so a run killed half-way is finished by
    ``cleanup_staging`` of the next run, and the folder never keeps a mix of two runs."""
    for name in SWITCHED:
        if (staging / name).exists():
            checkpoint(f"week.replace.{name}")
            retry_transient(lambda name=name: os.replace(staging / name, wdir / name))
    fsync_dir(wdir)


def cleanup_staging(wdir: Path) -> list[str]:
    """Under the week's lock: finish the switch of a staging folder whose run was killed
    after its commit point (``.commit`` present: roll forward), and remove every other
    staging folder (never read). Returns the names of the folders rolled forward."""
    done = []
    for p in sorted(wdir.glob(".staging-*")):
        if p.is_dir() and not p.is_symlink() and (p / COMMIT_MARK).is_file():
            _switch(p, wdir)
            done.append(p.name)
        shutil.rmtree(p, ignore_errors=True)
    return done


def recover_week(cfg: Config, week_start: str) -> list[str]:
    """``cleanup_staging`` of ``out/weekly_report/<week_start>/`` under its lock (for
    readers: ``obs weekly deliver``, ``obs restore``). Returns folders rolled forward."""
    wdir = cfg.out_dir / "weekly_report" / week_start
    if not any(wdir.glob(".staging-*")):
        return []
    with file_lock(wdir / ".weekly.lock", cfg.lock_timeout_s):
        return cleanup_staging(wdir)


def report_alert_counts(payload: dict) -> dict[str, int]:
    """``{critical, warning, info}``: how many of the payload's alerts have each severity."""
    return {s: sum(1 for a in payload["alerts"] if a["severity"] == s) for s in ("critical", "warning", "info")}


def summary_line(result: dict, delivery: dict) -> dict:
    """The job's JSON summary (no payload body). ``report_alerts`` counts the report's own
    alerts; the delivery's alerts stay under ``alerts`` (they never overwrite the report's)."""
    p = result["payload"]
    return {"week_start": result["week_start"], "payload_checksum": content_checksum(p),
            "artefacts": result["artefacts"],
            "runs": {"baseline": len(p["runs"]["baseline"]), "rolling": len(p["runs"]["rolling"])},
            "latency_p95_ms": p["latency"]["p95_ms"], **delivery, "report_alerts": report_alert_counts(p)}


__all__ = ["build_report", "week_dir", "summary_line", "report_alert_counts", "cleanup_staging", "recover_week"]
