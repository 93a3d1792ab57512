"""One rule for every path made from outside input.

Job ids, week starts, dataset names, publish destinations, restore targets and latency
source names arrive from the environment, flags, config or files. Before any of them
becomes part of a path:

1. ``check_identifier(value, what=...)`` holds it to ``IDENTIFIER_RE``
   (``[A-Za-z0-9][A-Za-z0-9._-]{0,127}``, never containing ``..``), and
2. ``contained(root, path, what=...)`` resolves the final path (symlinks followed) and
   checks it lies inside ``root`` before anything is written or deleted.

Both raise ``UnsafePath`` (a ``ConfigError``: exit 2, message names what was refused and
why, never a traceback).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import ConfigError

__all__ = ["IDENTIFIER_RE", "UnsafePath", "check_identifier", "check_relpath", "contained", "is_identifier",
           "safe_child"]

IDENTIFIER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class UnsafePath(ConfigError):
    """An identifier or path from outside input would leave its root, or is malformed."""


def check_identifier(value: object, *, what: str) -> str:
    """Return ``value`` if it is a safe identifier, else raise ``UnsafePath``.

    Args:
        value: the string from outside (e.g. ``$JOB_ID``).
        what: how to name it in the message (e.g. ``"JOB_ID"``).

    Raises:
        UnsafePath: not a string, empty, longer than 128 characters, outside
            ``[A-Za-z0-9][A-Za-z0-9._-]*``, or containing ``..``.
    """
    if not isinstance(value, str) or not IDENTIFIER_RE.fullmatch(value) or ".." in value:
        shown = repr(value)[:80]
        raise UnsafePath(f"{what} {shown} is not a safe identifier: use 1-128 characters from "
                         "[A-Za-z0-9._-], starting with a letter or digit, without '..'")
    return value


def is_identifier(value: object) -> bool:
    """True when ``check_identifier`` would accept ``value`` (for readers that skip, not refuse)."""
    return isinstance(value, str) and bool(IDENTIFIER_RE.fullmatch(value)) and ".." not in value


def check_relpath(value: object, *, what: str) -> str:
    """Return ``value`` if it is a relative POSIX path whose every part is a safe
    identifier (``a.json``, ``sub/a.json``), else raise ``UnsafePath``. For file names
    read from manifests and other files the kit did not necessarily write itself."""
    if not isinstance(value, str) or not value or len(value) > 1024:
        raise UnsafePath(f"{what} {repr(value)[:80]} is not a safe relative path")
    for part in value.split("/"):
        check_identifier(part, what=f"{what} {value[:80]!r}: part")
    return value


def contained(root: str | os.PathLike, path: str | os.PathLike, *, what: str) -> Path:
    """Resolve ``path`` and return it if it lies inside ``root`` (or is ``root`` itself);
    raise ``UnsafePath`` otherwise. Both are resolved as usual (a relative path against
    the current folder), so pass ``root / name``, not ``name``.

    Symlinks are resolved on both sides, so a link inside ``root`` that points outside is
    refused too.
    """
    root_r = Path(root).resolve()
    target = Path(path).resolve()
    if target != root_r and root_r not in target.parents:
        raise UnsafePath(f"{what}: {target} is outside {root_r}; refusing to write or delete there")
    return target


def safe_child(root: str | os.PathLike, name: str, *, what: str, suffix: str = "", prefix: str = "") -> Path:
    """``root / (prefix + name + suffix)`` after ``check_identifier(name)`` and
    ``contained`` (``prefix``/``suffix`` are the kit's own constants, e.g. ``.staging-``
    and ``.json``). The returned path is absolute (resolved)."""
    check_identifier(name, what=what)
    return contained(root, Path(root) / f"{prefix}{name}{suffix}", what=what)
