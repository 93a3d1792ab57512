"""Test-only fault injection for the crash-safety trials (no effect in normal runs).

``checkpoint(name)`` is called at each step of the sampling/rotation protocol. When the
environment variable ``OBS_LATENCY_FAULT`` is set (tests only) it may contain
comma-separated directives: ``crash:<name>`` kills the process with SIGKILL at that
checkpoint (a real ``kill -9``), ``sleep:<seconds>`` sleeps at every checkpoint (so an
external kill at a random time lands inside the protocol).
"""

from __future__ import annotations

import os
import signal
import time

ENV = "OBS_LATENCY_FAULT"


def checkpoint(name: str) -> None:
    spec = os.environ.get(ENV)
    if not spec:
        return
    for part in spec.split(","):
        kind, _, arg = part.strip().partition(":")
        if kind == "crash" and arg == name:
            os.kill(os.getpid(), signal.SIGKILL)
        elif kind == "sleep" and arg:
            time.sleep(float(arg))
