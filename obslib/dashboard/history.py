"""Bundle history ``ops/dashboard_export_history/<job_id>/`` and the durable sequence.

- A history entry is a copy of the bundle after an export: ``manifest.json``,
  ``README.json`` and every dataset file the manifest lists. It is built in a hidden
  ``.<job_id>.partial`` folder and renamed into place, so an entry is complete or absent.
- Retention (default 56 days = 8 weeks, ``history_retention_days``) prunes an entry when
  the ``generated_at`` recorded in its manifest is older than ``now - retention``. The
  folder name is never parsed for a date; an entry whose manifest cannot be read is kept
  and reported (``verify`` flags it).
- The sequence counter ``ops/dashboard_export_sequence.json`` (``{"sequence": N}``) is
  written atomically before the manifest. The next sequence is one more than the largest
  of the counter, the current manifest and every history manifest, so losing or
  corrupting any one of them never resets or repeats it.
"""

from __future__ import annotations

import os
import shutil
from datetime import datetime, timedelta
from pathlib import Path

from ..safepath import contained, safe_child
from ..storage import atomic_write_json, fsync_dir, read_json_object
from ..timeutil import parse_ts

HISTORY_DIR = "dashboard_export_history"
SEQUENCE_FILE = "dashboard_export_sequence.json"


def history_root(ops_dir: Path) -> Path:
    return Path(ops_dir) / HISTORY_DIR


def history_entries(ops_dir: Path) -> list[tuple[Path, dict | None]]:
    """``[(folder, manifest or None)]`` of complete history entries, oldest first by the
    manifest's recorded ``generated_at`` then ``sequence`` (unreadable ones last)."""
    root = history_root(ops_dir)
    if not root.is_dir():
        return []
    out = [(d, read_json_object(d / "manifest.json")) for d in root.iterdir()
           if d.is_dir() and not d.name.startswith(".")]

    def order(item):
        m = item[1]
        try:
            return (0, parse_ts(m["generated_at"]).timestamp(), int(m["sequence"]), item[0].name)
        except (TypeError, KeyError, ValueError):
            return (1, 0.0, 0, item[0].name)

    return sorted(out, key=order)


def _seq(obj: dict | None) -> int:
    try:
        v = obj["sequence"]  # type: ignore[index]
    except (TypeError, KeyError):
        return 0
    return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else 0


def next_sequence(ops_dir: Path, manifest_path: Path) -> int:
    """One more than the largest sequence recorded anywhere (see module doc)."""
    seen = [_seq(read_json_object(Path(ops_dir) / SEQUENCE_FILE)), _seq(read_json_object(manifest_path))]
    seen += [_seq(m) for _, m in history_entries(ops_dir)]
    return max(seen) + 1


def store_sequence(ops_dir: Path, sequence: int) -> None:
    """Durably record ``sequence`` (atomic write + fsync)."""
    atomic_write_json(Path(ops_dir) / SEQUENCE_FILE, {"sequence": sequence})


def record_history(ops_dir: Path, job_id: str, bundle_dir: Path, files: list[str],
                   staged: dict[str, Path] | None = None) -> Path:
    """Copy ``files`` (relative to ``bundle_dir``, manifest last) into the job's history
    entry. ``staged`` maps some of them to an fsynced temp file holding the same bytes as
    the published file (``staging.Stager``, same filesystem): that file is renamed into the
    entry instead of copying (a separate file, never a link, so later overwrites of the
    bundle never reach the history). Returns the entry folder."""
    staged = staged or {}
    root = history_root(ops_dir)
    final = safe_child(root, job_id, what="JOB_ID")
    tmp = safe_child(root, job_id, what="JOB_ID", prefix=".", suffix=".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for rel_path in files:
        src, dst = Path(bundle_dir) / rel_path, contained(tmp, tmp / rel_path, what="history file")
        dst.parent.mkdir(parents=True, exist_ok=True)
        if rel_path in staged:
            try:
                os.replace(staged[rel_path], dst)
                continue
            except OSError:  # another filesystem, or gone: copy the published file
                pass
        shutil.copyfile(src, dst)  # kernel-side copy where available
        with open(dst, "rb+") as fo:
            os.fsync(fo.fileno())
    if final.exists():
        shutil.rmtree(final)
    os.rename(tmp, final)
    fsync_dir(root)
    return final


def prune_history(ops_dir: Path, now: datetime, retention_days: int) -> list[str]:
    """Delete entries recorded more than ``retention_days`` before ``now`` (an entry whose
    manifest cannot be read is kept). Returns the pruned folder names."""
    cutoff = now - timedelta(days=retention_days)
    pruned = []
    for d, m in history_entries(ops_dir):
        try:
            recorded = parse_ts(m["generated_at"])  # type: ignore[index]
        except (TypeError, KeyError, ValueError):
            continue
        if recorded < cutoff:
            shutil.rmtree(contained(history_root(ops_dir), d, what="history entry"))
            pruned.append(d.name)
    root = history_root(ops_dir)
    for p in root.glob(".*.partial") if root.is_dir() else ():
        shutil.rmtree(p, ignore_errors=True)  # left by a killed export; never read
    return pruned
