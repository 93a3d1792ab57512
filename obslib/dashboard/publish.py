"""``obs dashboard publish --to <folder or fsspec URL>``: copy a verified bundle to shared
storage, verify the copy, keep 8 weeks there.

Layout at the target: ``<to>/<job_id>/`` holds the bundle (dataset files, README.json,
manifest.json written last, so a copy without a manifest is visibly incomplete) and
``<to>/latest.json`` names the newest copy (``{job_id, sequence, generated_at}``). The
local bundle must verify first (nothing is copied otherwise). The copy is verified by
reading every file back through fsspec and comparing bytes and sha256 with the manifest.
Copies whose manifest ``generated_at`` is older than the retention are deleted; the
folder name is never parsed for a date.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import fsspec
from fsspec.implementations.local import LocalFileSystem

from ..errors import ObsError
from ..safepath import check_identifier, check_relpath, contained
from ..storage import pretty_json_bytes
from ..timeutil import parse_ts
from .bundle import bundle_dir
from .verify import Finding, verify_bundle


@dataclass
class PublishResult:
    target: str
    job_id: str | None = None
    files: int = 0
    pruned: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def summary(self) -> dict:
        return {"target": self.target, "copied_job_id": self.job_id, "files": self.files,
                "pruned": self.pruned}


def _sha_remote(fs, path: str) -> tuple[int, str]:
    h, n = hashlib.sha256(), 0
    with fs.open(path, "rb") as fh:
        while True:
            b = fh.read(1 << 20)
            if not b:
                break
            n += len(b)
            h.update(b)
    return n, h.hexdigest()


def publish_bundle(work_root: Path, to: str, *, now: datetime, retention_days: int) -> PublishResult:
    """Publish ``<work_root>/out/dashboard`` to ``to`` (see module doc). Findings of the
    local or remote verification are returned (non-empty = failure). Raises ``ObsError``
    when the target cannot be written."""
    res = PublishResult(target=to)
    local = bundle_dir(work_root)
    manifest, findings = verify_bundle(local, label="out/dashboard/")
    if findings or manifest is None:
        res.findings = findings
        return res
    # names read from the manifest become paths at the target: each must be a safe
    # identifier / relative path, and (for a local target) stay inside <to>/<job_id>/
    res.job_id = check_identifier(manifest["job_id"], what="out/dashboard/manifest.json job_id")
    files = [check_relpath(e["path"], what="out/dashboard/manifest.json dataset path") for e in manifest["datasets"]]
    files += ["README.json", "manifest.json"]
    try:
        fs, root = fsspec.core.url_to_fs(to)
        dest = f"{root.rstrip('/')}/{res.job_id}"
        if isinstance(fs, LocalFileSystem):
            for rel in files:
                contained(root, f"{dest}/{rel}", what="dashboard publish destination")
        fs.makedirs(dest, exist_ok=True)
        for rel in files:
            with open(local / rel, "rb") as src, fs.open(f"{dest}/{rel}", "wb") as dst:
                while True:
                    b = src.read(1 << 20)
                    if not b:
                        break
                    dst.write(b)
        res.files = len(files)
        for e in manifest["datasets"]:
            n, sha = _sha_remote(fs, f"{dest}/{e['path']}")
            if n != e["bytes"]:
                res.findings.append(Finding("bytes_mismatch", f"{to}/{res.job_id}/{e['path']}",
                                            f"{n} bytes after copy, manifest says {e['bytes']}"))
            if sha != e["checksum_sha256"]:
                res.findings.append(Finding("checksum_mismatch", f"{to}/{res.job_id}/{e['path']}",
                                            "sha256 after copy differs from the manifest"))
        if res.findings:
            return res
        with fs.open(f"{root.rstrip('/')}/latest.json", "wb") as fh:
            fh.write(pretty_json_bytes({"job_id": res.job_id, "sequence": manifest["sequence"],
                                        "generated_at": manifest["generated_at"]}))
        res.pruned = _prune(fs, root.rstrip("/"), now - timedelta(days=retention_days), keep=res.job_id)
    except (OSError, ValueError) as exc:
        raise ObsError(f"publish to {to}: {exc.__class__.__name__}: {exc}") from exc
    return res


def _prune(fs, root: str, cutoff: datetime, keep: str) -> list[str]:
    pruned = []
    for entry in fs.ls(root, detail=True):
        if entry.get("type") != "directory":
            continue
        name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
        if name == keep:
            continue
        try:
            with fs.open(f"{root}/{name}/manifest.json", "rb") as fh:
                recorded = parse_ts(json.loads(fh.read())["generated_at"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not a bundle copy (or unreadable): never deleted
        if recorded < cutoff:
            fs.rm(f"{root}/{name}", recursive=True)
            pruned.append(name)
    return sorted(pruned)
