"""Shared helpers for the latency tests (no tests here)."""

from __future__ import annotations

import csv
import gzip
import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas  # noqa: F401  (pyarrow imports pandas on first use: pay it once, before forking)
import pyarrow.csv  # noqa: F401

import obslib.cli  # (imported and warmed here so forked CLI children start fast)
from obslib.config import LatencySource, load_config
from obslib.latency.alerts import AlertTarget
from obslib.latency.job import run_sample
from obslib.runlog import JobContext

obslib.cli.build_parser()
UTC = timezone.utc
T0 = datetime(2025, 10, 13, 9, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[1]
from conftest import REAL_ROOT  # noqa: E402  (../shared/realdata or $OBSLIB_REALDATA)

REALDATA = REAL_ROOT

EVENT_HEADER = "timestamp_utc,latency_ms,status,detail,source\n"


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_cfg(work: Path, sources: list[LatencySource] | None = None, **latency):
    cfg = load_config(work, env={}, overrides={"data_root": str(work / "data")})
    for k, v in latency.items():
        if k == "lock_timeout_s":
            cfg.lock_timeout_s = v
        else:
            setattr(cfg.latency, k, v)
    if sources is not None:
        cfg.latency.sources = sources
    return cfg


def event_source(path: Path, name: str = "events", window_minutes: float = 15.0) -> LatencySource:
    return LatencySource(name=name, kind="event_log", path=str(path), window_minutes=window_minutes)


def event_line(ts: datetime, latency_ms: float, status: str = "success", source: str = "router") -> str:
    return f"{iso(ts)},{latency_ms:.3f},{status},,{source}\n"


def sample(cfg, now: datetime, target: AlertTarget | None = None, **kw) -> dict:
    ctx = JobContext(job_name="latency", ops_dir=cfg.ops_dir, now=now)
    out = run_sample(cfg, ctx, now, data_root=Path(cfg.work_root) / "data", target=target or AlertTarget(), **kw)
    out["job_id"] = ctx.job_id
    return out


def raw_rows(work: Path) -> list[dict]:
    """Every raw row in the live file and all archives (archives first)."""
    ops = work / "ops"
    rows: list[dict] = []
    manifest = ops / "signal_latency_archive" / "manifest.json"
    if manifest.exists():
        for e in json.loads(manifest.read_text())["entries"]:
            with gzip.open(ops / "signal_latency_archive" / e["path"], "rt") as fh:
                rows.extend(csv.DictReader(fh))
    live = ops / "signal_latency.csv"
    if live.exists():
        rows.extend(csv.DictReader(io.StringIO(live.read_text())))
    return rows


def runlog(work: Path) -> list[dict]:
    p = work / "ops" / "automation_runs.log"
    return [json.loads(line) for line in p.read_text().splitlines()] if p.exists() else []


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def type7(values, q):
    """Independent type-7 percentile: statistics.quantiles(method='inclusive') is type 7."""
    import statistics

    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(round(q * 100)) - 1]


def log_events(log: Path) -> list[dict]:
    """Every event of an event log (complete lines), as dicts."""
    text = log.read_text()
    text = text[: text.rfind("\n") + 1]
    return list(csv.DictReader(io.StringIO(text)))


def expected_rollups(events, slo, source="events"):
    """{(hour_utc, source): (p50, p95, samples, breach_flag, error_samples)} computed from the
    EVENTS (event-time hour of each event; errors counted, not in the percentiles)."""
    from collections import defaultdict

    groups, errors = defaultdict(list), defaultdict(int)
    for r in events:
        key = (r["timestamp_utc"][:13] + ":00:00Z", source)
        if r["status"] == "error":
            errors[key] += 1
        else:
            groups[key].append(float(r["latency_ms"]))
    out = {}
    for key in set(groups) | set(errors):
        v = sorted(groups.get(key, []))
        p50 = type7(v, 0.5) if v else None
        p95 = type7(v, 0.95) if v else None
        out[key] = (p50, p95, len(v) + errors.get(key, 0), "true" if p95 is not None and p95 > slo else "false",
                    errors.get(key, 0))
    return out


def check_rollup_file(work: Path, slo: float, log: Path | None = None) -> dict:
    """Assert the rollup file equals an independent computation over every event of the
    event log (``<work>/ev.csv``); hours here hold at most 64 events, so exact type 7."""
    import pytest

    text = (work / "ops/signal_latency_rollup.csv").read_text()
    got = {(r["hour_utc"], r["source"]): r for r in csv.DictReader(io.StringIO(text))}
    exp = expected_rollups(log_events(log or work / "ev.csv"), slo)
    assert set(got) == set(exp)
    for key, (p50, p95, n, flag, errs) in exp.items():
        r = got[key]
        assert r["method"] == "exact_type7"
        assert (int(r["samples"]), int(r["error_samples"]), r["breach_flag"]) == (n, errs, flag), key
        if p50 is None:
            assert r["p50_ms"] == "" and r["p95_ms"] == ""
        else:
            assert float(r["p50_ms"]) == pytest.approx(p50, abs=1e-3)
            assert float(r["p95_ms"]) == pytest.approx(p95, abs=1e-3)
    return got


def write_obs_toml(work: Path, event_log: Path, *, window_minutes=15, **settings) -> None:
    """A work root whose only latency source is ``event_log`` (top-level keys and
    ``[latency]`` keys from ``settings``: names prefixed ``latency_`` go to the section)."""
    top = {k: v for k, v in settings.items() if not k.startswith("latency_")}
    lat = {k[len("latency_"):]: v for k, v in settings.items() if k.startswith("latency_")}
    lines = [f"{k} = {json.dumps(v)}" for k, v in top.items()]
    lines += ["[latency]"] + [f"{k} = {json.dumps(v)}" for k, v in lat.items()]
    lines += ["[[latency.sources]]", 'name = "events"', 'kind = "event_log"', f"path = {json.dumps(str(event_log))}",
              f"window_minutes = {window_minutes}"]
    work.mkdir(parents=True, exist_ok=True)
    (work / "obs.toml").write_text("\n".join(lines) + "\n")


def cli_child(argv: list[str], out_path: str, env: dict[str, str] | None = None) -> None:
    """Process target: run the real ``obs`` CLI in this (forked) process, stdout to a file."""
    import os
    import sys

    for k in [k for k in os.environ if k.startswith("OBS_")]:
        del os.environ[k]
    os.environ.update(env or {})
    with open(out_path, "a") as fh:
        os.dup2(fh.fileno(), 1)
        sys.stdout = os.fdopen(1, "w", closefd=False)
        from obslib.cli import main

        for args in argv if isinstance(argv[0], list) else [argv]:
            try:
                main(args)
            except SystemExit:
                pass
        sys.stdout.flush()
