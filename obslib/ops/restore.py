"""Disaster recovery (``obs restore``): rebuild ``out/`` solely from what ``ops/`` keeps.

Sources (read-only):

- ``ops/dashboard_export_history/<job_id>/``: ``manifest.json``, ``README.json`` and every
  dataset file the manifest lists (written by ``obslib.dashboard.history.record_history``);
- ``ops/weekly_report_history/<week_start>.json``: the exact bytes delivered, and
  ``<week_start>.receipt.json`` with their ``payload_checksum_sha256``
  (written by ``obslib.weekly.delivery``).

Targets: ``out/dashboard/`` (manifest, README.json and the datasets of the newest history
entry whose every file matches its manifest's bytes and sha256) and
``out/weekly_report/<week_start>/payload.json`` (the newest delivered week's bytes, checked
against the receipt). Files are copied byte for byte, each written atomically, the
manifest last, so a crash mid-restore leaves an old manifest or the complete new bundle.
Executed notebooks and HTML are not kept in history and are not restored.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import InputError, ValidationError
from ..safepath import UnsafePath, check_identifier, check_relpath, contained
from ..storage import atomic_write_bytes, read_json, rel, sha256_bytes
from ..timeutil import parse_week_start

WEEK_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.json$")


def _entry_problems(folder: Path, manifest: dict) -> list[str]:
    out = []
    for e in manifest.get("datasets", []):
        try:  # a manifest names files; each must stay inside its entry (and later out/dashboard/)
            p = contained(folder, folder / check_relpath(e.get("path"), what="dataset path"), what="dataset path")
        except (UnsafePath, AttributeError) as exc:
            out.append(f"{str(e.get('path') if isinstance(e, dict) else e)[:80]}: unsafe path ({exc})")
            continue
        if not p.is_file():
            out.append(f"{e['path']}: missing")
            continue
        data = p.read_bytes()
        if len(data) != e.get("bytes") or sha256_bytes(data) != e.get("checksum_sha256"):
            out.append(f"{e['path']}: bytes/checksum differ from the manifest")
    return out


def pick_dashboard_entry(cfg: Any, job_id: str | None = None) -> tuple[Path, dict, list[str]]:
    """The history entry to restore: ``job_id``'s, else the newest intact one (by recorded
    time and sequence). Returns ``(folder, manifest, skipped)`` where ``skipped`` lists newer
    entries passed over and why. Raises ``InputError`` when there is none (or ``job_id``
    is missing), ``ValidationError`` when ``job_id``'s entry is damaged."""
    from ..dashboard.history import history_entries, history_root

    entries = history_entries(Path(cfg.ops_dir))
    skipped: list[str] = []
    if job_id:
        check_identifier(job_id, what="--job-id")
        match = [(d, m) for d, m in entries if d.name == job_id]
        if not match or match[0][1] is None:
            raise InputError(rel(history_root(Path(cfg.ops_dir)) / job_id, cfg.work_root), "no readable history entry")
        d, m = match[0]
        probs = _entry_problems(d, m)
        if probs:
            raise ValidationError(f"{rel(d, cfg.work_root)}: damaged history entry: {'; '.join(probs[:5])}")
        return d, m, skipped
    for d, m in reversed(entries):
        if m is None:
            skipped.append(f"{d.name}: unreadable manifest")
            continue
        probs = _entry_problems(d, m)
        if probs:
            skipped.append(f"{d.name}: {probs[0]}")
            continue
        return d, m, skipped
    raise InputError(rel(history_root(Path(cfg.ops_dir)), cfg.work_root), "no intact dashboard export in history: nothing "
                     "to restore")


def restore_dashboard(cfg: Any, *, job_id: str | None = None, dry_run: bool = False) -> dict[str, Any]:
    """Copy a history entry into ``out/dashboard/``. Returns ``{job_id, sequence, files,
    skipped}`` (``files``: ``[{path, sha256}]`` relative to the work root)."""
    folder, manifest, skipped = pick_dashboard_entry(cfg, job_id)
    dest = Path(cfg.out_dir) / "dashboard"
    names = [e["path"] for e in manifest.get("datasets", [])]
    if (folder / "README.json").is_file():
        names.append("README.json")
    names.append("manifest.json")  # last: the bundle is complete once it appears
    files = []
    for name in names:
        data = contained(folder, folder / name, what="history file").read_bytes()
        target = contained(dest, dest / check_relpath(name, what="restore target"), what="restore target")
        if not dry_run:
            atomic_write_bytes(target, data)
        files.append({"path": rel(target, cfg.work_root), "sha256": sha256_bytes(data)})
    return {"job_id": folder.name, "sequence": manifest.get("sequence"), "generated_at": manifest.get("generated_at"),
            "files": files, "skipped": skipped}


def restore_weekly(cfg: Any, *, week_start: str | None = None, dry_run: bool = False) -> dict[str, Any]:
    """Copy the delivered bytes of ``week_start`` (default: the newest delivered week) to
    ``out/weekly_report/<week_start>/payload.json``. Returns ``{week_start, path, sha256,
    webhook_id}``. Raises ``InputError`` when nothing was delivered, ``ValidationError``
    when the bytes do not match the receipt's checksum."""
    from ..weekly.delivery import history_dir

    hist = history_dir(cfg)
    if week_start:
        try:
            week_start = parse_week_start(week_start).date().isoformat()
        except ValueError as exc:
            raise InputError("--week-start", str(exc)) from exc
    weeks = sorted(m.group(1) for p in (hist.iterdir() if hist.is_dir() else ()) if (m := WEEK_RE.match(p.name)))
    if week_start:
        if week_start not in weeks:
            raise InputError(rel(hist / f"{week_start}.json", cfg.work_root), "no delivered payload for this week")
        ws = week_start
    elif weeks:
        ws = weeks[-1]
    else:
        raise InputError(rel(hist, cfg.work_root), "no delivered weekly payload in history: nothing to restore")
    body = (hist / f"{ws}.json").read_bytes()
    digest = sha256_bytes(body)
    receipt_p = hist / f"{ws}.receipt.json"
    receipt = read_json(receipt_p) if receipt_p.exists() else {}
    want = receipt.get("payload_checksum_sha256") if isinstance(receipt, dict) else None
    if want is None:
        raise ValidationError(f"{rel(receipt_p, cfg.work_root)}: no receipt with payload_checksum_sha256; not restored")
    if want != digest:
        raise ValidationError(f"{rel(hist / (ws + '.json'), cfg.work_root)}: sha256 {digest[:16]}... does not match the "
                              f"receipt ({want[:16]}...); not restored")
    dest = contained(cfg.out_dir, Path(cfg.out_dir) / "weekly_report" / ws / "payload.json", what="restore target")
    if not dry_run:
        atomic_write_bytes(dest, body)
    return {"week_start": ws, "path": rel(dest, cfg.work_root), "sha256": digest, "webhook_id": receipt.get("webhook_id")}


def restore(cfg: Any, ctx: Any, now: datetime, *, job_id: str | None = None, week_start: str | None = None,
            dry_run: bool = False) -> dict[str, Any]:
    """Restore both (the ``obs restore`` job body). A part with nothing in history is
    reported under ``missing`` and makes the run fail (exit 2) only when both are absent.
    Returns the job summary: ``{dashboard, weekly, missing, dry_run, _artefacts}``."""
    out: dict[str, Any] = {"dry_run": dry_run, "dashboard": None, "weekly": None, "missing": []}
    for key, fn, kw in (("dashboard", restore_dashboard, {"job_id": job_id}),
                        ("weekly", restore_weekly, {"week_start": week_start})):
        try:
            out[key] = fn(cfg, dry_run=dry_run, **kw)
        except InputError as exc:
            if kw[next(iter(kw))]:  # an explicitly requested entry must exist
                raise
            out["missing"].append(f"{key}: {exc}")
    if out["dashboard"] is None and out["weekly"] is None:
        raise InputError(rel(Path(cfg.ops_dir), cfg.work_root), "nothing to restore: " + "; ".join(out["missing"]))
    if not dry_run:
        arts = [f["path"] for f in (out["dashboard"] or {}).get("files", [])]
        if out["weekly"]:
            arts.append(out["weekly"]["path"])
        out["_artefacts"] = arts
    if out["missing"]:
        out["status"] = "warning"
    return out
