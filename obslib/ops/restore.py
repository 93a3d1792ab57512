"""Disaster recovery (``obs restore``): rebuild ``out/`` solely from what ``ops/`` keeps.

Sources (read-only):

- ``ops/dashboard_export_history/``: one snapshot per export naming the sha256 of each of
  its files, stored once each as gzip objects (``obslib.dashboard.history``), and the old
  layout's full copies ``<job_id>/``;
- ``ops/weekly_report_history/<week_start>.json``: the exact bytes delivered, and
  ``<week_start>.receipt.json`` with their ``payload_checksum_sha256``
  (written by ``obslib.weekly.delivery``).

Targets: ``out/dashboard/`` (manifest, README.json and the datasets of the newest history
entry whose every file matches its recorded bytes and sha256, staged as a new version
folder and switched in with one ``os.replace`` under the export lock, as an export does) and
``out/weekly_report/<week_start>/payload.json`` (the newest delivered week's bytes, checked
against the receipt). Files are copied byte for byte; a crash mid-restore leaves the old bundle or the
complete restored one.
Executed notebooks and HTML are not kept in history and are not restored.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import InputError, ValidationError
from ..safepath import check_identifier, check_relpath, contained
from ..storage import atomic_write_bytes, read_json, rel, sha256_bytes
from ..timeutil import parse_week_start

WEEK_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.json$")
PENDING_RE = re.compile(r"^\.(\d{4}-\d{2}-\d{2})\.pending\.json$")


def pick_dashboard_entry(cfg: Any, job_id: str | None = None) -> tuple[Any, list[str]]:
    """The history entry to restore: ``job_id``'s, else the newest intact one (by
    sequence). Returns ``(entry, skipped)`` where ``skipped`` lists newer entries passed
    over and why. Raises ``InputError`` when there is none (or ``job_id`` is missing),
    ``ValidationError`` when ``job_id``'s entry is damaged."""
    from ..dashboard.history import entry_problems, history_entries, history_root

    entries = history_entries(Path(cfg.ops_dir))
    skipped: list[str] = []
    if job_id:
        check_identifier(job_id, what="--job-id")
        match = [e for e in entries if job_id in (e.job_id, e.name)]
        if not match or match[0].files is None:
            raise InputError(rel(history_root(Path(cfg.ops_dir)) / job_id, cfg.work_root), "no readable history entry")
        probs = entry_problems(match[0])
        if probs:
            raise ValidationError(f"{rel(match[0].where, cfg.work_root)}: damaged history entry: {'; '.join(probs[:5])}")
        return match[0], skipped
    for e in reversed(entries):
        probs = entry_problems(e)
        if probs:
            skipped.append(f"{e.name}: {probs[0]}")
            continue
        return e, skipped
    why = f" ({'; '.join(skipped[:3])})" if skipped else ""
    raise InputError(rel(history_root(Path(cfg.ops_dir)), cfg.work_root), "no intact dashboard export in history: nothing "
                     f"to restore{why}")


def _repair_sources(cfg: Any) -> list[Path]:
    """Files that may hold a damaged history object's bytes: every file of the live
    bundle's version folders (newest first), then the old-layout history copies."""
    from ..dashboard import layout
    from ..dashboard.history import history_entries

    folders = list(reversed(layout.versions(cfg.work_root)))
    folders += [e.where for e in history_entries(Path(cfg.ops_dir)) if e.legacy]
    return [p for d in folders for p in sorted(d.iterdir()) if p.is_file() and not p.is_symlink()]


def restore_dashboard(cfg: Any, *, job_id: str | None = None, dry_run: bool = False) -> dict[str, Any]:
    """Restore a history entry as the bundle ``out/dashboard/`` (a new version folder,
    switched in under the export lock). History objects that are missing or damaged are
    first re-stored from any intact file with the same sha256 (``history.repair_objects``;
    not in a dry run). Returns ``{job_id, sequence, generated_at, files, skipped,
    objects{repaired, damaged}}`` (``files``: ``[{path, sha256}]`` relative to the work root)."""
    import os

    from ..dashboard import layout
    from ..dashboard.bundle import LOCK
    from ..dashboard.history import repair_objects
    from ..storage import file_lock, fsync_dir

    with file_lock(Path(cfg.ops_dir) / LOCK, cfg.lock_timeout_s):
        # a damaged object shared by every snapshot would make all of them unrestorable:
        # re-store it from any intact file with the same sha256 first (not in a dry run)
        objects = {"repaired": [], "damaged": []} if dry_run else repair_objects(Path(cfg.ops_dir), _repair_sources(cfg))
        entry, skipped = pick_dashboard_entry(cfg, job_id)
        manifest = entry.manifest() or {}
        dest = layout.bundle_dir(cfg.work_root)
        names = [f["path"] for f in entry.files or [] if f["path"] != "manifest.json"] + ["manifest.json"]
        files = []
        stage = None if dry_run else layout.new_stage(cfg.work_root, entry.job_id or entry.name)
        try:
            for name in names:
                check_relpath(name, what="history file path")
                data = entry.read(name)
                if stage is not None:  # each file must land inside the new version folder
                    contained(cfg.work_root, stage / name, what="restore target").write_bytes(data)
                files.append({"path": rel(dest / name, cfg.work_root), "sha256": sha256_bytes(data)})
            if stage is not None:
                for name in names:
                    with open(stage / name, "rb+") as fh:
                        os.fsync(fh.fileno())
                version = layout.versions_root(cfg.work_root) / f"{manifest.get('sequence', 0):010d}-restored-{os.getpid()}"
                os.rename(stage, version)
                fsync_dir(version.parent)
                layout.switch(cfg.work_root, version)
                stage = None
                layout.sweep(cfg.work_root)
        finally:
            if stage is not None:
                import shutil

                shutil.rmtree(stage, ignore_errors=True)
    return {"job_id": entry.job_id or entry.name, "sequence": manifest.get("sequence"),
            "generated_at": manifest.get("generated_at"), "files": files, "skipped": skipped, "objects": objects}


def restore_weekly(cfg: Any, *, week_start: str | None = None, dry_run: bool = False) -> dict[str, Any]:
    """Copy the delivered bytes of ``week_start`` (default: the newest delivered week) to
    ``out/weekly_report/<week_start>/payload.json``. Returns ``{week_start, path, sha256,
    webhook_id}``. Raises ``InputError`` when nothing was delivered, ``ValidationError``
    when the bytes do not match the receipt's checksum."""
    from ..weekly.delivery import history_dir, recover_history_locked

    hist = history_dir(cfg)
    if not dry_run:  # a delivery killed after its commit point is finished first (one unit)
        for j in sorted(hist.glob(".*.pending.json")) if hist.is_dir() else ():
            if PENDING_RE.match(j.name):
                recover_history_locked(cfg, PENDING_RE.match(j.name).group(1))
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
    dest = contained(cfg.work_root, Path(cfg.out_dir) / "weekly_report" / ws / "payload.json", what="restore target")
    if not dry_run:
        from ..weekly.job import recover_week

        recover_week(cfg, ws)  # never let a half-switched week folder override the restored bytes
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
