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

import numpy as np

from ..config import Config
from ..errors import LockTimeout
from ..heartbeat import write_heartbeat
from ..provenance import refresh_sidecars
from ..storage import file_lock
from ..timeutil import UTC, parse_ts, to_rfc3339
from ._faults import checkpoint
from .alerts import AlertTarget, build_payload, deliver_outbox, outbox_name
from .archive import apply_raw_retention, finish_rotation, maybe_rotate
from .events import Cursor
from .model import Event, Part, Stats, epoch, floor_to, parts_from_events, query, window_status
from .paths import ROLLUP_JOB, SAMPLE_JOB, LatencyPaths
from .rollup import mark_rolled_up, rollup_is_current, update_rollups
from .sketch import Sketch
from .sources import SourceSample, sample_source
from .store import (
    HEADER,
    STATE_SCHEMA_VERSION,
    apply_journal,
    file_size,
    format_parts,
    read_json_or,
    write_journal,
)
from .streaks import Decision, StreakState, WindowFacts, evaluate_source
from .table import PartTable

LOOKBACK_WINDOWS = 24  # at most 6 h (at 15-minute windows) of closed windows evaluated per run


def recover(paths: LatencyPaths) -> dict[str, Any]:
    """Finish a crashed run's commit and rotation (caller holds the lock)."""
    job = apply_journal(paths)
    rot = finish_rotation(paths)
    return {"journal": job, "rotation": rot.archive if rot else None}


def _skipped(exc: LockTimeout, waited_ms: float, extra: dict) -> dict:
    return {"status": "skipped", "skipped": True, "lock_wait_ms": round(waited_ms, 1), "error": str(exc),
            **extra, "_runlog_extra": {"lock_wait_ms": round(waited_ms, 1), "skipped": True}}


BAD_ROW_MESSAGES_PER_FILE = 20
COUNT_KEYS = ("events_read", "bad_rows", "future_rows", "held_rows", "torn_bytes", "replay_skipped", "lost_bytes")


def capped_problem_messages(problems: list, per_file: int = BAD_ROW_MESSAGES_PER_FILE) -> list[str]:
    """At most ``per_file`` ``bad input row`` messages per file plus one ``and K more`` line."""
    by_file: dict[str, list] = {}
    for p in problems:
        by_file.setdefault(p.path, []).append(p)
    out = []
    for path, ps in by_file.items():
        out += [f"bad input row: {p}" for p in ps[:per_file]]
        if len(ps) > per_file:
            out.append(f"bad input rows: {path}: and {len(ps) - per_file} more")
    return out


def _window_s(minutes: float) -> int:
    return int(round(float(minutes) * 60))


def _recent_parts(doc: dict) -> list[Part]:
    return [Part(src, int(r[0]), int(r[1]), int(r[2]), int(r[3]), int(r[4]), Sketch.from_text(r[5]))
            for src, rows in doc.items() for r in rows]


def _recent_doc(parts: list[Part]) -> dict:
    out: dict[str, list] = {}
    for p in sorted(parts, key=lambda p: (p.source, p.start)):
        out.setdefault(p.source, []).append([p.start, p.span_s, p.events, p.bad, p.errors, p.sketch.to_text()])
    return out


def _stats_summary(st: Stats | None) -> dict:
    if st is None:
        return {"samples": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None, "bad_events": 0,
                "error_samples": 0, "method": None}
    return {"samples": st.samples, "p50_ms": st.p50, "p95_ms": st.p95, "p99_ms": st.p99, "max_ms": st.max,
            "bad_events": st.bad_events, "error_samples": st.error_samples, "method": st.method}


def evaluate_windows(cfg: Config, rules: dict, recent: list[Part], window_of: dict[str, int], now: datetime,
                     new_starts: dict[str, int], configured: set[str] = frozenset()
                     ) -> tuple[dict, dict, list[Decision], list[Part]]:
    """Run the alert rules over each source's closed windows not evaluated yet (at most
    ``LOOKBACK_WINDOWS`` back; a source seen for the first time starts at its first new
    window). Window stats come from ``model.query`` over the recent parts. Returns (rules
    state, latest window per source, decisions, the recent parts still needed)."""
    lat = cfg.latency
    now_s = epoch(now)
    decisions: list[Decision] = []
    latest: dict[str, dict] = {}
    keep: list[Part] = []
    by_src: dict[str, list[Part]] = {}
    for p in recent:
        by_src.setdefault(p.source, []).append(p)
    for src in sorted(set(rules) | set(by_src) | set(configured)):
        w = window_of.get(src, _window_s(lat.window_minutes))
        doc = dict(rules.get(src) or {})
        closed_end = floor_to(now_s, w)
        until = doc.get("evaluated_until")
        if until is None:
            until = min(new_starts.get(src, closed_end), closed_end)
        until = max(int(until), closed_end - LOOKBACK_WINDOWS * w)
        starts = list(range(until, closed_end, w))
        slo_ms, target = lat.slo_for(src)
        stats = query(by_src.get(src, []), by="window", slo_of=lat.slo_of, start=until, end=closed_end)
        facts = []
        for ws in starts:
            st = stats.get((ws, src))
            facts.append(WindowFacts(_iso(ws), _iso(ws + w), st.samples if st else 0, st.bad_events if st else 0,
                                     st.error_samples if st else 0, st.p95 if st else None,
                                     window_status(st, min_events=lat.min_events)))
        nwin = w and 3600 // w or 4
        doc, dec = evaluate_source(src, doc, facts, slo_ms=slo_ms, slo_target=target,
                                   absent_warning=lat.absent_warning_windows,
                                   absent_critical=lat.absent_critical_windows, burn_page=lat.burn_page,
                                   burn_warn=lat.burn_warn, burn_windows=(1, nwin, 6 * nwin))
        decisions += dec
        doc["evaluated_until"] = max(closed_end, int(doc.get("evaluated_until") or closed_end))
        if starts:
            last = starts[-1]
            st = stats.get((last, src))
            doc["latest"] = {"window_start": _iso(last), "window_end": _iso(last + w),
                             "status": window_status(st, min_events=lat.min_events), **_stats_summary(st)}
        rules[src] = doc
        if doc.get("latest"):
            latest[src] = doc["latest"]
        lo = int(doc.get("evaluated_until", until)) - w  # the last evaluated window stays for status
        keep += [p for p in by_src.get(src, []) if p.start >= lo]
    return rules, latest, decisions, keep


def _iso(epoch_s: int) -> str:
    return to_rfc3339(datetime.fromtimestamp(epoch_s, UTC))


def _sample_locked(cfg: Config, paths: LatencyPaths, ctx: Any, now: datetime, data_root: Path,
                   http_get: Callable | None, source_command: str, commit_sha: str | None) -> dict:
    lat = cfg.latency
    recovered = recover(paths)
    checkpoint("recovered")
    offsets = (read_json_or(paths.offsets, {}) or {}).get("sources", {})
    state_doc = read_json_or(paths.state, {}) or {}
    if str(state_doc.get("schema_version")) != STATE_SCHEMA_VERSION:
        # the old per-sample state: its source names may not be the model's (one source per
        # value of the log's source column), so the rules start afresh rather than report
        # an old name as absent; its updated_at still guards against a run in the past
        state_doc = {"updated_at": state_doc.get("updated_at")}
    ts = to_rfc3339(now.replace(microsecond=0))
    newest = state_doc.get("updated_at")
    if newest is not None and parse_ts(newest) > parse_ts(ts):
        # a run whose time is older than the last run's (a pretend --now in the past, a
        # clock stepped back) reads and writes nothing: its "now" would hold or reject events
        return {"status": "skipped", "skipped": True, "samples_written": 0, "rollups_written": 0,
                "breach_count": 0, "next_rotation_bytes": None, "recovered": recovered,
                "reason": f"a run at {newest} already happened (this run's time is {ts})"}
    samples: list[SourceSample] = []
    new_offsets = dict(offsets)
    window_of: dict[str, int] = {}
    naive_utc = lat.naive_timestamps == "utc"
    for src in cfg.latency_sources(data_root):
        cursor = None
        wsec = _window_s(src.window_minutes)
        if src.kind == "event_log":
            src_path = str(Path(src.path).resolve())
            o = offsets.get(src.name) or {}
            cursor = Cursor.from_dict(o.get("cursor")) if o.get("path") == src_path else None
        s = sample_source(src, now=now, slo_of=lat.slo_of, window_s=wsec, cursor=cursor, http_get=http_get,
                          rel_path=_rel(src.path, data_root), max_future_skew_s=lat.max_future_skew_s,
                          naive_utc=naive_utc)
        if s.status == "error":  # an unreadable source is an error event now (streak: critical)
            s.parts = parts_from_events([Event(now, None, True, src.name)], window_s=wsec, slo_of=lat.slo_of)
        samples.append(s)
        for name in (s.parts.present() if isinstance(s.parts, PartTable) else [p.source for p in s.parts]):
            window_of[name] = wsec
        window_of.setdefault(src.name, wsec)
        if src.kind == "event_log" and s.cursor is not None:
            new_offsets[src.name] = {"path": src_path, "cursor": s.cursor.to_dict()}
    parts = PartTable.concat([PartTable.from_parts(s.parts) for s in samples]).ordered()  # by (start, source)
    rows = format_parts(parts, slo_of=lat.slo_of, job_id=ctx.job_id, sampled_at=ts)
    new_starts = _first_starts(parts)
    # the alert rules look at most LOOKBACK_WINDOWS back: only those parts become objects
    recent = _recent_parts(state_doc.get("recent") or {}) + parts.to_parts(
        _lookback(parts, window_of, _window_s(lat.window_minutes), now))
    configured = {s.name for s in cfg.latency_sources(data_root) if not s.by_source_column} | set(new_starts)
    rules, latest, decisions, keep = evaluate_windows(cfg, dict(state_doc.get("rules") or {}), recent, window_of,
                                                      now, new_starts, configured)
    payload = build_payload(decisions, now=now, job_id=ctx.job_id, owner=cfg.owner, runbook=cfg.runbook,
                            source_command=source_command, commit_sha=commit_sha) if decisions else None
    state = {"schema_version": STATE_SCHEMA_VERSION, "updated_at": ts, "job_id": ctx.job_id, "slo_ms": lat.slo_ms,
             "rules": dict(sorted(rules.items())), "recent": _recent_doc(keep)}
    size_before = file_size(paths.live)
    rows_start = size_before or len(HEADER.encode("ascii"))
    journal = write_journal(paths, job_id=ctx.job_id, append=rows,
                  offsets={"schema_version": STATE_SCHEMA_VERSION, "sources": new_offsets}, state=state,
                  outbox_name=outbox_name(payload) if payload else None, outbox_payload=payload)
    checkpoint("journal_written")
    apply_journal(paths, journal)
    rollup = update_rollups(paths, now=now, slo_of=lat.slo_of, raw_retention_days=lat.raw_retention_days,
                            rollup_retention_days=lat.rollup_retention_days,
                            fresh=(rows_start, rows_start + len(rows.encode("utf-8")), parts))
    checkpoint("rolled_up")
    rotation = maybe_rotate(paths, rotate_bytes=lat.rotate_bytes, now=now, job_id=ctx.job_id)
    current = rollup_is_current(paths)
    retention = apply_raw_retention(paths, now=now, days=lat.raw_retention_days)
    if retention.live_rewritten and current:
        mark_rolled_up(paths)
    checkpoint("retention_done")
    problems = [p for s in samples for p in s.problems]
    counts = {k: sum(s.counts.get(k, 0) for s in samples) for k in COUNT_KEYS}
    per_source: dict[str, dict] = {}
    for s in samples:
        per_source[s.source] = {"kind": s.kind, "status": s.status, "detail": s.detail, "events": s.events,
                                "rows": len(s.parts), **{k: s.counts.get(k, 0) for k in COUNT_KEYS}}
    summary = {
        "samples_written": len(parts),
        "rows_written": len(parts),
        "rollups_written": rollup.rows_written,
        "breach_count": sum(1 for v in latest.values() if v.get("status") == "breach"),
        "error_count": sum(1 for s in samples if s.status == "error"),
        "next_rotation_bytes": max(0, lat.rotate_bytes - file_size(paths.live)),
        "sources": per_source,
        "windows": latest,
        "notifications": [{"id": d.id, "rule": d.rule, "source": d.source, "severity": d.severity,
                           "previous_severity": d.previous_severity} for d in decisions],
        "recovered": recovered,
        "rotated": rotation.archive if rotation else None,
        "retention": {"raw_rows_dropped": retention.rows_dropped, "archives_pruned": retention.archives_pruned},
        "quarantined": rollup.quarantined,
        **counts,
        "bad_lines": len(problems),
        "_messages": capped_problem_messages(problems)
                     + [f"source {s.source}: {s.status}: {s.detail}" for s in samples if s.status == "error"]
                     + [f"source {s.source}: {s.detail}" for s in samples
                        if s.status != "error" and (s.counts.get("lost_bytes") or s.counts.get("held_rows"))]
                     + [f"warning: damaged archive quarantined: {q}" for q in rollup.quarantined],
    }
    write_heartbeat(paths.ops_dir, SAMPLE_JOB, ctx.job_id, now, "ok",
                    {"source_command": source_command, "commit_sha": commit_sha,
                     "sources": {s.source: s.status for s in samples}})
    refresh_sidecars([paths.live], generated_at=now, job_id=ctx.job_id)  # <csv>.provenance.json (lock held)
    refresh_sidecars([paths.rollup], generated_at=now, job_id=ctx.job_id, inputs=[paths.live], root=paths.ops_dir.parent)
    return summary


def _first_starts(parts: PartTable) -> dict[str, int]:
    """The earliest window start (epoch s) per source among ``parts``."""
    if not len(parts):
        return {}
    first = np.full(len(parts.names), np.iinfo(np.int64).max)
    np.minimum.at(first, parts.src, parts.start)
    return {parts.names[i]: int(first[i]) for i in np.unique(parts.src).tolist()}


def _lookback(parts: PartTable, window_of: dict[str, int], default_s: int, now: datetime) -> np.ndarray:
    """Mask of the parts the alert rules can still read: window start at or after the
    source's last closed window end less ``LOOKBACK_WINDOWS`` windows (``evaluate_windows``
    reads no further back, and keeps less)."""
    now_s = epoch(now)
    w = np.array([window_of.get(n, default_s) for n in parts.names], dtype=np.int64)
    return parts.start >= (now_s - now_s % w - LOOKBACK_WINDOWS * w)[parts.src]


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
    lock_wait_ms, sources, notifications, alerts, ...}``; ``status`` is ``ok``, ``warning`` (a damaged archive was quarantined; exit 0), ``skipped``
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
                         "delivery_busy": rep.busy, "destination": "webhook" if target.url else "files",
                         "superseded": rep.superseded, "routed": rep.routed}
    summary["_artefacts"] = [paths.rel(p) for p in (paths.live, paths.rollup, paths.state, paths.heartbeat)] \
        + rep.written
    summary["_runlog_extra"] = {"lock_wait_ms": summary["lock_wait_ms"], "samples_written": summary["samples_written"],
                                "breach_count": summary["breach_count"], "alerts_sent": len(rep.sent),
                                "alerts_written": len(rep.written), "quarantined": len(summary["quarantined"]),
                                **{k: summary[k] for k in COUNT_KEYS}}
    if rep.failed:
        summary["status"] = "error"
        summary["error"] = "alert delivery failed: " + "; ".join(rep.failed)
        summary["exit_code"] = 3
    else:  # a damaged archive moved aside: the run did its work, but someone should look
        summary["status"] = "warning" if summary["quarantined"] else "ok"
    return summary


def run_rollup(cfg: Config, ctx: Any, now: datetime, *, full: bool = False,
               monotonic: Callable[[], float] = time.monotonic) -> dict:
    """Hourly rollup run under the latency lock: finishes a crashed sample's commit first,
    then ``update_rollups`` (``full`` forces a full recompute). Returns the job summary
    ``{status, rollups_written, rollup_rows, full, changed, skipped, lock_wait_ms,
    raw_rows_read, bad_rows, quarantined}``; a damaged archive is quarantined and named
    (status ``warning``, the message in ``_messages`` for stderr), the run still exits 0."""
    paths = LatencyPaths.from_config(cfg)
    t0 = monotonic()
    try:
        with file_lock(paths.lock, cfg.lock_timeout_s) as waited_ms:
            try:
                recover(paths)
                res = update_rollups(paths, now=now, slo_of=cfg.latency.slo_of,
                                     raw_retention_days=cfg.latency.raw_retention_days,
                                     rollup_retention_days=cfg.latency.rollup_retention_days, full=full)
            except Exception as exc:
                write_heartbeat(paths.ops_dir, ROLLUP_JOB, ctx.job_id, now, "error", error=exc.__class__.__name__)
                raise
            write_heartbeat(paths.ops_dir, ROLLUP_JOB, ctx.job_id, now, "ok")
            refresh_sidecars([paths.rollup], generated_at=now, job_id=ctx.job_id, inputs=[paths.live],
                             root=paths.ops_dir.parent)
    except LockTimeout as exc:
        return _skipped(exc, (monotonic() - t0) * 1000, {"rollups_written": 0})
    return {"status": "warning" if res.quarantined else "ok", "skipped": False, "lock_wait_ms": round(waited_ms, 1),
            "rollups_written": res.rows_written,
            "rollup_rows": res.total_rows, "full": res.full, "changed": res.changed, "raw_rows_read": res.raw_rows,
            "bad_rows": res.bad_rows, "quarantined": res.quarantined,
            "_messages": capped_problem_messages(res.problems)
                         + [f"warning: damaged archive quarantined: {q}" for q in res.quarantined],
            "_artefacts": [paths.rel(paths.rollup), paths.rel(paths.rollup_heartbeat)],
            "_runlog_extra": {"lock_wait_ms": round(waited_ms, 1), "rollups_written": res.rows_written,
                              "bad_rows": res.bad_rows, "quarantined": len(res.quarantined)}}


def latency_status(cfg: Config, *, since: datetime | None = None, until: datetime | None = None) -> dict:
    """Per source: the rule states and the last evaluated window (its stats from
    ``model.query`` over the parts kept in ``ops/signal_latency_state.json``; no lock
    needed: the file is replaced atomically). With ``since``/``until`` also ``range``:
    ``model.query`` over the sample rows of ``[since, until)`` per source (the same
    numbers as the rollups and the weekly payload). Shape: ``{slo_ms, updated_at,
    sources: {name: {severity, streak, streak_started_at, last_breach_at, absent, burn,
    latest_at, latest_window_start, latest_status, latest_p95_ms, latest_p50_ms,
    latest_samples, latest_method, range?}}}``."""
    paths = LatencyPaths.from_config(cfg)
    doc = read_json_or(paths.state, {}) or {}
    rules = doc.get("rules", {}) if str(doc.get("schema_version")) == STATE_SCHEMA_VERSION else {}
    recent = _recent_parts(doc.get("recent") or {}) if rules else []
    out: dict[str, dict] = {}
    for name in sorted(rules):
        r = rules[name]
        st = StreakState.from_dict(r.get("streak"))
        lt = r.get("latest") or {}
        stats = None
        if lt.get("window_start"):
            ws = epoch(parse_ts(lt["window_start"]))
            stats = query(recent, by="window", slo_of=cfg.latency.slo_of, start=ws,
                          end=epoch(parse_ts(lt["window_end"])), sources={name}).get((ws, name))
        out[name] = {"severity": st.severity, "streak": st.streak, "streak_started_at": st.streak_started_at,
                     "last_breach_at": st.last_breach_at,
                     "absent": (r.get("absent") or {}).get("severity", "ok"),
                     "burn": (r.get("burn") or {}).get("severity", "ok"),
                     "latest_at": lt.get("window_end"), "latest_window_start": lt.get("window_start"),
                     "latest_status": lt.get("status"),
                     "latest_p95_ms": stats.p95 if stats else None, "latest_p50_ms": stats.p50 if stats else None,
                     "latest_samples": stats.samples if stats else 0, "latest_method": stats.method if stats else None}
    res: dict[str, Any] = {"status": "ok", "slo_ms": doc.get("slo_ms", cfg.latency.slo_ms),
                           "updated_at": doc.get("updated_at"), "sources": out}
    if since is not None and until is not None and since >= until:
        raise ValueError(f"since {to_rfc3339(since)} is not before until {to_rfc3339(until)}")
    if since is not None or until is not None:
        from .rollup import store_query

        lo = since or datetime(1970, 1, 1, tzinfo=UTC)
        hi = until or datetime(9999, 1, 1, tzinfo=UTC)
        stats, problems, quarantined = store_query(paths, slo_of=cfg.latency.slo_of, start=lo, end=hi)
        res["range"] = {"since": to_rfc3339(lo), "until": to_rfc3339(hi), "bad_rows": len(problems),
                        "skipped_archives": quarantined,
                        "sources": {k[1]: {"p50_ms": v.p50, "p95_ms": v.p95, "p99_ms": v.p99, "max_ms": v.max,
                                           "samples": v.samples, "windows": v.windows, "bad_events": v.bad_events,
                                           "error_samples": v.error_samples, "method": v.method}
                                    for k, v in stats.items()}}
    return res
