"""``obs dashboard verify``: check a bundle and its history. Each finding has a ``code``:

- ``manifest_missing`` / ``manifest_invalid``: no manifest, or it fails its schema;
- ``manifest_incomplete``: a dataset/format pair is not listed, or listed twice;
- ``file_missing``: a listed file does not exist;
- ``bytes_mismatch`` / ``checksum_mismatch``: size / sha256 differ from the manifest;
- ``rows_mismatch``: the file's row count differs from the manifest;
- ``schema_invalid``: a JSON dataset fails its schema or a row rule, or a Parquet file's
  columns/types differ from the dataset's Arrow schema;
- ``sequence_not_increasing``: history manifests ordered by their recorded time do not
  have strictly increasing sequences, or the current manifest's sequence is below the
  newest history entry's;
- ``history_unreadable`` / ``history_file_missing`` / ``history_checksum_mismatch``: a
  history entry without a readable manifest, or a copy that is missing or altered;
- ``retention_exceeded``: a history entry recorded more than the retention before ``now``.

``verify_bundle`` works on any folder holding ``manifest.json`` (paths inside are
relative), so a moved or published copy verifies the same way.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

from ..schemas import errors as schema_errors
from ..storage import read_json_object, sha256_file
from ..timeutil import parse_ts
from . import DATASETS, FORMATS
from .bundle import bundle_dir
from .datasets import typed_frame
from .history import history_entries
from .parquet import row_count, schema_differences
from .rules import row_rule_violations, schema_file, schema_violations


@dataclass(frozen=True)
class Finding:
    code: str
    path: str
    message: str

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.code}: {self.path}: {self.message}"


def _check_json(name: str, path: Path, rel: str, rows: int) -> list[Finding]:
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
    try:
        diffs = schema_differences(name, path)
        n = row_count(path)
    except Exception as exc:  # noqa: BLE001 - any unreadable parquet is a finding
        return [Finding("schema_invalid", rel, f"unreadable Parquet: {exc.__class__.__name__}: {exc}")]
    out = [Finding("schema_invalid", rel, d) for d in diffs]
    if n != rows:
        out.append(Finding("rows_mismatch", rel, f"{n} rows, manifest says {rows}"))
    return out


def verify_files(folder: Path, manifest: dict, *, label: str = "", deep: bool = True,
                 checksum_code: str = "checksum_mismatch", missing_code: str = "file_missing") -> list[Finding]:
    """Bytes and checksums of every listed file (and, when ``deep``, schemas and rows)."""
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
        elif deep and size == e["bytes"]:
            check = _check_json if e["format"] == "json" else _check_parquet
            out += check(e["name"], p, rel, e["rows"])
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
    errs = schema_errors(manifest, schema_file("manifest"))
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


def verify_bundle(folder: Path, *, deep: bool = True, label: str = "") -> tuple[dict | None, list[Finding]]:
    """Manifest plus every file of a bundle folder (finding paths prefixed by ``label``)."""
    manifest, out = verify_manifest(folder, label=label)
    if manifest is not None:
        out += verify_files(folder, manifest, deep=deep, label=label)
    return manifest, out


def verify_history(ops_dir: Path, now: datetime, retention_days: int,
                   current: dict | None) -> list[Finding]:
    """Sequence order, copies' checksums and retention of ``ops/dashboard_export_history``."""
    out: list[Finding] = []
    cutoff = now - timedelta(days=retention_days)
    prev_seq, last = 0, None
    for d, m in history_entries(ops_dir):
        label = f"ops/dashboard_export_history/{d.name}/"
        if m is None or schema_errors(m, schema_file("manifest")):
            out.append(Finding("history_unreadable", label + "manifest.json", "missing or invalid manifest"))
            continue
        recorded = parse_ts(m["generated_at"])
        if m["sequence"] <= prev_seq:
            out.append(Finding("sequence_not_increasing", label + "manifest.json",
                               f"sequence {m['sequence']} after {prev_seq}"))
        prev_seq = max(prev_seq, m["sequence"])
        last = m
        if recorded < cutoff:
            out.append(Finding("retention_exceeded", label, f"recorded {m['generated_at']}, older than "
                                                           f"{retention_days} days"))
        out += verify_files(d, m, label=label, deep=False, checksum_code="history_checksum_mismatch",
                            missing_code="history_file_missing")
    if current is not None and last is not None and current["sequence"] < last["sequence"]:
        out.append(Finding("sequence_not_increasing", "out/dashboard/manifest.json",
                           f"sequence {current['sequence']} is below history's {last['sequence']}"))
    return out


def verify_all(work_root: Path, now: datetime, retention_days: int) -> list[Finding]:
    """Everything ``obs dashboard verify`` checks, for the bundle under ``work_root``."""
    manifest, out = verify_bundle(bundle_dir(work_root), label="out/dashboard/")
    return out + verify_history(Path(work_root) / "ops", now, retention_days, manifest)
