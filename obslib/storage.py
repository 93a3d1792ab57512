"""Atomic writes, bounded-wait locks, locked appends, checksums and canonical JSON.

DESIGN.md conventions: a write goes to a temp file in the same folder, is fsynced and
``os.replace``d, so a crash leaves the old or the new file, never a torn one. Appends to
shared files happen under a ``filelock`` lock with a bounded wait.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from .errors import InputError, LockTimeout, UnreadableInput  # noqa: F401 - UnreadableInput re-exported

T = TypeVar("T")


def _check_finite(obj: Any, where: str = "$") -> None:
    if isinstance(obj, float):
        if not math.isfinite(obj):
            raise ValueError(f"non-finite number at {where}: canonical JSON forbids NaN/Infinity")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _check_finite(v, f"{where}.{k}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _check_finite(v, f"{where}[{i}]")


def canonical_json_bytes(obj: Any) -> bytes:
    """Canonical JSON: UTF-8, sorted keys, compact separators, no NaN/Infinity.

    Raises ValueError (naming the JSON path) when a non-finite number is present.
    These are the exact bytes that are hashed, signed, sent and stored.
    """
    _check_finite(obj)
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode(
        "utf-8"
    )


def pretty_json_bytes(obj: Any) -> bytes:
    """Human-readable, still deterministic JSON (sorted keys, 2-space indent, trailing newline)."""
    _check_finite(obj)
    return (json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's exact bytes (streamed). Raises OSError if unreadable."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            block = fh.read(chunk)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


def rel(path: str | os.PathLike, root: str | os.PathLike) -> str:
    """``path`` relative to ``root`` as a POSIX string (the path itself when outside), for
    paths written into artefacts and messages (DESIGN.md: paths inside artefacts are relative)."""
    try:
        return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return Path(path).as_posix()


SCRATCH_PARENT = "obslib-scratch"


def scratch_dir(prefix: str) -> Path:
    """A temp folder for a notebook run with blank parameters (as nbval runs them), under
    ``<system temp>/obslib-scratch-<uid>/``: removed when the process exits normally, and
    folders of processes that no longer exist (a kernel killed by nbval) are swept each time
    a new one is made, so they never accumulate."""
    import atexit
    import shutil

    parent = Path(tempfile.gettempdir()) / f"{SCRATCH_PARENT}-{os.getuid()}"
    parent.mkdir(mode=0o700, exist_ok=True)
    for old in parent.iterdir():
        pid = old.name.rsplit("-", 2)[-2] if old.name.count("-") >= 2 else ""
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    d = Path(tempfile.mkdtemp(prefix=f"{prefix}-{os.getpid()}-", dir=parent))
    atexit.register(shutil.rmtree, d, True)
    return d


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def fsync_dir(path: str | os.PathLike) -> None:
    """fsync a directory so a rename inside it is durable (best effort on odd filesystems)."""
    with contextlib.suppress(OSError):
        fd = os.open(str(path), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# Transient filesystem errors (a busy NFS server, a file briefly locked by a backup tool,
# an interrupted call): a write is retried after a short, bounded backoff before the job
# fails. Any other error (ENOSPC, EACCES, EROFS, ...) fails at once.
TRANSIENT_ERRNOS = frozenset({errno.EAGAIN, errno.EWOULDBLOCK, errno.EBUSY, errno.ESTALE, errno.EINTR})
RETRY_DELAYS_S = (0.05, 0.1, 0.2, 0.4, 0.8)  # at most 5 retries, ~1.6 s in all


def retry_transient(fn: Callable[[], T], *, sleep: Callable[[float], None] = time.sleep) -> T:
    """``fn()``, retried after ``RETRY_DELAYS_S`` while it raises an ``OSError`` whose errno
    is in ``TRANSIENT_ERRNOS``; the last such error (or any other) propagates."""
    for delay in (*RETRY_DELAYS_S, None):
        try:
            return fn()
        except OSError as exc:
            if exc.errno not in TRANSIENT_ERRNOS or delay is None:
                raise
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def atomic_write_bytes(path: str | os.PathLike, data: bytes, mode: int = 0o644) -> Path:
    """Write ``data`` to ``path`` atomically (same-folder temp file, fsync, ``os.replace``).

    Creates parent folders. Returns the path. On any error the temp file is removed and
    the previous file (if any) is untouched; an ``OSError`` is re-raised with the same
    errno and ``filename`` set to ``path`` (never the temp file's name). A transient error
    (``TRANSIENT_ERRNOS``) is retried with a short backoff first (``retry_transient``).
    """
    return retry_transient(lambda: _atomic_write_once(path, data, mode))


def _atomic_write_once(path: str | os.PathLike, data: bytes, mode: int) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=str(p.parent))
    except OSError as exc:
        raise _about_target(exc, p) from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, p)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise _about_target(exc, p) from exc
        raise
    fsync_dir(p.parent)
    return p


def _about_target(exc: OSError, target: Path) -> OSError:
    """The same OS error (same errno, so the same ``PermissionError``/... subclass) but
    naming ``target`` instead of the hidden temp file, so messages say which file failed."""
    if exc.errno is None:
        return exc
    return OSError(exc.errno, exc.strerror, str(target))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """``atomic_write_bytes`` for UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any, *, canonical: bool = False) -> bytes:
    """Atomically write ``obj`` as JSON (pretty by default, canonical on request).

    Returns the exact bytes written (hash them for manifests).
    """
    data = canonical_json_bytes(obj) if canonical else pretty_json_bytes(obj)
    atomic_write_bytes(path, data)
    return data


@contextlib.contextmanager
def file_lock(lock_path: str | os.PathLike, timeout_s: float = 30.0) -> Iterator[float]:
    """Hold an exclusive inter-process lock on ``lock_path`` with a bounded wait.

    Yields the time waited in milliseconds. Raises ``LockTimeout`` when the lock is not
    acquired within ``timeout_s`` seconds. The lock is released if the holder dies.
    """
    import filelock  # here, not at module load: every `obs` command imports this module

    lp = Path(lock_path)
    lp.parent.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(lp), timeout=timeout_s)
    t0 = time.monotonic()
    try:
        lock.acquire()
    except filelock.Timeout as exc:
        waited = (time.monotonic() - t0) * 1000
        raise LockTimeout(f"could not take lock {lp.name} within {timeout_s:g} s (waited {waited:.0f} ms)") from exc
    try:
        yield (time.monotonic() - t0) * 1000
    finally:
        lock.release()


def append_line_durable(path: str | os.PathLike, line: bytes) -> None:
    """Append one newline-terminated record and fsync. Caller must hold the file's lock.

    If the file ends in a torn line (a crash mid-append), a newline is written first so
    the new record starts on its own line; the torn fragment is left for readers to
    report, never merged with the new record.
    """
    if not line.endswith(b"\n"):
        line += b"\n"
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with retry_transient(lambda: open(p, "ab+")) as fh:  # nothing written yet: safe to retry
        fh.seek(0, os.SEEK_END)
        if fh.tell() > 0:
            fh.seek(-1, os.SEEK_END)
            if fh.read(1) != b"\n":
                line = b"\n" + line
        fh.seek(0, os.SEEK_END)
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())


def locked_append(path: str | os.PathLike, line: bytes, timeout_s: float = 30.0) -> None:
    """Append one record to a shared file under ``<path>.lock`` with a bounded wait."""
    p = Path(path)
    with file_lock(p.with_name(p.name + ".lock"), timeout_s):
        append_line_durable(p, line)


def read_json(path: str | os.PathLike, shown_as: str | None = None) -> Any:
    """Read a JSON file. Raises ``InputError`` naming the file (and line) on a syntax error,
    for text that is not UTF-8, and for ``NaN``/``Infinity`` (Python's json accepts them;
    obslib never does). Raises ``UnreadableInput`` (an ``InputError``) when the file cannot
    be read at all: ``file not found`` or ``cannot read: <OS message>``. Errors name the
    file as ``shown_as`` (e.g. its path relative to the data root), default ``path``."""
    p = Path(path)
    name = shown_as if shown_as is not None else str(p)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise UnreadableInput(name, "file not found") from exc
    except OSError as exc:
        raise UnreadableInput(name, f"cannot read: {exc.strerror or exc.__class__.__name__}") from exc
    except UnicodeDecodeError as exc:
        raise InputError(name, "not UTF-8 text") from exc
    def _no_constants(name: str):
        raise ValueError(f"non-finite number {name} is not valid JSON data")

    def _finite_float(raw: str) -> float:
        value = float(raw)
        if not math.isfinite(value):  # 1e999 overflows to inf
            raise ValueError(f"number {raw} is out of range (not finite)")
        return value

    try:
        return json.loads(text, parse_constant=_no_constants, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise InputError(name, f"invalid JSON: {exc.msg} (column {exc.colno})", line=exc.lineno) from exc
    except ValueError as exc:  # NaN / Infinity / -Infinity
        raise InputError(name, str(exc)) from exc


def read_json_object(path: str | os.PathLike) -> dict | None:
    """A JSON object from ``path``, or None when the file is missing, unreadable, not JSON
    or not an object. For operational state the kit wrote itself (heartbeats, receipts,
    manifests), where a damaged file means "unknown", not an input error."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
