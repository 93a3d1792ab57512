"""Webhook figures: signing and verification cost, and delivery round trip to a local receiver.

Run: .venv/bin/python bench/bench_webhook.py   (prints figures; asserts nothing)
"""

from __future__ import annotations

import base64
import secrets
import tempfile
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from obslib.config import load_config
from obslib.runlog import JobContext
from obslib.storage import canonical_json_bytes
from obslib.webhook import send_signed, sign_headers, verify

# throwaway secrets made per run (one raw, one in the Standard Webhooks whsec_ form)
SECRETS = [secrets.token_hex(16), "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()]
NOW = datetime(2025, 9, 29, 12, 0, tzinfo=timezone.utc)


class _OK(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


def _per_op_us(fn, n):
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n * 1e6


def main() -> None:
    for size_kb in (1, 64, 1024):
        body = canonical_json_bytes({"rows": ["x" * 1000] * size_kb})
        h = sign_headers(body, "weekly-bench", SECRETS, NOW)
        n = 2000 if size_kb < 100 else 50
        s_us = _per_op_us(lambda b=body: sign_headers(b, "weekly-bench", SECRETS, NOW), n)
        v_us = _per_op_us(lambda b=body, hh=h: verify(b, hh, SECRETS[1:], now=NOW), n)
        print(f"body {len(body) / 1024:8.0f} KiB  sign (2 secrets, 2 schemes) {s_us:9.1f} us  verify {v_us:9.1f} us")

    srv = ThreadingHTTPServer(("127.0.0.1", 0), _OK)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}/hook"
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(Path(tmp), env={})
        ctx = JobContext(job_name="bench", ops_dir=cfg.ops_dir, now=NOW)
        body = canonical_json_bytes({"rows": ["x" * 1000] * 16})
        n = 200
        t0 = time.perf_counter()
        for i in range(n):
            out = send_signed(body, webhook_id=f"bench-{i}", url=url, secrets=SECRETS, cfg=cfg, ctx=ctx)
            assert out.ok
        per = (time.perf_counter() - t0) / n * 1000
    srv.shutdown()
    print(f"send_signed to 127.0.0.1 (16 KiB body, incl. run-log append): {per:.2f} ms per delivery over {n}")


if __name__ == "__main__":
    main()
