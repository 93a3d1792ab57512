"""Shared fixtures. Real data lives beside the checkout at ../shared/realdata/research_repo;
tests that need it use the ``real_root`` fixture, which skips when it is absent."""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# ../shared/realdata/research_repo beside the checkout (as CI lays it out), or $OBSLIB_REALDATA
REAL_ROOT = Path(os.environ.get("OBSLIB_REALDATA") or REPO.parent / "shared" / "realdata" / "research_repo")
OBS_ENV_PREFIXES = ("OBS_", "LATENCY_SLO_MS", "JOB_ID", "SCHEDULE_TRIGGER")


@pytest.fixture
def real_root() -> Path:
    """The real research repository (read-only); skips when absent."""
    if not REAL_ROOT.is_dir():
        pytest.skip("../shared/realdata/research_repo is absent")
    return REAL_ROOT


@pytest.fixture
def real_copy(real_root, tmp_path) -> Path:
    """A writable copy of the real data (without the 560 flat grid_* archive files)."""
    dst = tmp_path / "research_repo"
    shutil.copytree(real_root, dst, ignore=shutil.ignore_patterns("grid_*.json"))
    return dst


@pytest.fixture(autouse=True)
def _clean_obs_env(monkeypatch):
    """Tests never inherit the developer's OBS_* settings or secrets."""
    for k in list(os.environ):
        if k.startswith(OBS_ENV_PREFIXES):
            monkeypatch.delenv(k, raising=False)
    yield


def obs_subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for running the real ``obs`` CLI in a subprocess (no OBS_* leakage)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(OBS_ENV_PREFIXES)}
    env.update(extra)
    return env


@contextlib.contextmanager
def post_receiver():
    """A real HTTP receiver on 127.0.0.1 that answers every POST with 200 and keeps the
    bodies: yields ``(url, bodies)``; stopped on exit."""
    got: list[bytes] = []

    class H(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            got.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/hook", got
    finally:
        srv.shutdown()
        srv.server_close()
