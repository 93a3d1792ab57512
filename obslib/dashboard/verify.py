"""``obs dashboard verify``: check a bundle and its history. Each finding has a ``code``:

- ``manifest_missing`` / ``manifest_invalid``: no manifest, or it fails its schema;
- ``manifest_incomplete``: a dataset/format pair is not listed, or listed twice;
- ``file_missing``: a listed file does not exist;
- ``bytes_mismatch`` / ``checksum_mismatch``: size / sha256 differ from the manifest;
- ``rows_mismatch``: the file's row count differs from the manifest;
- ``schema_invalid``: a Parquet file's columns/types/metadata differ from the dataset's
  Arrow schema, or a JSON file's envelope (dataset, row_count) is wrong; with ``deep``, a
  JSON dataset that fails its schema or a row rule;
- ``sequence_not_increasing``: two history entries share a sequence, a snapshot's
  manifest holds another sequence than its record, or the current manifest's sequence is
  below the newest history entry's;
- ``history_unreadable`` / ``history_file_missing`` / ``history_checksum_mismatch``: a
  history entry without a readable record, or an object/copy that is missing or altered;
- ``history_unsafe_path``: a history record names a file path that ``restore`` refuses
  (absolute, ``..``, not a safe identifier: ``history.unsafe_path``, the check restore uses);
- ``retention_exceeded``: a history entry recorded more than the retention before ``now``.

Streaming: checksums come from the bytes (sha256 over 1 MiB blocks; history objects are
decompressed as a stream and each distinct object is checked once), the Parquet checks
from the file footers (``pyarrow.parquet.read_schema`` / ``read_metadata``), the JSON
envelope from the file's first bytes. No pandas, no JSON parse of the datasets. The
export checks every row against the schema and the row rules before it publishes, and
the checksums tie the files to that check; ``deep=True`` (``obs dashboard verify --deep``)
re-parses every JSON dataset and re-runs those checks as well.

``verify_bundle`` works on any folder holding ``manifest.json`` (paths inside are
relative), so a moved or published copy verifies the same way.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

from ..storage import read_json_object, sha256_file
from . import DATASETS, FORMATS
from .history import Entry, history_entries, object_path, object_problem, unsafe_path, unsafe_sha
from .layout import bundle_dir
from .schema_check import validator as _validator


@dataclass(frozen=True)
class Finding:
    code: str
    path: str
    message: str

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.code}: {self.path}: {self.message}"


def _manifest_errors(manifest: dict) -> list[str]:
    return [str(e.message)[:300] for e in _validator("manifest").iter_errors(manifest)][:20]


_HEAD_RE = re.compile(rb'^\{"dataset":"([^"]*)".*?"row_count":(\d+),"rows":\[', re.S)


def _check_json_head(name: str, path: Path, rel: str, rows: int) -> list[Finding]:
    """The envelope from the first bytes (sorted keys put dataset .. row_count before rows)."""
    head = b""
    with open(path, "rb") as fh:  # the head ends at "rows":[ (after the provenance block's inputs)
        while b'"rows":[' not in head and len(head) < (4 << 20):
            block = fh.read(1 << 16)
            if not block:
                break
            head += block
    m = _HEAD_RE.match(head)
    if not m:
        return [Finding("schema_invalid", rel, "not a dataset document (envelope not found at the start)")]
    out = []
    if m.group(1).decode("utf-8", "replace") != name:
        out.append(Finding("schema_invalid", rel, f"dataset {m.group(1)!r} != {name!r}"))
    if int(m.group(2)) != rows:
        out.append(Finding("rows_mismatch", rel, f"{int(m.group(2))} rows, manifest says {rows}"))
    return out


def _check_json_deep(name: str, path: Path, rel: str, rows: int) -> list[Finding]:
    from .datasets import typed_frame
    from .rules import row_rule_violations, schema_violations

    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return [Finding("schema_invalid", rel, f"not JSON: {exc}")]
    out = [Finding("schema_invalid", rel, str(v)) for v in schema_violations(name, doc)]
    if out:
        return out
    if len(doc["rows"]) != rows or doc["row_count"] != rows:
        out.append(Finding("rows_mismatch", rel, f"{len(doc['rows'])} rows, manifest says {rows}"))
    frame = typed_frame(name, doc["rows"])
    out += [Finding("schema_invalid", rel, str(v)) for v in row_rule_violations(name, frame)]
    return out


def _check_parquet(name: str, path: Path, rel: str, rows: int) -> list[Finding]:
    from .parquet import row_count, schema_differences

    try:
        diffs = schema_differences(name, path)
        n = row_count(path)
    except Exception as exc:  # noqa: BLE001 - any unreadable parquet is a finding
        return [Finding("schema_invalid", rel, f"unreadable Parquet: {exc.__class__.__name__}: {exc}")]
    out = [Finding("schema_invalid", rel, d) for d in diffs]
    if n != rows:
        out.append(Finding("rows_mismatch", rel, f"{n} rows, manifest says {rows}"))
    return out


def verify_files(folder: Path, manifest: dict, *, label: str = "", deep: bool = False, content: bool = True,
                 checksum_code: str = "checksum_mismatch", missing_code: str = "file_missing") -> list[Finding]:
    """Bytes and streamed sha256 of every listed file; with ``content``, the Parquet
    footers and JSON envelopes too (with ``deep``, the full JSON checks)."""
    out = []
    for e in manifest.get("datasets", []):
        rel = f"{label}{e['path']}"
        p = Path(folder) / e["path"]
        if not p.is_file():
            out.append(Finding(missing_code, rel, "listed in the manifest but missing"))
            continue
        size = p.stat().st_size
        if size != e["bytes"]:
            out.append(Finding("bytes_mismatch", rel, f"{size} bytes, manifest says {e['bytes']}"))
        if sha256_file(p) != e["checksum_sha256"]:
            out.append(Finding(checksum_code, rel, "sha256 differs from the manifest"))
        elif content and size == e["bytes"]:
            if e["format"] == "json":
                out += (_check_json_deep if deep else _check_json_head)(e["name"], p, rel, e["rows"])
            else:
                out += _check_parquet(e["name"], p, rel, e["rows"])
    return out


def verify_manifest(folder: Path, *, label: str = "") -> tuple[dict | None, list[Finding]]:
    """Load and check ``<folder>/manifest.json`` (schema and completeness)."""
    rel = f"{label}manifest.json"
    path = Path(folder) / "manifest.json"
    if not path.is_file():
        return None, [Finding("manifest_missing", rel, "no manifest")]
    manifest = read_json_object(path)
    if manifest is None:
        return None, [Finding("manifest_invalid", rel, "not a JSON object")]
    errs = _manifest_errors(manifest)
    if errs:
        return None, [Finding("manifest_invalid", rel, e) for e in errs]
    out = []
    pairs = [(e["name"], e["format"]) for e in manifest["datasets"]]
    for name in DATASETS:
        for fmt in FORMATS:
            n = pairs.count((name, fmt))
            if n != 1:
                out.append(Finding("manifest_incomplete", rel, f"{name} {fmt}: listed {n} times (expected 1)"))
    return manifest, out


def verify_bundle(folder: Path, *, deep: bool = False, label: str = "") -> tuple[dict | None, list[Finding]]:
    """Manifest plus every file of a bundle folder (finding paths prefixed by ``label``)."""
    manifest, out = verify_manifest(folder, label=label)
    if manifest is not None:
        out += verify_files(folder, manifest, deep=deep, label=label)
    return manifest, out


def _unsafe_findings(e: Entry) -> list[Finding]:
    """``history_unsafe_path``: a file path in the record that ``restore`` refuses (the
    same check, ``history.unsafe_path``)."""
    return [Finding("history_unsafe_path", e.label, why) for f in e.files or []
            if (why := unsafe_path(f.get("path")))]


def _snapshot_findings(e: Entry, problems: dict[str, str | None]) -> list[Finding]:
    out = _unsafe_findings(e)
    for f in e.files or []:
        why = problems.get(f["sha256"])
        obj = object_path(e.ops_dir, f["sha256"]).relative_to(Path(e.ops_dir).parent).as_posix() \
            if unsafe_sha(f["sha256"]) is None else f"object {str(f['sha256'])[:80]!r}"
        hint = "; obs restore re-stores it from any intact file with that sha256 (e.g. the live bundle)"
        if why == "missing":
            out.append(Finding("history_file_missing", f"{e.label}:{f['path']}", f"{obj} missing{hint}"))
        elif why:
            out.append(Finding("history_checksum_mismatch", f"{e.label}:{f['path']}", f"{obj}: {why}{hint}"))
    m = e.manifest() if not any(problems.get(f["sha256"]) for f in e.files or [] if f["path"] == "manifest.json") \
        else None
    if m is None or _manifest_errors(m):
        out.append(Finding("history_unreadable", f"{e.label}:manifest.json", "missing or invalid manifest"))
    elif m.get("sequence") != e.sequence:
        out.append(Finding("sequence_not_increasing", e.label,
                           f"record says sequence {e.sequence}, its manifest {m.get('sequence')}"))
    return out


def verify_history(ops_dir: Path, now: datetime, retention_days: int,
                   current: dict | None) -> list[Finding]:
    """Sequence order, objects/copies and retention of ``ops/dashboard_export_history``."""
    out: list[Finding] = []
    cutoff = now - timedelta(days=retention_days)
    entries = history_entries(ops_dir)
    shas = sorted({f["sha256"] for e in entries if not e.legacy and e.files for f in e.files})
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="verify-objects") as pool:
        problems = dict(zip(shas, pool.map(lambda s: object_problem(Path(ops_dir), s), shas), strict=True))
    prev_seq, last = 0, None
    for e in entries:
        if e.files is None or e.sequence is None:
            out.append(Finding("history_unreadable", e.label, "missing or invalid record"))
            continue
        if e.sequence <= prev_seq:
            out.append(Finding("sequence_not_increasing", e.label, f"sequence {e.sequence} after {prev_seq}"))
        prev_seq = max(prev_seq, e.sequence)
        last = e
        recorded = e.recorded()
        if recorded is not None and recorded < cutoff:
            out.append(Finding("retention_exceeded", e.label, f"recorded {e.generated_at}, older than "
                                                              f"{retention_days} days"))
        if e.legacy:
            unsafe = _unsafe_findings(e)
            if unsafe:  # never opened: the path would leave the entry's folder
                out += unsafe
                continue
            m = e.manifest()
            if m is None or _manifest_errors(m):
                out.append(Finding("history_unreadable", e.label + "/manifest.json", "missing or invalid manifest"))
                continue
            out += verify_files(e.where, m, label=e.label + "/", content=False,
                                checksum_code="history_checksum_mismatch", missing_code="history_file_missing")
        else:
            out += _snapshot_findings(e, problems)
    if current is not None and last is not None and current["sequence"] < (last.sequence or 0):
        out.append(Finding("sequence_not_increasing", "out/dashboard/manifest.json",
                           f"sequence {current['sequence']} is below history's {last.sequence}"))
    return out


def verify_all(work_root: Path, now: datetime, retention_days: int, *, deep: bool = False) -> list[Finding]:
    """Everything ``obs dashboard verify`` checks, for the bundle under ``work_root``. The
    bundle folder is resolved once, so a switch during the check cannot mix two versions."""
    folder = bundle_dir(work_root)
    folder = folder.resolve() if folder.is_symlink() else folder
    ops = Path(work_root) / "ops"
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="verify-history") as pool:
        hist = pool.submit(verify_history, ops, now, retention_days, None)  # alongside the bundle
        manifest, out = verify_bundle(folder, deep=deep, label="out/dashboard/")
        out += hist.result()
    newest = max((e.sequence or 0 for e in history_entries(ops) if e.files is not None), default=0)
    if manifest is not None and manifest["sequence"] < newest:
        out.append(Finding("sequence_not_increasing", "out/dashboard/manifest.json",
                           f"sequence {manifest['sequence']} is below history's {newest}"))
    return out
