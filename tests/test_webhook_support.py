"""Shared helpers for the webhook tests (no tests here): a real threaded HTTP receiver
on 127.0.0.1 with scripted responses, test config/context builders and test secrets.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from obslib.config import load_config
from obslib.runlog import JobContext

# Distinctive values, so a scan can find any leak.
SECRET_RAW = "obs-test-secret-Zq9vLx"
SECRET_WHSEC = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
PATH_TOKEN = "hook-tok-7f3a9c1e55"
NOW = datetime(2025, 9, 29, 12, 0, 0, tzinfo=timezone.utc)


@dataclass
class Reply:
    status: int = 200
    body: bytes = b'{"ok":true}'
    headers: dict = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class Received:
    at: float  # time.monotonic() on arrival
    path: str
    headers: dict
    body: bytes


class Receiver:
    """A real ``ThreadingHTTPServer`` on 127.0.0.1. ``script`` replies are used in order,
    then ``default``. Every POST is recorded with its raw bytes and arrival time."""

    def __init__(self, script: list[Reply] | None = None, default: Reply | None = None, port: int = 0):
        self.script = list(script or [])
        self.default = default or Reply()
        self.received: list[Received] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):  # quiet
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                with outer._lock:
                    outer.received.append(Received(time.monotonic(), self.path, dict(self.headers.items()), body))
                    reply = outer.script.pop(0) if outer.script else outer.default
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                try:
                    self.send_response(reply.status)
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(reply.body)
                except OSError:
                    pass  # client gave up (read timeout test)
                self.close_connection = True

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

            def handle_error(self, request, client_address):  # quiet on broken pipes
                pass

        self.server = Server(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    def url(self, path: str = f"/{PATH_TOKEN}") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def free_port() -> int:
    """A port with nothing listening on it (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_cfg(tmp_path, **webhook):
    """A config rooted at ``tmp_path`` with tiny backoff values (overridable). Signatures are
    stamped from the test's fixed ``now`` (``sign_with_real_clock=False``) so they can be
    checked exactly."""
    wh = {"backoff_base_s": 0.01, "backoff_max_s": 0.05, "connect_timeout_s": 2.0, "read_timeout_s": 5.0,
          "sign_with_real_clock": False}
    wh.update(webhook)
    return load_config(tmp_path, env={}, overrides={"webhook": wh})


def make_ctx(cfg, name: str = "test_webhook") -> JobContext:
    return JobContext(job_name=name, ops_dir=cfg.ops_dir, now=NOW)
