"""Test-only crash hooks of ``dashboard export`` / ``dashboard run``: ``obslib.faults``
directives read from ``OBS_DASHBOARD_FAULT`` (no effect in normal runs)."""

from __future__ import annotations

from .. import faults

ENV = "OBS_DASHBOARD_FAULT"


def checkpoint(name: str) -> None:
    faults.checkpoint(name, env=ENV)
