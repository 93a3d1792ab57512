"""Bundle history ``ops/dashboard_export_history/``: content-addressed, ordered by sequence.

Layout::

    objects/<sha[:2]>/<sha256>.gz          each distinct file, stored once, gzip (level 1)
    snapshots/<sequence:010d>-<job_id>.json one per export: {schema_version, sequence,
                                            job_id, generated_at, files[{path, sha256, bytes}]}
    <job_id>/manifest.json ...             the old layout (full copies): still read, verified,
                                            restored and pruned; never written any more

- An export stores the files of its bundle (every dataset file, ``README.json``,
  ``manifest.json``) as objects named by the sha256 of their bytes: a file whose bytes were
  stored before costs nothing (unchanged datasets keep their exact bytes, see
  ``bundle``). Objects are compressed off the lock into pid-named temp files
  (``objects/.obj-<pid>-<sha>``) and renamed into place under the export lock; the
  snapshot is written last (atomically), so a snapshot only ever names objects that exist.
- Order is the export ``sequence`` (handed out under the export lock), never a clock.
- Retention (default 56 days, ``history_retention_days``) drops a snapshot (or an old
  layout folder) whose recorded ``generated_at`` is older than ``now - retention``, then
  deletes objects no remaining snapshot names. Names are never parsed for a date; an
  entry whose record cannot be read is kept (``verify`` reports it).
- The sequence counter ``ops/dashboard_export_sequence.json`` (``{"sequence": N}``) is
  written atomically before the manifest. The next sequence is one more than the largest
  of the counter, the current manifest and every history entry, so losing or corrupting
  any one of them never resets or repeats it.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import re
import shutil
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from ..safepath import UnsafePath, check_relpath, contained, safe_child
from ..storage import atomic_write_json, fsync_dir, read_json_object
from ..timeutil import parse_ts
from .layout import is_stale, temp_name

HISTORY_DIR = "dashboard_export_history"
SEQUENCE_FILE = "dashboard_export_sequence.json"
OBJECTS, SNAPSHOTS = "objects", "snapshots"
SNAPSHOT_VERSION = "2"
LEVEL = 1  # gzip level: ~40x smaller for the JSON datasets at ~0.5 GB/s


def history_root(ops_dir: Path) -> Path:
    return Path(ops_dir) / HISTORY_DIR


def object_path(ops_dir: Path, sha: str) -> Path:
    """``objects/<sha[:2]>/<sha>.gz``."""
    return history_root(ops_dir) / OBJECTS / sha[:2] / f"{sha}.gz"


SHA_RE = re.compile(r"^[0-9a-f]{64}$")


def unsafe_sha(sha: object) -> str | None:
    """Why ``sha`` (read from a snapshot record) cannot name an object file (None: 64
    lowercase hex digits). An object name becomes a path, so it is checked before use."""
    return None if isinstance(sha, str) and SHA_RE.match(sha) else f"{str(sha)[:80]!r} is not a sha256 hex digest"


def read_object(ops_dir: Path, sha: str) -> bytes:
    """The original bytes of object ``sha`` (raises OSError when missing/corrupt or when
    ``sha`` is not a sha256 name)."""
    if unsafe_sha(sha):
        raise OSError(f"history object {unsafe_sha(sha)}")
    with gzip.open(object_path(ops_dir, sha), "rb") as fh:
        return fh.read()


def object_digest(path: Path) -> tuple[int, str]:
    """``(bytes, sha256)`` of an object's original content, streamed (raises OSError /
    ``zlib.error`` / ``EOFError`` for a damaged object)."""
    h, n = hashlib.sha256(), 0
    with gzip.open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            n += len(block)
            h.update(block)
    return n, h.hexdigest()


def object_problem(ops_dir: Path, sha: str) -> str | None:
    """None when object ``sha`` decompresses to bytes with that sha256, else why not
    (``missing``, ``unreadable (...)``, ``sha256 of its content differs``, ``not a sha256
    name``). Streams the object; used by ``verify`` and ``repair_objects``."""
    if unsafe_sha(sha):
        return f"not a sha256 name ({unsafe_sha(sha)})"
    p = object_path(ops_dir, sha)
    if not p.is_file():
        return "missing"
    try:
        _, got = object_digest(p)
    except (OSError, EOFError, zlib.error) as exc:
        return f"unreadable ({exc.__class__.__name__})"
    return None if got == sha else "sha256 of its content differs"


@dataclass
class Entry:
    """One export in history. ``files``: ``[{path, sha256, bytes}]`` (None when the record
    is unreadable; for an old-layout entry sha256/bytes of README/manifest are None)."""

    name: str
    where: Path
    legacy: bool
    ops_dir: Path
    sequence: int | None = None
    job_id: str | None = None
    generated_at: str | None = None
    files: list[dict] | None = None
    _manifest: dict | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        return f"ops/{HISTORY_DIR}/{self.where.relative_to(history_root(self.ops_dir)).as_posix()}"

    def recorded(self) -> datetime | None:
        try:
            return parse_ts(self.generated_at)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return None

    def read(self, rel: str) -> bytes:
        """The bytes of bundle file ``rel`` in this entry (raises OSError/KeyError)."""
        if self.legacy:  # a manifest names files: each must stay inside its entry
            return contained(Path(self.ops_dir).parent, self.where / check_relpath(rel, what="history file"),
                             what="history file").read_bytes()
        sha = next(f["sha256"] for f in self.files or [] if f["path"] == rel)
        return read_object(self.ops_dir, sha)

    def manifest(self) -> dict | None:
        """The entry's manifest (None when unreadable)."""
        if self._manifest is None:
            try:
                m = json.loads(self.read("manifest.json"))
            except (OSError, ValueError, KeyError, StopIteration, EOFError, zlib.error):
                return None
            self._manifest = m if isinstance(m, dict) else None
        return self._manifest


def _snapshot_entry(ops_dir: Path, p: Path) -> Entry:
    e = Entry(p.stem, p, False, ops_dir)
    doc = read_json_object(p)
    try:
        files = doc["files"]  # type: ignore[index]
        ok = isinstance(files, list) and all(isinstance(f, dict) and isinstance(f.get("path"), str)
                                             and isinstance(f.get("sha256"), str) for f in files)
        seq = doc["sequence"]  # type: ignore[index]
        if ok and isinstance(seq, int) and not isinstance(seq, bool):
            e.sequence, e.job_id, e.generated_at, e.files = seq, doc.get("job_id"), doc.get("generated_at"), files
    except (TypeError, KeyError):
        pass
    return e


def _legacy_entry(ops_dir: Path, d: Path) -> Entry:
    e = Entry(d.name, d, True, ops_dir, job_id=d.name)
    m = read_json_object(d / "manifest.json")
    if m is not None and isinstance(m.get("datasets"), list):
        e._manifest = m
        seq = m.get("sequence")
        e.sequence = seq if isinstance(seq, int) and not isinstance(seq, bool) else None
        e.generated_at = m.get("generated_at") if isinstance(m.get("generated_at"), str) else None
        try:
            e.files = [{"path": x["path"], "sha256": x["checksum_sha256"], "bytes": x["bytes"]} for x in m["datasets"]]
        except (TypeError, KeyError):
            e.files = None
        else:
            e.files += [{"path": n, "sha256": None, "bytes": None} for n in ("README.json", "manifest.json")
                        if (d / n).is_file()]
    return e


def history_entries(ops_dir: Path) -> list[Entry]:
    """Every history entry (snapshots and old-layout folders), ordered by ``sequence``
    (then name); entries whose record is unreadable come last."""
    root = history_root(ops_dir)
    if not root.is_dir():
        return []
    out = []
    snaps = root / SNAPSHOTS
    if snaps.is_dir():
        out += [_snapshot_entry(Path(ops_dir), p) for p in snaps.iterdir()
                if p.suffix == ".json" and not p.name.startswith(".")]
    out += [_legacy_entry(Path(ops_dir), d) for d in root.iterdir()
            if d.is_dir() and not d.name.startswith(".") and d.name not in (OBJECTS, SNAPSHOTS)]
    return sorted(out, key=lambda e: (e.sequence is None or e.files is None, e.sequence or 0, e.name))


def _seq(obj: dict | None) -> int:
    try:
        v = obj["sequence"]  # type: ignore[index]
    except (TypeError, KeyError):
        return 0
    return v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else 0


def _snapshot_names_max(ops_dir: Path) -> int:
    snaps = history_root(ops_dir) / SNAPSHOTS
    best = 0
    for p in snaps.iterdir() if snaps.is_dir() else ():
        head = p.name.split("-", 1)[0]
        if head.isdigit():
            best = max(best, int(head))
    return best


def next_sequence(ops_dir: Path, manifest_path: Path) -> int:
    """One more than the largest sequence recorded anywhere (see module doc)."""
    seen = [_seq(read_json_object(Path(ops_dir) / SEQUENCE_FILE)), _seq(read_json_object(manifest_path)),
            _snapshot_names_max(ops_dir)]
    seen += [e.sequence or 0 for e in history_entries(ops_dir)]
    return max(seen) + 1


def store_sequence(ops_dir: Path, sequence: int) -> None:
    """Durably record ``sequence`` (atomic write + fsync)."""
    atomic_write_json(Path(ops_dir) / SEQUENCE_FILE, {"sequence": sequence})


def _compress(src: Path, dst: Path) -> None:
    with open(src, "rb") as fi, open(dst, "wb") as fo:
        comp = zlib.compressobj(LEVEL, zlib.DEFLATED, 31)  # 31: gzip container
        while block := fi.read(1 << 20):
            fo.write(comp.compress(block))
        fo.write(comp.flush())
        fo.flush()
        os.fsync(fo.fileno())


def stage_objects(ops_dir: Path, files: dict[str, Path]) -> dict[str, Path]:
    """Compress each ``{sha256: source file}`` not yet stored into a pid-named temp file
    (threads; zlib releases the GIL). Returns ``{sha256: temp file}``; ``commit_objects``
    renames them into place. Call without the lock."""
    root = history_root(ops_dir) / OBJECTS
    todo = {sha: src for sha, src in files.items() if not object_path(ops_dir, sha).is_file()}
    if not todo:
        return {}
    root.mkdir(parents=True, exist_ok=True)
    tmps = {sha: root / temp_name("obj", sha) for sha in todo}
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="history-gzip") as pool:
        for f in [pool.submit(_compress, todo[sha], tmps[sha]) for sha in todo]:
            f.result()
    return tmps


def commit_objects(ops_dir: Path, staged: dict[str, Path], sources: dict[str, Path]) -> None:
    """Under the lock: rename staged objects into place (or drop them when another export
    stored the same bytes meanwhile), compressing any object still missing from
    ``sources`` (``{sha256: file}``)."""
    folders = set()
    for sha, src in sources.items():
        dst = object_path(ops_dir, sha)
        tmp = staged.get(sha)
        if dst.is_file():
            if tmp is not None:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        if tmp is None or not tmp.is_file():
            tmp = dst.parent / temp_name("obj", sha)
            _compress(src, tmp)
        os.replace(tmp, dst)
        folders.add(dst.parent)
    for d in folders:
        fsync_dir(d)


def snapshot_path(ops_dir: Path, sequence: int, job_id: str) -> Path:
    """``snapshots/<sequence:010d>-<job_id>.json`` (``job_id`` must be a safe identifier)."""
    return safe_child(history_root(ops_dir) / SNAPSHOTS, job_id, what="JOB_ID", prefix=f"{sequence:010d}-",
                      suffix=".json", base=Path(ops_dir).parent)


def record_snapshot(ops_dir: Path, sequence: int, job_id: str, generated_at: str, files: list[dict]) -> Path:
    """Write the export's snapshot ``{schema_version, sequence, job_id, generated_at,
    files[{path, sha256, bytes}]}`` (atomic; its objects must already be stored)."""
    p = snapshot_path(ops_dir, sequence, job_id)
    atomic_write_json(p, {"schema_version": SNAPSHOT_VERSION, "sequence": sequence, "job_id": job_id,
                          "generated_at": generated_at, "files": files})
    return p


def _referenced(entries: list[Entry]) -> set[str]:
    return {f["sha256"] for e in entries if not e.legacy and e.files for f in e.files}


def iter_objects(ops_dir: Path) -> Iterator[Path]:
    root = history_root(ops_dir) / OBJECTS
    for sub in root.iterdir() if root.is_dir() else ():
        if sub.is_dir():
            yield from (p for p in sub.iterdir() if p.name.endswith(".gz") and not p.name.startswith("."))


def prune_history(ops_dir: Path, now: datetime, retention_days: int) -> list[str]:
    """Drop entries recorded more than ``retention_days`` before ``now`` (an unreadable
    one is kept), then objects no snapshot names, then temp files of dead processes.
    Call with the export lock held. Returns the pruned entry names."""
    cutoff = now - timedelta(days=retention_days)
    pruned = []
    entries = history_entries(ops_dir)
    kept = []
    for e in entries:
        t = e.recorded()
        if t is not None and t < cutoff:
            where = contained(Path(ops_dir).parent, e.where, what="history entry")
            if e.legacy:
                shutil.rmtree(where)
            else:
                where.unlink()
            pruned.append(e.name)
        else:
            kept.append(e)
    if any(e.files is None and not e.legacy for e in kept):
        return pruned  # an unreadable snapshot may name any object: collect nothing
    live = _referenced(kept)
    for p in list(iter_objects(ops_dir)):
        if p.name[:-3] not in live:
            p.unlink()
    return pruned


def sweep_history(ops_dir: Path) -> list[str]:
    """Remove temp files/folders of dead processes (and old-layout ``.partial`` folders)
    anywhere in the history. Lock held. Returns their names."""
    root = history_root(ops_dir)
    removed = []
    for folder in (root, root / OBJECTS, root / SNAPSHOTS, *((root / OBJECTS).glob("??"))):
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            if p.name.startswith(".") and is_stale(p):
                if p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        p.unlink()
                removed.append(p.name)
    return removed


def unsafe_path(path: object) -> str | None:
    """Why a file path named by a history record cannot be restored (None: a safe relative
    path). The one check ``restore`` (through ``entry_problems``) and ``verify`` share: a
    record names files, and each becomes a path under the new bundle folder on restore."""
    try:
        check_relpath(path, what="history file path")  # type: ignore[arg-type]
    except (UnsafePath, TypeError) as exc:
        return f"{str(path)[:80]}: unsafe path ({exc})"
    return None


def entry_problems(e: Entry) -> list[str]:
    """Why entry ``e`` cannot be restored as it was (``[]``: every file is there with the
    recorded bytes and sha256)."""
    if e.files is None:
        return ["unreadable record"]
    out = []
    for f in e.files:
        unsafe = unsafe_path(f["path"])
        if unsafe:
            out.append(unsafe)
            continue
        try:
            data = e.read(f["path"])
        except (OSError, KeyError, StopIteration, EOFError, zlib.error):
            where = "" if e.legacy or unsafe_sha(f["sha256"]) else \
                f" (object {object_path(e.ops_dir, f['sha256']).relative_to(Path(e.ops_dir).parent).as_posix()})"
            out.append(f"{f['path']}: missing or damaged{where}")
            continue
        if f["sha256"] is not None and (len(data) != f["bytes"] or hashlib.sha256(data).hexdigest() != f["sha256"]):
            out.append(f"{f['path']}: bytes/checksum differ from the record")
    if e.manifest() is None:
        out.append("manifest.json: unreadable")
    return out


def repair_objects(ops_dir: Path, sources: list[Path]) -> dict[str, list[str]]:
    """Re-store every object a snapshot names that is missing or damaged (its content
    does not hash to its name) from any file in ``sources`` with that sha256 (the live
    bundle's version folders, old-layout copies): compressed to a pid-named temp file and
    renamed over the damaged object. Call with the export lock held.

    Returns ``{"repaired": [object paths relative to the work root, with the file used],
    "damaged": [object paths still damaged, with why]}``. Source files are hashed only
    when some object is damaged (streamed sha256, 1 MiB blocks)."""
    from ..storage import sha256_file

    ops_dir = Path(ops_dir)
    shas = sorted(_referenced(history_entries(ops_dir)))
    bad = {sha: why for sha in shas if (why := object_problem(ops_dir, sha)) and not unsafe_sha(sha)}
    out: dict[str, list[str]] = {"repaired": [], "damaged": []}
    if not bad:
        return out
    work_root = ops_dir.parent
    by_sha: dict[str, Path] = {}
    for src in sources:
        if len(by_sha.keys() & bad.keys()) == len(bad):
            break
        try:
            by_sha.setdefault(sha256_file(src), src)
        except OSError:
            continue
    for sha, why in bad.items():
        name = object_path(ops_dir, sha).relative_to(work_root).as_posix()
        src = by_sha.get(sha)
        if src is None:
            out["damaged"].append(f"{name}: {why}; no intact copy found")
            continue
        dst = object_path(ops_dir, sha)
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.parent / temp_name("obj", sha)
        _compress(src, tmp)
        os.replace(tmp, dst)
        fsync_dir(dst.parent)
        out["repaired"].append(f"{name}: {why}; re-stored from {src.relative_to(work_root).as_posix() if src.is_relative_to(work_root) else src}")
    return out
