"""One rule for every path made from outside input.

Job ids, week starts, dataset names, publish destinations, restore targets and latency
source names arrive from the environment, flags, config or files. Before any of them
becomes part of a path:

1. ``check_identifier(value, what=...)`` holds it to ``IDENTIFIER_RE``
   (``[A-Za-z0-9][A-Za-z0-9._-]{0,127}``, never containing ``..``), and
2. ``contained(root, path, what=...)`` resolves the final path (symlinks followed) and
   checks it lies inside ``root`` before anything is written or deleted. ``root`` is
   always the **work root** (or the data root for reads), never a subfolder of it: a
   subfolder may itself be a link (``out/weekly_report -> /elsewhere``), and resolving it
   as the root would bless everything behind the link. ``safe_child(folder, name,
   base=work_root)`` builds ``folder/name`` and checks it against ``base``.
3. ``check_work_tree(work_root)`` runs before every command (``config_from_args``): a
   link anywhere under ``out/`` or ``ops/`` that resolves outside the work root refuses
   the command, so no job writes, moves or deletes through such a link.

Both raise ``UnsafePath`` (a ``ConfigError``: exit 2, message names what was refused and
why, never a traceback).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import ConfigError

__all__ = ["IDENTIFIER_RE", "KIT_TREES", "UnsafePath", "check_identifier", "check_relpath", "check_work_tree",
           "contained", "is_identifier", "safe_child"]

KIT_TREES = ("out", "ops")  # the folders under the work root the kit writes and deletes in

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
    refused too. Pass the work root (or data root) as ``root``, never a subfolder: a
    subfolder that is itself a link would resolve to wherever it points (see module doc).
    """
    root_r = Path(root).resolve()
    target = Path(path).resolve()
    if target != root_r and root_r not in target.parents:
        raise UnsafePath(f"{what}: {target} is outside {root_r}; refusing to write or delete there")
    return target


def safe_child(root: str | os.PathLike, name: str, *, what: str, suffix: str = "", prefix: str = "",
               base: str | os.PathLike | None = None) -> Path:
    """``root / (prefix + name + suffix)`` after ``check_identifier(name)`` and
    ``contained(base, ...)`` (``prefix``/``suffix`` are the kit's own constants, e.g.
    ``.staging-`` and ``.json``). ``base`` is the work root the result must stay in; pass
    it whenever ``root`` is a subfolder (default ``root`` itself, for callers whose
    ``root`` is the work root). The returned path is absolute (resolved)."""
    check_identifier(name, what=what)
    return contained(root if base is None else base, Path(root) / f"{prefix}{name}{suffix}", what=what)


def _outside(path: Path, root_r: Path) -> Path | None:
    """The resolved target of link ``path`` when it lies outside ``root_r``, else None."""
    target = path.resolve()
    return None if target == root_r or root_r in target.parents else target


def check_work_tree(work_root: str | os.PathLike, trees: tuple[str, ...] = KIT_TREES) -> None:
    """Refuse a work root whose kit folders (``out/``, ``ops/``) lead outside it.

    Walks ``<work_root>/<tree>`` for each tree without following links (``os.scandir``,
    a few ms for thousands of files) and raises ``UnsafePath`` (exit 2) naming the first
    link -- to a folder or a file, dangling or not -- that resolves outside the resolved
    work root, e.g. ``out/weekly_report -> /elsewhere``. Links that stay inside (the
    dashboard's ``out/dashboard -> dashboard.versions/...``) are fine. The work root
    itself may be a link. Missing trees are fine (a first run creates them).
    """
    root = Path(work_root)
    root_r = root.resolve()
    stack: list[Path] = []
    for t in trees:
        p = root / t
        if p.is_symlink():
            bad = _outside(p, root_r)
            if bad is not None:
                raise _link_error(p, bad, root_r)
        if p.is_dir():
            stack.append(p)
    while stack:
        d = stack.pop()
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for e in entries:
            if e.is_symlink():
                bad = _outside(Path(e.path), root_r)
                if bad is not None:
                    raise _link_error(Path(e.path), bad, root_r)
            elif e.is_dir(follow_symlinks=False):
                stack.append(Path(e.path))


def _link_error(link: Path, target: Path, root_r: Path) -> UnsafePath:
    try:
        shown = link.parent.resolve().joinpath(link.name).relative_to(root_r).as_posix()
    except ValueError:
        shown = str(link)
    return UnsafePath(f"{shown} in the work root {root_r} is a link to {target}, outside the work root; "
                      "refusing to write or delete through it (make it a real folder, or use that "
                      "place as --work-root)")
