"""One HTTP POST attempt with a total deadline: the transport under ``obslib.webhook``.

The only module of the kit that imports ``requests`` at import time; ``webhook.send_body``
and the check-in pings import it when they actually send, so a job that sends nothing
(most latency samples, nightly checks) never loads it.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

import requests

RESPONSE_EXCERPT_BYTES = 1024  # the reply excerpt kept per attempt

_ERRNO_RE = re.compile(r"\[Errno -?\d+\] [A-Za-z ,'-]+")


def exc_reason(exc: Exception, cfg_webhook: Any) -> str:
    """A short reason for a requests exception, built without ``str(exc)`` (it carries the URL)."""
    name = exc.__class__.__name__
    if isinstance(exc, requests.ConnectTimeout):
        return f"{name}: no connection within {cfg_webhook.connect_timeout_s:g} s"
    if isinstance(exc, requests.ReadTimeout):
        return f"{name}: no response within {cfg_webhook.read_timeout_s:g} s"
    m = _ERRNO_RE.search(str(exc))
    detail = m.group(0).strip() if m else "request failed"
    return f"{name}: {detail}"


@dataclass
class _Attempt:
    code: int | None = None
    retry_after: str | None = None
    excerpt: bytes = b""
    truncated: bool = False
    exc: BaseException | None = None
    done: bool = False


def post_within(session: requests.Session, url: str, body: bytes, headers: dict[str, str], *,
                connect_timeout_s: float, read_timeout_s: float, deadline_s: float) -> _Attempt:
    """One POST whose connect, headers and reply excerpt (first 1 KB) must all finish within
    ``deadline_s`` seconds in total. The request runs in a daemon worker thread; when the
    deadline passes first the response is closed and the attempt reported as timed out
    (``exc`` is a ``requests.Timeout``) when no status line had arrived, or with the status
    and the part of the excerpt read so far when only the body dripped. Either way a
    slow-drip receiver holds an attempt (and the caller's locks) for at most ``deadline_s``."""
    res = _Attempt()
    holder: dict[str, Any] = {}

    def work() -> None:
        try:
            resp = session.post(url, data=body, headers=headers, allow_redirects=False, stream=True,
                                timeout=(min(connect_timeout_s, deadline_s), min(read_timeout_s, deadline_s)))
            holder["resp"] = resp
            try:
                res.code = resp.status_code
                res.retry_after = resp.headers.get("Retry-After")
                raw = b""
                while len(raw) <= RESPONSE_EXCERPT_BYTES:
                    chunk = resp.raw.read1(RESPONSE_EXCERPT_BYTES + 1 - len(raw)) if hasattr(resp.raw, "read1") \
                        else resp.raw.read(RESPONSE_EXCERPT_BYTES + 1 - len(raw))
                    if not chunk:
                        break
                    raw += chunk
                    res.excerpt = raw[:RESPONSE_EXCERPT_BYTES]  # what a deadline cut leaves
                res.excerpt, res.truncated = raw[:RESPONSE_EXCERPT_BYTES], len(raw) > RESPONSE_EXCERPT_BYTES
            except Exception:  # noqa: BLE001 - the excerpt is best effort
                pass
            finally:
                resp.close()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            res.exc = exc
        finally:
            res.done = True

    worker = threading.Thread(target=work, name="obs-webhook-attempt", daemon=True)
    worker.start()
    worker.join(max(0.0, deadline_s))
    if not res.done:
        code, excerpt = res.code, bytes(res.excerpt)
        resp = holder.get("resp")
        try:
            if resp is not None:
                resp.close()
        except Exception:  # noqa: BLE001 - closing is best effort; the worker is a daemon
            pass
        if code is not None:  # the status arrived in time; only the reply body dripped: keep the answer
            return _Attempt(code=code, retry_after=res.retry_after, excerpt=excerpt, truncated=True, done=True)
        return _Attempt(code=None, exc=AttemptDeadline(deadline_s), done=True)
    return res


class AttemptDeadline(requests.Timeout):
    """An attempt that did not finish (connect, headers and excerpt) within its deadline."""

    def __init__(self, deadline_s: float):
        super().__init__(f"attempt deadline of {deadline_s:g} s passed")
        self.deadline_s = deadline_s



__all__ = ["AttemptDeadline", "RESPONSE_EXCERPT_BYTES", "exc_reason", "post_within"]
