"""``obs dashboard export``: build, check and publish datasets into ``out/dashboard/``.

For each selected dataset: build it, encode it as canonical JSON and check it (schema +
row rules, ``rules.py``), encode the Parquet file, then write both files atomically.
A dataset that fails (a rule, an input error) is **not** published: its previous files
and manifest entries stay, the failure names the dataset and the rule, the other
datasets are still published, and the result says ``failed`` (the CLI exits non-zero).

Then, under the export lock (``ops/dashboard_export.lock``, bounded wait):

1. ``sequence`` = one more than any recorded (``history.next_sequence``), stored durably;
2. ``out/dashboard/manifest.json``: ``{schema_version, sequence, generated_at, job_id,
   datasets[{name, format, path, bytes, checksum_sha256, rows, generated_at, warnings,
   provenance{source_command, commit_sha, job_id, data_root, inputs[{path, sha256}]}}]}``.
   Entries of datasets not exported now are carried from the previous manifest (or, when
   it is missing or corrupt, from the newest history manifest) if their file still has
   the recorded checksum;
3. ``out/dashboard/README.json`` (what each dataset is, when refreshed, how to refresh);
4. the history entry ``ops/dashboard_export_history/<job_id>/`` and retention pruning;
5. the heartbeat ``ops/dashboard_export_heartbeat.json``: ``job_id, generated_at,
   sequence, status, datasets{name: {status, rows, rule, error, warnings}},
   last_success_at, last_failure``.

Input paths in provenance are relative to the data root, except
``ops/signal_latency_rollup.csv`` which is relative to the kit's work root.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pyarrow as pa

from ..errors import ObsError, ValidationError
from ..provenance import input_entries
from ..safepath import check_identifier
from ..schemas import validate
from ..storage import atomic_write_json, file_lock, fsync_dir, read_json_object, sha256_bytes, sha256_file
from ..timeutil import to_rfc3339
from . import DATASETS, DEFAULT_PIP_VALUE, SCHEMA_VERSION
from .columns import SPECS, refresh_command
from .datasets import DatasetResult, build_ev_history, build_latency_rollups, build_slippage_telemetry
from .history import (
    history_entries,
    history_root,
    next_sequence,
    prune_history,
    record_history,
    store_sequence,
)
from .parquet import parquet_bytes
from .rules import encode_and_check, schema_file
from .staging import Stager
from .turnover import build_turnover_summary

HEARTBEAT = "dashboard_export_heartbeat.json"
LOCK = "dashboard_export.lock"


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
        unknown = [n for n in self.names if n not in DATASETS]
        if unknown:
            raise ObsError(f"unknown dataset name(s) {unknown!r}: known {', '.join(DATASETS)}")


@dataclass
class ExportResult:
    sequence: int
    published: list[str] = field(default_factory=list)
    failed: list[dict] = field(default_factory=list)
    datasets: dict[str, dict] = field(default_factory=dict)
    pruned: list[str] = field(default_factory=list)
    artefacts: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> dict:
        return {"sequence": self.sequence, "published": self.published, "failed": self.failed,
                "datasets": self.datasets, "history_pruned": len(self.pruned)}


def bundle_dir(work_root: Path) -> Path:
    """``<work_root>/out/dashboard``."""
    return Path(work_root) / "out" / "dashboard"


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


def _prepare(name: str, req: ExportRequest, stager: Stager
             ) -> tuple[dict[str, tuple[bytes, str]] | None, dict, list[dict] | None]:
    """Build and encode one dataset: ``(files {name: (bytes, sha256)} or None, status,
    provenance inputs or None)`` (hashes taken here, off the lock and alongside the other
    datasets). The ``stager`` writes the JSON while it is encoded and the Parquet file once
    made (both discarded when the dataset fails)."""
    try:
        res = build(name, req)
    except ObsError as exc:
        return None, {"status": "failed", "rows": None, "rule": "input", "error": f"{name}: {exc}"}, None
    data, violations = encode_and_check(name, res.frame, req.now, res.warnings, sink=stager.stream(f"{name}.json"))
    if data is None:
        stager.discard(f"{name}.json")
        msg = f"{name}: " + "; ".join(str(v) for v in violations)
        return None, {"status": "failed", "rows": len(res.frame), "rule": violations[0].rule, "error": msg,
                      "warnings": len(res.warnings)}, None
    stager.end(f"{name}.json")
    try:
        pq_bytes = parquet_bytes(name, res.frame)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError) as exc:
        stager.discard(f"{name}.json")
        return None, {"status": "failed", "rows": len(res.frame), "rule": "parquet_schema",
                      "error": f"{name}: value does not fit the Parquet schema: {exc}"}, None
    stager.stage(f"{name}.parquet", pq_bytes)
    return ({f"{name}.json": (data, sha256_bytes(data)), f"{name}.parquet": (pq_bytes, sha256_bytes(pq_bytes))},
            {"status": "ok", "rows": len(res.frame), "rule": None, "error": None, "warnings": len(res.warnings)},
            _inputs(res, req))


def _prepare_all(req: ExportRequest, stager: Stager) -> dict[str, tuple]:
    """``_prepare`` of every selected dataset, two at a time (threads: the heavy parts, CSV
    parsing, numpy and Parquet encoding, release the GIL). Results in ``req.names`` order;
    an unexpected exception of a builder is re-raised as it would be when run in turn."""
    if len(req.names) < 2:
        return {n: _prepare(n, req, stager) for n in req.names}
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="dashboard-export") as pool:
        futures = {n: pool.submit(_prepare, n, req, stager) for n in req.names}
        return {n: f.result() for n, f in futures.items()}


def _previous_entries(out: Path, ops: Path) -> list[dict]:
    manifest = read_json_object(out / "manifest.json")
    if manifest is None or not isinstance(manifest.get("datasets"), list):
        hist = [m for _, m in history_entries(ops) if m and isinstance(m.get("datasets"), list)]
        manifest = hist[-1] if hist else {"datasets": []}
    kept = []
    for e in manifest["datasets"]:
        try:
            p = out / e["path"]
            if p.is_file() and sha256_file(p) == e["checksum_sha256"]:
                kept.append(e)
        except (TypeError, KeyError, OSError):
            continue
    return kept


def export_bundle(req: ExportRequest) -> ExportResult:
    """Export ``req.names`` (see module doc). Raises ``LockTimeout`` when another export
    holds the lock, ``ValidationError`` if the manifest itself would be invalid (a bug).
    Datasets are built and their files written (fsynced temp files, ``staging``) before
    the lock is taken; under the lock they are renamed into place."""
    out, ops = bundle_dir(req.work_root), Path(req.work_root) / "ops"
    with Stager(out, history_root(ops), req.job_id) as stager:
        prepared = _prepare_all(req, stager)
        with file_lock(ops / LOCK, req.lock_timeout_s):
            return _publish_locked(req, out, ops, prepared, stager)


def _publish_locked(req: ExportRequest, out: Path, ops: Path, prepared: dict[str, tuple],
                    stager: Stager) -> ExportResult:
    """Sequence, dataset files, manifest, README, history, heartbeat (lock held)."""
    seq = next_sequence(ops, out / "manifest.json")
    result = ExportResult(sequence=seq)
    fresh = {n for n, (files, _, _) in prepared.items() if files is not None}
    entries = [e for e in _previous_entries(out, ops) if e["name"] not in fresh]
    publish = []
    for name, (files, status, inputs) in prepared.items():
        result.datasets[name] = status
        if files is None:
            result.failed.append({"dataset": name, "rule": status["rule"], "error": status["error"]})
            continue
        prov = {"source_command": req.command, "commit_sha": req.commit_sha, "job_id": req.job_id,
                "data_root": req.data_label, "inputs": inputs}
        for fname, (data, checksum) in files.items():
            publish.append(fname)
            entries.append({"name": name, "format": fname.rsplit(".", 1)[1], "path": fname, "bytes": len(data),
                            "checksum_sha256": checksum, "rows": status["rows"],
                            "generated_at": to_rfc3339(req.now), "warnings": status["warnings"],
                            "provenance": prov})
        result.published.append(name)
    order = {n: i for i, n in enumerate(DATASETS)}
    entries.sort(key=lambda e: (order.get(e["name"], 99), e["format"]))
    manifest = {"schema_version": SCHEMA_VERSION, "sequence": seq, "generated_at": to_rfc3339(req.now),
                "job_id": req.job_id, "datasets": entries}
    validate(manifest, schema_file("manifest"), "dashboard manifest")  # while the files are still being written
    readme = readme_doc(manifest)
    validate(readme, schema_file("readme"), "dashboard README.json")
    for fname in publish:
        stager.publish(fname)  # fsynced temp file -> os.replace (atomic)
    fsync_dir(out)
    store_sequence(ops, seq)
    atomic_write_json(out / "manifest.json", manifest)
    atomic_write_json(out / "README.json", readme)
    files = sorted({e["path"] for e in entries}) + ["README.json", "manifest.json"]
    record_history(ops, req.job_id, out, files, staged=stager.history_files())
    result.pruned = prune_history(ops, req.now, req.retention_days)
    write_heartbeat(ops, req, result)
    result.artefacts = [f"out/dashboard/{f}" for f in files] + [f"ops/{HEARTBEAT}"]
    return result


def readme_doc(manifest: dict) -> dict:
    """README.json content for a manifest."""
    by_name: dict[str, list[dict]] = {}
    for e in manifest["datasets"]:
        by_name.setdefault(e["name"], []).append(e)
    out = []
    for name in DATASETS:
        es = by_name.get(name, [])
        out.append({"name": name, "description": SPECS[name].description, "key": list(SPECS[name].key),
                    "files": sorted(e["path"] for e in es), "schema": f"schemas/{schema_file(name)}",
                    "refreshed_at": max((e["generated_at"] for e in es), default=None),
                    "refresh_command": refresh_command(name)})
    return {"schema_version": SCHEMA_VERSION, "generated_at": manifest["generated_at"],
            "sequence": manifest["sequence"], "datasets": out}


def write_heartbeat(ops: Path, req: ExportRequest, result: ExportResult) -> dict:
    """Write ``ops/dashboard_export_heartbeat.json`` (carrying last_success_at and
    last_failure forward from the previous heartbeat). Returns it."""
    prev = read_json_object(ops / HEARTBEAT) or {}
    now = to_rfc3339(req.now)
    datasets = {n: {"status": "not_selected"} for n in DATASETS}
    datasets.update({n: {k: v for k, v in s.items() if v is not None or k in ("rule", "error")}
                     for n, s in result.datasets.items()})
    hb = {"schema_version": SCHEMA_VERSION, "job_id": req.job_id, "generated_at": now, "sequence": result.sequence,
          "status": "ok" if result.ok else "failed", "datasets": datasets,
          "last_success_at": now if result.ok else prev.get("last_success_at"),
          "last_failure": ({"at": now, "job_id": req.job_id, "failures": result.failed} if result.failed
                           else prev.get("last_failure"))}
    try:
        validate(hb, schema_file("heartbeat"), "dashboard heartbeat")
    except ValidationError:  # a corrupt previous heartbeat: do not carry its values forward
        if result.ok:
            hb["last_failure"] = None
        else:
            hb["last_success_at"] = None
        validate(hb, schema_file("heartbeat"), "dashboard heartbeat")
    atomic_write_json(ops / HEARTBEAT, hb)
    return hb
