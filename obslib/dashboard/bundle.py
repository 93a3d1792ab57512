"""``obs dashboard export``: build, check and publish datasets as one bundle.

For each selected dataset: build it, encode it as canonical JSON and check it (schema +
row rules, ``rules.py``; the document carries the provenance block in-band), encode the
Parquet file (its schema metadata carries the same block under ``obslib.provenance``), and
write both into this run's private
staging folder (``layout.new_stage``). A dataset that fails (a rule, an input error) is
**not** published: its previous files and manifest entries stay, the failure names the
dataset and the rule, the other datasets are still published, and the result says
``failed`` (the CLI exits non-zero). New history objects are compressed off the lock.

Then, under the export lock (``ops/dashboard_export.lock``, bounded wait):

1. stale staging/temp files of killed runs are swept (``layout.sweep``, ``history.sweep_history``);
2. ``sequence`` = one more than any recorded (``history.next_sequence``), stored durably;
3. the staging folder is completed: entries of datasets not exported now are carried
   from the current bundle (hard links) when their file still has the recorded checksum
   (from the newest history manifest when the current manifest is missing or corrupt); a
   freshly built dataset whose content (``content_sha256``: the JSON bytes without their
   ``generated_at`` and ``provenance`` values) equals the current bundle's keeps the
   current files byte for byte, so an unchanged dataset costs nothing in history;
4. ``manifest.json``: ``{schema_version, sequence, generated_at, job_id, datasets[{name,
   format, path, bytes, checksum_sha256, content_sha256, rows, generated_at, warnings,
   provenance{source_command, commit_sha, job_id, data_root, inputs[{path, sha256}]}}]}``
   and ``README.json`` (what each dataset is, when refreshed, how to refresh, and the
   provenance block with the commit) are written into the staging folder;
5. the staging folder is verified (every listed file's bytes and streamed sha256) and
   renamed to ``out/dashboard.versions/<sequence>-<job_id>``, and ``out/dashboard`` is
   switched to it in one ``os.replace`` (``layout.switch``): readers see the whole
   previous bundle or the whole new one;
6. the history snapshot (``history.record_snapshot``; objects stored once by sha256),
   retention pruning, and old version folders removed;
7. the heartbeat ``ops/dashboard_export_heartbeat.json``: ``job_id, generated_at,
   sequence, status, datasets{name: {status, rows, rule, error, warnings}},
   last_success_at, last_failure, provenance``.

A kill at any point leaves the previous bundle and history intact (each step above is
one rename, or writes only into the private staging folder); what a killed run left is
swept by the next run. Input paths in provenance are relative to the data root, except
``ops/signal_latency_rollup.csv`` which is relative to the kit's work root.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pyarrow as pa

from ..config import check_finite
from ..errors import ObsError, ValidationError
from ..provenance import block, input_entries
from ..safepath import check_identifier
from ..storage import fsync_dir, pretty_json_bytes, read_json_object, sha256_bytes, sha256_file
from ..timeutil import to_rfc3339
from . import DATASETS, DEFAULT_PIP_VALUE, FORMATS, SCHEMA_VERSION, _faults, layout
from .columns import SPECS, refresh_command
from .datasets import DatasetResult, build_ev_history, build_latency_rollups, build_slippage_telemetry
from .history import (
    commit_objects,
    history_entries,
    next_sequence,
    prune_history,
    record_snapshot,
    stage_objects,
    store_sequence,
    sweep_history,
)
from .inputkey import input_key
from .layout import bundle_dir  # noqa: F401 - re-exported (report.py, job.py)
from .parquet import parquet_bytes
from .result import ExportResult  # its own module: the notebook reads it without importing the export
from .rules import encode_and_check, schema_file
from .schema_check import validate
from .staging import Stager
from .turnover import build_turnover_summary

HEARTBEAT = "dashboard_export_heartbeat.json"
LOCK = "dashboard_export.lock"
NOTEBOOK_FILES = ("dashboard_bundle.ipynb", "dashboard_bundle.html")  # carried from version to version
REUSE, REUSED = "reuse", "reused"  # markers in the prepared map: inputs unchanged (see inputkey.py)
WARNING_TEXTS = 20  # warning texts per dataset carried in ExportResult.warnings


@dataclass
class ExportRequest:
    """What to export. ``data_label`` names the data root inside artefacts (never an
    absolute path); ``retention_days`` applies to the history."""

    names: list[str]
    data_root: Path
    work_root: Path
    now: datetime
    job_id: str
    command: str
    commit_sha: str | None
    data_label: str
    pip_value: float = DEFAULT_PIP_VALUE
    retention_days: int = 56
    lock_timeout_s: float = 30.0

    def __post_init__(self) -> None:  # the job id names history and temp files
        check_identifier(self.job_id, what="job_id")
        self.pip_value = check_finite(self.pip_value, what="pip_value", minimum=0, exclusive=True)
        unknown = [n for n in self.names if n not in DATASETS]
        if unknown:
            raise ObsError(f"unknown dataset name(s) {unknown!r}: known {', '.join(DATASETS)}")


def select(dataset: str) -> list[str]:
    """``all`` -> every dataset; a name -> [name]. Raises ``ObsError`` for an unknown name."""
    if dataset == "all":
        return list(DATASETS)
    if dataset not in DATASETS:
        raise ObsError(f"--dataset {dataset!r} is not one of all, {', '.join(DATASETS)}")
    return [dataset]


def build(name: str, req: ExportRequest) -> DatasetResult:
    """Run the builder of dataset ``name``."""
    if name == "ev_history":
        return build_ev_history(req.data_root)
    if name == "slippage_telemetry":
        return build_slippage_telemetry(req.data_root, req.now)
    if name == "turnover_summary":
        return build_turnover_summary(req.data_root, pip_value=req.pip_value)
    return build_latency_rollups(req.work_root)


def _inputs(res: DatasetResult, req: ExportRequest) -> list[dict]:
    data = input_entries(req.data_root, [p for base, p in res.inputs if base == "data"])
    work = input_entries(req.work_root, [p for base, p in res.inputs if base == "work"])
    return sorted(data + work, key=lambda d: d["path"])


def _compact(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def content_sha256(data: bytes, volatile: list[bytes]) -> str:
    """sha256 of a dataset document without its ``volatile`` members (the exact
    ``"generated_at":"...",`` and ``"provenance":{...},`` texts of its head): the parts
    that change when the same content is exported again."""
    view, h, pos = memoryview(data), hashlib.sha256(), 0
    spans = sorted((k, len(v)) for v in volatile if (k := data.find(v, 0, 1 << 22)) >= 0)
    for k, n in spans:
        h.update(view[pos:k])
        pos = k + n
    h.update(view[pos:])
    return h.hexdigest()


def _prepare(name: str, req: ExportRequest, stager: Stager
             ) -> tuple[dict[str, tuple[int, str]] | None, dict, list[dict] | None]:
    """Build and encode one dataset: ``(files {name: (bytes, sha256)} or None, status,
    provenance inputs or None)`` (hashes taken here, off the lock and alongside the other
    datasets). The ``stager`` writes the JSON while it is encoded and the Parquet file once
    made (both discarded when the dataset fails). ``status`` has ``content_sha256``."""
    try:
        res = build(name, req)
    except ObsError as exc:
        return None, {"status": "failed", "rows": None, "rule": "input", "error": f"{name}: {exc}"}, None
    except Exception as exc:  # noqa: BLE001 - one dataset's failure never stops the others (#12)
        return None, {"status": "failed", "rows": None, "rule": "internal",
                      "error": f"{name}: internal error: {exc.__class__.__name__}: {str(exc)[:300]}"}, None
    files, status, inputs = _encode(name, req, stager, res)
    return files, {**status, "warning_texts": res.warnings[:WARNING_TEXTS]}, inputs


def _encode(name: str, req: ExportRequest, stager: Stager, res: DatasetResult
            ) -> tuple[dict[str, tuple[int, str]] | None, dict, list[dict] | None]:
    """``_prepare`` once the dataset is built."""
    inputs = _inputs(res, req)
    prov = block(generated_at=req.now, source_command=req.command, commit=req.commit_sha or None, job_id=req.job_id,
                 inputs=inputs, schema_version=SCHEMA_VERSION, dataset=name, data_root=req.data_label,
                 parameters={"pip_value": float(req.pip_value)} if name == "turnover_summary" else {})
    data, violations = encode_and_check(name, res.frame, req.now, res.warnings, sink=stager.stream(f"{name}.json"),
                                        provenance=prov)
    if data is None:
        stager.discard(f"{name}.json")
        msg = f"{name}: " + "; ".join(str(v) for v in violations)
        return None, {"status": "failed", "rows": len(res.frame), "rule": violations[0].rule, "error": msg,
                      "warnings": len(res.warnings)}, None
    stager.end(f"{name}.json")
    try:
        pq_bytes = parquet_bytes(name, res.frame, prov)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
        stager.discard(f"{name}.json")
        return None, {"status": "failed", "rows": len(res.frame), "rule": "parquet_schema",
                      "error": f"{name}: value does not fit the Parquet schema: {exc}"}, None
    stager.stage(f"{name}.parquet", pq_bytes)
    return ({f"{name}.json": (len(data), sha256_bytes(data)), f"{name}.parquet": (len(pq_bytes), sha256_bytes(pq_bytes))},
            {"status": "ok", "rows": len(res.frame), "rule": None, "error": None, "warnings": len(res.warnings),
             "content_sha256": content_sha256(data, [b'"generated_at":' + _compact(to_rfc3339(req.now)) + b",",
                                                     b'"provenance":' + _compact(prov) + b","])},
            inputs)


def _prepare_all(req: ExportRequest, stager: Stager, skip: set[str] = frozenset(),
                 keys: dict[str, str | None] | None = None) -> dict[str, tuple]:
    """``_prepare`` of every selected dataset not in ``skip``, two at a time (threads: the
    heavy parts, CSV parsing, numpy and Parquet encoding, release the GIL). Results in
    ``req.names`` order; an unexpected exception of a builder is re-raised as it would be
    when run in turn. ``keys``: input keys recorded in the statuses."""
    names = [n for n in req.names if n not in skip]
    if len(names) < 2:
        out = {n: _prepare(n, req, stager) for n in names}
    else:
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="dashboard-export") as pool:
            futures = {n: pool.submit(_prepare, n, req, stager) for n in names}
            out = {n: f.result() for n, f in futures.items()}
    for n, (_, status, _) in out.items():
        status["input_key"] = (keys or {}).get(n)
    return out


def _previous_manifest(cur: Path | None, ops: Path) -> dict:
    """The current bundle's manifest, else (missing or corrupt) the newest history one."""
    manifest = read_json_object(cur / "manifest.json") if cur is not None else None
    if manifest is None or not isinstance(manifest.get("datasets"), list):
        hist = [m for e in reversed(history_entries(ops)) if (m := e.manifest()) and isinstance(m.get("datasets"), list)]
        manifest = hist[0] if hist else {"datasets": []}
    return manifest


def _intact(cur: Path | None, e: dict) -> bool:
    """The current bundle still holds entry ``e``'s file with its recorded bytes."""
    try:
        p = cur / e["path"]  # type: ignore[operator]
        return p.is_file() and p.stat().st_size == e["bytes"] and sha256_file(p) == e["checksum_sha256"]
    except (TypeError, KeyError, OSError):
        return False


def export_bundle(req: ExportRequest) -> ExportResult:
    """Export ``req.names`` (see module doc). Raises ``LockTimeout`` when another export
    holds the lock, ``ValidationError`` if the manifest itself would be invalid (a bug).
    Datasets are built and their files written into the staging folder before the lock is
    taken; under the lock the bundle is completed and switched in one rename."""
    ops = Path(req.work_root) / "ops"
    stage = layout.new_stage(req.work_root, req.job_id)
    pending: dict[str, Path] = {}
    try:
        _faults.checkpoint("stage_created")
        cur = layout.current_version(req.work_root)
        prev = {e.get("path"): e for e in (read_json_object(cur / "manifest.json") or {}).get("datasets", [])
                if isinstance(e, dict)} if cur is not None else {}
        keys = {n: input_key(n, req.data_root, pip_value=req.pip_value, data_label=req.data_label) for n in req.names}
        reuse = {n: k for n, k in keys.items() if k is not None and all(
            (prev.get(f"{n}.{fmt}") or {}).get("input_key") == k for fmt in FORMATS)}
        with Stager(stage) as stager:
            prepared = _prepare_all(req, stager, skip=set(reuse), keys=keys)
            stager.wait()
        prepared.update({n: (REUSE, {"input_key": k}, None) for n, k in reuse.items()})
        unchanged = {(prev.get(f"{n}.json") or {}).get("content_sha256") for n in req.names}
        sources = {sha: stage / fname for files, status, _ in prepared.values()
                   if isinstance(files, dict) and status.get("content_sha256") not in unchanged
                   for fname, (_, sha) in files.items()}  # unchanged content keeps the stored objects
        pending = stage_objects(ops, sources)
        _faults.checkpoint("objects_staged")
        from ..storage import file_lock

        with file_lock(ops / LOCK, req.lock_timeout_s):
            return _publish_locked(req, stage, ops, prepared, pending)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        for tmp in pending.values():
            tmp.unlink(missing_ok=True)


def _entry(name: str, fname: str, size: int, checksum: str, status: dict, req: ExportRequest,
           inputs: list[dict]) -> dict:
    return {"name": name, "format": fname.rsplit(".", 1)[1], "path": fname, "bytes": size,
            "checksum_sha256": checksum, "content_sha256": status["content_sha256"], "rows": status["rows"],
            **({"input_key": status["input_key"]} if status.get("input_key") else {}),
            "generated_at": to_rfc3339(req.now), "warnings": status["warnings"],
            "provenance": {"source_command": req.command, "commit_sha": req.commit_sha, "job_id": req.job_id,
                           "data_root": req.data_label, "inputs": inputs}}


def _carry_extras(cur: Path | None, stage: Path, listed: set[str]) -> None:
    """Hard-link the notebook outputs and ``failed/`` of the current version into the new one."""
    if cur is None:
        return
    for name in NOTEBOOK_FILES:
        if name not in listed and (cur / name).is_file():
            layout.link_or_copy(cur / name, stage / name)
    failed = cur / "failed"
    if failed.is_dir():
        (stage / "failed").mkdir(exist_ok=True)
        for p in failed.iterdir():
            if p.is_file() and not p.name.startswith("."):
                layout.link_or_copy(p, stage / "failed" / p.name)


def check_staged(stage: Path, manifest: dict, checked: set[str] = frozenset()) -> None:
    """The export's own verification: every listed file in ``stage`` has the manifest's
    bytes and sha256 (streamed; files in ``checked`` were hashed on disk moments ago, as
    they were linked in, and are only size-checked). Raises ``ValidationError``."""
    for e in manifest["datasets"]:
        p = stage / e["path"]
        if not p.is_file() or p.stat().st_size != e["bytes"] or (
                e["path"] not in checked and sha256_file(p) != e["checksum_sha256"]):
            raise ValidationError(f"staged bundle file {e['path']} does not match its manifest entry")


def _publish_locked(req: ExportRequest, stage: Path, ops: Path, prepared: dict[str, tuple],
                    pending: dict[str, Path]) -> ExportResult:
    """Sweep, sequence, complete the staging folder, switch, history, heartbeat (lock held)."""
    work = Path(req.work_root)
    layout.sweep(work)
    sweep_history(ops)
    _faults.checkpoint("swept")
    cur = layout.current_version(work)
    seq = next_sequence(ops, cur / "manifest.json" if cur is not None else stage / "manifest.json")
    result = ExportResult(sequence=seq)
    prev = _previous_manifest(cur, ops)
    prev_by_path = {e.get("path"): e for e in prev["datasets"] if isinstance(e, dict)}
    checked: set[str] = set()  # files whose sha256 was just checked (the export's own verification)
    for name, (files, status, _) in list(prepared.items()):
        if files is not REUSE:
            continue
        olds = [prev_by_path.get(f"{name}.{fmt}") for fmt in FORMATS]
        if all(o is not None and o.get("input_key") == status["input_key"] and _intact(cur, o) for o in olds):
            prepared[name] = (REUSED, {"status": "ok", "rows": olds[0]["rows"], "rule": None, "error": None,
                                       "warnings": olds[0].get("warnings", 0)}, olds)
        else:  # the bundle changed meanwhile: build it now after all (rare)
            with Stager(stage) as stager:
                prepared[name] = _prepare(name, req, stager)
                stager.wait()
            prepared[name][1]["input_key"] = status["input_key"]
    fresh = {n for n, (files, _, _) in prepared.items() if files is not None}
    entries = [e for e in prev["datasets"] if isinstance(e, dict) and e.get("name") not in fresh and _intact(cur, e)]
    for name, (files, status, olds) in prepared.items():
        if files is REUSED:  # inputs unchanged: the current files and entries, confirmed now
            result.datasets[name] = status
            entries += [{**o, "generated_at": to_rfc3339(req.now)} for o in olds]
            result.published.append(name)
    for e in entries:
        layout.link_or_copy(cur / e["path"], stage / e["path"])  # type: ignore[operator]
        checked.add(e["path"])
    for name, (files, status, inputs) in prepared.items():
        if files is REUSED:
            continue
        result.datasets[name] = {k: v for k, v in status.items()
                                 if k not in ("content_sha256", "input_key", "warning_texts")}
        result.warnings[name] = status.get("warning_texts", [])
        if files is None:
            result.failed.append({"dataset": name, "rule": status["rule"], "error": status["error"]})
            continue
        olds = [prev_by_path.get(f) for f in files]
        same = all(o is not None and o.get("content_sha256") == status["content_sha256"] and _intact(cur, o)
                   for o in olds)
        for fname, (size, checksum) in files.items():
            if same:  # unchanged content: keep the current bytes (and their first generated_at)
                old = prev_by_path[fname]
                (stage / fname).unlink()
                layout.link_or_copy(cur / fname, stage / fname)  # type: ignore[operator]
                size, checksum = old["bytes"], old["checksum_sha256"]
                checked.add(fname)
            entries.append(_entry(name, fname, size, checksum, status, req, inputs))
        result.published.append(name)
    order = {n: i for i, n in enumerate(DATASETS)}
    entries.sort(key=lambda e: (order.get(e["name"], 99), e["format"]))
    manifest = {"schema_version": SCHEMA_VERSION, "sequence": seq, "generated_at": to_rfc3339(req.now),
                "job_id": req.job_id, "datasets": entries}
    readme = readme_doc(manifest, req)
    manifest["provenance"] = readme["provenance"]
    validate(manifest, "manifest", "dashboard manifest")
    validate(readme, "readme", "dashboard README.json")
    listed = {e["path"] for e in entries}
    _carry_extras(cur, stage, listed)
    readme_bytes, manifest_bytes = pretty_json_bytes(readme), pretty_json_bytes(manifest)
    for fname, data in (("README.json", readme_bytes), ("manifest.json", manifest_bytes)):
        with open(stage / fname, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    check_staged(stage, manifest, checked)
    fsync_dir(stage)
    _faults.checkpoint("staged_complete")
    store_sequence(ops, seq)
    _faults.checkpoint("sequence_stored")
    version = layout.versions_root(work) / f"{seq:010d}-{req.job_id}"
    os.rename(stage, version)
    fsync_dir(version.parent)
    _faults.checkpoint("version_renamed")
    layout.switch(work, version)
    _faults.checkpoint("switched")
    files = sorted(listed) + ["README.json", "manifest.json"]
    shas = {e["path"]: (e["checksum_sha256"], e["bytes"]) for e in entries}
    shas["README.json"] = (sha256_bytes(readme_bytes), len(readme_bytes))
    shas["manifest.json"] = (sha256_bytes(manifest_bytes), len(manifest_bytes))
    commit_objects(ops, pending, {shas[f][0]: version / f for f in files})
    _faults.checkpoint("objects_committed")
    record_snapshot(ops, seq, req.job_id, manifest["generated_at"],
                    [{"path": f, "sha256": shas[f][0], "bytes": shas[f][1]} for f in files])
    _faults.checkpoint("snapshot_recorded")
    result.pruned = prune_history(ops, req.now, req.retention_days)
    layout.sweep(work)
    _faults.checkpoint("pruned")
    write_heartbeat(ops, req, result)
    _faults.checkpoint("heartbeat_written")
    result.artefacts = [f"out/dashboard/{f}" for f in files] + [f"ops/{HEARTBEAT}"]
    return result


def readme_doc(manifest: dict, req: ExportRequest | None = None) -> dict:
    """README.json content for a manifest (with the provenance block of the export)."""
    by_name: dict[str, list[dict]] = {}
    for e in manifest["datasets"]:
        by_name.setdefault(e["name"], []).append(e)
    out = []
    inputs: dict[str, dict] = {}
    for name in DATASETS:
        es = by_name.get(name, [])
        for e in es:
            for i in e.get("provenance", {}).get("inputs", []):
                inputs[i["path"]] = i
        out.append({"name": name, "description": SPECS[name].description, "key": list(SPECS[name].key),
                    "files": sorted(e["path"] for e in es), "schema": f"schemas/{schema_file(name)}",
                    "refreshed_at": max((e["generated_at"] for e in es), default=None),
                    "refresh_command": refresh_command(name)})
    from ..timeutil import parse_ts

    prov = block(generated_at=parse_ts(manifest["generated_at"]),
                 source_command=req.command if req else None, commit=req.commit_sha if req else None,
                 job_id=manifest["job_id"], inputs=sorted(inputs.values(), key=lambda d: d["path"]),
                 schema_version=SCHEMA_VERSION)
    return {"schema_version": SCHEMA_VERSION, "generated_at": manifest["generated_at"],
            "sequence": manifest["sequence"], "datasets": out, "provenance": prov}


def write_heartbeat(ops: Path, req: ExportRequest, result: ExportResult) -> dict:
    """Write ``ops/dashboard_export_heartbeat.json`` (carrying last_success_at and
    last_failure forward from the previous heartbeat). Returns it."""
    from ..storage import atomic_write_json

    prev = read_json_object(ops / HEARTBEAT) or {}
    now = to_rfc3339(req.now)
    datasets = {n: {"status": "not_selected"} for n in DATASETS}
    datasets.update({n: {k: v for k, v in s.items() if v is not None or k in ("rule", "error")}
                     for n, s in result.datasets.items()})
    hb = {"schema_version": SCHEMA_VERSION, "job_id": req.job_id, "generated_at": now, "sequence": result.sequence,
          "status": "ok" if result.ok else "failed", "datasets": datasets,
          "last_success_at": now if result.ok else prev.get("last_success_at"),
          "last_failure": ({"at": now, "job_id": req.job_id, "failures": result.failed} if result.failed
                           else prev.get("last_failure")),
          "provenance": block(generated_at=req.now, source_command=req.command, commit=req.commit_sha or None,
                              job_id=req.job_id, schema_version=SCHEMA_VERSION)}
    try:
        validate(hb, "heartbeat", "dashboard heartbeat")
    except ValidationError:  # a corrupt previous heartbeat: do not carry its values forward
        if result.ok:
            hb["last_failure"] = None
        else:
            hb["last_success_at"] = None
        validate(hb, "heartbeat", "dashboard heartbeat")
    atomic_write_json(ops / HEARTBEAT, hb)
    return hb
