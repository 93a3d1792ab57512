"""Retention of the folders that grow with every run (``[retention]`` in obs.toml).

| what | where | default |
| --- | --- | --- |
| dry-run payloads | ``out/weekly_report/<stamp>_<week>_<id>.json`` | 28 days (``dry_run_days``) |
| failed notebooks | ``out/weekly_report/<week>/failed/``, ``out/dashboard/failed/`` | 28 days (``failed_notebook_days``) |
| operations alert files | ``out/ops_alerts/*.json`` | 28 days (``alert_file_days``) |
| escalation records | ``ops/escalations/*.json`` | 90 days (``escalation_days``) |
| run-log archives | ``ops/automation_runs_archive/*.log`` | 90 days (``runlog_archive_days``) |
| stale temp files | ``.*.tmp`` and ``.staging-*`` / ``.nb-staging-*`` left by a killed run | 1 hour (``temp_hours``) |

Age is the file's modification time. Only files matching the kit's own name patterns are
deleted; each deletion is confined to the work root (``safepath.contained`` against the work root, never
against a subfolder, which may itself be a link out of it). ``prune_all``
runs at the end of ``obs weekly run`` (under the week's lock for that week's folder) and
returns what it removed (relative paths), which the job lists in its run-log record.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .safepath import UnsafePath, contained
from .storage import rel

DRY_RUN_RE = re.compile(r"^\d{8}T\d{6}Z_\d{4}-\d{2}-\d{2}(_[A-Za-z0-9._-]+)?(\.\d+)?\.json$")
WEEK_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _old(paths: Iterable[Path], max_age_s: float, now_s: float) -> list[Path]:
    out = []
    for p in paths:
        try:
            if now_s - p.lstat().st_mtime > max_age_s:
                out.append(p)
        except OSError:
            continue
    return out


def _remove(paths: Iterable[Path], work_root: Path) -> list[str]:
    """Delete ``paths``, each only when it resolves inside the work root (so never through a
    subfolder that is a link out of it). Returns the removed paths relative to the work root."""
    gone = []
    for p in paths:
        try:
            contained(work_root, p.parent / p.name, what="retention")  # never via a link out of the work root
        except UnsafePath:
            continue
        try:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
            gone.append(rel(p, work_root))
        except OSError:
            continue
    return gone


def _files(folder: Path, pattern: str) -> list[Path]:
    return [p for p in folder.glob(pattern) if p.is_file()] if folder.is_dir() else []


def prune_all(cfg: Any, *, now_s: float | None = None) -> list[str]:
    """Apply every rule of the module table under ``cfg.work_root``. Returns the removed
    paths (relative to the work root). Never raises for a file it cannot remove."""
    r = cfg.retention
    now_s = time.time() if now_s is None else now_s
    day = 86400.0
    out, ops, wr = Path(cfg.out_dir), Path(cfg.ops_dir), Path(cfg.work_root)
    weekly = out / "weekly_report"
    removed: list[str] = []
    dry = [p for p in _files(weekly, "*.json") if DRY_RUN_RE.match(p.name)]
    removed += _remove(_old(dry, r.dry_run_days * day, now_s), wr)
    weeks = [d for d in weekly.iterdir() if d.is_dir() and WEEK_RE.match(d.name)] if weekly.is_dir() else []
    for d in weeks + [out / "dashboard"]:
        removed += _remove(_old(_files(d / "failed", "*.ipynb"), r.failed_notebook_days * day, now_s), wr)
    removed += _remove(_old(_files(out / "ops_alerts", "*.json"), r.alert_file_days * day, now_s), wr)
    removed += _remove(_old(_files(ops / "escalations", "*.json"), r.escalation_days * day, now_s), wr)
    adir = ops / "automation_runs_archive"
    removed += _remove(_old(_files(adir, "*.log"), r.runlog_archive_days * day, now_s), wr)
    # temp files of atomic writes killed mid-way (their names start with '.' and end in .tmp)
    for d in weeks + [weekly, ops / "weekly_report_history", ops / "escalations", out / "ops_alerts"]:
        if d.is_dir():
            removed += _remove(_old([p for p in d.glob(".*.tmp") if p.is_file()], r.temp_hours * 3600, now_s), wr)
    return sorted(removed)


__all__ = ["prune_all"]
