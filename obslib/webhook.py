"""Signed webhooks: signing, verification for receivers, delivery with retries.

Used by the weekly report delivery (``obslib.weekly.delivery``) and by latency and operations
alerts: everything here is generic over the payload and the destination.

The body
    Callers serialise the payload once with ``obslib.storage.canonical_json_bytes``;
    those exact bytes are signed, sent and stored. Nothing here re-serialises.

Headers (``sign_headers``)
    ``Content-Type: application/json``
    ``X-OBS-Signature: t=<unix s>,v1=<hex>[,v1=<hex>...]`` with
    ``hex = HMAC-SHA256(key=<secret as UTF-8 bytes>, msg="<t>.<body>")``, one ``v1=``
    per configured secret (rotation with overlap).
    Standard Webhooks (https://www.standardwebhooks.com/): ``webhook-id``,
    ``webhook-timestamp`` (same ``t``) and ``webhook-signature: v1,<base64> [v1,<base64>...]``
    with ``HMAC-SHA256(key, "<webhook-id>.<t>.<body>")``.

Secrets -> keys
    ``OBS_WEBHOOK_SECRET`` holds one or more whitespace-separated secrets
    (``parse_secrets``). For ``X-OBS-Signature`` the key is always the secret string's
    UTF-8 bytes, exactly as written. For the Standard Webhooks signature the key is
    derived as the standard prescribes for ``whsec_`` secrets: a secret written
    ``whsec_<base64>`` uses the base64-decoded bytes (so a receiver can pass the very
    same string to ``standardwebhooks.Webhook(secret)``); any other secret uses its raw
    UTF-8 bytes (a receiver passes ``Webhook(secret.encode())``).

Delivery (``send_signed``)
    Per attempt timeout (connect, read) from ``cfg.webhook``; no redirects followed.
    Retry on connection errors, timeouts, 5xx and 429 (``Retry-After`` honoured,
    capped at ``cfg.webhook.retry_after_cap_s``); 3xx and other 4xx fail at once.
    Backoff after failed attempt n: ``d = backoff_base_s * 2**(n-1)`` plus up to 25 %
    random jitter, capped at ``backoff_max_s``; at most ``cfg.webhook.max_attempts`` attempts. Every attempt
    is re-signed with a fresh timestamp and keeps the same ``webhook-id``. Each attempt
    appends a run-log record (``event: webhook_attempt``). The URL and the secrets never
    reach a log, an exception message or a return value.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from .runlog import append_record, redact
from .storage import sha256_bytes
from .timeutil import UTC, to_rfc3339, utcnow

OBS_SIGNATURE_HEADER = "X-OBS-Signature"
STD_ID = "webhook-id"
STD_TS = "webhook-timestamp"
STD_SIG = "webhook-signature"
WHSEC_PREFIX = "whsec_"
RESPONSE_EXCERPT_BYTES = 1024


# --------------------------------------------------------------------------- secrets


def parse_secrets(value: str | None) -> list[str]:
    """Split ``OBS_WEBHOOK_SECRET`` (whitespace-separated, first = newest) into a list.

    ``None`` or blank gives ``[]``. Order is kept; duplicates are dropped.
    """
    out: list[str] = []
    for part in (value or "").split():
        if part not in out:
            out.append(part)
    return out


ALERT_URL_ENV = ("OBS_ALERT_WEBHOOK_URL", "OBS_WEEKLY_WEBHOOK_URL")  # first set wins
SECRET_ENV = "OBS_WEBHOOK_SECRET"


def alert_destination(env: Mapping[str, str]) -> tuple[str | None, list[str]]:
    """Where latency and operations alerts go: ``OBS_ALERT_WEBHOOK_URL``, falling back to
    ``OBS_WEEKLY_WEBHOOK_URL`` (None when neither is set), and the secrets of
    ``OBS_WEBHOOK_SECRET``. Read at the moment of use; never logged."""
    url = next(((env.get(k) or "").strip() for k in ALERT_URL_ENV if (env.get(k) or "").strip()), None)
    return url, parse_secrets(env.get(SECRET_ENV))


def standard_key(secret: str) -> bytes:
    """The Standard Webhooks HMAC key for an OBS secret (see the module docstring).

    ``whsec_<base64>`` -> base64-decoded bytes (padding tolerated, as the reference
    library does); anything else -> the secret's UTF-8 bytes. Raises ValueError for a
    ``whsec_`` secret whose remainder is not base64 or decodes to nothing.
    """
    if secret.startswith(WHSEC_PREFIX):
        try:
            key = base64.b64decode(secret[len(WHSEC_PREFIX):] + "==", validate=False)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("a whsec_ secret must be base64 after the prefix") from exc
        if not key:
            raise ValueError("a whsec_ secret must not be empty")
        return key
    return secret.encode("utf-8")


def _hmac(key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, hashlib.sha256).digest()


# --------------------------------------------------------------------------- signing


def sign_headers(body: bytes, webhook_id: str, secrets: list[str], now: datetime) -> dict[str, str]:
    """Headers for one delivery attempt of ``body`` signed at ``now``.

    ``body``: the exact canonical bytes that are sent. ``webhook_id``: the idempotency key
    (same on every retry). ``secrets``: one or more secrets (all are used, one signature
    each). ``now``: aware datetime; the timestamp is its whole unix seconds.
    Returns ``Content-Type``, ``X-OBS-Signature``, ``webhook-id``, ``webhook-timestamp``,
    ``webhook-signature``. Raises ValueError when ``secrets`` is empty, a secret is blank,
    or ``webhook_id`` is empty / contains whitespace or a dot-free control character.
    """
    if not secrets or any(not s for s in secrets):
        raise ValueError("at least one non-empty webhook secret is needed to sign")
    if not webhook_id or any(c.isspace() for c in webhook_id):
        raise ValueError("webhook_id must be non-empty and contain no whitespace")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    t = str(int(now.timestamp()))
    obs_sigs = [
        "v1=" + _hmac(s.encode("utf-8"), t.encode("ascii") + b"." + body).hex() for s in secrets
    ]
    std_msg = webhook_id.encode("utf-8") + b"." + t.encode("ascii") + b"." + body
    std_sigs = [
        "v1," + base64.b64encode(_hmac(standard_key(s), std_msg)).decode("ascii") for s in secrets
    ]
    return {
        "Content-Type": "application/json",
        OBS_SIGNATURE_HEADER: f"t={t}," + ",".join(obs_sigs),
        STD_ID: webhook_id,
        STD_TS: t,
        STD_SIG: " ".join(std_sigs),
    }


def unsigned_headers(webhook_id: str, now: datetime) -> dict[str, str]:
    """Headers for an unsigned POST (used only for an escalation when no secret is set)."""
    return {"Content-Type": "application/json", STD_ID: webhook_id, STD_TS: str(int(now.timestamp()))}


# --------------------------------------------------------------------------- verification


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of ``verify``: ``ok`` and a human-readable ``reason`` (never a secret)."""

    ok: bool
    reason: str
    schemes: tuple[str, ...] = ()


def _lower(headers: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in dict(headers).items():
        out[str(k).lower()] = v if isinstance(v, str) else str(v)
    return out


def _check_time(t_raw: str, now: datetime, tolerance_s: float, what: str) -> str | None:
    if not re.fullmatch(r"\d{1,12}", t_raw.strip()):
        return f"malformed {what} timestamp (expected unix seconds)"
    age = now.timestamp() - int(t_raw.strip())
    if age > tolerance_s:
        return f"{what} timestamp is {age:.0f} s in the past (tolerance {tolerance_s:g} s)"
    if -age > tolerance_s:
        return f"{what} timestamp is {-age:.0f} s in the future (tolerance {tolerance_s:g} s)"
    return None


def _any_match(keys: list[bytes], msg: bytes, sigs: list[bytes]) -> bool:
    """True when some key's HMAC of ``msg`` equals some signature (constant-time compare on bytes)."""
    for key in keys:
        expected = _hmac(key, msg)
        for sig in sigs:
            if hmac.compare_digest(expected, sig):
                return True
    return False


def _verify_obs(body: bytes, value: str, keys: list[bytes], now: datetime, tol: float) -> tuple[str | None, str]:
    t_raw: str | None = None
    sigs: list[bytes] = []
    for part in value.split(","):
        k, sep, v = part.strip().partition("=")
        if not sep:
            return "malformed X-OBS-Signature (expected t=<unix>,v1=<hex>)", ""
        if k == "t":
            t_raw = v
        elif k == "v1":
            try:
                sigs.append(bytes.fromhex(v))
            except ValueError:
                return "malformed X-OBS-Signature (v1 is not hex)", ""
    if t_raw is None or not sigs:
        return "malformed X-OBS-Signature (needs t= and at least one v1=)", ""
    err = _check_time(t_raw, now, tol, "X-OBS-Signature")
    if err:
        return err, t_raw
    if _any_match(keys, t_raw.strip().encode("ascii") + b"." + body, sigs):
        return None, t_raw
    return "X-OBS-Signature does not match (tampered body or wrong secret)", t_raw


def _verify_std(body: bytes, h: dict[str, str], keys: list[bytes], now: datetime, tol: float) -> tuple[str | None, str]:
    wid, t_raw, sig_value = h.get(STD_ID, ""), h.get(STD_TS, ""), h.get(STD_SIG, "")
    if not (wid and t_raw and sig_value):
        return "missing webhook-id, webhook-timestamp or webhook-signature", t_raw
    err = _check_time(t_raw, now, tol, "webhook-timestamp")
    if err:
        return err, t_raw
    sigs: list[bytes] = []
    for item in sig_value.split():
        version, sep, b64 = item.partition(",")
        if not sep:
            return "malformed webhook-signature (expected v1,<base64>)", t_raw
        if version != "v1":
            continue
        try:
            sigs.append(base64.b64decode(b64, validate=True))
        except (binascii.Error, ValueError):
            return "malformed webhook-signature (not base64)", t_raw
    if not sigs:
        return "webhook-signature has no v1 signature", t_raw
    if _any_match(keys, wid.encode("utf-8") + b"." + t_raw.strip().encode("ascii") + b"." + body, sigs):
        return None, t_raw
    return "webhook-signature does not match (tampered body or wrong secret)", t_raw


def verify(body: bytes, headers: Mapping[str, Any], secrets: list[str], tolerance_s: float = 300,
           now: datetime | None = None) -> VerifyResult:
    """Check a received request: ``body`` (raw bytes as received) and its ``headers``.

    Every signature scheme present (``X-OBS-Signature``; Standard Webhooks
    ``webhook-id``/``webhook-timestamp``/``webhook-signature``) must verify against at
    least one of ``secrets``, and at least one scheme must be present. A timestamp more
    than ``tolerance_s`` seconds from ``now`` (past or future) is rejected. Comparison is
    constant-time on bytes. Never raises: any problem is ``ok=False`` with a reason.
    ``now`` is required in library use (aware UTC); None means the clock (CLI edge only).
    """
    try:
        now = now or utcnow()
        if not secrets:
            return VerifyResult(False, "no secrets configured to verify with")
        if not isinstance(body, (bytes, bytearray)):
            return VerifyResult(False, "body must be bytes")
        h = _lower(headers)
        has_obs = OBS_SIGNATURE_HEADER.lower() in h
        has_std = any(k in h for k in (STD_ID, STD_TS, STD_SIG))
        if not has_obs and not has_std:
            return VerifyResult(False, "missing signature headers (X-OBS-Signature or webhook-signature)")
        schemes: list[str] = []
        t_obs = t_std = None
        if has_obs:
            err, t_obs = _verify_obs(bytes(body), h[OBS_SIGNATURE_HEADER.lower()],
                                     [s.encode("utf-8") for s in secrets], now, tolerance_s)
            if err:
                return VerifyResult(False, err)
            schemes.append("x-obs-signature")
        if has_std:
            keys = []
            for s in secrets:
                try:
                    keys.append(standard_key(s))
                except ValueError:
                    continue
            err, t_std = _verify_std(bytes(body), h, keys, now, tolerance_s)
            if err:
                return VerifyResult(False, err)
            schemes.append("standard-webhooks")
        if t_obs and t_std and t_obs.strip() != t_std.strip():
            return VerifyResult(False, "X-OBS-Signature t= and webhook-timestamp differ")
        return VerifyResult(True, "verified: " + ", ".join(schemes), tuple(schemes))
    except Exception as exc:  # noqa: BLE001 - verification never raises
        return VerifyResult(False, f"malformed request ({exc.__class__.__name__})")


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


_ERRNO_RE = re.compile(r"\[Errno -?\d+\] [A-Za-z ,'-]+")


def _exc_reason(exc: Exception, cfg_webhook: Any) -> str:
    """A short reason for a requests exception, built without ``str(exc)`` (it carries the URL)."""
    name = exc.__class__.__name__
    if isinstance(exc, requests.ConnectTimeout):
        return f"{name}: no connection within {cfg_webhook.connect_timeout_s:g} s"
    if isinstance(exc, requests.ReadTimeout):
        return f"{name}: no response within {cfg_webhook.read_timeout_s:g} s"
    m = _ERRNO_RE.search(str(exc))
    detail = m.group(0).strip() if m else "request failed"
    return f"{name}: {detail}"


def _scrub(text: str, hide: list[str]) -> str:
    for s in sorted((h for h in hide if h), key=len, reverse=True):
        text = text.replace(s, "[REDACTED]")
    return redact(text)


def _read_excerpt(resp: requests.Response) -> str:
    try:
        raw = resp.raw.read(RESPONSE_EXCERPT_BYTES + 1, decode_content=True) or b""
    except Exception:  # noqa: BLE001 - the excerpt is best effort
        raw = b""
    cut = raw[:RESPONSE_EXCERPT_BYTES].decode("utf-8", errors="replace")
    return cut + ("...[truncated]" if len(raw) > RESPONSE_EXCERPT_BYTES else "")


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
                max_attempts: int | None = None) -> DeliveryOutcome:
    """POST ``body`` to ``url``, signed with ``secrets``, retrying per ``cfg.webhook``.

    ``body``: exact bytes to send (never re-serialised). ``webhook_id``: idempotency key,
    the same on every attempt. ``cfg``: ``obslib.config.Config`` (``cfg.webhook``:
    connect/read timeouts in s, ``max_attempts``, ``backoff_base_s``, ``backoff_max_s``,
    ``retry_after_cap_s``). ``ctx``: ``obslib.runlog.JobContext``; one run-log record per
    attempt ``{job_id, job_name, schedule_trigger, event: "webhook_attempt", purpose,
    webhook_id, attempt, at, status ("delivered"|"retry"|"failed"), status_code,
    response_ms, error, response_excerpt (<= 1 KB), payload_checksum_sha256}``.
    ``clock``: returns aware UTC now for each attempt's signature (default: real clock).
    ``sleep``/``rng``: injectable for tests. ``purpose``: a non-secret label (e.g.
    ``weekly``, ``escalation``, ``latency_alert``). ``allow_unsigned``: with no secrets,
    POST unsigned instead of raising. ``max_attempts`` overrides ``cfg.webhook.max_attempts``.

    Never raises for HTTP or network failures: returns ``DeliveryOutcome(ok=False, ...)``.
    Raises ValueError when there are no secrets and ``allow_unsigned`` is False.
    """
    wh = cfg.webhook
    clock = clock or utcnow
    if not secrets and not allow_unsigned:
        raise ValueError("no webhook secret: refusing to send an unsigned request")
    limit = max(1, int(max_attempts or wh.max_attempts))
    checksum = sha256_bytes(body)
    hide = [url, *secrets]
    out = DeliveryOutcome(ok=False, webhook_id=webhook_id, payload_checksum_sha256=checksum)
    with requests.Session() as session:
        for attempt in range(1, limit + 1):
            now = clock()
            headers = sign_headers(body, webhook_id, secrets, now) if secrets else unsigned_headers(webhook_id, now)
            code: int | None = None
            error: str | None = None
            excerpt = ""
            retry_wait: float | None = None
            retryable = False
            t0 = time.monotonic()
            try:
                resp = session.post(url, data=body, headers=headers, timeout=(wh.connect_timeout_s, wh.read_timeout_s),
                                    allow_redirects=False, stream=True)
                try:
                    code = resp.status_code
                    excerpt = _scrub(_read_excerpt(resp), hide)
                    if code == 429:
                        retry_wait = retry_after_s(resp.headers.get("Retry-After"), now, wh.retry_after_cap_s)
                finally:
                    resp.close()
                if 200 <= code < 300:
                    pass
                elif code == 429 or code >= 500:
                    retryable = True
                    error = f"HTTP {code}"
                elif 300 <= code < 400:
                    error = f"HTTP {code}: redirect not followed"
                else:
                    error = f"HTTP {code}"
            except (requests.ConnectionError, requests.Timeout) as exc:
                retryable = True
                error = _exc_reason(exc, wh)
            except requests.RequestException as exc:
                error = _exc_reason(exc, wh)
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
            out.headers = {k: v for k, v in headers.items() if k != "Content-Type"}
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
            sleep(wait)
    return out
