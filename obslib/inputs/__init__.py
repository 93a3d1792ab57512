"""Readers of the research repository (the "data root").

Every reader returns plain Python data plus the problems it found. Rules (DESIGN.md):
a row that does not parse is reported (file, line, reason) and counted, never silently
dropped; a missing *required* input raises ``InputError``; a missing *optional* input
returns an empty result and a ``Problem`` of kind ``missing``, which the job turns into
an alert.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from ..config import Config
from ..storage import rel  # noqa: F401  (re-exported: readers name inputs relative to the data root)


@dataclass(frozen=True)
class Problem:
    """One input problem: ``kind`` is malformed|missing|empty|ignored; ``path`` relative to
    the data root; ``line`` 1-based or None."""

    kind: str
    path: str
    reason: str
    line: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.reason}"


def resolve_data_root(cfg: Config, now: datetime) -> Path:
    """The data root for this run: ``cfg.data_root`` (must exist), or the demo repository,
    (re)generated under ``cfg.demo_root`` for ``now`` (floored to the minute) when missing
    or made for another time. Raises ``InputError`` when a configured root does not exist."""
    from ..errors import InputError

    if cfg.data_root is not None:
        root = Path(cfg.data_root)
        if root.exists() and not root.is_dir():
            raise InputError(str(root), "data root is a file, not a research repository folder")
        if not root.is_dir():
            raise InputError(str(root), "data root not found (set --data-root, OBS_DATA_ROOT or data_root in obs.toml)")
        return root
    from ..demo import ensure_demo

    return ensure_demo(cfg.demo_root, as_of=now, seed=cfg.demo_seed)
