"""Where the latency job keeps its files (all under the kit's ``ops/`` and ``out/``).

``ops/signal_latency.csv`` live raw samples; ``ops/signal_latency.lock`` the job lock;
``ops/signal_latency_offsets.json`` event-log cursors; ``ops/signal_latency_state.json``
breach streaks; ``ops/signal_latency_journal.json`` / ``..._rotation.json`` write-ahead
journals (present only between a crash and the next run); ``ops/signal_latency_archive/``
gzipped rotations plus ``manifest.json``; ``ops/signal_latency_rollup.csv`` hourly rollups
(+ ``..._rollup_state.json``); ``ops/latency_alert_outbox/`` alerts not yet delivered;
``out/latency_alerts/`` alerts written when no webhook URL is set; heartbeats.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..heartbeat import heartbeat_path
from ..storage import rel

SAMPLE_JOB = "latency"
ROLLUP_JOB = "latency_rollup"


@dataclass(frozen=True)
class LatencyPaths:
    """All latency file paths, derived from the kit's ``ops_dir`` and ``out_dir``."""

    ops_dir: Path
    out_dir: Path

    @classmethod
    def from_config(cls, cfg) -> LatencyPaths:
        return cls(Path(cfg.ops_dir), Path(cfg.out_dir))

    @property
    def live(self) -> Path:
        return self.ops_dir / "signal_latency.csv"

    @property
    def lock(self) -> Path:
        return self.ops_dir / "signal_latency.lock"

    @property
    def offsets(self) -> Path:
        return self.ops_dir / "signal_latency_offsets.json"

    @property
    def state(self) -> Path:
        return self.ops_dir / "signal_latency_state.json"

    @property
    def journal(self) -> Path:
        return self.ops_dir / "signal_latency_journal.json"

    @property
    def rotation_journal(self) -> Path:
        return self.ops_dir / "signal_latency_rotation.json"

    @property
    def archive_dir(self) -> Path:
        return self.ops_dir / "signal_latency_archive"

    @property
    def manifest(self) -> Path:
        return self.archive_dir / "manifest.json"

    @property
    def rollup(self) -> Path:
        return self.ops_dir / "signal_latency_rollup.csv"

    @property
    def rollup_state(self) -> Path:
        return self.ops_dir / "signal_latency_rollup_state.json"

    @property
    def outbox_dir(self) -> Path:
        return self.ops_dir / "latency_alert_outbox"

    @property
    def alerts_lock(self) -> Path:
        return self.ops_dir / "latency_alert_outbox.lock"

    @property
    def alerts_out_dir(self) -> Path:
        return self.out_dir / "latency_alerts"

    @property
    def heartbeat(self) -> Path:
        return heartbeat_path(self.ops_dir, SAMPLE_JOB)

    @property
    def rollup_heartbeat(self) -> Path:
        return heartbeat_path(self.ops_dir, ROLLUP_JOB)

    def rel(self, path: Path) -> str:
        """``path`` relative to the work root (the parent of ``ops/``), POSIX style."""
        return rel(path, self.ops_dir.parent)
