"""The nightly check (``obs check``): missed, failed and slow runs, stale heartbeats.

Healthchecks-style: for every scheduled job (``obslib.schedule``) croniter lists the runs
it should have started since the last check, and they are compared with the final
records in ``ops/automation_runs.log`` (and its archives) and the job's heartbeat.

First run. Nothing is missed before the kit's first recorded run: the first check
(no previous report, no ``--since``) starts monitoring at the earliest finished run of a
scheduled job in the log, or at ``now`` when there is none, so a fresh install is green.

Window. The check covers ``(since, now]``: ``since`` is the previous check's ``until``
(from ``ops/nightly_check.json``), else ``--since``, else ``now - lookback``. An expected
run belongs to the check in whose window its deadline (expected time + grace) falls; a
finished run belongs to the check in whose window its ``completed_at`` falls. So windows
never overlap and each fault is reported once, by the first check that can see it.

Findings (each is an alert ``{id, severity, message, owner, next_action}`` plus details):

``missed_run``       no start in ``[expected - 60 s, expected + grace]``   ``#missed-runs``
``failed_run``       a final record with status ``error``/``failed``        the job's anchor
``undelivered_run``  a weekly run that ended ``dry_run`` (nothing sent)      ``#weekly-webhook``
                     (one finding per week, however many dry runs it had)
``too_long``         ``duration_ms > max_duration_s * 1000``                the job's anchor
``stale_heartbeat``  the next scheduled run after ``generated_at`` + grace has passed ``#missed-runs``
``future_heartbeat`` ``generated_at > now + 120 s``                         ``#missed-runs``
``missing_heartbeat`` a required heartbeat absent although a run was due    ``#missed-runs``
``runlog_invalid``   log lines that are not records or break the schema     ``#missed-runs``

Severity: a missed or failed run has the job's ``failure_severity``; with
``escalate_after = k > 0`` the k-th consecutive bad window (missed, or every run in it
failed) is ``critical`` (two missed/failed dashboard windows in a row; any weekly
failure). A stale heartbeat of a job that already has a missed/failed finding in the same
check is folded into that finding (it is the same fault). The weekly failure points at
``#weekly-webhook`` when an escalation record exists for its job id, else at
``#weekly-report-inputs``.

Nothing here reads the clock or the environment: ``now``, paths and the schedule come in.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from croniter import croniter

from ..alerts import make_alert, sort_alerts
from ..heartbeat import heartbeat_time, read_heartbeat
from ..safepath import is_identifier
from ..schedule import ScheduledJob
from ..storage import read_json_object
from ..timeutil import parse_ts, to_rfc3339
from .runlog_ops import is_final, read_lines, record_time

SCHEMA_VERSION = "1"
REPORT_NAME = "nightly_check.json"
SCHEMA_FILE = "nightly_check.schema.json"
FAILED = ("error", "failed")
EARLY_S = 60
FUTURE_SKEW_S = 120
MAX_LOOKBACK = timedelta(days=35)
SEVERITY_RANK = {"ok": 0, "info": 1, "warning": 2, "critical": 3}
CHECK_KINDS = {  # report check id -> the finding kinds it counts
    "missed_runs": ("missed_run",),
    "failed_runs": ("failed_run", "undelivered_run"),
    "slow_runs": ("too_long",),
    "heartbeats": ("stale_heartbeat", "future_heartbeat", "missing_heartbeat"),
    "runlog_valid": ("runlog_invalid",),
}
CHECK_IDS = tuple(CHECK_KINDS)


@dataclass
class Run:
    """A finished run from the log: its final record and parsed times."""

    record: dict
    started_at: datetime
    completed_at: datetime

    @property
    def failed(self) -> bool:
        return self.record.get("status") in FAILED

    @property
    def job_id(self) -> str:
        return str(self.record.get("job_id", ""))


@dataclass
class JobView:
    """What the check learnt about one job (goes into the report's ``jobs``)."""

    expected: int = 0
    started: int = 0
    missed: int = 0
    failed: int = 0
    too_long: int = 0
    last_started_at: str | None = None
    heartbeat: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_previous(path: Path) -> dict | None:
    """The previous ``nightly_check.json`` when it parses as an object, else None."""
    return read_json_object(path)


def window_start(prev: dict | None, now: datetime, since: datetime | None, lookback: timedelta) -> datetime:
    """``since`` if given, else the previous check's ``window.until``, else ``now - lookback``;
    never earlier than ``now - 35 days`` and never later than ``now``."""
    start = since
    if start is None and prev:
        try:
            start = parse_ts(prev["window"]["until"])
        except (KeyError, TypeError, ValueError):
            start = None
    if start is None:
        start = now - lookback
    return min(now, max(start, now - MAX_LOOKBACK))


def collect_runs(lines: Iterable, job_names: set[str]) -> tuple[dict[str, list[Run]], list]:
    """Final records per job_name (sorted by start) and the problem lines (not records, or
    schema violations)."""
    runs: dict[str, list[Run]] = {n: [] for n in job_names}
    problems = []
    for ln in lines:
        if ln.record is None or ln.schema_errors:
            problems.append(ln)
        if ln.record is None or not is_final(ln.record):
            continue
        name = ln.record.get("job_name")
        if name not in runs:
            continue
        st = record_time(ln.record)
        try:
            done = parse_ts(ln.record["completed_at"])
        except (KeyError, TypeError, ValueError):
            done = st
        if st is None or done is None:
            continue
        runs[name].append(Run(ln.record, st, done))
    for lst in runs.values():
        lst.sort(key=lambda r: r.started_at)
    return runs, problems


def first_recorded_run(runs: dict[str, list[Run]]) -> datetime | None:
    """The earliest start among the scheduled jobs' finished runs (None: the kit never ran)."""
    return min((lst[0].started_at for lst in runs.values() if lst), default=None)


def _in_window(run: Run, t: datetime, grace: timedelta) -> bool:
    return t - timedelta(seconds=EARLY_S) <= run.started_at <= t + grace


class JobChecker:
    """Expected-versus-actual comparison for one job (see the module docstring)."""

    def __init__(self, job: ScheduledJob, runs: list[Run], monitoring_since: datetime):
        self.job = job
        self.runs = runs
        self.grace = timedelta(seconds=job.grace_s)
        self.monitoring_since = monitoring_since
        self._starts = [r.started_at for r in runs]  # runs are sorted by start

    def window_runs(self, t: datetime) -> list[Run]:
        lo = bisect.bisect_left(self._starts, t - timedelta(seconds=EARLY_S))
        hi = bisect.bisect_right(self._starts, t + self.grace)
        return self.runs[lo:hi]

    def bad(self, t: datetime) -> bool:
        rs = self.window_runs(t)
        return not rs or all(r.failed for r in rs)

    def streak(self, t: datetime) -> int:
        """Consecutive bad windows ending at ``t`` (windows before monitoring start ignored)."""
        k = self.job.escalate_after
        if k <= 0:
            return 1
        n = 0
        cur = t
        while n < k and cur >= self.monitoring_since and self.bad(cur):
            n += 1
            prevs = self.job.expected_between(cur - timedelta(days=40), cur - timedelta(seconds=1))
            if not prevs:
                break
            cur = prevs[-1]
        return n

    def severity(self, t: datetime | None) -> tuple[str, int]:
        if t is None or self.job.escalate_after <= 0:
            return self.job.failure_severity, 1
        n = self.streak(t)
        return ("critical" if n >= self.job.escalate_after else self.job.failure_severity), n

    def window_of(self, run: Run) -> datetime | None:
        """The expected time whose start window holds ``run`` (None for an off-schedule run)."""
        cands = self.job.expected_between(run.started_at - self.grace - timedelta(seconds=1),
                                          run.started_at + timedelta(seconds=EARLY_S))
        for t in reversed(cands):
            if _in_window(run, t, self.grace):
                return t
        return None


def _consecutive(missed: list[datetime], expected: list[datetime]) -> list[list[datetime]]:
    """Split ``missed`` into runs of neighbours in ``expected`` (one finding per outage)."""
    pos = {t: i for i, t in enumerate(expected)}
    groups: list[list[datetime]] = []
    for t in missed:
        if groups and pos[t] == pos[groups[-1][-1]] + 1:
            groups[-1].append(t)
        else:
            groups.append([t])
    return groups


def _finding(kind: str, job: ScheduledJob, severity: str, message: str, anchor: str, owner: str, runbook: str,
             key: str, **details: Any) -> dict:
    return make_alert(f"{kind}:{job.name}:{key}", severity, message, anchor=anchor, owner=owner, runbook=runbook,
                      kind=kind, job=job.name, **details)


def check_job(job: ScheduledJob, runs: list[Run], *, since: datetime, now: datetime, monitoring_since: datetime,
              ops_dir: Path, owner: str, runbook: str) -> tuple[list[dict], JobView]:
    """Findings and the summary for one job over the window ``(since, now]``."""
    jc = JobChecker(job, runs, monitoring_since)
    view = JobView()
    out: list[dict] = []
    lo = max(since, monitoring_since)
    expected = job.expected_between(lo - jc.grace, now - jc.grace)
    expected = [t for t in expected if t >= monitoring_since]
    view.expected = len(expected)
    missed: list[datetime] = []
    for t in expected:
        if jc.window_runs(t):
            view.started += 1
        else:
            view.missed += 1
            missed.append(t)
    for group in _consecutive(missed, expected):
        sevs = [jc.severity(t) for t in group]
        sev = max((s for s, _ in sevs), key=lambda s: SEVERITY_RANK[s])
        n = max(k for _, k in sevs)
        first, last = group[0], group[-1]
        late = [r for r in runs if r.started_at > first + jc.grace and r.started_at <= now]
        if len(group) == 1:
            msg = (f"{job.name}: no run started between {to_rfc3339(first - timedelta(seconds=EARLY_S))} and "
                   f"{to_rfc3339(first + jc.grace)} (expected {to_rfc3339(first)}, grace {job.grace_s} s)")
        else:
            msg = (f"{job.name}: {len(group)} consecutive scheduled runs missed, expected from {to_rfc3339(first)} "
                   f"to {to_rfc3339(last)} (grace {job.grace_s} s)")
        if n > 1:
            msg += f"; {n} consecutive bad windows"
        out.append(_finding("missed_run", job, sev, msg, "missed-runs", owner, runbook, to_rfc3339(first),
                            expected_at=to_rfc3339(first), last_expected_at=to_rfc3339(last),
                            missed_count=len(group), consecutive=n,
                            late_start=to_rfc3339(late[0].started_at) if late else None))
    for r in runs:
        if not (since < r.completed_at <= now):
            continue
        if r.failed:
            view.failed += 1
            t = jc.window_of(r)
            sev, n = jc.severity(t)
            anchor = job.anchor
            # the run log is a file: a job id that is not an identifier names no escalation
            esc = Path(ops_dir) / "escalations" / f"{r.job_id if is_identifier(r.job_id) else '.'}.json"
            if job.name == "weekly_report" and not esc.exists():
                anchor = "weekly-report-inputs"
            err = str(r.record.get("error") or "")[:300]
            msg = f"{job.name}: run {r.job_id} failed at {to_rfc3339(r.completed_at)}: {err or 'no error text'}"
            if n > 1:
                msg += f"; {n} consecutive bad windows"
            out.append(_finding("failed_run", job, sev, msg, anchor, owner, runbook, r.job_id, job_id=r.job_id,
                                expected_at=to_rfc3339(t) if t else None, consecutive=n,
                                escalation=f"ops/escalations/{r.job_id}.json" if esc.exists() else None))
        elif r.record.get("status") == "dry_run" and job.name == "weekly_report":
            week = str(r.record.get("week_start") or r.job_id)
            same = next((f for f in out if f["id"] == f"undelivered_run:{job.name}:{week}"), None)
            if same is not None:  # repeated dry runs of one week are one finding
                same["runs"] += 1
                same["job_id"] = r.job_id
                same["message"] = (f"{job.name}: {same['runs']} runs for week {week} built the report but "
                                   "delivered nothing (dry run: no webhook URL in their environment)")
            else:
                out.append(_finding("undelivered_run", job, "warning",
                                    f"{job.name}: run {r.job_id} built the report but delivered nothing (dry run: "
                                    "no webhook URL in its environment)", "weekly-webhook", owner, runbook, week,
                                    job_id=r.job_id, runs=1))
        dur = r.record.get("duration_ms")
        if isinstance(dur, (int, float)) and dur > job.max_duration_s * 1000:
            view.too_long += 1
            out.append(_finding("too_long", job, "warning",
                                f"{job.name}: run {r.job_id} took {dur / 1000:.0f} s (limit {job.max_duration_s} s)",
                                job.anchor, owner, runbook, r.job_id, job_id=r.job_id, duration_ms=dur))
    if runs:
        view.last_started_at = to_rfc3339(runs[-1].started_at)
    out.extend(_heartbeat_findings(job, jc, view, now=now, monitoring_since=monitoring_since, ops_dir=ops_dir,
                                   owner=owner, runbook=runbook, explained=bool(out)))
    return out, view


def stale_after(job: ScheduledJob, heartbeat_at: datetime) -> datetime:
    """When a heartbeat written at ``heartbeat_at`` goes stale: the job's next scheduled run
    after it plus grace (so a weekday-only job is not stale over the weekend)."""
    return job.next_after(heartbeat_at) + timedelta(seconds=job.grace_s)


def heartbeat_state(job: ScheduledJob, heartbeat_at: datetime, now: datetime) -> str:
    """``future`` (dated past now + skew), ``stale`` (``stale_after`` has passed) or ``fresh``."""
    if heartbeat_at > now + timedelta(seconds=FUTURE_SKEW_S):
        return "future"
    return "stale" if now > stale_after(job, heartbeat_at) else "fresh"


def _heartbeat_findings(job: ScheduledJob, jc: JobChecker, view: JobView, *, now: datetime,
                        monitoring_since: datetime, ops_dir: Path, owner: str, runbook: str,
                        explained: bool) -> list[dict]:
    if not job.heartbeat:
        return []
    path = Path(ops_dir) / job.heartbeat
    rel = f"ops/{job.heartbeat}"
    hb = read_heartbeat(path)
    if hb is None:
        first = croniter(job.cron, monitoring_since - timedelta(seconds=1)).get_next(datetime)
        view.heartbeat = {"path": rel, "state": "missing"}
        if job.heartbeat_required and first + jc.grace <= now:
            return [_finding("missing_heartbeat", job, "warning",
                             f"{job.name}: heartbeat {rel} is missing or unreadable although runs were due "
                             f"since {to_rfc3339(first)}", "missed-runs", owner, runbook, "missing", path=rel)]
        return []
    ts = heartbeat_time(hb)
    if ts is None:
        view.heartbeat = {"path": rel, "state": "unreadable"}
        return [_finding("stale_heartbeat", job, "warning", f"{job.name}: heartbeat {rel} has no valid generated_at",
                         "missed-runs", owner, runbook, "no-time", path=rel)]
    age = now - ts
    due = stale_after(job, ts)
    limit = due - ts
    view.heartbeat = {"path": rel, "generated_at": to_rfc3339(ts), "age_s": int(age.total_seconds()),
                      "limit_s": int(limit.total_seconds()), "stale_after": to_rfc3339(due), "state": "fresh"}
    if ts > now + timedelta(seconds=FUTURE_SKEW_S):
        view.heartbeat["state"] = "future"
        return [_finding("future_heartbeat", job, "warning",
                         f"{job.name}: heartbeat {rel} is dated {to_rfc3339(ts)}, in the future (now "
                         f"{to_rfc3339(now)}): clock skew or a corrupt heartbeat", "missed-runs", owner, runbook,
                         to_rfc3339(ts), path=rel, generated_at=to_rfc3339(ts))]
    if heartbeat_state(job, ts, now) == "stale":
        view.heartbeat["state"] = "stale"
        if explained:  # same fault as the job's missed/failed finding
            view.heartbeat["explained_by_run_findings"] = True
            return []
        return [_finding("stale_heartbeat", job, "warning",
                         f"{job.name}: heartbeat {rel} is {age.total_seconds() / 3600:.1f} h old: the next scheduled "
                         f"run after it ({to_rfc3339(due - jc.grace)}) plus grace ({job.grace_s} s) has passed",
                         "missed-runs", owner, runbook, to_rfc3339(ts), path=rel, generated_at=to_rfc3339(ts))]
    return []


def _runlog_finding(problems: list, owner: str, runbook: str) -> list[dict]:
    if not problems:
        return []
    where = [f"{p.where}: {p.problem or '; '.join(p.schema_errors)[:200]}" for p in problems[:5]]
    return [make_alert(f"runlog_invalid:{problems[0].where}", "warning",
                       f"ops/automation_runs.log: {len(problems)} line(s) are not valid run records "
                       f"(first: {where[0]})", anchor="missed-runs", owner=owner, runbook=runbook,
                       kind="runlog_invalid", job=None, lines=where)]


def run_check(*, ops_dir: Path, jobs: list[ScheduledJob], now: datetime, prev: dict | None,
              since: datetime | None = None, lookback: timedelta = timedelta(hours=24),
              owner: str = "obs-oncall", runbook: str = "docs/runbook.md", job_id: str = "") -> dict:
    """Compute the nightly report (the ``ops/nightly_check.json`` document, without writing it).

    ``prev``: the previous report (window start and monitoring start), or None. ``since``:
    explicit window start (also the monitoring start on a first check). Returns
    ``{schema_version, kind, generated_at, job_id, status ok|warning|critical, window{since,
    until}, monitoring_since, counts{critical, warning, info}, checks[{id, status, findings}],
    findings[...], jobs{name: JobView}, runlog{files, lines, problems}}``.
    """
    start = window_start(prev, now, since, lookback)
    mon_raw = (prev or {}).get("monitoring_since") if since is None else None
    try:
        monitoring = parse_ts(mon_raw) if isinstance(mon_raw, str) else start
    except ValueError:
        monitoring = start
    max_grace = max((timedelta(seconds=j.grace_s) for j in jobs), default=timedelta(0))
    read_from = min(start, monitoring) - max_grace - timedelta(days=max(1, max(
        (j.escalate_after for j in jobs), default=1)) * 8)
    lines = list(read_lines(ops_dir, since=read_from, validate=True, validate_since=start))
    runs, problems = collect_runs(lines, {j.job_name for j in jobs})
    if since is None and not isinstance(mon_raw, str):
        # first check: nothing is missed before the kit's first recorded run (a fresh install is green)
        monitoring = max(monitoring, first_recorded_run(runs) or now)
    new_problems = [p for p in problems if p.record is None or (record_time(p.record) or now) >= start]
    findings: list[dict] = []
    views: dict[str, dict] = {}
    for job in jobs:
        f, view = check_job(job, runs[job.job_name], since=start, now=now, monitoring_since=monitoring,
                            ops_dir=Path(ops_dir), owner=owner, runbook=runbook)
        findings.extend(f)
        views[job.name] = view.as_dict()
    findings.extend(_runlog_finding(new_problems, owner, runbook))
    findings = sort_alerts(findings)
    counts = {s: sum(1 for f in findings if f["severity"] == s) for s in ("critical", "warning", "info")}
    status = "critical" if counts["critical"] else "warning" if counts["warning"] else "ok"
    checks = []
    for cid, kinds in CHECK_KINDS.items():
        fs = [f for f in findings if f["kind"] in kinds]
        worst = max((f["severity"] for f in fs), key=SEVERITY_RANK.__getitem__, default="ok")
        checks.append({"id": cid, "status": worst, "findings": len(fs)})
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "nightly_check",
        "generated_at": to_rfc3339(now),
        "job_id": job_id,
        "status": status,
        "window": {"since": to_rfc3339(start), "until": to_rfc3339(now)},
        "monitoring_since": to_rfc3339(monitoring),
        "counts": counts,
        "checks": checks,
        "findings": findings,
        "jobs": views,
        "runlog": {"lines": len(lines), "problems": len(new_problems)},
    }
