"""The one schedule: which job runs when, with which command, grace and time limit.

Defined once here (``DEFAULT_JOBS``) and overridable per job from ``obs.toml``::

    [schedule.dashboard_export]
    cron = "30 1 * * *"        # five-field cron expression, UTC
    grace_s = 1800             # a start later than expected + grace is a missed run
    max_duration_s = 1800      # a run longer than this is reported as too long
    [schedule]
    env_file = "/etc/obslib/secrets.env"   # sourced by every cron command (must exist when set)

``obs cron --format json|crontab`` renders it (``render_json`` / ``render_crontab``) and
``obs check`` (``obslib.ops.check``) uses it to compute the runs each job should have
made. All times are UTC; cron expressions are evaluated with ``croniter``.

Every rendered command sets ``JOB_ID`` (``<job_name>-<UTC stamp>-<pid>``, unique even for
two runs in the same second) and ``SCHEDULE_TRIGGER=cron``. Secrets are *named* in each
entry's ``env_contract`` (never valued): cron gets them from ``env_file``.
"""

from __future__ import annotations

import dataclasses
import shlex
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from croniter import CroniterBadDateError, croniter

from .errors import ConfigError

TIMEZONE = "UTC"
ALERT_ENV = ("OBS_ALERT_WEBHOOK_URL", "OBS_WEEKLY_WEBHOOK_URL", "OBS_WEBHOOK_SECRET")


@dataclass(frozen=True)
class ScheduledJob:
    """One scheduled job.

    ``name``: schedule entry name (``latency_sample``). ``job_name``: the ``job_name`` the
    job writes in ``ops/automation_runs.log`` (``latency``). ``cron``: five-field UTC cron
    expression. ``args``: the ``obs`` arguments. ``grace_s``: seconds after the expected
    time within which a start counts (later = missed). ``max_duration_s``: longer runs are
    reported. ``heartbeat``: file name under ``ops/`` (None: the job writes none).
    ``heartbeat_required``: a missing heartbeat file is reported (False: checked only when
    present). ``anchor``: runbook anchor for this job's failures. ``failure_severity``:
    severity of one failed/missed run; ``escalate_after``: that many consecutive bad
    windows (missed or failed) are critical (0 = never escalate). ``secrets``: env names
    the job reads (never values). ``shell_extra``: raw shell words appended to the command.
    ``then_args``: a second ``obs`` command run after the first (its failure fails the job).
    """

    name: str
    job_name: str
    cron: str
    args: tuple[str, ...]
    description: str
    grace_s: int
    max_duration_s: int
    anchor: str
    heartbeat: str | None = None
    heartbeat_required: bool = True
    failure_severity: str = "warning"
    escalate_after: int = 0
    secrets: tuple[str, ...] = ()
    shell_extra: str = ""
    then_args: tuple[str, ...] = ()

    def _arg_words(self) -> list[str]:
        """The shell-quoted ``args``, then ``shell_extra`` (raw shell) when set."""
        return [*(shlex.quote(a) for a in self.args), *([self.shell_extra] if self.shell_extra else [])]

    @property
    def command(self) -> str:
        """``obs <args>`` (shell-quoted; ``shell_extra`` is raw shell, e.g. a ``${VAR:+--flag}``),
        then ``obs <then_args>`` when set (the nightly check also verifies the bundle)."""
        cmd = " ".join(["obs", *self._arg_words()])
        if self.then_args:
            cmd += " && " + " ".join(["obs", *(shlex.quote(a) for a in self.then_args)])
        return cmd

    def env_contract(self) -> dict[str, Any]:
        """What the command's environment holds: names only, never secret values."""
        return {
            "JOB_ID": f"set by the command: {self.job_name}-<YYYYMMDDTHHMMSSZ>-<pid>",
            "SCHEDULE_TRIGGER": "cron",
            "secrets": list(self.secrets),
            "optional": ["OBS_WORK_ROOT", "OBS_DATA_ROOT", "OBS_CONFIG"],
        }

    def next_after(self, at: datetime) -> datetime:
        """The first scheduled fire strictly after ``at`` (aware UTC)."""
        return croniter(self.cron, at).get_next(datetime)

    def cadence(self, at: datetime) -> timedelta:
        """The gap between the two scheduled fires before ``at`` (the job's period there)."""
        it = croniter(self.cron, at)
        last = it.get_prev(datetime)
        before = it.get_prev(datetime)
        return last - before

    def expected_between(self, start: datetime, end: datetime) -> list[datetime]:
        """Scheduled fire times ``t`` with ``start < t <= end`` (aware UTC, ascending)."""
        out: list[datetime] = []
        it = croniter(self.cron, start)
        while True:
            t = it.get_next(datetime)
            if t > end:
                return out
            out.append(t)


DEFAULT_JOBS: tuple[ScheduledJob, ...] = (
    ScheduledJob("latency_sample", "latency", "*/15 * * * *", ("latency", "sample"),
                 "sample every latency source, roll up, send breach-streak alerts",
                 grace_s=300, max_duration_s=600, anchor="signal-latency", heartbeat="latency_heartbeat.json",
                 secrets=ALERT_ENV),
    ScheduledJob("latency_rollup", "latency_rollup", "5 * * * *", ("latency", "rollup"),
                 "recompute the hourly latency rollups",
                 grace_s=600, max_duration_s=900, anchor="signal-latency",
                 heartbeat="latency_rollup_heartbeat.json"),
    ScheduledJob("dashboard_export", "dashboard_export", "0 1 * * *", ("dashboard", "run"),
                 "execute the dashboard notebook: export the four datasets, manifest, heartbeat, history",
                 grace_s=1800, max_duration_s=1800, anchor="dashboard-exports",
                 heartbeat="dashboard_export_heartbeat.json", escalate_after=2),
    ScheduledJob("dashboard_publish", "dashboard_publish", "0 22 * * 0", ("dashboard", "publish"),
                 "copy the verified dashboard bundle to [publish] to (after Sunday's export, before the weekly "
                 "report); a failed upload stays queued and is retried next run",
                 grace_s=1800, max_duration_s=1800, anchor="dashboard-publish",
                 heartbeat="dashboard_publish_heartbeat.json", heartbeat_required=False, escalate_after=2,
                 secrets=ALERT_ENV),
    ScheduledJob("weekly_report", "weekly_report", "30 23 * * 0", ("weekly", "run"),
                 "weekly report notebook, HTML and signed payload delivery",
                 grace_s=900, max_duration_s=2700, anchor="weekly-webhook",
                 heartbeat="weekly_report_heartbeat.json", heartbeat_required=False,
                 failure_severity="critical", escalate_after=1,
                 secrets=("OBS_WEEKLY_WEBHOOK_URL", "OBS_WEBHOOK_SECRET", "OBS_ESCALATION_WEBHOOK_URL"),
                 shell_extra="${OBS_WEEKLY_WEBHOOK_URL:+--require-delivery}"),
    ScheduledJob("nightly_check", "nightly_check", "30 2 * * *", ("check",),
                 "missed runs, failed/slow runs, stale heartbeats; alerts (then `obs dashboard verify`)",
                 grace_s=1800, max_duration_s=600, anchor="missed-runs", heartbeat="nightly_check_heartbeat.json",
                 secrets=ALERT_ENV, then_args=("dashboard", "verify")),
)

_OVERRIDABLE = {"cron": str, "grace_s": int, "max_duration_s": int, "escalate_after": int,
                "failure_severity": str, "heartbeat_required": bool, "enabled": bool}


_YEAR_STARTS = tuple(datetime(y, 1, 1, tzinfo=timezone.utc) for y in (2001, 2002, 2003, 2004))


def fires_within_a_year(cron: str) -> bool:
    """Whether ``cron`` fires at least once in every year (checked from four consecutive
    1 January starts, so ``0 0 29 2 *``, once in four years, does not; ``0 0 31 2 *``
    never fires at all)."""
    for start in _YEAR_STARTS:
        try:
            nxt = croniter(cron, start, max_years_between_matches=1).get_next(datetime)
        except CroniterBadDateError:
            return False
        if nxt - start > timedelta(days=366):
            return False
    return True


def _check_job(job: ScheduledJob, where: str) -> ScheduledJob:
    if not croniter.is_valid(job.cron) or len(job.cron.split()) != 5:
        raise ConfigError(f"{where}: cron {job.cron!r} is not a valid five-field cron expression")
    if not fires_within_a_year(job.cron):
        raise ConfigError(f"{where}: cron {job.cron!r} does not fire within a year (a date that does not exist, "
                          "such as 31 February?): the job would never run and could never be checked")
    if job.grace_s < 0 or job.max_duration_s <= 0 or job.escalate_after < 0:
        raise ConfigError(f"{where}: grace_s >= 0, max_duration_s > 0 and escalate_after >= 0 are required")
    if job.failure_severity not in ("info", "warning", "critical"):
        raise ConfigError(f"{where}: failure_severity {job.failure_severity!r} is not info|warning|critical")
    return job


def load_schedule(overrides: dict[str, Any] | None = None) -> list[ScheduledJob]:
    """The schedule: ``DEFAULT_JOBS`` with per-job ``overrides`` applied.

    ``overrides`` is the ``[schedule]`` table of ``obs.toml`` (``cfg.schedule``):
    ``{<job name>: {cron, grace_s, max_duration_s, escalate_after, failure_severity,
    heartbeat_required, enabled}}`` plus the scalar ``env_file`` (ignored here). A job with
    ``enabled = false`` is left out (not rendered, not checked). Raises
    ``ConfigError`` for an unknown job or key, a wrong type or an invalid cron expression.
    """
    ov = overrides or {}
    if not isinstance(ov, dict):
        raise ConfigError("schedule: expected a table [schedule.<job>]")
    known = {j.name: j for j in DEFAULT_JOBS}
    out = {}
    for name, job in known.items():
        spec = ov.get(name) or {}
        if not isinstance(spec, dict):
            raise ConfigError(f"schedule.{name}: expected a table")
        changes = {}
        if spec.get("enabled", True) is False:
            continue
        for key, val in spec.items():
            if key == "enabled":
                if not isinstance(val, bool):
                    raise ConfigError(f"schedule.{name}.enabled: {val!r} is not a bool")
                continue
            typ = _OVERRIDABLE.get(key)
            if typ is None:
                raise ConfigError(f"schedule.{name}.{key}: unknown setting (known: {', '.join(sorted(_OVERRIDABLE))})")
            if typ is int and (isinstance(val, bool) or not isinstance(val, int)):
                raise ConfigError(f"schedule.{name}.{key}: {val!r} is not an integer")
            if typ is not int and not isinstance(val, typ):
                raise ConfigError(f"schedule.{name}.{key}: {val!r} is not a {typ.__name__}")
            changes[key] = val
        out[name] = _check_job(dataclasses.replace(job, **changes), f"schedule.{name}")
    unknown = set(ov) - set(known) - {"env_file"}
    if unknown:
        raise ConfigError(f"schedule: unknown job(s) {sorted(unknown)} (known: {', '.join(known)})")
    return list(out.values())


def env_file(overrides: dict[str, Any] | None) -> str | None:
    """``[schedule] env_file`` (a file of ``NAME=value`` secret lines sourced by cron), or None."""
    val = (overrides or {}).get("env_file") if isinstance(overrides, dict) else None
    if val is not None and not isinstance(val, str):
        raise ConfigError(f"schedule.env_file: {val!r} is not a string")
    return val or None


def shell_command(job: ScheduledJob, *, work_root: str, obs_bin: str, env_path: str | None = None,
                  log_dir: str = "ops/cron") -> str:
    """The shell command cron runs for ``job`` (POSIX sh, before crontab ``%`` escaping).

    ``cd <work_root>``; source ``env_path`` (the line fails when it is missing); set ``JOB_ID`` and
    ``SCHEDULE_TRIGGER``; run ``<obs_bin> <args>`` (then ``<then_args>``); append
    stdout/stderr to ``<log_dir>/<job>.log``.
    """
    q = shlex.quote
    parts = [f"cd {q(work_root)}"]
    if env_path:
        # a missing env file fails the line (the run is then reported missed), never a silent dry run
        parts.append(f"{{ set -a && . {q(env_path)} && set +a; }}")
    parts.append(f"mkdir -p {q(log_dir)}")
    run = (f"JOB_ID={job.job_name}-$(date -u +%Y%m%dT%H%M%SZ)-$$ SCHEDULE_TRIGGER=cron "
           f"{q(obs_bin)} {' '.join(job._arg_words())}")
    if job.then_args:
        run = f"{{ {run}; rc=$?; {q(obs_bin)} {' '.join(q(a) for a in job.then_args)} || rc=1; exit $rc; }}"
    parts.append(f"{run} >>{q(log_dir + '/' + job.name + '.log')} 2>&1")
    return " && ".join(parts)


def render_json(jobs: list[ScheduledJob]) -> list[dict[str, Any]]:
    """``[{job, command, cadence, timezone, env_contract, grace_s, max_duration_s, job_name,
    heartbeat, description}]`` in schedule order (the ``obs cron --format json`` output)."""
    return [{"job": j.name, "job_name": j.job_name, "command": j.command, "cadence": j.cron, "timezone": TIMEZONE,
             "env_contract": j.env_contract(), "grace_s": j.grace_s, "max_duration_s": j.max_duration_s,
             "heartbeat": f"ops/{j.heartbeat}" if j.heartbeat else None, "description": j.description}
            for j in jobs]


def render_crontab(jobs: list[ScheduledJob], *, work_root: str, obs_bin: str, env_path: str | None = None,
                   data_root: str | None = None) -> str:
    """A crontab (``crontab -`` input): header (``SHELL``, ``CRON_TZ``/``TZ=UTC``, and
    ``OBS_DATA_ROOT`` when ``data_root`` is given), one line per job. ``%`` is escaped as
    ``\\%`` (cron turns a bare ``%`` into a newline)."""
    lines = ["# obslib schedule (generated by `obs cron --format crontab`; edit obs.toml [schedule], not this)",
             (f"# All times UTC. Secrets are read from {env_path}, never written here:" if env_path else
              "# All times UTC. No [schedule] env_file is set: these secrets must be in cron's own environment "
              "(or set env_file in obs.toml); they are never written here:"),
             f"#   {' '.join(sorted({s for j in jobs for s in j.secrets}))}",
             "SHELL=/bin/sh", "CRON_TZ=UTC", "TZ=UTC",
             *([f"OBS_DATA_ROOT={data_root}"] if data_root else []), ""]
    for j in jobs:
        cmd = shell_command(j, work_root=work_root, obs_bin=obs_bin, env_path=env_path).replace("%", "\\%")
        lines.append(f"# {j.name}: {j.description} (grace {j.grace_s} s, max {j.max_duration_s} s)")
        lines.append(f"{j.cron} {cmd}")
    return "\n".join(lines) + "\n"


def job_by_name(jobs: list[ScheduledJob], name: str) -> ScheduledJob:
    """The job called ``name`` (schedule name or run-log job_name). Raises ConfigError."""
    for j in jobs:
        if name in (j.name, j.job_name):
            return j
    raise ConfigError(f"no scheduled job {name!r} (known: {', '.join(j.name for j in jobs)})")
