"""Webhook delivery: POST with retries, a total per-attempt deadline and a run budget.

Signing and verification live in ``obslib.signing`` (a small pure module receivers can
import alone); their names are re-exported here for older imports.

Used by the weekly report delivery (``obslib.weekly.delivery``), the alert channels
(``obslib.alerting``) and the latency outbox: everything here is generic over the body,
the headers and the destination.

The body
    Callers serialise the payload once with ``obslib.storage.canonical_json_bytes``;
    those exact bytes are signed, sent and stored. Nothing here re-serialises.

Delivery (``send_signed`` / ``send_body``)
    One attempt has a total deadline (``cfg.webhook.attempt_deadline_s``, env
    ``OBS_WEBHOOK_ATTEMPT_DEADLINE_S``, default 30 s) covering connect, headers and the
    1 KB reply excerpt, enforced even against a receiver that drips one byte a second
    (the per-read timeouts alone restart on every byte). No redirects followed.
    Retry on connection errors, timeouts, 5xx and 429 (``Retry-After`` honoured, capped
    at ``cfg.webhook.retry_after_cap_s``); 3xx and other 4xx fail at once
    (``classify_response``); a 401/403 marks the outcome ``rejected`` (the receiver
    refused the signature or key: see secret rotation). Backoff after failed attempt n:
    ``d = backoff_base_s * 2**(n-1)`` plus up to 25 % random jitter, capped at
    ``backoff_max_s``; at most ``max_attempts`` attempts. A ``Budget`` (a job's delivery
    time, e.g. 60 s for a latency run) bounds attempts and waits together: what does not
    fit stays queued for the next run. Every attempt is re-signed with a fresh timestamp
    and keeps the same ``webhook-id``; each appends a run-log record
    (``event: webhook_attempt``). The URL, its path/query tokens and the secrets never
    reach a log, an exception message or a return value.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from .runlog import append_record, redact, url_tokens
from .signing import (  # noqa: F401 - re-exported for callers of the old module
    OBS_SIGNATURE_HEADER,
    SECRET_ENV,
    STD_ID,
    STD_SIG,
    STD_TS,
    WHSEC_PREFIX,
    VerifyResult,
    check_secret,
    parse_secrets,
    secrets_from_env,
    sign_headers,
    standard_key,
    unsigned_headers,
    verify,
)
from .storage import sha256_bytes
from .timeutil import UTC, to_rfc3339, utcnow

ALERT_URL_ENV = ("OBS_ALERT_WEBHOOK_URL", "OBS_WEEKLY_WEBHOOK_URL")  # first set wins
REJECTED_CODES = (401, 403)


def alert_destination(env: Mapping[str, str]) -> tuple[str | None, list[str]]:
    """Where latency and operations alert documents go: ``OBS_ALERT_WEBHOOK_URL``, falling
    back to ``OBS_WEEKLY_WEBHOOK_URL`` (None when neither is set), and the checked secrets
    of ``OBS_WEBHOOK_SECRET`` (``ConfigError`` naming the variable for a weak one). Read
    at the moment of use; never logged."""
    url = next(((env.get(k) or "").strip() for k in ALERT_URL_ENV if (env.get(k) or "").strip()), None)
    return url, secrets_from_env(env)


class Budget:
    """Time a job may spend delivering (attempts and waits together), on the monotonic
    clock. ``Budget(None)`` is unlimited. ``remaining()`` is in seconds (inf when
    unlimited); ``spent()`` says the budget is gone."""

    def __init__(self, seconds: float | None, monotonic: Callable[[], float] = time.monotonic):
        self.seconds = seconds
        self._mono = monotonic
        self._end = None if seconds is None else monotonic() + max(0.0, float(seconds))

    def remaining(self) -> float:
        return float("inf") if self._end is None else max(0.0, self._end - self._mono())

    def spent(self) -> bool:
        return self.remaining() <= 0.0


# --------------------------------------------------------------------------- delivery


@dataclass
class DeliveryOutcome:
    """Result of ``send_signed``.

    ``ok``: a 2xx was received. ``attempts``: number of POSTs made. ``status_codes``: one
    per attempt (None when no response: timeout, connection error). ``last_error``: short,
    secret-free reason of the last failed attempt. ``delivered_at``: aware UTC time of the
    successful attempt's signature. ``headers``: signature headers of the successful (or
    last) attempt. ``response_excerpt``: first 1 KB of the last response body (redacted).
    ``retryable``: whether the last failure was of a retryable kind (False for 3xx/4xx).
    ``attempt_records``: the run-log records written, one per attempt.
    """

    ok: bool
    webhook_id: str
    payload_checksum_sha256: str
    attempts: int = 0
    status_codes: list[int | None] = field(default_factory=list)
    last_status_code: int | None = None
    last_error: str | None = None
    delivered_at: datetime | None = None
    headers: dict[str, str] = field(default_factory=dict)
    response_excerpt: str = ""
    retryable: bool = False
    attempt_records: list[dict] = field(default_factory=list)
    budget_spent: bool = False

    @property
    def rejected(self) -> bool:
        """The receiver answered 401/403: it refused the signature or the key."""
        return self.last_status_code in REJECTED_CODES

    def summary(self) -> dict[str, Any]:
        """JSON-ready, secret-free summary (no headers, no response body)."""
        return {
            "ok": self.ok,
            "webhook_id": self.webhook_id,
            "payload_checksum_sha256": self.payload_checksum_sha256,
            "attempts": self.attempts,
            "status_codes": list(self.status_codes),
            "last_status_code": self.last_status_code,
            "last_error": self.last_error,
            "delivered_at": to_rfc3339(self.delivered_at) if self.delivered_at else None,
            "rejected": self.rejected,
        }


def backoff_delay(attempt: int, base_s: float, max_s: float, rng: Any = random) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based).

    ``d = base_s * 2**(attempt-1)``; returns ``min(max_s, d * (1 + U))`` with ``U`` uniform
    in ``[0, 0.25]``: the first wait is never shorter than ``base_s`` (60 s by default).
    """
    d = base_s * (2 ** (attempt - 1))
    return min(max_s, d * (1 + rng.uniform(0, 0.25)))


def retry_after_s(value: str | None, now: datetime, cap_s: float) -> float | None:
    """Parse a ``Retry-After`` header (delta seconds or HTTP date) into seconds, capped.

    Returns None when absent or unparseable; never negative.
    """
    if not value:
        return None
    v = value.strip()
    try:
        secs = float(v) if re.fullmatch(r"\d+(\.\d+)?", v) else None
        if secs is None:
            when = parsedate_to_datetime(v)
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            secs = (when - now).total_seconds()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(0.0, min(cap_s, secs))


def _scrub(text: str, hide: list[str]) -> str:
    """``text`` without any of ``hide`` (longest first) and without any environment secret."""
    for s in sorted({h for h in hide if h}, key=len, reverse=True):
        text = text.replace(s, "[REDACTED]")
    return redact(text)


def hidden_values(url: str, secrets: list[str] | tuple[str, ...] = ()) -> list[str]:
    """What a stored excerpt or error must not contain: the URL with its path and query
    tokens (``runlog.url_tokens``) and every secret."""
    return [*url_tokens(url), *secrets]


def classify_response(code: int) -> tuple[bool, str | None]:
    """``(retryable, error)`` for an HTTP status: 2xx -> ``(False, None)``; 429 and 5xx ->
    retryable; 3xx (redirects are not followed) and other 4xx fail at once; 401/403 say the
    receiver rejected the signature or key."""
    if 200 <= code < 300:
        return False, None
    if code == 429 or code >= 500:
        return True, f"HTTP {code}"
    if 300 <= code < 400:
        return False, f"HTTP {code}: redirect not followed"
    if code in REJECTED_CODES:
        return False, f"HTTP {code}: receiver rejected the signature or key"
    return False, f"HTTP {code}"


def clock_from(now: datetime, monotonic: Callable[[], float] = time.monotonic) -> Callable[[], datetime]:
    """A clock that starts at ``now`` (possibly a fake ``--now``) and advances in real time."""
    t0 = monotonic()
    return lambda: now + timedelta(seconds=monotonic() - t0)


def signing_clock(cfg: Any, now: datetime) -> Callable[[], datetime]:
    """The clock that stamps signatures. A receiver checks the timestamp against its own
    clock, so by default it is the real UTC clock even when the job runs with a pretend
    ``--now`` (``cfg.webhook.sign_with_real_clock``); tests that replay a fixed instant set
    that to False and get ``clock_from(now)``."""
    if getattr(getattr(cfg, "webhook", None), "sign_with_real_clock", True):
        return utcnow
    return clock_from(now)


def send_signed(body: bytes, *, webhook_id: str, url: str, secrets: list[str], cfg: Any, ctx: Any,
                clock: Callable[[], datetime] | None = None, sleep: Callable[[float], None] = time.sleep,
                rng: Any = random, purpose: str = "webhook", allow_unsigned: bool = False,
                max_attempts: int | None = None, budget: Budget | None = None) -> DeliveryOutcome:
    """POST ``body`` to ``url``, signed with ``secrets``, retrying per ``cfg.webhook``.

    ``body``: exact bytes to send (never re-serialised). ``webhook_id``: idempotency key,
    the same on every attempt. ``cfg``: ``obslib.config.Config`` (``cfg.webhook``:
    connect/read timeouts and the total ``attempt_deadline_s`` in s, ``max_attempts``,
    ``backoff_base_s``, ``backoff_max_s``, ``retry_after_cap_s``). ``ctx``:
    ``obslib.runlog.JobContext``; one run-log record per attempt ``{job_id, job_name,
    schedule_trigger, event: "webhook_attempt", purpose, webhook_id, attempt, at, status
    ("delivered"|"retry"|"failed"), status_code, response_ms, error, response_excerpt
    (<= 1 KB, redacted), payload_checksum_sha256}``. ``clock``: returns aware UTC now for
    each attempt's signature (default: real clock). ``sleep``/``rng``: injectable for
    tests. ``purpose``: a non-secret label (``weekly``, ``escalation``, ``latency_alert``).
    ``allow_unsigned``: with no secrets, POST unsigned instead of raising. ``max_attempts``
    overrides ``cfg.webhook.max_attempts``. ``budget``: the job's remaining delivery time
    (no attempt starts and no wait runs past it).

    Never raises for HTTP or network failures: returns ``DeliveryOutcome(ok=False, ...)``.
    Raises ValueError when there are no secrets and ``allow_unsigned`` is False.
    """
    if not secrets and not allow_unsigned:
        raise ValueError("no webhook secret: refusing to send an unsigned request")

    def headers_for(now: datetime) -> dict[str, str]:
        return sign_headers(body, webhook_id, secrets, now) if secrets else unsigned_headers(webhook_id, now)

    return send_body(body, webhook_id=webhook_id, url=url, headers_for=headers_for, cfg=cfg, ctx=ctx, clock=clock,
                     sleep=sleep, rng=rng, purpose=purpose, max_attempts=max_attempts, budget=budget,
                     hide=list(secrets))


def send_body(body: bytes, *, webhook_id: str, url: str, headers_for: Callable[[datetime], dict[str, str]],
              cfg: Any, ctx: Any, clock: Callable[[], datetime] | None = None,
              sleep: Callable[[float], None] = time.sleep, rng: Any = random, purpose: str = "webhook",
              max_attempts: int | None = None, budget: Budget | None = None,
              hide: list[str] | None = None) -> DeliveryOutcome:
    """The delivery loop behind ``send_signed`` for any body and header builder
    (``headers_for(now)``: Slack and PagerDuty bodies are not signed; their URL or key is
    the credential). Same records, deadline, budget and outcome as ``send_signed``;
    ``hide`` lists further values (keys) that must never be stored."""
    wh = cfg.webhook
    clock = clock or utcnow
    budget = budget or Budget(None)
    limit = max(1, int(max_attempts or wh.max_attempts))
    checksum = sha256_bytes(body)
    hide = hidden_values(url, hide or [])
    out = DeliveryOutcome(ok=False, webhook_id=webhook_id, payload_checksum_sha256=checksum)
    per_attempt = float(getattr(wh, "attempt_deadline_s", 30.0))
    import requests  # here, not at import: jobs that send nothing never load it (~50 ms a process)

    from .http_attempt import AttemptDeadline, exc_reason, post_within

    with requests.Session() as session:
        for attempt in range(1, limit + 1):
            if budget.remaining() < 0.5:
                out.last_error = out.last_error or "delivery budget spent before the first attempt"
                out.budget_spent = True
                out.retryable = True
                return out
            now = clock()
            headers = headers_for(now)
            error: str | None = None
            retryable = False
            retry_wait: float | None = None
            t0 = time.monotonic()
            deadline = min(per_attempt, budget.remaining())
            res = post_within(session, url, body, headers, connect_timeout_s=wh.connect_timeout_s,
                              read_timeout_s=wh.read_timeout_s, deadline_s=deadline)
            code = res.code
            excerpt = ""
            if res.exc is not None:
                exc = res.exc
                if isinstance(exc, AttemptDeadline):
                    retryable, error = True, f"AttemptDeadline: no complete response within {deadline:g} s"
                elif isinstance(exc, (requests.ConnectionError, requests.Timeout)):
                    retryable, error = True, exc_reason(exc, wh)
                elif isinstance(exc, requests.RequestException):
                    error = exc_reason(exc, wh)
                elif isinstance(exc, Exception):
                    error = f"{exc.__class__.__name__}: request failed"
                else:
                    raise exc  # KeyboardInterrupt / SystemExit in the worker: not ours to swallow
            else:
                cut = res.excerpt.decode("utf-8", errors="replace")
                excerpt = _scrub(cut + ("...[truncated]" if res.truncated else ""), hide)
                retryable, error = classify_response(code)
                if code == 429:
                    retry_wait = retry_after_s(res.retry_after, now, wh.retry_after_cap_s)
            response_ms = round((time.monotonic() - t0) * 1000, 1)
            ok = code is not None and 200 <= code < 300
            last = attempt == limit
            status = "delivered" if ok else ("retry" if retryable and not last else "failed")
            rec = {
                **ctx.base_fields(),
                "event": "webhook_attempt",
                "purpose": purpose,
                "webhook_id": webhook_id,
                "attempt": attempt,
                "max_attempts": limit,
                "at": to_rfc3339(now),
                "status": status,
                "status_code": code,
                "response_ms": response_ms,
                "error": _scrub(error, hide) if error else None,
                "response_excerpt": excerpt,
                "payload_checksum_sha256": checksum,
            }
            out.attempt_records.append(append_record(ctx.ops_dir, rec))
            out.attempts = attempt
            out.status_codes.append(code)
            out.last_status_code = code
            out.headers = {k: v for k, v in headers.items() if k.lower() not in ("content-type", "authorization")}
            out.response_excerpt = excerpt
            out.retryable = retryable
            if ok:
                out.ok = True
                out.delivered_at = now
                out.last_error = None
                return out
            out.last_error = rec["error"]
            if not retryable or last:
                return out
            wait = retry_wait if retry_wait is not None else backoff_delay(attempt, wh.backoff_base_s,
                                                                           wh.backoff_max_s, rng)
            if wait >= budget.remaining():
                out.budget_spent = True  # the rest waits in the outbox for the next run
                return out
            sleep(wait)
    return out
