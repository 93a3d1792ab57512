"""Provenance carried by every artefact: generated_at, source_command, commit_sha, job_id,
and the inputs with their sha256 (paths relative to the data root)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from .storage import sha256_file
from .timeutil import to_rfc3339


def commit_sha(repo_dir: str | os.PathLike | None = None, env: dict[str, str] | None = None) -> str | None:
    """``$OBS_COMMIT_SHA`` when set, else ``git rev-parse HEAD`` of the obslib checkout,
    else None (not a git checkout / git missing)."""
    env = os.environ if env is None else env
    if env.get("OBS_COMMIT_SHA"):
        return env["OBS_COMMIT_SHA"]
    repo = Path(repo_dir) if repo_dir else Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    sha = out.stdout.strip()
    return sha if out.returncode == 0 and len(sha) == 40 else None


def source_command(argv: list[str] | None = None) -> str:
    """The command line that produced an artefact (``obs`` + arguments), shell-quoted.
    Arguments are as typed; secrets are never passed as arguments."""
    argv = list(sys.argv if argv is None else argv)
    if argv and Path(argv[0]).name in ("obs", "__main__.py", "cli.py"):
        argv[0] = "obs"
    return " ".join(shlex.quote(a) for a in argv)


def input_entries(data_root: Path, rel_paths: list[str]) -> list[dict]:
    """``[{path, sha256}]`` for existing inputs, sorted by path (missing ones skipped)."""
    out = []
    for rp in sorted(set(rel_paths)):
        p = Path(data_root) / rp
        if p.is_file():
            out.append({"path": rp, "sha256": sha256_file(p)})
    return out


def provenance(*, generated_at: datetime, job_id: str, command: str, sha: str | None,
               inputs: list[dict], **extra) -> dict:
    """The provenance object (``generated_at`` RFC 3339 UTC)."""
    return {"generated_at": to_rfc3339(generated_at), "source_command": command, "commit_sha": sha,
            "job_id": job_id, "inputs": inputs, **extra}


PARQUET_KEY = "obslib.provenance"  # Parquet schema metadata key holding the block (JSON)
SIDECAR_SUFFIX = ".provenance.json"


def block(*, generated_at: datetime, source_command: str | None = None, commit: str | None = None,
          job_id: str | None = None, inputs: list[dict] | None = None, schema_version: str = "1",
          **extra) -> dict:
    """The provenance block every artefact carries (``schemas/provenance.schema.json``):
    ``{generated_at, source_command, commit_sha, job_id, inputs[{path, sha256}],
    schema_version}``. ``source_command`` defaults to this process's command line and
    ``commit`` to ``commit_sha()`` (``$OBS_COMMIT_SHA`` or git)."""
    return {"generated_at": to_rfc3339(generated_at),
            "source_command": source_command if source_command is not None else source_command_default(),
            "commit_sha": commit if commit is not None else commit_sha_cached(),
            "job_id": job_id, "inputs": list(inputs or []), "schema_version": schema_version, **extra}


def source_command_default() -> str:
    return source_command()


_COMMIT: list[str | None] = []


def commit_sha_cached() -> str | None:
    """``commit_sha()`` computed once per process (it may run git)."""
    if not _COMMIT:
        _COMMIT.append(commit_sha())
    return _COMMIT[0]


def sidecar_path(path: str | os.PathLike) -> Path:
    """``<file>.provenance.json`` beside ``path``."""
    p = Path(path)
    return p.with_name(p.name + SIDECAR_SUFFIX)


def write_sidecar(path: str | os.PathLike, prov: dict, data: bytes | None = None) -> dict:
    """Write ``<path>.provenance.json``: ``prov`` plus ``file{path, bytes, sha256}`` of the
    file's exact bytes (``data`` when the caller has them, else read from ``path``).
    Atomic; call it under the same lock as the write of ``path``, right after it, so the
    pair changes together (a reader detects a torn pair by the sha256). Returns the block."""
    from .storage import atomic_write_json, sha256_bytes

    p = Path(path)
    if data is None:
        size, digest = p.stat().st_size, sha256_file(p)
    else:
        size, digest = len(data), sha256_bytes(data)
    doc = {**prov, "file": {"path": p.name, "bytes": size, "sha256": digest}}
    atomic_write_json(sidecar_path(p), doc)
    return doc


def write_with_sidecar(path: str | os.PathLike, data: bytes, prov: dict) -> dict:
    """Atomically write ``data`` to ``path`` (CSV files the kit writes), then its sidecar
    (``write_sidecar``). Returns the sidecar block."""
    from .storage import atomic_write_bytes

    atomic_write_bytes(path, data)
    return write_sidecar(path, prov, data)


def refresh_sidecars(files: list[Path], *, generated_at: datetime, job_id: str | None,
                     inputs: list[Path] | None = None, root: Path | None = None, schema_version: str = "1") -> None:
    """Write the sidecar of each existing file in ``files`` (CSV files the kit keeps
    rewriting or appending, e.g. the latency CSVs), with ``inputs`` (files, named relative
    to ``root``) hashed. Call under the lock that guards the files, right after they
    change; a crash in between leaves a sidecar whose ``file.sha256`` no longer matches,
    which a reader detects."""
    ins = []
    for p in inputs or []:
        if Path(p).is_file():
            name = Path(p).relative_to(root).as_posix() if root else Path(p).name
            ins.append({"path": name, "sha256": sha256_file(p)})
    prov = block(generated_at=generated_at, job_id=job_id, inputs=ins, schema_version=schema_version)
    for f in files:
        if Path(f).is_file():
            write_sidecar(f, prov)
