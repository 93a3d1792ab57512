"""The structured run log ``ops/automation_runs.log`` and the job context.

One JSON object per line (canonical JSON), appended under a lock. Every job appends a
record with ``job_id, job_name, schedule_trigger, started_at, completed_at, status,
duration_ms, artefacts, error`` (DESIGN.md); jobs may add fields (webhook attempts add
``attempt, status_code, response_ms, payload_checksum_sha256``). No secrets: callers
pass already-redacted error text, and ``redact`` is applied to every string anyway.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .storage import canonical_json_bytes, locked_append
from .timeutil import to_rfc3339

RUNLOG_NAME = "automation_runs.log"
MAX_FIELD_CHARS = 4096
MAX_LIST_ITEMS = 1000


def new_job_id(job_name: str, now: datetime) -> str:
    """A unique job id: ``<job_name>-<YYYYMMDDTHHMMSSZ>-<8 random hex>``.

    The random suffix makes two runs in the same second distinct.
    """
    return f"{job_name}-{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(4)}"


URL_TOKEN_MIN_CHARS = 8
_SECRET_SUFFIXES = ("_SECRET", "_SECRETS", "_TOKEN", "_KEY", "_PASSWORD")
_SECRET_URL_MARKS = ("WEBHOOK", "SLACK", "PAGERDUTY", "PING", "ESCALATION")


def url_tokens(url: str) -> list[str]:
    """The parts of a destination URL that may be credentials: the URL itself, its path
    (with and without the query), every path segment and query value of at least
    ``URL_TOKEN_MIN_CHARS`` characters, and a user:password. A receiver that echoes any of
    them (a Slack hook's path, a ``?token=``) must not get it into a log or an artefact."""
    from urllib.parse import parse_qsl, unquote, urlsplit

    url = (url or "").strip()
    if not url:
        return []
    out = [url]
    try:
        parts = urlsplit(url)
    except ValueError:
        return out
    path_q = parts.path + (f"?{parts.query}" if parts.query else "")
    out += [p for p in (path_q, parts.path, parts.query, parts.fragment) if len(p) >= URL_TOKEN_MIN_CHARS]
    out += [seg for seg in parts.path.split("/") if len(seg) >= URL_TOKEN_MIN_CHARS]
    out += [unquote(seg) for seg in parts.path.split("/") if len(unquote(seg)) >= URL_TOKEN_MIN_CHARS]
    for _k, v in parse_qsl(parts.query, keep_blank_values=False):
        if len(v) >= 4:
            out.append(v)
    if parts.password:
        out.append(parts.password)
    if parts.username and len(parts.username) >= URL_TOKEN_MIN_CHARS:
        out.append(parts.username)
    return out


def _secret_name(key: str) -> bool:
    ku = key.upper()
    return ku.endswith(_SECRET_SUFFIXES) or (ku.endswith("_URL") and any(m in ku for m in _SECRET_URL_MARKS)) \
        or ku.startswith("OBS_PING_URL")


# Values of 1-3 characters are not redacted (they would blank ordinary text everywhere);
# every real secret is longer (webhook secrets must be >= 16 bytes) and a 4-7 character
# password is still redacted. A weak secret equal to a word of a message blanks that word;
# such a secret is refused anyway.
MIN_REDACT_CHARS = 4


def secret_values(env: dict[str, str] | None = None) -> list[str]:
    """Values that must never be written: ``*_SECRET``, ``*_TOKEN``, ``*_KEY``,
    ``*_PASSWORD`` and destination URLs (webhook, Slack, PagerDuty, check-in pings) with
    their path and query tokens (``url_tokens``). Values (and whitespace-separated parts)
    of at least ``MIN_REDACT_CHARS`` (4) characters are listed, so a short SMTP password
    never reaches a log.

    ``OBS_WEBHOOK_SECRET`` may hold several whitespace-separated secrets; each is listed.
    """
    env = dict(os.environ if env is None else env)
    out: list[str] = []
    for k, v in env.items():
        if not v or len(v.strip()) < MIN_REDACT_CHARS or not _secret_name(k):
            continue
        out.append(v)
        out.extend(p for p in v.split() if len(p) >= MIN_REDACT_CHARS)
        if "://" in v:
            out.extend(url_tokens(v))
    return sorted(set(out), key=len, reverse=True)


def redact(text: str, env: dict[str, str] | None = None) -> str:
    """Replace every secret value (see ``secret_values``) in ``text`` with ``[REDACTED]``."""
    for s in secret_values(env):
        if s and s in text:
            text = text.replace(s, "[REDACTED]")
    return text


def _sanitise(obj: Any) -> Any:
    if isinstance(obj, str):
        s = redact(obj)
        if len(s) > MAX_FIELD_CHARS:
            s = s[:MAX_FIELD_CHARS] + f"...[truncated {len(s) - MAX_FIELD_CHARS} chars]"
        return s
    if isinstance(obj, dict):
        return {k: _sanitise(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        items = [_sanitise(v) for v in obj[:MAX_LIST_ITEMS]]
        if len(obj) > MAX_LIST_ITEMS:  # cut and marked, never dropped
            items.append(f"...[truncated {len(obj) - MAX_LIST_ITEMS} items]")
        return items
    return obj


def runlog_path(ops_dir: str | os.PathLike) -> Path:
    """``<ops_dir>/automation_runs.log``."""
    return Path(ops_dir) / RUNLOG_NAME


def append_record(ops_dir: str | os.PathLike, record: dict[str, Any], lock_timeout_s: float = 30.0) -> dict:
    """Append one record (sanitised: secrets redacted, long strings truncated and marked).

    Returns the record as written. Raises ``LockTimeout`` if the log lock is not taken
    within ``lock_timeout_s``.
    """
    clean = _sanitise(record)
    path = runlog_path(ops_dir)
    hook = _ROTATE_HOOK
    if hook is not None:
        hook(path)
    locked_append(path, canonical_json_bytes(clean), timeout_s=lock_timeout_s)
    return clean


# Optional size-based rotation, installed by the operations module (kept pluggable so the
# base log has no dependency on it).
_ROTATE_HOOK = None


def set_rotate_hook(fn) -> None:
    """Install ``fn(path)``, called before each append (used for size-based rotation)."""
    global _ROTATE_HOOK
    _ROTATE_HOOK = fn


@dataclass
class JobContext:
    """One job run: its id, trigger and timing, and the record it appends at the end.

    ``job_id`` comes from ``$JOB_ID`` when the scheduler sets it, else ``new_job_id``;
    ``schedule_trigger`` from ``$SCHEDULE_TRIGGER`` (``cron``) else ``manual``.
    """

    job_name: str
    ops_dir: Path
    now: datetime
    job_id: str = ""
    schedule_trigger: str = "manual"
    started_at: datetime | None = None
    artefacts: list[str] = field(default_factory=list)
    _t0: float = field(default_factory=time.monotonic, repr=False)

    def __post_init__(self) -> None:
        self.ops_dir = Path(self.ops_dir)
        if not self.job_id:
            self.job_id = new_job_id(self.job_name, self.now)
        from .safepath import check_identifier

        check_identifier(self.job_id, what="JOB_ID")
        if self.started_at is None:
            self.started_at = self.now

    @classmethod
    def from_env(cls, job_name: str, ops_dir: str | os.PathLike, now: datetime,
                 env: dict[str, str] | None = None) -> JobContext:
        """Build from ``JOB_ID`` / ``SCHEDULE_TRIGGER`` in ``env`` (default ``os.environ``)."""
        env = os.environ if env is None else env
        return cls(job_name=job_name, ops_dir=Path(ops_dir), now=now,
                   job_id=env.get("JOB_ID", "") or "",
                   schedule_trigger=env.get("SCHEDULE_TRIGGER", "") or "manual")

    def elapsed_ms(self) -> int:
        return int((time.monotonic() - self._t0) * 1000)

    def base_fields(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "job_name": self.job_name, "schedule_trigger": self.schedule_trigger}

    def finish(self, status: str, *, error: str | None = None, completed_at: datetime | None = None,
               **extra: Any) -> dict:
        """Append the job's final record (status ok|error|skipped|dry_run|...). Returns it."""
        duration = self.elapsed_ms()
        completed = completed_at or self.started_at
        if completed_at is None and self.started_at is not None:
            from datetime import timedelta

            completed = self.started_at + timedelta(milliseconds=duration)
        rec = {
            **self.base_fields(),
            "started_at": to_rfc3339(self.started_at),
            "completed_at": to_rfc3339(completed),
            "status": status,
            "duration_ms": duration,
            "artefacts": sorted(set(self.artefacts)),
            "error": error,
        }
        rec.update(extra)
        return append_record(self.ops_dir, rec)
