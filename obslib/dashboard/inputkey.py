"""Input keys: when every input of an expensive dataset is byte for byte what the current
bundle was built from, the export keeps that dataset as it is instead of rebuilding it.

``input_key(name, req)`` is the sha256 of everything the dataset's content depends on:
the dataset name and schema version, the export parameters that reach its rows
(``pip_value`` for turnover), the source code that builds it (``obslib/dashboard`` and
``obslib/inputs``, hashed from the files, so an edited checkout never reuses a stale
dataset), and every candidate input with its sha256 *or its absence*:

- ``turnover_summary``: ``runs/index.csv`` and, for each of its rows, the run's
  ``daily.csv`` (``run_dir`` or ``runs/<run_id>``);
- ``ev_history``: every ``*.json`` under ``ops/state_archive/``.

The other two datasets are cheap (one small file each) and depend on the export time in
one fallback, so they are always rebuilt (``None``). Any surprise (unreadable index,
odd row) gives ``None`` too: build as usual. The key is stored in the manifest entry
(``input_key``); see ``bundle._publish_locked``.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
from pathlib import Path

from ..inputs.runs import run_dir_problem
from . import SCHEMA_VERSION

_CODE_DIRS = ("dashboard", "inputs")
CACHED = ("turnover_summary", "ev_history")


@functools.cache
def code_digest() -> str:
    """sha256 over the source files that build the datasets (see module doc)."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for d in _CODE_DIRS:
        for p in sorted((root / d).glob("*.py")):
            h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    for name in ("stats.py", "timeutil.py"):
        h.update((root / name).read_bytes())
    return h.hexdigest()


def _file_digest(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _candidates(name: str, data_root: Path) -> list[str] | None:
    if name == "ev_history":
        root = data_root / "ops" / "state_archive"
        return sorted(p.relative_to(data_root).as_posix() for p in root.rglob("*.json")) if root.is_dir() else []
    index = data_root / "runs" / "index.csv"
    try:
        rows = list(csv.DictReader(io.StringIO(index.read_text(encoding="utf-8"))))
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    out = ["runs/index.csv"]
    for r in rows:
        run_dir, run_id = (r.get("run_dir") or "").strip(), (r.get("run_id") or "").strip()
        if not (run_dir or run_id) or (run_dir and run_dir_problem(data_root, run_dir) is not None):
            return None  # the dataset reports it; never key on a file outside the data root
        out.append(f"{run_dir or 'runs/' + run_id}/daily.csv")
    return out


def input_key(name: str, data_root: Path, *, pip_value: float, data_label: str) -> str | None:
    """The dataset's input key (see module doc), or None when it is not cached."""
    if name not in CACHED:
        return None
    paths = _candidates(name, Path(data_root))
    if paths is None:
        return None
    h = hashlib.sha256()
    h.update(f"{name}\0{SCHEMA_VERSION}\0{pip_value!r}\0{data_label}\0{code_digest()}\0".encode())
    for rel in paths:
        p = Path(data_root) / rel
        h.update(rel.encode() + b"\0" + (_file_digest(p).encode() if p.is_file() else b"absent") + b"\n")
    return h.hexdigest()
