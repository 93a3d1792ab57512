"""Signing and verifying webhook bodies: a small pure module (standard library only).

Receivers import ``verify`` from here; senders use ``sign_headers``. Nothing here sends,
reads the clock (``now`` is passed in; None only at a CLI edge) or the environment.

Headers (``sign_headers``)
    ``Content-Type: application/json``
    ``X-OBS-Signature: t=<unix s>,v1=<hex>[,v1=<hex>...]`` with
    ``hex = HMAC-SHA256(key=<secret as UTF-8 bytes>, msg="<t>.<body>")``, one ``v1=``
    per configured secret (rotation with overlap).
    Standard Webhooks (https://www.standardwebhooks.com/): ``webhook-id``,
    ``webhook-timestamp`` (same ``t``) and ``webhook-signature: v1,<base64> [v1,<base64>...]``
    with ``HMAC-SHA256(key, "<webhook-id>.<t>.<body>")``.

Secrets -> keys
    ``OBS_WEBHOOK_SECRET`` holds one or more whitespace-separated secrets. For
    ``X-OBS-Signature`` the key is the secret string's UTF-8 bytes, exactly as written.
    For the Standard Webhooks signature a ``whsec_<base64>`` secret uses the decoded bytes
    (a receiver passes the very same string to ``standardwebhooks.Webhook(secret)``); any
    other secret uses its UTF-8 bytes.

Strength (``check_secret``, applied once at the edge by ``secrets_from_env``)
    ``whsec_`` + strict base64 (alphabet and padding checked) of 24 to 64 bytes; any other
    secret at least 16 bytes. A weaker secret is refused with a ``ConfigError`` that names
    the variable and never shows the value: a 2-byte key is recovered by brute force from
    one delivery in well under a second.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .errors import ConfigError

__all__ = ["OBS_SIGNATURE_HEADER", "STD_ID", "STD_TS", "STD_SIG", "WHSEC_PREFIX", "SECRET_ENV", "MIN_SECRET_BYTES",
           "WHSEC_MIN_BYTES", "WHSEC_MAX_BYTES", "VERIFY_CODES", "VerifyResult", "check_secret", "parse_secrets",
           "secrets_from_env", "standard_key", "sign_headers", "unsigned_headers", "verify"]

OBS_SIGNATURE_HEADER = "X-OBS-Signature"
STD_ID = "webhook-id"
STD_TS = "webhook-timestamp"
STD_SIG = "webhook-signature"
WHSEC_PREFIX = "whsec_"
SECRET_ENV = "OBS_WEBHOOK_SECRET"
MIN_SECRET_BYTES = 16
WHSEC_MIN_BYTES = 24
WHSEC_MAX_BYTES = 64
_B64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


# --------------------------------------------------------------------------- secrets


def parse_secrets(value: str | None) -> list[str]:
    """Split a whitespace-separated secret list (first = newest) into a list, unchecked.

    ``None`` or blank gives ``[]``. Order is kept; duplicates are dropped. Use
    ``secrets_from_env`` at an edge: it also checks each secret's strength.
    """
    out: list[str] = []
    for part in (value or "").split():
        if part not in out:
            out.append(part)
    return out


def _whsec_bytes(secret: str) -> bytes:
    """The decoded key of a ``whsec_`` secret; ValueError (no value in the text) otherwise."""
    rest = secret[len(WHSEC_PREFIX):]
    if not rest or not _B64.fullmatch(rest) or len(rest) % 4 not in (0, 2, 3):
        raise ValueError("a whsec_ secret must be standard base64 after the prefix")
    try:
        key = base64.b64decode(rest + "=" * (-len(rest) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a whsec_ secret must be standard base64 after the prefix") from exc
    if base64.b64encode(key).decode("ascii").rstrip("=") != rest.rstrip("="):
        raise ValueError("a whsec_ secret must be canonical base64 after the prefix")
    if not WHSEC_MIN_BYTES <= len(key) <= WHSEC_MAX_BYTES:
        raise ValueError(f"a whsec_ secret must decode to {WHSEC_MIN_BYTES}-{WHSEC_MAX_BYTES} bytes "
                         f"(this one decodes to {len(key)})")
    return key


def check_secret(secret: str, var: str = SECRET_ENV, index: int | None = None) -> None:
    """Refuse a weak or malformed secret: ``ConfigError`` naming ``var`` (and the secret's
    position when the variable holds several), never the value. See the module docstring."""
    where = f"{var} (secret {index + 1})" if index is not None else var
    if secret.startswith(WHSEC_PREFIX):
        try:
            _whsec_bytes(secret)
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}; generate one with `python -c \"import base64,os;"
                              f"print('whsec_'+base64.b64encode(os.urandom(32)).decode())\"`") from None
        return
    if len(secret.encode("utf-8")) < MIN_SECRET_BYTES:
        raise ConfigError(f"{where}: a secret must be at least {MIN_SECRET_BYTES} bytes (or whsec_ + base64 of "
                          f"{WHSEC_MIN_BYTES}-{WHSEC_MAX_BYTES} bytes); this one is too short")


def secrets_from_env(env: Mapping[str, str], var: str = SECRET_ENV) -> list[str]:
    """The checked secrets of ``env[var]`` (``[]`` when unset or blank). Raises
    ``ConfigError`` naming ``var`` for any weak or malformed secret (``check_secret``)."""
    out = parse_secrets(env.get(var))
    for i, s in enumerate(out):
        check_secret(s, var, i if len(out) > 1 else None)
    return out


def standard_key(secret: str) -> bytes:
    """The Standard Webhooks HMAC key for a secret: ``whsec_<base64>`` -> the decoded bytes
    (strict base64 of 24-64 bytes, else ValueError); anything else -> its UTF-8 bytes."""
    if secret.startswith(WHSEC_PREFIX):
        return _whsec_bytes(secret)
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
    ``webhook-signature``. Raises ValueError when ``secrets`` is empty, a secret is blank
    or a malformed ``whsec_``, or ``webhook_id`` is empty / contains whitespace.
    """
    if not secrets or any(not s for s in secrets):
        raise ValueError("at least one non-empty webhook secret is needed to sign")
    if not webhook_id or any(c.isspace() for c in webhook_id):
        raise ValueError("webhook_id must be non-empty and contain no whitespace")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    t = str(int(now.timestamp()))
    obs_sigs = ["v1=" + _hmac(s.encode("utf-8"), t.encode("ascii") + b"." + body).hex() for s in secrets]
    std_msg = webhook_id.encode("utf-8") + b"." + t.encode("ascii") + b"." + body
    std_sigs = ["v1," + base64.b64encode(_hmac(standard_key(s), std_msg)).decode("ascii") for s in secrets]
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

VERIFY_CODES = ("verified", "no_secrets", "bad_secret", "missing_headers", "malformed", "too_old", "too_new",
                "mismatch", "timestamps_differ")


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of ``verify``: ``ok``, a stable ``code`` (one of ``VERIFY_CODES``: branch on
    it, not on the text) and a human-readable ``reason`` (never a secret)."""

    ok: bool
    reason: str
    schemes: tuple[str, ...] = ()
    code: str = "verified"


def _no(code: str, reason: str) -> VerifyResult:
    return VerifyResult(False, reason, (), code)


class _Reject(Exception):
    def __init__(self, code: str, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _lower(headers: Mapping[str, Any]) -> dict[str, str]:
    return {str(k).lower(): v if isinstance(v, str) else str(v) for k, v in dict(headers).items()}


def _check_time(t_raw: str, now: datetime, tolerance_s: float, what: str) -> None:
    if not re.fullmatch(r"\d{1,12}", t_raw.strip()):
        raise _Reject("malformed", f"malformed {what} timestamp (expected unix seconds)")
    age = now.timestamp() - int(t_raw.strip())
    if age > tolerance_s:
        raise _Reject("too_old", f"{what} timestamp is {age:.0f} s in the past (tolerance {tolerance_s:g} s)")
    if -age > tolerance_s:
        raise _Reject("too_new", f"{what} timestamp is {-age:.0f} s in the future (tolerance {tolerance_s:g} s)")


def _any_match(keys: list[bytes], msg: bytes, sigs: list[bytes]) -> bool:
    """True when some key's HMAC of ``msg`` equals some signature (constant-time compare on bytes)."""
    for key in keys:
        expected = _hmac(key, msg)
        for sig in sigs:
            if hmac.compare_digest(expected, sig):
                return True
    return False


def _verify_obs(body: bytes, value: str, keys: list[bytes], now: datetime, tol: float) -> str:
    t_raw: str | None = None
    sigs: list[bytes] = []
    for part in value.split(","):
        k, sep, v = part.strip().partition("=")
        if not sep:
            raise _Reject("malformed", "malformed X-OBS-Signature (expected t=<unix>,v1=<hex>)")
        if k == "t":
            t_raw = v
        elif k == "v1":
            try:
                sigs.append(bytes.fromhex(v))
            except ValueError:
                raise _Reject("malformed", "malformed X-OBS-Signature (v1 is not hex)") from None
    if t_raw is None or not sigs:
        raise _Reject("malformed", "malformed X-OBS-Signature (needs t= and at least one v1=)")
    _check_time(t_raw, now, tol, "X-OBS-Signature")
    if not _any_match(keys, t_raw.strip().encode("ascii") + b"." + body, sigs):
        raise _Reject("mismatch", "X-OBS-Signature does not match (tampered body or wrong secret)")
    return t_raw


def _verify_std(body: bytes, h: dict[str, str], keys: list[bytes], now: datetime, tol: float) -> str:
    wid, t_raw, sig_value = h.get(STD_ID, ""), h.get(STD_TS, ""), h.get(STD_SIG, "")
    if not (wid and t_raw and sig_value):
        raise _Reject("missing_headers", "missing webhook-id, webhook-timestamp or webhook-signature")
    _check_time(t_raw, now, tol, "webhook-timestamp")
    sigs: list[bytes] = []
    for item in sig_value.split():
        version, sep, b64 = item.partition(",")
        if not sep:
            raise _Reject("malformed", "malformed webhook-signature (expected v1,<base64>)")
        if version != "v1":
            continue
        try:
            sigs.append(base64.b64decode(b64, validate=True))
        except (binascii.Error, ValueError):
            raise _Reject("malformed", "malformed webhook-signature (not base64)") from None
    if not sigs:
        raise _Reject("malformed", "webhook-signature has no v1 signature")
    if not _any_match(keys, wid.encode("utf-8") + b"." + t_raw.strip().encode("ascii") + b"." + body, sigs):
        raise _Reject("mismatch", "webhook-signature does not match (tampered body or wrong secret)")
    return t_raw


def verify(body: bytes, headers: Mapping[str, Any], secrets: list[str], tolerance_s: float = 300,
           now: datetime | None = None) -> VerifyResult:
    """Check a received request: ``body`` (raw bytes as received) and its ``headers``.

    Every signature scheme present (``X-OBS-Signature``; Standard Webhooks
    ``webhook-id``/``webhook-timestamp``/``webhook-signature``) must verify against at
    least one of ``secrets``, and at least one scheme must be present. A timestamp more
    than ``tolerance_s`` seconds (finite, >= 0) from ``now`` (past or future) is rejected.
    Comparison is constant-time on bytes. Never raises: any problem is ``ok=False`` with a
    ``code`` and a reason. A malformed ``whsec_`` secret is ``bad_secret`` (never skipped).
    ``now`` is required in library use (aware UTC); None means the clock (CLI edge only).
    """
    try:
        if now is None:
            from .timeutil import utcnow

            now = utcnow()
        if not isinstance(tolerance_s, (int, float)) or not tolerance_s >= 0 or tolerance_s == float("inf"):
            return _no("malformed", "tolerance_s must be a finite number >= 0")
        if not secrets:
            return _no("no_secrets", "no secrets configured to verify with")
        if not isinstance(body, (bytes, bytearray)):
            return _no("malformed", "body must be bytes")
        try:
            std_keys = [standard_key(s) for s in secrets]
        except ValueError as exc:
            return _no("bad_secret", f"a configured secret is unusable: {exc}")
        h = _lower(headers)
        has_obs = OBS_SIGNATURE_HEADER.lower() in h
        has_std = any(k in h for k in (STD_ID, STD_TS, STD_SIG))
        if not has_obs and not has_std:
            return _no("missing_headers", "missing signature headers (X-OBS-Signature or webhook-signature)")
        schemes: list[str] = []
        t_obs = t_std = None
        if has_obs:
            t_obs = _verify_obs(bytes(body), h[OBS_SIGNATURE_HEADER.lower()], [s.encode("utf-8") for s in secrets],
                                now, tolerance_s)
            schemes.append("x-obs-signature")
        if has_std:
            t_std = _verify_std(bytes(body), h, std_keys, now, tolerance_s)
            schemes.append("standard-webhooks")
        if t_obs and t_std and t_obs.strip() != t_std.strip():
            return _no("timestamps_differ", "X-OBS-Signature t= and webhook-timestamp differ")
        return VerifyResult(True, "verified: " + ", ".join(schemes), tuple(schemes), "verified")
    except _Reject as rej:
        return _no(rej.code, rej.reason)
    except Exception as exc:  # noqa: BLE001 - verification never raises
        return _no("malformed", f"malformed request ({exc.__class__.__name__})")
