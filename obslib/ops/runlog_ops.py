"""Keeping ``ops/automation_runs.log`` healthy: size rotation, reading, validation, tail.

Rotation (``rotate_if_needed``) takes the log's own append lock (``automation_runs.log.lock``,
the lock ``storage.locked_append`` uses), re-checks the size and renames the whole file to
``ops/automation_runs_archive/automation_runs-<time of its last record>[-n].log``. A rename
is atomic and every append happens under the same lock, so each record is in exactly one
file: none is lost or duplicated, and a crash leaves either the old or the rotated layout.
``install_rotation`` registers it as ``runlog.set_rotate_hook`` (every ``obs`` command
does this at start-up, see ``obslib.commands.ops_cmd``).

Reading (``read_lines``) walks the archives (oldest first) then the live file and yields
one ``LogLine`` per line: the record, or why it is not one (torn line, not JSON, not an
object), and its schema violations against ``schemas/automation_run.schema.json``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .. import runlog
from ..schemas import errors as schema_errors
from ..storage import file_lock, fsync_dir
from ..timeutil import UTC, parse_ts

SCHEMA = "automation_run.schema.json"
ARCHIVE_DIRNAME = "automation_runs_archive"
_ARCHIVE_RE = re.compile(r"^automation_runs-(\d{8}T\d{6}Z)(?:-(\d+))?\.log$")


@dataclass
class LogLine:
    """One line of the run log. ``record`` is None when the line is not a JSON object
    (``problem`` says why); ``schema_errors`` lists violations of the run-log schema."""

    file: str
    lineno: int
    record: dict | None
    problem: str | None = None
    schema_errors: list[str] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.lineno}"


def archive_dir(ops_dir: str | os.PathLike) -> Path:
    """``<ops_dir>/automation_runs_archive``."""
    return Path(ops_dir) / ARCHIVE_DIRNAME


def record_time(rec: dict) -> datetime | None:
    """When a record happened: ``started_at``, else ``at``, else ``completed_at`` (aware UTC)."""
    for key in ("started_at", "at", "completed_at"):
        raw = rec.get(key)
        if isinstance(raw, str):
            try:
                return parse_ts(raw)
            except ValueError:
                continue
    return None


def _last_record_time(path: Path) -> datetime | None:
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - 65536))
        tail = fh.read().splitlines()
    for raw in reversed(tail):
        try:
            rec = json.loads(raw)
        except ValueError:
            continue
        if isinstance(rec, dict):
            ts = record_time(rec)
            if ts is not None:
                return ts
    return None


def _archive_name(adir: Path, ts: datetime | None) -> Path:
    stamp = (ts.strftime("%Y%m%dT%H%M%SZ") if ts else "00000000T000000Z")
    cand = adir / f"automation_runs-{stamp}.log"
    n = 1
    while cand.exists():
        cand = adir / f"automation_runs-{stamp}-{n}.log"
        n += 1
    return cand


def rotate_if_needed(path: str | os.PathLike, max_bytes: int, lock_timeout_s: float = 30.0) -> Path | None:
    """Rotate the run log at ``path`` when it is at least ``max_bytes`` long.

    Returns the archive path, or None when no rotation was needed. Raises ``LockTimeout``
    when the append lock is not taken within ``lock_timeout_s``.
    """
    p = Path(path)
    try:
        if p.stat().st_size < max_bytes:
            return None
    except FileNotFoundError:
        return None
    with file_lock(p.with_name(p.name + ".lock"), lock_timeout_s):
        try:
            if p.stat().st_size < max_bytes:
                return None  # another process rotated it while we waited
        except FileNotFoundError:
            return None
        adir = archive_dir(p.parent)
        adir.mkdir(parents=True, exist_ok=True)
        dest = _archive_name(adir, _last_record_time(p))
        os.replace(p, dest)
        fsync_dir(adir)
        fsync_dir(p.parent)
        return dest


def _bytes_for(ops_dir: Path) -> int:
    from ..config import load_config

    try:
        return int(load_config(ops_dir.parent).runlog_rotate_bytes)
    except Exception:  # noqa: BLE001 - a bad obs.toml must not stop jobs from logging
        return 10 * 1024 * 1024


def install_rotation(max_bytes: int | Callable[[Path], int] | None = None) -> None:
    """Install size rotation as the run log's rotate hook.

    ``max_bytes``: a size, a function of the ops folder, or None (``runlog_rotate_bytes``
    from the work root's config: obs.toml / ``OBS_RUNLOG_ROTATE_BYTES``; 10 MB default),
    resolved once per ops folder.
    """
    cache: dict[Path, int] = {}

    def hook(path: Path) -> None:
        ops = Path(path).parent
        if ops not in cache:
            if max_bytes is None:
                cache[ops] = _bytes_for(ops)
            elif callable(max_bytes):
                cache[ops] = int(max_bytes(ops))
            else:
                cache[ops] = int(max_bytes)
        rotate_if_needed(path, cache[ops])

    runlog.set_rotate_hook(hook)


def log_files(ops_dir: str | os.PathLike, since: datetime | None = None) -> list[Path]:
    """Archives (oldest first) then the live log. With ``since``, archives whose last record
    is older than ``since`` are skipped (their name carries that time)."""
    adir = archive_dir(ops_dir)
    arch = []
    if adir.is_dir():
        for p in adir.iterdir():
            m = _ARCHIVE_RE.match(p.name)
            if not m:
                continue
            ts = datetime.strptime(m.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            if since is not None and ts < since:
                continue
            arch.append((m.group(1), int(m.group(2) or 0), p))
    files = [p for _, _, p in sorted(arch)]
    live = runlog.runlog_path(ops_dir)
    if live.exists():
        files.append(live)
    return files


def _parse_line(raw: bytes, file: str, lineno: int) -> LogLine:
    """Parse one raw line (without its newline) into a ``LogLine`` (not yet validated)."""
    try:
        rec = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        return LogLine(file, lineno, None, f"not JSON ({exc.__class__.__name__}): torn or corrupt line")
    if not isinstance(rec, dict):
        return LogLine(file, lineno, None, "not a JSON object")
    return LogLine(file, lineno, rec)


def read_lines(ops_dir: str | os.PathLike, *, since: datetime | None = None, validate: bool = True,
               validate_since: datetime | None = None) -> Iterator[LogLine]:
    """Every line of the run log (archives, then live), in file order.

    ``since`` skips whole archives older than it (see ``log_files``). ``validate`` checks
    each record against the schema; with ``validate_since`` only records at or after that
    time (or without a time) are validated (the nightly check validates what is new).
    Blank lines are skipped. File names are relative to the ops folder's parent.
    """
    ops = Path(ops_dir)
    for path in log_files(ops, since):
        try:
            rel = path.relative_to(ops.parent).as_posix()
        except ValueError:
            rel = path.as_posix()
        with open(path, "rb") as fh:
            for i, raw in enumerate(fh, start=1):
                raw = raw.rstrip(b"\n")
                if not raw.strip():
                    continue
                ln = _parse_line(raw, rel, i)
                if validate and ln.record is not None:
                    ts = record_time(ln.record)
                    if validate_since is None or ts is None or ts >= validate_since:
                        ln.schema_errors = schema_errors(ln.record, SCHEMA)
                yield ln


def is_final(rec: dict) -> bool:
    """A job's final record (one per run), as opposed to an event inside a run (``event`` set)."""
    return "event" not in rec


def tail(ops_dir: str | os.PathLike, n: int = 20, *, job_names: set[str] | None = None,
         status: str | None = None) -> list[dict[str, Any]]:
    """The last ``n`` records (oldest first) matching ``job_names`` (any of them) and
    ``status``. Lines that are not records are returned as ``{"_problem", "_where"}``
    entries only when no filter is given."""
    out: list[dict[str, Any]] = []
    for ln in read_lines(ops_dir, validate=False):
        if ln.record is None:
            if job_names is None and status is None:
                out.append({"_problem": ln.problem, "_where": ln.where})
            continue
        r = ln.record
        if job_names is not None and r.get("job_name") not in job_names:
            continue
        if status is not None and r.get("status") != status:
            continue
        out.append(r)
    return out[-n:] if n > 0 else out


def format_record(rec: dict[str, Any]) -> str:
    """One human-readable line for ``obs log tail``."""
    if "_problem" in rec:
        return f"{rec['_where']}: {rec['_problem']}"
    when = rec.get("started_at") or rec.get("at") or "-"
    dur = rec.get("duration_ms")
    dur_s = f"{dur / 1000:.1f}s" if isinstance(dur, (int, float)) else ""
    bits = [when, f"{rec.get('job_name', '?'):<16}", f"{rec.get('status', '?'):<9}", f"{dur_s:>8}",
            str(rec.get("job_id", ""))]
    if rec.get("event"):
        bits.append(f"[{rec['event']} #{rec.get('attempt', '')} HTTP {rec.get('status_code')}]")
    if rec.get("error"):
        err = str(rec["error"]).replace("\n", " ")
        bits.append(f"error: {err[:200]}")
    return "  ".join(bits)
