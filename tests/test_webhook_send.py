"""send_signed against a real HTTP server on 127.0.0.1: retries, timeouts, refused
connections, Retry-After, no redirects, 1 KB response excerpts, per-attempt run log."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime, timedelta, timezone

import pytest
import standardwebhooks
from test_webhook_support import (
    NOW,
    PATH_TOKEN,
    SECRET_RAW,
    SECRET_WHSEC,
    Receiver,
    Reply,
    free_port,
    make_cfg,
    make_ctx,
)

from obslib.webhook import send_signed, verify

BODY = json.dumps({"b": [1, 2], "a": "x"}, sort_keys=True, separators=(",", ":")).encode()
WID = "weekly-2025-09-22-0123456789abcdef"


def _log(cfg):
    p = cfg.ops_dir / "automation_runs.log"
    return [json.loads(line) for line in p.read_text().splitlines()] if p.exists() else []


def _send(cfg, url, **kw):
    kw.setdefault("secrets", [SECRET_RAW])
    return send_signed(BODY, webhook_id=WID, url=url, cfg=cfg, ctx=make_ctx(cfg), **kw)


def test_200_first_try_verified_by_both_verifiers_from_raw_bytes(tmp_path):
    cfg = make_cfg(tmp_path)
    with Receiver() as rx:
        out = _send(cfg, rx.url(), secrets=[SECRET_WHSEC], clock=lambda: datetime.now(timezone.utc))
    assert out.ok and out.attempts == 1 and out.status_codes == [200]
    assert len(rx.received) == 1
    got = rx.received[0]
    assert got.body == BODY and got.path == f"/{PATH_TOKEN}"
    assert got.headers["Content-Type"] == "application/json"
    assert verify(got.body, got.headers, [SECRET_WHSEC], now=datetime.now(timezone.utc)).ok
    assert standardwebhooks.Webhook(SECRET_WHSEC).verify(got.body, got.headers) == {"a": "x", "b": [1, 2]}
    recs = _log(cfg)
    assert len(recs) == 1
    r = recs[0]
    assert r["event"] == "webhook_attempt" and r["attempt"] == 1 and r["status"] == "delivered"
    assert r["status_code"] == 200 and r["error"] is None and r["response_ms"] >= 0
    assert r["payload_checksum_sha256"] == hashlib.sha256(BODY).hexdigest()
    assert r["job_id"] and r["webhook_id"] == WID


def test_500_500_200_three_attempts_one_webhook_id_fresh_timestamps(tmp_path):
    cfg = make_cfg(tmp_path)
    ticks = iter(range(0, 100, 10))
    clock = lambda: NOW + timedelta(seconds=next(ticks))  # noqa: E731
    with Receiver([Reply(500), Reply(500), Reply(200)]) as rx:
        out = _send(cfg, rx.url(), clock=clock)
    assert out.ok and out.attempts == 3 and out.status_codes == [500, 500, 200]
    assert {r.headers["webhook-id"] for r in rx.received} == {WID}
    assert [r.headers["webhook-timestamp"] for r in rx.received] == ["1759147200", "1759147210", "1759147220"]
    assert all(r.body == BODY for r in rx.received)
    for r in rx.received:
        assert verify(r.body, r.headers, [SECRET_RAW], now=NOW + timedelta(seconds=20)).ok
    assert [(x["attempt"], x["status"], x["status_code"]) for x in _log(cfg)] == [
        (1, "retry", 500), (2, "retry", 500), (3, "delivered", 200)]


def test_400_one_attempt_then_error(tmp_path):
    cfg = make_cfg(tmp_path)
    with Receiver([Reply(400, b'{"error":"bad"}')]) as rx:
        out = _send(cfg, rx.url())
    assert not out.ok and out.attempts == 1 and out.status_codes == [400] and out.retryable is False
    assert out.last_error == "HTTP 400" and len(rx.received) == 1
    assert _log(cfg)[0]["status"] == "failed" and _log(cfg)[0]["response_excerpt"] == '{"error":"bad"}'


def test_429_retry_after_is_honoured(tmp_path):
    cfg = make_cfg(tmp_path)
    waits: list[float] = []

    def sleep(s):
        waits.append(s)
        time.sleep(s)

    with Receiver([Reply(429, headers={"Retry-After": "1"})]) as rx:
        out = _send(cfg, rx.url(), sleep=sleep)
    assert out.ok and out.status_codes == [429, 200]
    assert waits == [1.0]
    assert rx.received[1].at - rx.received[0].at >= 1.0


def test_retry_after_is_capped(tmp_path):
    cfg = make_cfg(tmp_path, retry_after_cap_s=0.2)
    waits: list[float] = []
    with Receiver([Reply(429, headers={"Retry-After": "3600"})]) as rx:
        out = _send(cfg, rx.url(), sleep=waits.append)
    assert out.ok and waits == [0.2]


def test_read_timeout_is_retried(tmp_path):
    cfg = make_cfg(tmp_path, read_timeout_s=0.3)
    with Receiver([Reply(200, delay_s=1.5)]) as rx:
        out = _send(cfg, rx.url())
    assert out.ok and out.attempts == 2 and out.status_codes == [None, 200]
    assert len(rx.received) == 2 and rx.received[0].headers["webhook-id"] == rx.received[1].headers["webhook-id"]
    first = _log(cfg)[0]
    assert first["status"] == "retry" and first["error"].startswith("ReadTimeout")


def test_refused_connection_is_retried(tmp_path):
    cfg = make_cfg(tmp_path)
    port = free_port()
    started: list[Receiver] = []

    def sleep(_s):  # the receiver comes up while we back off
        if not started:
            started.append(Receiver(port=port))

    out = _send(cfg, f"http://127.0.0.1:{port}/{PATH_TOKEN}", sleep=sleep)
    try:
        assert out.ok and out.attempts == 2 and out.status_codes == [None, 200]
        assert len(started[0].received) == 1
        first = _log(cfg)[0]
        assert first["status"] == "retry" and first["error"].startswith("ConnectionError")
        assert "Connection refused" in first["error"]
    finally:
        started[0].close()


def test_refused_every_time_uses_all_attempts(tmp_path):
    cfg = make_cfg(tmp_path, max_attempts=3)
    waits: list[float] = []
    out = _send(cfg, f"http://127.0.0.1:{free_port()}/{PATH_TOKEN}", sleep=waits.append)
    assert not out.ok and out.attempts == 3 and out.status_codes == [None, None, None] and out.retryable
    # backoff base 0.01, max 0.05: d = 0.01, 0.02 -> waits in [d, 1.25 d]
    assert len(waits) == 2 and 0.01 <= waits[0] <= 0.0125 and 0.02 <= waits[1] <= 0.025
    assert [r["status"] for r in _log(cfg)] == ["retry", "retry", "failed"]


def test_five_503s_stop_at_max_attempts(tmp_path):
    cfg = make_cfg(tmp_path)
    with Receiver(default=Reply(503)) as rx:
        out = _send(cfg, rx.url())
    assert not out.ok and out.attempts == 5 and len(rx.received) == 5 and out.last_status_code == 503


def test_redirect_not_followed(tmp_path):
    cfg = make_cfg(tmp_path)
    with Receiver([Reply(302, headers={"Location": "/elsewhere"})]) as rx:
        out = _send(cfg, rx.url())
    assert not out.ok and out.attempts == 1 and out.status_codes == [302]
    assert [r.path for r in rx.received] == [f"/{PATH_TOKEN}"]
    assert "redirect not followed" in out.last_error


def test_response_body_cut_to_1kb_and_url_and_secret_not_logged(tmp_path):
    cfg = make_cfg(tmp_path, max_attempts=1)
    with Receiver([Reply(500, b"e" * 100 + SECRET_RAW.encode() + b"y" * 5000)]) as rx:
        out = _send(cfg, rx.url())
        url = rx.url()
    rec = _log(cfg)[0]
    assert rec["response_excerpt"].startswith("e" * 100 + "[REDACTED]")
    assert rec["response_excerpt"].endswith("...[truncated]")
    assert len(rec["response_excerpt"]) < 1024 + len("...[truncated]")
    raw = (cfg.ops_dir / "automation_runs.log").read_text()
    for s in (url, PATH_TOKEN, SECRET_RAW):
        assert s not in raw
        assert s not in json.dumps(out.summary())


def test_unsigned_refused_unless_allowed(tmp_path):
    cfg = make_cfg(tmp_path)
    with pytest.raises(ValueError):
        _send(cfg, "http://127.0.0.1:1/x", secrets=[])
    with Receiver() as rx:
        out = _send(cfg, rx.url(), secrets=[], allow_unsigned=True)
    assert out.ok and "X-OBS-Signature" not in rx.received[0].headers
