"""Rotation of the live raw file into gzipped archives, the archive manifest, retention.

Rotation (caller holds the lock): when ``ops/signal_latency.csv`` is larger than
``rotate_bytes`` it is compressed to
``ops/signal_latency_archive/<YYYY>/<MM>/signal_latency-<first>-<last>.csv.gz`` (year and
month of the newest row; stamps ``YYYYMMDDTHHMMSSZ``), an entry ``{path, sha256, rows,
first_ts, last_ts, ...}`` (``path`` relative to the archive folder) is upserted in ``ops/signal_latency_archive/manifest.json`` and a
fresh live file (header only) replaces the old one. A journal written first makes the
whole sequence restartable: ``finish_rotation`` redoes whatever a ``kill -9`` left undone
(the gzip output is deterministic, the manifest upsert idempotent, and the live file is
only replaced once the archive and its entry exist).

Retention: live rows older than the cutoff (``now - days``, floored to the hour, so whole
hours go) are dropped by an atomic rewrite; archives whose newest row is older are
deleted with their manifest entry.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from ..storage import atomic_write_bytes, atomic_write_json, fsync_dir, sha256_file
from ..timeutil import UTC, parse_ts, to_rfc3339
from ._faults import checkpoint
from .paths import LatencyPaths
from .store import HEADER, file_size, first_row_time, read_json_or

MANIFEST_SCHEMA_VERSION = "1"


def floor_hour(ts: datetime) -> datetime:
    ts = ts.astimezone(UTC)
    return ts.replace(minute=0, second=0, microsecond=0)


def _stamp(ts: datetime) -> str:
    return ts.strftime("%Y%m%dT%H%M%SZ")


def read_manifest(paths: LatencyPaths) -> dict:
    """The manifest (``{schema_version, entries:[...]}``); empty when missing."""
    m = read_json_or(paths.manifest, None)
    return m if m else {"schema_version": MANIFEST_SCHEMA_VERSION, "entries": []}


def _write_manifest(paths: LatencyPaths, manifest: dict) -> None:
    from ..schemas import validate

    manifest["entries"] = sorted(manifest["entries"], key=lambda e: e["path"])
    validate(manifest, "latency_archive_manifest.schema.json", "latency archive manifest")
    atomic_write_json(paths.manifest, manifest)


def scan_live(path: Path) -> tuple[int, datetime | None, datetime | None]:
    """(data rows, oldest time, newest time) of a raw file (complete lines only)."""
    rows, first, last = 0, None, None
    with open(path, "rb") as fh:
        fh.readline()
        for line in fh:
            if not line.endswith(b"\n"):
                break
            rows += 1
            ts = line[: line.index(b",")].decode("ascii")
            if first is None or ts < first:
                first = ts
            if last is None or ts > last:
                last = ts
    return rows, (parse_ts(first) if first else None), (parse_ts(last) if last else None)


@dataclass
class Rotation:
    """A finished rotation: the archive path (relative to the work root) and its rows."""

    archive: str
    rows: int
    sha256: str


def _gzip_deterministic(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp")
    with open(src, "rb") as fin, open(tmp, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=1) as gz:
            shutil.copyfileobj(fin, gz, 1 << 20)
        raw.flush()
        os.fsync(raw.fileno())
    checkpoint("archive_tmp_written")
    os.replace(tmp, dst)
    fsync_dir(dst.parent)


def maybe_rotate(paths: LatencyPaths, *, rotate_bytes: int, now: datetime, job_id: str) -> Rotation | None:
    """Rotate the live file when it is larger than ``rotate_bytes`` (bytes). Returns the
    rotation or None. Raises OSError on I/O failure (the journal makes it resumable)."""
    size = file_size(paths.live)
    if size <= rotate_bytes:
        return None
    rows, first, last = scan_live(paths.live)
    if rows == 0 or first is None or last is None:
        return None
    rel = Path(f"{last:%Y}") / f"{last:%m}" / f"signal_latency-{_stamp(first)}-{_stamp(last)}.csv.gz"
    taken = {e["path"] for e in read_manifest(paths)["entries"]}
    n = 1
    while rel.as_posix() in taken:
        n += 1
        rel = rel.with_name(f"signal_latency-{_stamp(first)}-{_stamp(last)}-{n}.csv.gz")
    st = os.stat(paths.live)
    journal = {"path": rel.as_posix(), "source_inode": st.st_ino, "source_bytes": st.st_size,
               "source_sha256": sha256_file(paths.live), "rows": rows, "first_ts": to_rfc3339(first),
               "last_ts": to_rfc3339(last), "created_at": to_rfc3339(now), "job_id": job_id}
    atomic_write_json(paths.rotation_journal, journal)
    checkpoint("rotation_journal_written")
    return finish_rotation(paths)


def finish_rotation(paths: LatencyPaths) -> Rotation | None:
    """Complete a journaled rotation (idempotent); None when no rotation is pending."""
    j = read_json_or(paths.rotation_journal, None)
    if j is None:
        return None
    archive = paths.archive_dir / j["path"]
    try:
        live_ino = os.stat(paths.live).st_ino
    except FileNotFoundError:
        live_ino = None
    live_is_source = live_ino == j["source_inode"]
    if live_is_source:
        _gzip_deterministic(paths.live, archive)
        checkpoint("archive_written")
    elif not archive.exists():  # the live file was replaced, so the archive was complete
        raise OSError(f"rotation journal names {j['path']} but it is missing")
    entry = {**{k: j[k] for k in ("path", "rows", "first_ts", "last_ts", "created_at", "job_id",
                                  "source_inode", "source_bytes", "source_sha256")},
             "sha256": sha256_file(archive), "compressed_bytes": archive.stat().st_size}
    manifest = read_manifest(paths)
    manifest["entries"] = [e for e in manifest["entries"] if e["path"] != entry["path"]] + [entry]
    _write_manifest(paths, manifest)
    checkpoint("manifest_written")
    if live_is_source:
        atomic_write_bytes(paths.live, HEADER.encode("ascii"))
        checkpoint("live_replaced")
    os.unlink(paths.rotation_journal)
    fsync_dir(paths.ops_dir)
    return Rotation(paths.rel(archive), entry["rows"], entry["sha256"])


def read_archive_bytes(paths: LatencyPaths, entry: dict) -> bytes:
    """The uncompressed bytes of an archive (exactly the live file it came from). Raises
    ``OSError``/``EOFError``/``zlib.error`` when it does not decompress."""
    with gzip.open(paths.archive_dir / entry["path"], "rb") as fh:
        return fh.read()


class DamagedArchive(Exception):
    """An archive that fails its sha256 or does not decompress (``reason`` says which)."""


def load_archive(paths: LatencyPaths, entry: dict) -> bytes:
    """An archive's bytes after checking the manifest's sha256 (when recorded) and that it
    decompresses. Raises ``DamagedArchive`` naming the file and the reason."""
    import zlib

    path = paths.archive_dir / entry["path"]
    try:
        if entry.get("sha256") and sha256_file(path) != entry["sha256"]:
            raise DamagedArchive(f"{paths.rel(path)}: sha256 differs from the manifest")
        return read_archive_bytes(paths, entry)
    except FileNotFoundError as exc:
        raise DamagedArchive(f"{paths.rel(path)}: missing") from exc
    except (OSError, EOFError, zlib.error) as exc:
        raise DamagedArchive(f"{paths.rel(path)}: does not decompress ({exc.__class__.__name__}: "
                             f"{str(exc)[:80]})") from exc


def quarantine_archive(paths: LatencyPaths, entry: dict, reason: str) -> str:
    """Move a damaged archive to ``ops/signal_latency_archive/quarantine/`` (kept for a
    person to look at), drop its manifest entry, and return a message naming both. Caller
    holds the latency lock."""
    src = paths.archive_dir / entry["path"]
    qdir = paths.archive_dir / "quarantine"
    qdir.mkdir(parents=True, exist_ok=True)
    dst = qdir / src.name
    n = 1
    while dst.exists():
        n += 1
        dst = qdir / f"{src.stem}-{n}{src.suffix}"
    if src.exists():
        os.replace(src, dst)
    else:  # a marker, so later rebuilds still know these hours lost raw rows
        atomic_write_bytes(qdir / f"{src.name}.missing", (reason + "\n").encode("utf-8"))
    fsync_dir(qdir)
    manifest = read_manifest(paths)
    manifest["entries"] = [e for e in manifest["entries"] if e["path"] != entry["path"]]
    _write_manifest(paths, manifest)
    return f"{reason}; moved to {paths.rel(dst)}"


_ARCHIVE_STAMPS = re.compile(r"(\d{8}T\d{6}Z)-(\d{8}T\d{6}Z)")


def entry_hours(first_ts: str, last_ts: str) -> set[int]:
    """Epoch hours (``ts // 3600``) from the hour of ``first_ts`` to that of ``last_ts``."""
    lo, hi = (int(parse_ts(t).timestamp()) // 3600 for t in (first_ts, last_ts))
    return set(range(lo, hi + 1))


def quarantined_hours(paths: LatencyPaths) -> set[int]:
    """Epoch hours whose raw rows are (partly) in a quarantined or missing archive: read
    from the file names in ``quarantine/`` (``signal_latency-<first>-<last>...``), so a
    later rebuild still knows the raw rows of those hours are incomplete."""
    qdir = paths.archive_dir / "quarantine"
    out: set[int] = set()
    try:
        names = os.listdir(qdir)
    except FileNotFoundError:
        return out
    for name in names:
        m = _ARCHIVE_STAMPS.search(name)
        if m is None:
            continue
        try:
            first, last = (datetime.strptime(x, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC) for x in m.groups())
        except ValueError:
            continue
        out |= entry_hours(to_rfc3339(first), to_rfc3339(last))
    return out


@dataclass
class RetentionResult:
    rows_dropped: int = 0
    archives_pruned: int = 0
    live_rewritten: bool = False


def raw_cutoff(now: datetime, days: int) -> datetime:
    """Raw retention cutoff: ``now - days`` floored to the hour (aware UTC)."""
    return floor_hour(now - timedelta(days=days))


def apply_raw_retention(paths: LatencyPaths, *, now: datetime, days: int) -> RetentionResult:
    """Drop live rows and archives older than ``raw_cutoff(now, days)`` (caller holds the lock)."""
    res = RetentionResult()
    cutoff = raw_cutoff(now, days)
    first = first_row_time(paths.live)
    if first is not None and first < cutoff:
        keep = io.BytesIO()
        keep.write(HEADER.encode("ascii"))
        with open(paths.live, "rb") as fh:
            fh.readline()
            for line in fh:
                if not line.endswith(b"\n"):
                    break
                try:
                    old = parse_ts(line[: line.index(b",")].decode("ascii")) < cutoff
                except (ValueError, UnicodeDecodeError):
                    old = False  # never drop what cannot be dated
                if old:
                    res.rows_dropped += 1
                else:
                    keep.write(line)
        atomic_write_bytes(paths.live, keep.getvalue())
        res.live_rewritten = True
        checkpoint("retention_rewritten")
    manifest = read_manifest(paths)
    expired = [e for e in manifest["entries"] if parse_ts(e["last_ts"]) < cutoff]
    if expired:
        for e in expired:
            try:
                os.unlink(paths.archive_dir / e["path"])
            except FileNotFoundError:
                pass
        manifest["entries"] = [e for e in manifest["entries"] if e not in expired]
        _write_manifest(paths, manifest)
        res.archives_pruned = len(expired)
    return res

