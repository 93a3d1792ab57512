"""``ops/metrics/obslib.prom``: Prometheus text format for node_exporter's textfile collector.

Written after every job (``commands._base.run_job``), whole and atomically
(``prometheus_client.generate_latest`` bytes, then ``storage.atomic_write_bytes``: temp
file beside, fsync, rename), so a scrape never sees half a file. Per-job facts persist in
``ops/metrics/jobs.json`` (under a lock); everything else is read fresh from ``ops/``.

Metrics (all gauges)::

    obslib_job_last_success_timestamp_seconds{job}   unix time of the job's last ok run
    obslib_job_last_run_timestamp_seconds{job}       unix time of the job's last run
    obslib_job_duration_seconds{job}                 duration of the last run
    obslib_job_last_status{job,status}               1 for the last run's status, 0 for the others seen
    obslib_job_lock_wait_seconds{job}                lock wait of the last run
    obslib_job_skipped_runs_total{job}               runs skipped (lock busy) so far
    obslib_latency_p95_ms{source}                    latest p95 per latency source
    obslib_latency_events{source}                    events in the latest sample
    obslib_latency_breach_streak{source}             current breach streak
    obslib_latency_burn_rate{source,window}          error-budget burn rate per window (15m, 1h, 6h)
    obslib_active_alerts{severity}                   active alerts by severity
    obslib_latency_raw_bytes                         size of ops/signal_latency.csv
    obslib_latency_bytes_to_rotation                 bytes left before it rotates

Writing metrics never fails a job: ``update_metrics`` returns an error text instead.
"""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Any

from .storage import atomic_write_bytes, atomic_write_json, file_lock, read_json_object

METRICS_DIR = "metrics"
PROM_NAME = "obslib.prom"
JOBS_NAME = "jobs.json"


def prom_path(ops_dir: str | Path) -> Path:
    """``<ops_dir>/metrics/obslib.prom``."""
    return Path(ops_dir) / METRICS_DIR / PROM_NAME


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(float(v)) else None


def record_job(ops_dir: Path, *, job: str, status: str, now: datetime, duration_s: float,
               lock_wait_ms: float | None, skipped: bool) -> dict:
    """Update the job's entry in ``ops/metrics/jobs.json`` (under its lock); returns all jobs."""
    d = Path(ops_dir) / METRICS_DIR
    d.mkdir(parents=True, exist_ok=True)
    with file_lock(d / "jobs.lock", 10.0):
        jobs = read_json_object(d / JOBS_NAME) or {}
        e = jobs.get(job) if isinstance(jobs.get(job), dict) else {}
        ts = now.timestamp()
        e.update(last_run=ts, duration_s=round(duration_s, 3), status=status,
                 statuses=sorted(set(e.get("statuses", [])) | {status}))
        if status in ("ok", "dry_run", "warning"):  # a warning run did its work
            e["last_success"] = ts
        if lock_wait_ms is not None:
            e["lock_wait_s"] = round(lock_wait_ms / 1000, 3)
        if skipped:
            e["skipped"] = int(e.get("skipped", 0)) + 1
        jobs[job] = e
        atomic_write_json(d / JOBS_NAME, jobs)
    return jobs


def _latency_sources(ops_dir: Path) -> list[tuple[str, dict, Any, dict]]:
    """``(source, latest window, breach streak, burn rates)`` from ``ops/signal_latency_state.json``
    (``rules.<source>.{latest, streak.streak, burn.burn_<window>}``; an older ``latest``/``sources``
    layout is read too). Missing or odd parts are skipped."""
    lat = read_json_object(Path(ops_dir) / "signal_latency_state.json") or {}
    out = []
    rules = lat.get("rules") if isinstance(lat.get("rules"), dict) else {}
    for src, r in sorted(rules.items()):
        if not isinstance(r, dict):
            continue
        lt = r.get("latest") if isinstance(r.get("latest"), dict) else {}
        st = r.get("streak") if isinstance(r.get("streak"), dict) else {}
        burn = r.get("burn") if isinstance(r.get("burn"), dict) else {}
        out.append((src, lt, st.get("streak"), burn))
    latest = lat.get("latest") if isinstance(lat.get("latest"), dict) else {}
    sources = lat.get("sources") if isinstance(lat.get("sources"), dict) else {}
    for src in sorted((set(latest) | set(sources)) - set(rules)):
        lt, st = latest.get(src) or {}, sources.get(src) or {}
        out.append((src, lt if isinstance(lt, dict) else {}, st.get("streak") if isinstance(st, dict) else None, {}))
    return out


def build_registry(ops_dir: Path, jobs: dict, *, rotate_bytes: int):
    """A ``prometheus_client.CollectorRegistry`` with every metric of the module docstring."""
    from prometheus_client import CollectorRegistry, Gauge

    reg = CollectorRegistry()
    g = {n: Gauge(n, h, labels, registry=reg) for n, h, labels in (
        ("obslib_job_last_success_timestamp_seconds", "Unix time of the job's last successful run", ["job"]),
        ("obslib_job_last_run_timestamp_seconds", "Unix time of the job's last run", ["job"]),
        ("obslib_job_duration_seconds", "Duration of the job's last run", ["job"]),
        ("obslib_job_last_status", "1 for the status of the job's last run", ["job", "status"]),
        ("obslib_job_lock_wait_seconds", "Lock wait of the job's last run", ["job"]),
        ("obslib_job_skipped_runs_total", "Runs skipped because the lock was busy", ["job"]),
        ("obslib_latency_p95_ms", "Latest p95 latency per source (ms)", ["source"]),
        ("obslib_latency_events", "Events in the latest sample per source", ["source"]),
        ("obslib_latency_breach_streak", "Current breach streak per source", ["source"]),
        ("obslib_latency_burn_rate", "Error-budget burn rate per source and window", ["source", "window"]),
        ("obslib_active_alerts", "Active alerts by severity", ["severity"]),
        ("obslib_latency_raw_bytes", "Size of ops/signal_latency.csv", []),
        ("obslib_latency_bytes_to_rotation", "Bytes before ops/signal_latency.csv rotates", []),
    )}
    for job, e in sorted(jobs.items()):
        if not isinstance(e, dict):
            continue
        for metric, key in (("obslib_job_last_success_timestamp_seconds", "last_success"),
                            ("obslib_job_last_run_timestamp_seconds", "last_run"),
                            ("obslib_job_duration_seconds", "duration_s"), ("obslib_job_lock_wait_seconds", "lock_wait_s"),
                            ("obslib_job_skipped_runs_total", "skipped")):
            v = _num(e.get(key, 0 if key == "skipped" else None))
            if v is not None:
                g[metric].labels(job=job).set(v)
        for st in e.get("statuses", []):
            g["obslib_job_last_status"].labels(job=job, status=str(st)).set(1 if st == e.get("status") else 0)
    for src, lt, streak, burn in _latency_sources(Path(ops_dir)):
        for metric, v in (("obslib_latency_p95_ms", lt.get("p95_ms")),
                          ("obslib_latency_events", lt.get("events", lt.get("samples"))),
                          ("obslib_latency_breach_streak", streak)):
            if _num(v) is not None:
                g[metric].labels(source=src).set(_num(v))
        for key, v in burn.items():
            if key.startswith("burn_") and _num(v) is not None:
                g["obslib_latency_burn_rate"].labels(source=src, window=key[len("burn_"):]).set(_num(v))
    from .alerting.state import StateUnreadable, read_state

    try:
        active = read_state(ops_dir)["alerts"].values()
    except StateUnreadable:  # said by the job that reads it (obs alerts list refuses, a writer quarantines)
        active = []
    for sev in ("critical", "warning", "info"):
        g["obslib_active_alerts"].labels(severity=sev).set(
            sum(1 for e in active if e.get("severity") == sev and not e.get("resolved_at")))
    raw = Path(ops_dir) / "signal_latency.csv"
    size = raw.stat().st_size if raw.exists() else 0
    g["obslib_latency_raw_bytes"].set(size)
    g["obslib_latency_bytes_to_rotation"].set(max(0, rotate_bytes - size))
    return reg


def update_metrics(cfg: Any, *, job: str, status: str, now: datetime, duration_s: float,
                   lock_wait_ms: float | None = None, skipped: bool = False) -> str | None:
    """Record the run and rewrite ``ops/metrics/obslib.prom``. Returns None, or a short
    reason when the metrics could not be written (the job's outcome is never changed)."""
    try:
        from prometheus_client import generate_latest

        jobs = record_job(Path(cfg.ops_dir), job=job, status=status, now=now, duration_s=duration_s,
                          lock_wait_ms=lock_wait_ms, skipped=skipped)
        reg = build_registry(Path(cfg.ops_dir), jobs, rotate_bytes=cfg.latency.rotate_bytes)
        atomic_write_bytes(prom_path(cfg.ops_dir), generate_latest(reg))
        return None
    except Exception as exc:  # noqa: BLE001 - metrics are best effort by contract
        return f"{exc.__class__.__name__}: {getattr(exc, 'strerror', None) or 'metrics not written'}"
