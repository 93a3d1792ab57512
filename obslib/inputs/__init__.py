"""Readers of the research repository (the "data root").

Every reader returns plain Python data plus the problems it found. Rules (DESIGN.md):
a row that does not parse is reported (file, line, reason) and counted, never silently
dropped; a missing *required* input raises ``InputError``; a missing *optional* input
returns an empty result and a ``Problem`` of kind ``missing``, which the job turns into
an alert.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

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


def read_json_file(path: Path, rel_path: str, problems: list[Problem]) -> tuple[bool, Any]:
    """One JSON input file of many (a benchmark report, a state snapshot): ``(True, data)``,
    or ``(False, None)`` plus a ``malformed`` problem when it does not parse. Raises
    ``UnreadableInput`` (naming ``rel_path``) when it cannot be read: an I/O problem, not
    bad data, is always fatal."""
    from ..errors import InputError, UnreadableInput
    from ..storage import read_json

    try:
        return True, read_json(path, shown_as=rel_path)
    except UnreadableInput:
        raise
    except InputError as exc:
        problems.append(Problem("malformed", rel_path, exc.reason, exc.line))
        return False, None


def data_label(cfg: Config) -> str:
    """How the run's data root is named inside artefacts (never an absolute path): ``demo
    (seed N)``, the configured path as written when relative, else its folder name."""
    if cfg.uses_demo:
        return f"demo (seed {cfg.demo_seed})"
    raw = str(cfg.data_root)
    return raw if not os.path.isabs(raw) else Path(raw).name


def resolve_data_root(cfg: Config, now: datetime) -> Path:
    """The data root for this run: ``cfg.data_root`` (must exist), or the demo repository,
    (re)generated under ``cfg.demo_root`` for ``now`` (floored to the minute) when missing
    or made for another time. Raises ``InputError`` when a configured root does not exist."""
    from ..errors import InputError

    if cfg.data_root is not None:
        root = Path(cfg.data_root)
        shown = str(root.absolute())  # a relative root is named as resolved, not as typed (#12)
        if root.exists() and not root.is_dir():
            raise InputError(shown, "data root is a file, not a research repository folder")
        if not root.is_dir():
            raise InputError(shown, "data root not found (set --data-root, OBS_DATA_ROOT or data_root in obs.toml)")
        return root
    from ..demo import ensure_demo

    return ensure_demo(cfg.demo_root, as_of=now, seed=cfg.demo_seed)
