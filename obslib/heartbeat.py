"""Job heartbeats ``ops/<job>_heartbeat.json``: the shared writer and reader.

A heartbeat says "this job ran at ``generated_at`` and ended with ``status``". It keeps,
across runs, ``last_success_at`` (time of the last ``ok`` run) and ``last_failure``
(``{at, job_id, error}`` of the last failed run). ``obs check`` reports a heartbeat older
than the job's cadence plus grace, or dated in the future.

Shape::

    {"job", "job_id", "generated_at", "status", "last_success_at", "last_failure", "provenance", ...extra}

``provenance`` is the block of ``obslib.provenance.block`` (generated_at, source_command,
commit_sha, job_id, inputs, schema_version).

Writes are atomic (temp file + ``os.replace``) under ``<file>.lock`` with a bounded wait,
so two runs never lose each other's ``last_*`` fields and a crash never tears the file.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

from .provenance import block as provenance_block
from .storage import atomic_write_json, file_lock, read_json_object
from .timeutil import parse_ts, to_rfc3339

OK_STATUSES = ("ok",)


def heartbeat_path(ops_dir: str | os.PathLike, job: str) -> Path:
    """``<ops_dir>/<job>_heartbeat.json``."""
    return Path(ops_dir) / f"{job}_heartbeat.json"


read_heartbeat = read_json_object  # the heartbeat as a dict, or None (missing, unreadable, not an object)


def heartbeat_time(hb: dict) -> datetime | None:
    """``generated_at`` of a heartbeat as aware UTC (None when absent or unparseable)."""
    raw = hb.get("generated_at")
    if not isinstance(raw, str):
        return None
    try:
        return parse_ts(raw)
    except ValueError:
        return None


def write_heartbeat(ops_dir: str | os.PathLike, job: str, job_id: str, now: datetime, status: str,
                    extra: dict[str, Any] | None = None, *, error: str | None = None,
                    lock_timeout_s: float = 10.0) -> dict:
    """Write ``ops/<job>_heartbeat.json`` for a run that ended at ``now`` with ``status``.

    ``status`` ``ok`` sets ``last_success_at = now``; any other status keeps the previous
    ``last_success_at`` and, when it is ``error``/``failed``, sets ``last_failure =
    {at, job_id, error}`` (``error`` must already be secret-free). ``extra`` keys are added
    (they cannot override the fields above). Returns the heartbeat written. Raises
    ``LockTimeout`` when the heartbeat lock is busy for ``lock_timeout_s``.
    """
    path = heartbeat_path(ops_dir, job)
    with file_lock(path.with_name(path.name + ".lock"), lock_timeout_s):
        prev = read_heartbeat(path) or {}
        hb: dict[str, Any] = dict(extra or {})
        hb.update({
            "job": job,
            "job_id": job_id,
            "generated_at": to_rfc3339(now),
            "status": status,
            "last_success_at": to_rfc3339(now) if status in OK_STATUSES else prev.get("last_success_at"),
            "last_failure": ({"at": to_rfc3339(now), "job_id": job_id, "error": error}
                             if status in ("error", "failed") else prev.get("last_failure")),
            "provenance": provenance_block(generated_at=now, job_id=job_id),
        })
        atomic_write_json(path, hb)
    return hb
