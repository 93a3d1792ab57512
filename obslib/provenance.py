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
