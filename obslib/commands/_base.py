"""Shared plumbing for CLI subcommands: global flags, the clock edge, job running.

``run_job`` gives every job the DESIGN.md contract: one JSON summary line on stdout,
human-readable messages on stderr, a run-log record, exit 0 on success and non-zero on
failure, no traceback for expected errors (``ObsError``), secrets redacted everywhere.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import sys
import traceback
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ..config import Config, load_config
from ..errors import LockTimeout, ObsError, Terminated, raise_if_terminated
from ..runlog import JobContext, redact
from ..safepath import check_work_tree
from ..timeutil import parse_ts, utcnow


def add_global_flags(p: argparse.ArgumentParser) -> None:
    """Flags every subcommand accepts (they override obs.toml and the environment)."""
    g = p.add_argument_group("global options")
    g.add_argument("--work-root", help="folder holding out/ and ops/ (default: $OBS_WORK_ROOT or .)")
    g.add_argument("--config", help="obs.toml path (default: $OBS_CONFIG or <work-root>/obs.toml)")
    g.add_argument("--data-root", help="research repository root (default: the generated demo repository)")
    g.add_argument("--now", help="pretend the current time is this RFC 3339 UTC time (default: $OBS_NOW or the clock)")
    g.add_argument("--demo", action="store_true",
                   help="allow a run on the generated demo data while real destinations (webhook, Slack, "
                        "PagerDuty, email) are configured; without it such a run is refused (exit 2)")


def resolve_now(args: argparse.Namespace) -> datetime:
    """The run's 'now': ``--now``, else ``$OBS_NOW``, else the real clock (aware UTC)."""
    raw = getattr(args, "now", None) or os.environ.get("OBS_NOW")
    if raw:
        try:
            return parse_ts(raw)
        except ValueError as exc:
            raise ObsError(f"--now/OBS_NOW {raw!r} is not an RFC 3339 timestamp") from exc
    return utcnow()


def flag_time(flag: str, raw: str) -> datetime:
    """A time given on the command line (``--since`` ...) as aware UTC. Raises ``ObsError``
    (exit 2) naming the flag when it is not RFC 3339 or its date is outside the kit's range
    (``inputs.values.DATE_MIN..DATE_MAX``, 1970-01-01..2099-12-31)."""
    from ..inputs.values import RANGE_TEXT, check_date

    try:
        ts = parse_ts(raw)
    except ValueError as exc:
        raise ObsError(f"{flag} {raw!r} is not an RFC 3339 timestamp") from exc
    try:
        check_date(ts.date())
    except ValueError as exc:
        raise ObsError(f"{flag} {raw!r} is out of range ({RANGE_TEXT})") from exc
    return ts


def config_from_args(args: argparse.Namespace, **overrides: Any) -> Config:
    """Load the config with CLI flag overrides (None values ignored). Raises
    ``UnsafePath`` (exit 2) when a link under the work root's ``out/`` or ``ops/`` leads
    outside it (``safepath.check_work_tree``), before any job writes or deletes there."""
    ov: dict[str, Any] = {"data_root": getattr(args, "data_root", None)}
    ov.update(overrides)
    cfg = load_config(getattr(args, "work_root", None), config_file=getattr(args, "config", None), overrides=ov)
    check_work_tree(cfg.work_root)
    return cfg


def emit(summary: dict[str, Any]) -> None:
    """Print the one-line JSON summary for schedulers (secrets redacted). Raises
    ``OSError`` when stdout cannot be written (closed pipe, full disk)."""
    line = json.dumps(summary, sort_keys=True, default=str, allow_nan=False)
    if sys.stdout is None:  # started with stdout closed
        raise OSError(errno.EBADF, "stdout is closed")
    sys.stdout.write(redact(line) + "\n")
    sys.stdout.flush()


def say(msg: str) -> None:
    """A human-readable message on stderr (secrets redacted). Never raises: when stderr
    itself cannot be written (closed, full disk) the message is dropped."""
    try:
        sys.stderr.write(redact(msg).rstrip("\n") + "\n")
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):  # AttributeError: started with stderr closed
        pass


def accept_termination() -> None:
    """Let SIGTERM through from here on (``cli.run`` holds it back while the command
    starts): one that already arrived raises ``Terminated`` now, inside the job."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})


_READ_ONLY_ERRNOS = (errno.EROFS, errno.EACCES, errno.EPERM)


def run_job(args: argparse.Namespace, job_name: str,
            body: Callable[[Config, JobContext, datetime], dict[str, Any]],
            *, config_overrides: dict[str, Any] | None = None, record: bool = True,
            guard: bool | None = None, read_only_ok: bool = False) -> int:
    """Run ``body(cfg, ctx, now)`` as job ``job_name`` and return the exit code.

    ``body`` returns a summary dict; its ``status`` (default ``ok``) goes to the run log,
    ``exit_code`` (default 0, or 1 when status is ``error``) is popped and returned,
    ``artefacts`` are recorded. ``ObsError`` -> status ``error`` (``skipped`` for a
    ``LockTimeout``), message on stderr, its exit code. Ctrl-C / SIGTERM (``Terminated``)
    -> status ``error`` ("interrupted"/"terminated"), exit 130 / 143, after the body's
    ``finally`` blocks have cleaned up. Any other exception -> status ``error``, exit 1,
    traceback only when ``OBS_DEBUG=1``. Every path records the run first, then writes the
    summary line; if stdout cannot be written the exit code is non-zero (1 when the job
    itself succeeded) and stderr says why.

    Before the body runs, the destinations are parsed once from the environment
    (``alerting.Destinations.from_env``: a weak secret or a bad URL refuses the job) and
    put on ``ctx.destinations``; with ``guard`` (default: ``record``) the production guard
    refuses a run on demo data while a destination is configured, unless ``--demo``.

    ``read_only_ok`` (read-only jobs such as ``dashboard verify``, which must work on a
    read-only mirror or backup): when the final run-log record cannot be written because
    the work root is read-only or not writable (``EROFS``/``EACCES``/``EPERM``), say so on
    stderr and keep the job's own outcome instead of failing with exit 2.
    """
    ctx: JobContext | None = None
    cfg: Config | None = None
    checkin = None
    try:
        now = resolve_now(args)
        cfg = config_from_args(args, **(config_overrides or {}))
        ctx = JobContext.from_env(job_name, cfg.ops_dir, now)
        accept_termination()  # a SIGTERM held back so far (see cli.run) is raised here
        from ..alerting.destinations import Destinations, production_guard

        ctx.destinations = Destinations.from_env(os.environ, cfg)
        if record:
            from ..alerting.checkin import CheckIn

            checkin = CheckIn.for_job(ctx.destinations.pings, job_name, ctx.job_id)
            checkin.start()
        if record if guard is None else guard:
            production_guard(cfg, ctx.destinations, demo_ok=bool(getattr(args, "demo", False)))
        summary = body(cfg, ctx, now) or {}
        raise_if_terminated()  # a SIGTERM lost in a finaliser: the job still reports the stop
        status = summary.get("status", "ok")
        code = summary.pop("exit_code", 1 if status == "error" else 0)
        ctx.artefacts.extend(summary.pop("_artefacts", []))
        extra = summary.pop("_runlog_extra", {})
        if record:
            try:
                ctx.finish(status, error=summary.get("error"), **extra)
            except OSError as exc:
                if not (read_only_ok and exc.errno in _READ_ONLY_ERRNOS):
                    raise
                say(f"obs {job_name}: note: run-log record not written ({exc.filename or 'ops/'}: "
                    f"{exc.strerror or exc.__class__.__name__}); the work root is read-only")
        out = {"job_id": ctx.job_id, "job_name": job_name, "status": status, **summary}
    except (ObsError, OSError) as exc:
        if isinstance(exc, OSError):  # disk full, read-only or missing folder, permissions
            where = exc.filename if exc.filename is not None else "a file"
            msg = redact(f"cannot access {where}: {exc.strerror or exc.__class__.__name__}")
            status, code = "error", 2
        else:
            msg = redact(str(exc))
            status, code = ("skipped" if isinstance(exc, LockTimeout) else "error"), exc.exit_code
        out = _failed(ctx, job_name, status, msg, record)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM via the console script (Terminated)
        stop = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted (SIGINT)"
        code = Terminated.exit_code if isinstance(exc, Terminated) else 130
        out = _failed(ctx, job_name, "error", f"{stop} before the job finished", record)
    except Exception as exc:  # a bug: say so briefly, log it, non-zero exit
        msg = redact(f"{exc.__class__.__name__}: {exc}")
        if os.environ.get("OBS_DEBUG") == "1":
            say(redact(traceback.format_exc()))
        out, code = _failed(ctx, job_name, "error", f"internal error: {msg}", record), 1
    if record and ctx is not None and cfg is not None:
        _after_job(cfg, ctx, job_name, out, int(code), checkin)
    try:
        emit(out)
    except (OSError, ValueError) as exc:  # stdout closed or full: the job's outcome is recorded
        say(f"obs {job_name}: could not write the summary line to stdout: "
            f"{getattr(exc, 'strerror', None) or exc.__class__.__name__}")
        return int(code) or 1
    return int(code)


def _after_job(cfg: Config, ctx: JobContext, job_name: str, out: dict[str, Any], code: int, checkin: Any) -> None:
    """After the run is recorded: the check-in ping (success or ``/fail`` with the summary
    line as body) and ``ops/metrics/obslib.prom``. Neither ever changes the job's outcome."""
    from ..metrics import update_metrics

    err = update_metrics(cfg, job=job_name, status=str(out.get("status")), now=ctx.now,
                         duration_s=ctx.elapsed_ms() / 1000, lock_wait_ms=out.get("lock_wait_ms"),
                         skipped=out.get("status") == "skipped")
    if err:
        say(f"obs {job_name}: metrics not written: {err}")
    if cfg.alerts.summary_channel:
        from ..alerting.router import send_job_summary

        problem = send_job_summary(cfg, ctx, out, ok=code == 0)
        if problem:
            say(f"obs {job_name}: run summary not sent: {problem}")
    if checkin is not None:
        try:
            line = redact(json.dumps(out, sort_keys=True, default=str, allow_nan=False))
        except ValueError:
            line = json.dumps({"job_id": ctx.job_id, "status": out.get("status")})
        checkin.finish(code == 0, line)
        for e in checkin.errors:
            say(f"obs {job_name}: check-in {e}")


def _failed(ctx: JobContext | None, job_name: str, status: str, msg: str, record: bool) -> dict[str, Any]:
    """The failure path: the run-log record first (so it exists even when stderr is
    gone), then the message on stderr. Returns the summary line to print."""
    if ctx is not None and record:
        _finish_quietly(ctx, job_name, status, msg)
    say(f"obs {job_name}: {status}: {msg}")
    return {"job_id": ctx.job_id if ctx else None, "job_name": job_name, "status": status, "error": msg}


def _finish_quietly(ctx: JobContext, job_name: str, status: str, msg: str) -> None:
    """Append the final run-log record on an error path; if even that fails (read-only or
    full disk, log locked), say so on stderr instead of raising a second error."""
    try:
        ctx.finish(status, error=msg)
    except (ObsError, OSError) as log_exc:
        detail = getattr(log_exc, "strerror", None) or str(log_exc)
        say(f"obs {job_name}: could not write the run log: {redact(str(detail))}")
