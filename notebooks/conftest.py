"""nbval runs each notebook with blank parameters in a kernel it kills at the end (no exit
handlers run there). Point the kernels' temp folder at one this session removes, so the
system temp dir gets nothing (#12 item 11). Set at configure time: nbval starts a kernel
before any fixture runs."""

from __future__ import annotations

import os
import shutil
import tempfile

_STATE: dict[str, str | None] = {}


def pytest_configure(config):
    _STATE["dir"] = tempfile.mkdtemp(prefix="obslib-nbval-")
    _STATE["old"] = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = _STATE["dir"]


def pytest_unconfigure(config):
    if _STATE.get("old") is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = _STATE["old"]  # type: ignore[assignment]
    if _STATE.get("dir"):
        shutil.rmtree(_STATE["dir"], ignore_errors=True)
