"""Issue #11 observations 2 and 8: a slow-drip receiver cannot hold an attempt past its
deadline; weak secrets are refused naming the variable (never the value); an echoed URL
token never reaches the run log. Real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time

import pytest
from test_webhook_support import SECRET_RAW, Receiver, Reply, make_cfg, make_ctx

from obslib.config import load_config
from obslib.errors import ConfigError
from obslib.signing import check_secret, secrets_from_env, sign_headers, verify
from obslib.webhook import Budget, send_signed

BODY = b'{"a":1}'


class DripServer:
    """Answers ``200`` with ``Content-Length: 2000`` then one byte every ``gap_s`` (or, with
    ``in_headers``, drips the status line itself)."""

    def __init__(self, gap_s: float = 0.5, in_headers: bool = False):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.gap_s, self.in_headers, self.stop = gap_s, in_headers, threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn):
        try:
            conn.settimeout(5)
            conn.recv(65536)
            head = b"HTTP/1.1 200 OK\r\nContent-Length: 2000\r\nContent-Type: text/plain\r\n\r\n"
            if not self.in_headers:
                conn.sendall(head)
                head = b"x" * 2000
            for b in head:
                if self.stop.is_set():
                    break
                conn.sendall(bytes([b]))
                time.sleep(self.gap_s)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.stop.set()
        self.sock.close()


@pytest.mark.parametrize("in_headers", [False, True], ids=["drip-body", "drip-status-line"])
def test_slow_drip_attempt_ends_within_its_deadline_plus_1s(tmp_path, in_headers):
    cfg = make_cfg(tmp_path, attempt_deadline_s=2.0, read_timeout_s=3.0)
    srv = DripServer(gap_s=0.5, in_headers=in_headers)
    try:
        t0 = time.monotonic()
        out = send_signed(BODY, webhook_id="wid-1", url=f"http://127.0.0.1:{srv.port}/x", secrets=[SECRET_RAW],
                          cfg=cfg, ctx=make_ctx(cfg), max_attempts=1)
        took = time.monotonic() - t0
    finally:
        srv.close()
    assert took < 2.0 + 1.0
    if in_headers:  # no status line within the deadline: a retryable timeout
        assert not out.ok and out.retryable and "AttemptDeadline" in out.last_error
    else:  # the status arrived in time: the answer counts; the excerpt read is cut at the deadline
        assert took >= 1.5 and out.ok and out.status_codes == [200]
        assert out.response_excerpt.startswith("xx") and out.response_excerpt.endswith("...[truncated]")


def test_attempt_deadline_from_the_environment():
    cfg = load_config("/nonexistent-work-root", env={"OBS_WEBHOOK_ATTEMPT_DEADLINE_S": "7.5"})
    assert cfg.webhook.attempt_deadline_s == 7.5
    assert load_config("/nonexistent-work-root", env={}).webhook.attempt_deadline_s == 30.0
    for bad in ("0", "-1", "nan", "inf"):
        with pytest.raises(ConfigError, match="attempt_deadline_s"):
            load_config("/nonexistent-work-root", env={"OBS_WEBHOOK_ATTEMPT_DEADLINE_S": bad})


def test_budget_stops_retries_and_leaves_the_rest(tmp_path):
    cfg = make_cfg(tmp_path, backoff_base_s=5.0, backoff_max_s=5.0)
    with Receiver(default=Reply(status=503)) as rx:
        t0 = time.monotonic()
        out = send_signed(BODY, webhook_id="wid-2", url=rx.url(), secrets=[SECRET_RAW], cfg=cfg,
                          ctx=make_ctx(cfg), budget=Budget(1.0))
        took = time.monotonic() - t0
    assert out.attempts == 1 and out.budget_spent and not out.ok and took < 1.0
    out2 = send_signed(BODY, webhook_id="wid-2", url="http://127.0.0.1:9/x", secrets=[SECRET_RAW], cfg=cfg,
                       ctx=make_ctx(cfg), budget=Budget(0.0))
    assert out2.attempts == 0 and out2.budget_spent


# --------------------------------------------------------------------------- secrets

@pytest.mark.parametrize("value", ["whsec_xyz!", "whsec_" + base64.b64encode(b"k" * 8).decode(),
                                   "whsec_" + base64.b64encode(b"k" * 65).decode(), "whsec_", "whsec_a",
                                   "short-secret", "x" * 15])
def test_weak_or_malformed_secrets_are_refused_naming_the_variable(value):
    with pytest.raises(ConfigError) as ei:
        secrets_from_env({"OBS_WEBHOOK_SECRET": value})
    msg = str(ei.value)
    assert "OBS_WEBHOOK_SECRET" in msg
    assert value not in msg or len(value) <= 6  # "whsec_" alone is the prefix, not a value


def test_good_secrets_pass_and_second_of_two_is_named():
    good = "whsec_" + base64.b64encode(bytes(range(24))).decode()
    assert secrets_from_env({"OBS_WEBHOOK_SECRET": f"{good} {'y' * 16}"}) == [good, "y" * 16]
    assert secrets_from_env({}) == []
    with pytest.raises(ConfigError, match=r"OBS_WEBHOOK_SECRET \(secret 2\)"):
        secrets_from_env({"OBS_WEBHOOK_SECRET": f"{good} whsec_xyz!"})
    check_secret("whsec_" + base64.b64encode(bytes(64)).decode())


def test_the_issue_weak_whsec_is_refused_by_the_cli_and_a_forged_body_is_not_accepted(tmp_path, run_obs=None):
    """The 2-byte key of 'whsec_xyz!' was brute-forced in 0.3 s; now the secret never signs or verifies."""
    with pytest.raises(ValueError):
        sign_headers(BODY, "wid", ["whsec_xyz!"], __import__("datetime").datetime.now(
            __import__("datetime").timezone.utc))
    res = verify(BODY, {"webhook-id": "a", "webhook-timestamp": "1", "webhook-signature": "v1,AA=="},
                 ["whsec_xyz!"])
    assert not res.ok and res.code == "bad_secret"


# --------------------------------------------------------------------------- redaction

def test_echoed_url_path_and_query_tokens_are_redacted_in_the_run_log(tmp_path):
    qtok, ptok = "q-token-55AA77", "pathtoken-9XyZ"
    with Receiver(default=Reply(status=500, body=f"bad request to /{ptok}?token={qtok} (token {qtok})".encode())) \
            as rx:
        cfg = make_cfg(tmp_path)
        out = send_signed(BODY, webhook_id="wid-3", url=rx.url(f"/{ptok}?token={qtok}"), secrets=[SECRET_RAW],
                          cfg=cfg, ctx=make_ctx(cfg), max_attempts=1)
    assert not out.ok
    text = (cfg.ops_dir / "automation_runs.log").read_text()
    assert qtok not in text and ptok not in text and "[REDACTED]" in text
    assert qtok not in json.dumps(out.summary()) and qtok not in out.response_excerpt
