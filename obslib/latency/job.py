"""The latency jobs: ``sample`` (every 15 min), ``rollup`` (hourly) and ``status``.

``run_sample`` takes ``ops/signal_latency.lock`` with a bounded wait (``cfg.lock_timeout_s``;
a run that cannot take it returns ``status=skipped`` with the wait), finishes whatever a
crashed run left (journal, rotation), samples every source, commits the rows, cursors,
streak state and alert payload through the journal (``store``), updates the rollups,
rotates and applies retention, writes the heartbeat, then - outside the lock - delivers
pending alerts. Inputs are passed in (``now``, the data root, the alert target), nothing
here reads the clock or the environment.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from ..config import Config
from ..errors import LockTimeout
from ..heartbeat import write_heartbeat
from ..storage import file_lock
from ..timeutil import parse_ts, to_rfc3339
from ._faults import checkpoint
from .alerts import AlertTarget, build_payload, deliver_outbox, outbox_name
from .archive import apply_raw_retention, finish_rotation, maybe_rotate
from .events import Cursor
from .paths import ROLLUP_JOB, SAMPLE_JOB, LatencyPaths
from .rollup import mark_rolled_up, rollup_is_current, update_rollups
from .sources import SourceSample, sample_source
from .store import STATE_SCHEMA_VERSION, apply_journal, file_size, format_row, read_json_or, write_journal
from .streaks import StreakState, step


def recover(paths: LatencyPaths) -> dict[str, Any]:
    """Finish a crashed run's commit and rotation (caller holds the lock)."""
    job = apply_journal(paths)
    rot = finish_rotation(paths)
    return {"journal": job, "rotation": rot.archive if rot else None}


def _skipped(exc: LockTimeout, waited_ms: float, extra: dict) -> dict:
    return {"status": "skipped", "skipped": True, "lock_wait_ms": round(waited_ms, 1), "error": str(exc),
            **extra, "_runlog_extra": {"lock_wait_ms": round(waited_ms, 1), "skipped": True}}


def _sample_summary(s: SourceSample) -> dict:
    return {"kind": s.kind, "status": s.status, "latency_ms": s.latency_ms, "p95_ms": s.p95_ms,
            "samples": s.samples, "detail": s.detail, "stale_events": s.stale_events, "bad_lines": len(s.problems)}


def _sample_locked(cfg: Config, paths: LatencyPaths, ctx: Any, now: datetime, data_root: Path,
                   http_get: Callable | None, source_command: str, commit_sha: str | None) -> dict:
    slo = cfg.latency.slo_ms
    recovered = recover(paths)
    checkpoint("recovered")
    offsets = (read_json_or(paths.offsets, {}) or {}).get("sources", {})
    state_doc = read_json_or(paths.state, {}) or {}
    states = {k: StreakState.from_dict(v) for k, v in state_doc.get("sources", {}).items()}
    latest = dict(state_doc.get("latest", {}))
    ts = to_rfc3339(now.replace(microsecond=0))  # the raw file's timestamps are whole seconds
    newest = max((st.last_sample_at for st in states.values() if st.last_sample_at), default=None)
    if newest is not None and parse_ts(newest) > parse_ts(ts):
        # rows stay in time order: a run whose time is older than a sample already written
        # (a pretend --now in the past, a clock stepped back) adds nothing
        return {"status": "skipped", "skipped": True, "samples_written": 0, "rollups_written": 0,
                "breach_count": 0, "next_rotation_bytes": None, "recovered": recovered,
                "reason": f"a sample at {newest} already exists (this run's time is {ts})"}
    samples: list[SourceSample] = []
    new_offsets = dict(offsets)
    for src in cfg.latency_sources(data_root):
        cursor = None
        if src.kind == "event_log":
            src_path = str(Path(src.path).resolve())
            o = offsets.get(src.name) or {}
            cursor = Cursor.from_dict(o.get("cursor")) if o.get("path") == src_path else None
        s = sample_source(src, now=now, slo_ms=slo, cursor=cursor, http_get=http_get,
                          rel_path=_rel(src.path, data_root))
        samples.append(s)
        if src.kind == "event_log" and s.cursor is not None:
            new_offsets[src.name] = {"path": src_path, "cursor": s.cursor.to_dict()}
    rows = "".join(format_row(ts, s.source, s.latency_ms, s.p95_ms, s.status, s.samples, ctx.job_id)
                   for s in samples)
    notes = []
    for s in samples:
        st, note = step(states.get(s.source, StreakState()), source=s.source, timestamp=ts, p95_ms=s.p95_ms,
                        status=s.status, slo_ms=slo)
        states[s.source] = st
        latest[s.source] = {"timestamp": ts, "status": s.status, "latency_ms": s.latency_ms, "p95_ms": s.p95_ms,
                            "samples": s.samples}
        if note is not None:
            notes.append(note)
    payload = build_payload(notes, now=now, job_id=ctx.job_id, owner=cfg.owner, runbook=cfg.runbook, slo_ms=slo,
                            source_command=source_command, commit_sha=commit_sha) if notes else None
    state = {"schema_version": STATE_SCHEMA_VERSION, "updated_at": ts, "job_id": ctx.job_id, "slo_ms": slo,
             "sources": {k: v.to_dict() for k, v in sorted(states.items())}, "latest": dict(sorted(latest.items()))}
    write_journal(paths, job_id=ctx.job_id, append=rows,
                  offsets={"schema_version": STATE_SCHEMA_VERSION, "sources": new_offsets}, state=state,
                  outbox_name=outbox_name(payload) if payload else None, outbox_payload=payload)
    checkpoint("journal_written")
    apply_journal(paths)
    rollup = update_rollups(paths, now=now, slo_ms=slo, raw_retention_days=cfg.latency.raw_retention_days,
                            rollup_retention_days=cfg.latency.rollup_retention_days)
    checkpoint("rolled_up")
    rotation = maybe_rotate(paths, rotate_bytes=cfg.latency.rotate_bytes, now=now, job_id=ctx.job_id)
    current = rollup_is_current(paths)
    retention = apply_raw_retention(paths, now=now, days=cfg.latency.raw_retention_days)
    if retention.live_rewritten and current:
        mark_rolled_up(paths)
    checkpoint("retention_done")
    problems = [str(p) for s in samples for p in s.problems]
    summary = {
        "samples_written": len(samples),
        "rollups_written": rollup.rows_written,
        "breach_count": sum(1 for s in samples if s.status == "breach"),
        "error_count": sum(1 for s in samples if s.status == "error"),
        "next_rotation_bytes": max(0, cfg.latency.rotate_bytes - file_size(paths.live)),
        "sources": {s.source: _sample_summary(s) for s in samples},
        "notifications": [{"source": n.source, "severity": n.severity, "streak": n.streak} for n in notes],
        "recovered": recovered,
        "rotated": rotation.archive if rotation else None,
        "retention": {"raw_rows_dropped": retention.rows_dropped, "archives_pruned": retention.archives_pruned},
        "bad_lines": len(problems),
        "_messages": [f"bad input line: {p}" for p in problems[:50]]
                     + [f"source {s.source}: {s.status}: {s.detail}" for s in samples if s.status == "error"],
    }
    write_heartbeat(paths.ops_dir, SAMPLE_JOB, ctx.job_id, now, "ok",
                    {"source_command": source_command, "commit_sha": commit_sha,
                     "sources": {s.source: s.status for s in samples}})
    return summary


def _rel(path: str | None, root: Path) -> str | None:
    if path is None:
        return None
    try:
        return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return Path(path).name


def run_sample(cfg: Config, ctx: Any, now: datetime, *, data_root: Path, target: AlertTarget,
               source_command: str = "obs latency sample", commit_sha: str | None = None,
               http_get: Callable | None = None, sleep: Callable[[float], None] = time.sleep,
               monotonic: Callable[[], float] = time.monotonic,
               clock: Callable[[], datetime] | None = None) -> dict:
    """One sample run (see the module docstring). Returns the job summary for ``run_job``:
    ``{status, samples_written, rollups_written, breach_count, next_rotation_bytes, skipped,
    lock_wait_ms, sources, notifications, alerts, ...}``; ``status`` is ``ok``, ``skipped``
    (lock busy; exit 0) or ``error`` (alert delivery failed; exit 3, rows are kept).
    Raises ``ObsError`` subclasses for bad state files; the heartbeat then says ``error``.
    """
    paths = LatencyPaths.from_config(cfg)
    t0 = monotonic()
    try:
        with file_lock(paths.lock, cfg.lock_timeout_s) as waited_ms:
            checkpoint("locked")
            if clock is not None:  # real runs: the sample's time is when the lock was taken
                now = clock()
            try:
                summary = _sample_locked(cfg, paths, ctx, now, data_root, http_get, source_command, commit_sha)
            except Exception as exc:
                write_heartbeat(paths.ops_dir, SAMPLE_JOB, ctx.job_id, now, "error", error=exc.__class__.__name__)
                raise
    except LockTimeout as exc:
        return _skipped(exc, (monotonic() - t0) * 1000, {"samples_written": 0, "rollups_written": 0,
                                                         "breach_count": 0, "next_rotation_bytes": None})
    if summary.get("skipped"):
        summary["lock_wait_ms"] = round(waited_ms, 1)
        summary["_runlog_extra"] = {"lock_wait_ms": summary["lock_wait_ms"], "skipped": True}
        return summary
    summary["skipped"] = False
    summary["lock_wait_ms"] = round(waited_ms, 1)
    rep = deliver_outbox(paths, target=target, cfg=cfg, ctx=ctx, now=now, sleep=sleep)
    summary["alerts"] = {"written": rep.written, "sent": rep.sent, "failed": rep.failed, "pending": rep.pending,
                         "delivery_busy": rep.busy, "destination": "webhook" if target.url else "files"}
    summary["_artefacts"] = [paths.rel(p) for p in (paths.live, paths.rollup, paths.state, paths.heartbeat)] \
        + rep.written
    summary["_runlog_extra"] = {"lock_wait_ms": summary["lock_wait_ms"], "samples_written": summary["samples_written"],
                                "breach_count": summary["breach_count"], "alerts_sent": len(rep.sent),
                                "alerts_written": len(rep.written)}
    if rep.failed:
        summary["status"] = "error"
        summary["error"] = "alert delivery failed: " + "; ".join(rep.failed)
        summary["exit_code"] = 3
    else:
        summary["status"] = "ok"
    return summary


def run_rollup(cfg: Config, ctx: Any, now: datetime, *, full: bool = False,
               monotonic: Callable[[], float] = time.monotonic) -> dict:
    """Hourly rollup run under the latency lock: finishes a crashed sample's commit first,
    then ``update_rollups`` (``full`` forces a full recompute). Returns the job summary
    ``{status, rollups_written, rollup_rows, full, changed, skipped, lock_wait_ms}``."""
    paths = LatencyPaths.from_config(cfg)
    t0 = monotonic()
    try:
        with file_lock(paths.lock, cfg.lock_timeout_s) as waited_ms:
            try:
                recover(paths)
                res = update_rollups(paths, now=now, slo_ms=cfg.latency.slo_ms,
                                     raw_retention_days=cfg.latency.raw_retention_days,
                                     rollup_retention_days=cfg.latency.rollup_retention_days, full=full)
            except Exception as exc:
                write_heartbeat(paths.ops_dir, ROLLUP_JOB, ctx.job_id, now, "error", error=exc.__class__.__name__)
                raise
            write_heartbeat(paths.ops_dir, ROLLUP_JOB, ctx.job_id, now, "ok")
    except LockTimeout as exc:
        return _skipped(exc, (monotonic() - t0) * 1000, {"rollups_written": 0})
    return {"status": "ok", "skipped": False, "lock_wait_ms": round(waited_ms, 1), "rollups_written": res.rows_written,
            "rollup_rows": res.total_rows, "full": res.full, "changed": res.changed, "raw_rows_read": res.raw_rows,
            "_artefacts": [paths.rel(paths.rollup), paths.rel(paths.rollup_heartbeat)],
            "_runlog_extra": {"lock_wait_ms": round(waited_ms, 1), "rollups_written": res.rows_written}}


def latency_status(cfg: Config) -> dict:
    """Current streaks and the latest sample per source, from ``ops/signal_latency_state.json``
    (no lock needed: the file is replaced atomically). ``{slo_ms, updated_at, sources:{name:
    {severity, streak, streak_started_at, last_breach_at, latest_at, latest_status,
    latest_p95_ms, latest_latency_ms}}}``."""
    paths = LatencyPaths.from_config(cfg)
    doc = read_json_or(paths.state, {}) or {}
    out = {}
    latest = doc.get("latest", {})
    for name in sorted(set(doc.get("sources", {})) | set(latest)):
        st = StreakState.from_dict(doc.get("sources", {}).get(name))
        lt = latest.get(name, {})
        out[name] = {"severity": st.severity, "streak": st.streak, "streak_started_at": st.streak_started_at,
                     "last_breach_at": st.last_breach_at, "latest_at": lt.get("timestamp"),
                     "latest_status": lt.get("status"), "latest_p95_ms": lt.get("p95_ms"),
                     "latest_latency_ms": lt.get("latency_ms")}
    return {"status": "ok", "slo_ms": doc.get("slo_ms", cfg.latency.slo_ms), "updated_at": doc.get("updated_at"),
            "sources": out}
