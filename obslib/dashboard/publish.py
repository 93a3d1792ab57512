"""``obs dashboard publish [--to <folder or fsspec URL>]``: copy a verified bundle to shared
storage, verify the copy, keep at least 60 days there; scheduled weekly (``schedule.py``,
``dashboard_publish``, Sunday 22:00 UTC: after the Sunday export, before the weekly report).

The destination is ``--to`` or ``[publish] to`` in ``obs.toml`` (``$OBS_PUBLISH_TO``); with
neither the job does nothing and says so (exit 0). It is checked before anything is
queued (``check_destination``, exit 2 with the reason): an fsspec protocol fsspec does not
know (or whose package is not installed) is refused; ``memory://`` is refused unless
``OBS_PUBLISH_ALLOW_MEMORY=1`` (it lives only as long as one process: useful in tests that
publish in-process, useless from cron); a relative folder is resolved against the work
root (not the current folder, which differs under cron), and a folder that is the work
root or lies under its ``out/`` or ``ops/`` is refused (pruning there could delete the
kit's own files). A destination that is valid but cannot be written (``/proc/self``, a
share that is down, a refused connection) is an upload failure: queued, exit 1, retried.

Queue and retry (``run_publish``, the job): the current bundle's export is queued in
``ops/dashboard_publish_state.json``, in the slot of this destination
(``publish_state``: ``{destinations: {<key>: {queue[{job_id, sequence, queued_at,
attempts, last_error}], consecutive_failures, last_published{job_id, sequence, uri,
published_at}, last_failure}}}``) unless already published there, so a new destination
always gets the current bundle; then the queue is worked oldest first, each
export copied from the bundle folder when it is the current one, else from its history
snapshot. A failed upload stays queued and is retried by the next run; each failed run
adds one to ``consecutive_failures`` and from ``alert_after_failures`` (2) on raises an
alert ``dashboard-publish-failed`` (critical, runbook ``#dashboard-publish``): sent
through the operations alert channel (``ops.notify``) and routed by
``alerting.router.route_alerts`` (source ``dashboard_publish``: recorded in
``ops/active_alerts.json``, PagerDuty and Slack, repeated until acknowledged) like every
other alert. A success resets the count and resolves the routed alert when no
destination is still failing.

Layout at the target: ``<to>/<job_id>/`` holds the bundle (dataset files, README.json,
manifest.json written last, so a copy without a manifest is visibly incomplete) and
``<to>/latest.json`` names the newest copy (``{job_id, sequence, generated_at}``). The
local bundle must verify first (nothing is copied otherwise). The copy is verified by
reading every file back through fsspec and comparing bytes and sha256 with the manifest.
Copies whose manifest ``generated_at`` is older than ``max(retention, 60 days)`` are
deleted (shared storage keeps at least 60 days whatever the local retention); the folder
name is never parsed for a date.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import fsspec
from fsspec.implementations.local import LocalFileSystem

from ..errors import ConfigError, ObsError
from ..safepath import UnsafePath, check_identifier, check_relpath, contained
from ..storage import atomic_write_json, file_lock, pretty_json_bytes, read_json_object, sha256_file
from ..timeutil import parse_ts
from .bundle import bundle_dir
from .publish_state import STATE, destination_key, is_url, local_destination, public_uri, slot
from .publish_state import read_state as _state
from .verify import Finding, verify_bundle


@dataclass
class PublishResult:
    target: str
    job_id: str | None = None
    files: int = 0
    pruned: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    uri: str | None = None

    def summary(self) -> dict:
        return {"target": self.target, "copied_job_id": self.job_id, "files": self.files,
                "pruned": self.pruned, "uri": self.uri}


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


MIN_KEEP_DAYS = 60  # shared storage keeps at least this much, whatever the local retention
LOCK = "dashboard_publish.lock"
JOB = "dashboard_publish"
MAX_QUEUE = 20
ALERT_ID = "dashboard-publish-failed"
MEMORY_ENV = "OBS_PUBLISH_ALLOW_MEMORY"


def check_destination(to: str, work_root: Path, env) -> str:
    """The destination to publish to: a URL as given, a local folder as an absolute path
    (a relative one against ``work_root``). Raises ``ConfigError`` (exit 2, nothing queued)
    for an unknown fsspec protocol or one whose package is missing, for ``memory://``
    without ``OBS_PUBLISH_ALLOW_MEMORY=1`` in ``env``, and for a local folder that is the
    work root or lies under its ``out/`` or ``ops/`` (see module doc)."""
    shown = public_uri(to)
    if is_url(to):
        proto = to.split("://", 1)[0]
        try:
            cls = fsspec.get_filesystem_class(proto)
        except ValueError:
            raise ConfigError(f"publish destination {shown}: unknown protocol {proto!r} (use a folder or an "
                              "fsspec URL such as s3://bucket/path)") from None
        except ImportError as exc:
            raise ConfigError(f"publish destination {shown}: protocol {proto!r} needs a package that is not "
                              f"installed ({exc})") from None
        if proto == "memory" and env.get(MEMORY_ENV) != "1":
            raise ConfigError(f"publish destination {shown}: memory:// lives only as long as this process, so "
                              f"nothing would be kept; set {MEMORY_ENV}=1 to allow it (tests)")
        if not issubclass(cls, LocalFileSystem):
            return to
        local = local_destination(to.split("://", 1)[1], work_root)
    else:
        local = local_destination(to, work_root)
    root = Path(work_root).resolve()
    target = Path(local).resolve()
    for own in (root / "out", root / "ops"):
        if target == root or target == own or own in target.parents:
            raise ConfigError(f"publish destination {local}: inside the work root's {own.name}/ (or the work root "
                              "itself); publish to a folder outside it (pruning there could delete the kit's files)")
    return to if is_url(to) else local


def publish_bundle(work_root: Path, to: str, *, now: datetime, retention_days: int,
                   source: Path | None = None) -> PublishResult:
    """Publish the bundle folder ``source`` (default: the current ``out/dashboard``
    version, resolved once so a switch meanwhile cannot mix two versions) to ``to`` (see
    module doc). Findings of the local or remote verification are returned (non-empty =
    failure). Raises ``ObsError`` when the target cannot be written."""
    res = PublishResult(target=to)
    local = source if source is not None else bundle_dir(work_root)
    local = local.resolve() if local.is_symlink() else local
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
        want = [(e["path"], e["bytes"], e["checksum_sha256"]) for e in manifest["datasets"]]
        want += [(n, (local / n).stat().st_size, sha256_file(local / n)) for n in ("README.json", "manifest.json")]
        for path, size, checksum in want:  # every file read back through fsspec
            e = {"path": path, "bytes": size, "checksum_sha256": checksum}
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
        res.uri = f"{public_uri(to).rstrip('/')}/{res.job_id}/"
        keep_days = max(retention_days, MIN_KEEP_DAYS)
        res.pruned = _prune(fs, root.rstrip("/"), now - timedelta(days=keep_days), keep=res.job_id)
    except (OSError, ValueError) as exc:
        raise ObsError(f"publish to {public_uri(to)}: {exc.__class__.__name__}: {exc}") from exc
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


# --- the scheduled job: queue, retry, alert ------------------------------------------------

def _history_source(work_root: Path, job_id: str, stage: Path) -> Path | None:
    """Materialise export ``job_id``'s history snapshot as a bundle folder in ``stage``
    (None when history has no intact entry for it)."""
    from .history import entry_problems, history_entries

    for e in history_entries(Path(work_root) / "ops"):
        if e.job_id == job_id and not entry_problems(e):
            stage.mkdir(parents=True, exist_ok=True)
            for f in e.files or []:
                contained(work_root, stage / check_relpath(f["path"], what="history file path"),
                          what="publish staging").write_bytes(e.read(f["path"]))
            return stage
    return None


def run_publish(cfg, ctx, now: datetime, *, to: str | None = None, env=None) -> dict:
    """The ``dashboard_publish`` job (see module doc). Returns the job summary:
    ``{status, destination, published[{job_id, uri}], queued[...], consecutive_failures,
    alerts, exit_code}``; ``status`` ``ok``, ``error`` (an upload failed: still queued) or
    ``ok`` with ``skipped`` when no destination is configured."""
    import shutil

    from ..heartbeat import write_heartbeat
    from ..timeutil import to_rfc3339
    from . import layout

    env = env if env is not None else os.environ
    dest = to or cfg.publish.to
    ops = Path(cfg.ops_dir)
    if not dest:
        return {"status": "ok", "skipped": "no destination: set [publish] to in obs.toml or $OBS_PUBLISH_TO",
                "destination": None}
    dest = check_destination(dest, Path(cfg.work_root), env)
    key = destination_key(dest, Path(cfg.work_root))
    published, errors, alerts = [], [], []
    with file_lock(ops / LOCK, cfg.lock_timeout_s):
        whole = _state(ops)
        st = slot(whole, key)
        was_alerting = st["consecutive_failures"] >= cfg.publish.alert_after_failures
        cur = layout.current_version(cfg.work_root)
        m = read_json_object(cur / "manifest.json") if cur is not None else None
        if m and "job_id" in m:  # it names folders at the target and in staging
            check_identifier(m["job_id"], what="out/dashboard/manifest.json job_id")
        last = st["last_published"] or {}
        if m and isinstance(m.get("job_id"), str) and m["job_id"] != last.get("job_id") and \
                all(q["job_id"] != m["job_id"] for q in st["queue"]):
            st["queue"].append({"job_id": m["job_id"], "sequence": m.get("sequence"), "queued_at": to_rfc3339(now),
                                "attempts": 0, "last_error": None})
        st["queue"] = st["queue"][-MAX_QUEUE:]
        while st["queue"]:
            item = st["queue"][0]
            check_identifier(item["job_id"], what=f"ops/{STATE} queued job_id")
            stage = layout.versions_root(cfg.work_root) / layout.temp_name("pub", item["job_id"])
            try:
                if m and m.get("job_id") == item["job_id"]:
                    source = cur
                else:
                    source = _history_source(cfg.work_root, item["job_id"], stage)
                if source is None:  # gone from history (retention): nothing left to send
                    st["queue"].pop(0)
                    errors.append(f"{item['job_id']}: no intact bundle left locally: dropped from the queue")
                    continue
                try:
                    res = publish_bundle(cfg.work_root, dest, now=now, retention_days=cfg.publish.retention_days,
                                         source=source)
                except UnsafePath:
                    raise
                except ObsError as exc:
                    res = PublishResult(target=dest, findings=[Finding("upload_failed", dest, str(exc))])
            finally:
                shutil.rmtree(stage, ignore_errors=True)
            if res.findings:
                item["attempts"] = int(item.get("attempts") or 0) + 1
                item["last_error"] = "; ".join(str(f) for f in res.findings[:3])[:1000]
                errors.append(f"{item['job_id']}: {item['last_error']}")
                break
            st["queue"].pop(0)
            st["last_published"] = {"job_id": res.job_id, "sequence": item.get("sequence"), "uri": res.uri,
                                    "published_at": to_rfc3339(now)}
            published.append({"job_id": res.job_id, "uri": res.uri, "files": res.files, "pruned": res.pruned})
        failed = bool(st["queue"]) and bool(errors)
        if failed:
            st["consecutive_failures"] += 1
            st["last_failure"] = {"at": to_rfc3339(now), "job_id": ctx.job_id, "error": errors[-1][:1000]}
        else:
            st["consecutive_failures"] = 0
        atomic_write_json(ops / STATE, whole)
        write_heartbeat(ops, JOB, ctx.job_id, now, "error" if failed else "ok",
                        {"queued": len(st["queue"]), "consecutive_failures": st["consecutive_failures"]},
                        error=errors[-1][:300] if failed else None)
    ctx.artefacts.extend([f"ops/{STATE}", f"ops/{JOB}_heartbeat.json"])
    if failed and st["consecutive_failures"] >= cfg.publish.alert_after_failures:
        alerts = _alert(cfg, ctx, now, st, key, env)
    elif not failed and was_alerting and not any(
            s["consecutive_failures"] >= cfg.publish.alert_after_failures for s in whole["destinations"].values()):
        _route(cfg, ctx, now, [{"id": ALERT_ID, "severity": "resolved"}], env)
    out = {"status": "error" if failed else "ok", "destination": key, "published": published,
           "queued": [q["job_id"] for q in st["queue"]], "consecutive_failures": st["consecutive_failures"],
           "alerts": alerts}
    if failed:
        out.update(exit_code=1, error=f"upload failed, still queued ({st['consecutive_failures']} run(s) in a row): "
                                      f"{errors[-1][:300]}")
    return out


def _alert(cfg, ctx, now: datetime, st: dict, dest: str, env) -> list[dict]:
    from ..alerts import make_alert
    from ..ops.notify import alert_document, send_alerts

    alert = make_alert(ALERT_ID, "critical",
                       f"dashboard publish to {dest} failed {st['consecutive_failures']} runs in a row; "
                       f"{len(st['queue'])} export(s) queued (oldest {st['queue'][0]['job_id']})",
                       anchor="dashboard-publish", owner=cfg.owner, runbook=cfg.runbook)
    doc = alert_document([alert], job_id=ctx.job_id, now=now, report=f"ops/{STATE}")
    delivery = send_alerts(doc, cfg=cfg, ctx=ctx, now=now, env=env)
    if delivery.get("file"):
        ctx.artefacts.append(delivery["file"])
    routed = _route(cfg, ctx, now, [alert], env)
    return [{**alert, "delivery": delivery["status"], "file": delivery.get("file"), "routed": routed}]


def _route(cfg, ctx, now: datetime, alerts: list[dict], env) -> dict:
    """``alerts`` through the alert router (as the nightly check and the weekly job do):
    recorded in ``ops/active_alerts.json`` and sent to the configured channels. Returns
    the router's brief report."""
    from ..alerting.destinations import Destinations
    from ..alerting.router import brief, route_alerts
    from ..webhook import Budget

    dest = getattr(ctx, "destinations", None) or Destinations.from_env(env, cfg)
    return brief(route_alerts(alerts, cfg=cfg, ctx=ctx, now=now, dest=dest, source=JOB,
                              budget=Budget(cfg.alerts.ops_budget_s)))
