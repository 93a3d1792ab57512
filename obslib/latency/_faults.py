"""Test-only crash hooks of the sampling/rotation protocol: ``obslib.faults`` directives
read from ``OBS_LATENCY_FAULT`` (no effect in normal runs)."""

from __future__ import annotations

from .. import faults

ENV = "OBS_LATENCY_FAULT"


def checkpoint(name: str) -> None:
    faults.checkpoint(name, env=ENV)
