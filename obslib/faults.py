"""Test-only fault injection for the kill -9 trials (no effect in normal runs).

Each job calls ``checkpoint(name)`` at the steps of its file protocol: ``obs weekly run``
(publishing the week folder, writing the delivery history) through this module with
``OBS_FAULT``; the dashboard (``obslib.dashboard._faults``, ``OBS_DASHBOARD_FAULT``) and the
latency sampler (``obslib.latency._faults``, ``OBS_LATENCY_FAULT``) through the same
``checkpoint`` with their own variable. When the variable is set (tests only) it holds
comma-separated directives:

- ``crash:<name>`` kills the process with SIGKILL at that checkpoint (a real ``kill -9``);
- ``list:<file>`` (alias ``record:<file>``) appends each checkpoint name reached to
  ``<file>``, so a test learns every point to crash at;
- ``sleep:<seconds>`` sleeps at every checkpoint, so an external kill at a random time
  lands inside the protocol.
"""

from __future__ import annotations

import os
import signal
import time

from .errors import raise_if_terminated

ENV = "OBS_FAULT"


def checkpoint(name: str, *, env: str = ENV) -> None:
    """Act on the directives in ``$env`` at checkpoint ``name``; a no-op when it is unset.
    Every checkpoint is also a step where a job may stop: a SIGTERM whose exception was lost
    in a finaliser raises ``Terminated`` here (``errors.raise_if_terminated``), before the
    step's write."""
    raise_if_terminated()
    spec = os.environ.get(env)
    if not spec:
        return
    for part in spec.split(","):
        kind, _, arg = part.strip().partition(":")
        if kind in ("list", "record") and arg:
            with open(arg, "a", encoding="utf-8") as fh:
                fh.write(name + "\n")
        elif kind == "sleep" and arg:
            time.sleep(float(arg))
        elif kind == "crash" and arg == name:
            os.kill(os.getpid(), signal.SIGKILL)
