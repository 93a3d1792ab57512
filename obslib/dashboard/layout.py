"""Where the bundle lives on disk, and the one atomic switch that publishes it.

Readers open ``out/dashboard/<dataset>.json`` (and ``.parquet``, ``manifest.json``,
``README.json``) as always. ``out/dashboard`` is a **symbolic link** to one complete,
immutable version folder ``out/dashboard.versions/<sequence>-<job_id>/`` (relative link
target, so a moved work root keeps working). An export builds the next version in a
hidden staging folder ``out/dashboard.versions/.stage-<pid>-<job_id>/``, renames it to
its final name, then replaces the link with ``os.replace`` of a new link: a reader sees
the whole previous bundle or the whole new one, never a mix (a reader that opened the old
folder keeps reading it; the previous version folder is kept until the next switch).

A work root from before this layout has a real folder ``out/dashboard``: the first switch
moves it aside as version ``legacy-<n>`` and puts the link in its place (a one-time step;
a reader in that instant may find no ``out/dashboard`` for a moment).

``sweep`` (run under the export lock) removes what killed runs left: staging folders and
temp files whose process is gone, version folders older than the previous one, and the
old layout's ``out/dashboard/.*.tmp`` and ``.nb-staging-*``. Every temp name the dashboard
jobs create carries the creating process id, so a live concurrent export's staging is
never swept.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from pathlib import Path

from ..storage import fsync_dir

VERSIONS = "dashboard.versions"
STAGE_PREFIX = ".stage-"
KEEP_PREVIOUS = 1  # version folders kept besides the current one
_PID_RE = re.compile(r"^\.(?:stage|nb|link|obj|tmp)-(\d+)-")


def bundle_dir(work_root: Path) -> Path:
    """``<work_root>/out/dashboard`` (the link readers use)."""
    return Path(work_root) / "out" / "dashboard"


def versions_root(work_root: Path) -> Path:
    """``<work_root>/out/dashboard.versions``."""
    return Path(work_root) / "out" / VERSIONS


def current_version(work_root: Path) -> Path | None:
    """The folder ``out/dashboard`` shows now (the link's target, or the old-layout real
    folder), or None when there is no bundle yet."""
    link = bundle_dir(work_root)
    if link.is_symlink():
        target = link.resolve()
        return target if target.is_dir() else None
    return link if link.is_dir() else None


def pid_alive(pid: int) -> bool:
    """True when a process with this id exists (ours counts as alive)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def temp_name(kind: str, tail: str) -> str:
    """A hidden temp name ``.<kind>-<pid>-<tail>`` that ``sweep`` can attribute."""
    return f".{kind}-{os.getpid()}-{tail}"


def is_stale(path: Path) -> bool:
    """A temp entry made by a process that is gone (names from ``temp_name``); other hidden
    ``*.tmp`` names (``storage.atomic_write_bytes``) are stale when we hold the lock."""
    m = _PID_RE.match(path.name)
    if m:
        return not pid_alive(int(m.group(1)))
    return path.name.startswith(".") and (path.name.endswith(".tmp") or path.name.endswith(".partial")
                                          or path.name.startswith(".nb-staging-"))


def new_stage(work_root: Path, job_id: str) -> Path:
    """Create and return this run's staging folder."""
    root = versions_root(work_root)
    root.mkdir(parents=True, exist_ok=True)
    stage = root / temp_name("stage", job_id)
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir()
    return stage


def _legacy_name(root: Path) -> Path:
    n = 1
    while (root / f"legacy-{n}").exists():
        n += 1
    return root / f"legacy-{n}"


def switch(work_root: Path, version: Path) -> None:
    """Make ``out/dashboard`` show ``version`` (a folder under ``versions_root``) in one
    ``os.replace`` of a symlink (see module doc). Lock held by the caller."""
    link = bundle_dir(work_root)
    root = versions_root(work_root)
    if link.is_dir() and not link.is_symlink():  # old layout: move it aside once
        os.rename(link, _legacy_name(root))
    tmp = link.parent / temp_name("link", "dashboard")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    os.symlink(os.path.relpath(version, link.parent), tmp)
    os.replace(tmp, link)
    fsync_dir(link.parent)


def versions(work_root: Path) -> list[Path]:
    """Complete version folders, oldest first (by the sequence their name starts with)."""
    root = versions_root(work_root)
    if not root.is_dir():
        return []

    def order(p: Path) -> tuple[int, str]:
        head = p.name.split("-", 1)[0]
        return (int(head), p.name) if head.isdigit() else (-1, p.name)

    return sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")), key=order)


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def sweep(work_root: Path, extra_dirs: tuple[Path, ...] = ()) -> list[str]:
    """Remove stale staging/temp entries and version folders older than the previous one
    (see module doc). Call with the export lock held. Returns what was removed (names)."""
    removed: list[str] = []
    cur = current_version(work_root)
    root = versions_root(work_root)
    link_dir = bundle_dir(work_root).parent
    folders = [root, *extra_dirs]
    if cur is not None:
        folders.append(cur)
    for folder in [link_dir, *folders]:
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            mine = folder is not link_dir or p.name.startswith(".link-")  # out/ itself holds other jobs' files
            if mine and p.name.startswith(".") and is_stale(p):
                _remove(p)
                removed.append(p.name)
    keep = {cur.resolve()} if cur is not None else set()
    old = [v for v in versions(work_root) if v.resolve() not in keep]
    if cur is not None and cur.parent.resolve() == root.resolve():
        old = old[:-KEEP_PREVIOUS] if KEEP_PREVIOUS else old  # the newest non-current = the previous one
    for v in old:
        _remove(v)
        removed.append(v.name)
    return removed


def link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link ``src`` to ``dst`` (version folders are immutable, so sharing the inode is
    safe), copying when the filesystem cannot link."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)
