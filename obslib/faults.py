"""Test-only fault injection for the kill -9 trials of the weekly job (no effect in normal runs).

``checkpoint(name)`` is called before each file operation of ``obs weekly run`` (publishing
the week folder, writing the delivery history). When ``OBS_FAULT`` is set (tests only) it
holds comma-separated directives: ``crash:<name>`` kills the process with SIGKILL at that
checkpoint (a real ``kill -9``), ``list:<file>`` appends each checkpoint name reached to
``<file>`` (so a test learns every point to crash at). Same pattern as
``obslib.latency._faults``.
"""

from __future__ import annotations

import os
import signal

ENV = "OBS_FAULT"


def checkpoint(name: str) -> None:
    spec = os.environ.get(ENV)
    if not spec:
        return
    for part in spec.split(","):
        kind, _, arg = part.strip().partition(":")
        if kind == "list" and arg:
            with open(arg, "a", encoding="utf-8") as fh:
                fh.write(name + "\n")
        elif kind == "crash" and arg == name:
            os.kill(os.getpid(), signal.SIGKILL)
