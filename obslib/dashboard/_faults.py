"""Test-only fault injection for the dashboard crash trials (no effect in normal runs).

``checkpoint(name)`` is called after each file operation of ``dashboard export`` and
``dashboard run``. When ``OBS_DASHBOARD_FAULT`` is set (tests only) it holds
comma-separated directives: ``crash:<name>`` kills the process with SIGKILL at that
checkpoint (a real ``kill -9``); ``record:<file>`` appends each checkpoint name reached to
``<file>`` (so a test can list every checkpoint of a normal run, then crash at each).
"""

from __future__ import annotations

import os
import signal

ENV = "OBS_DASHBOARD_FAULT"


def checkpoint(name: str) -> None:
    spec = os.environ.get(ENV)
    if not spec:
        return
    for part in spec.split(","):
        kind, _, arg = part.strip().partition(":")
        if kind == "record" and arg:
            with open(arg, "a", encoding="utf-8") as fh:
                fh.write(name + "\n")
        elif kind == "crash" and arg == name:
            os.kill(os.getpid(), signal.SIGKILL)
