"""``obs dashboard export|verify|publish`` end to end on a tiny repository (in-process CLI),
including the tamper tests of the issue."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from dashboard_fixtures import make_repo, write_rollup

from obslib.cli import main
from obslib.storage import canonical_json_bytes

T0 = "2024-01-20T00:00:00Z"


@pytest.fixture
def env(tmp_path):
    repo = make_repo(tmp_path / "repo")
    work = tmp_path / "work"
    write_rollup(work)
    return repo, work


def obs(capsys, work: Path, *args: str, repo: Path | None = None, now: str = T0) -> tuple[int, dict, str]:
    argv = ["dashboard", *args, "--work-root", str(work), "--now", now]
    if repo is not None:
        argv += ["--data-root", str(repo)]
    code = main(argv)
    out = capsys.readouterr()
    return code, json.loads(out.out.strip().splitlines()[-1]), out.err


def sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def snapshot(work: Path, job_id: str) -> Path:
    """The history snapshot of export ``job_id``."""
    (p,) = (work / "ops" / "dashboard_export_history" / "snapshots").glob(f"*-{job_id}.json")
    return p


def test_export_publishes_everything_and_verifies(env, capsys):
    repo, work = env
    code, summary, _ = obs(capsys, work, "export", repo=repo)
    assert code == 0 and summary["sequence"] == 1 and summary["failed"] == []
    out = work / "out" / "dashboard"
    m = json.loads((out / "manifest.json").read_text())
    assert m["sequence"] == 1 and len(m["datasets"]) == 8
    for e in m["datasets"]:
        p = out / e["path"]
        assert e["bytes"] == p.stat().st_size and e["checksum_sha256"] == sha(p)
        assert e["provenance"]["source_command"] and e["provenance"]["job_id"] == summary["job_id"]
    turn = next(e for e in m["datasets"] if e["name"] == "turnover_summary" and e["format"] == "json")
    assert turn["rows"] == 3
    assert {"path": "runs/index.csv", "sha256": sha(repo / "runs" / "index.csv")} in turn["provenance"]["inputs"]
    lat = next(e for e in m["datasets"] if e["name"] == "latency_rollups")
    assert lat["provenance"]["inputs"][0]["path"] == "ops/signal_latency_rollup.csv"
    # JSON file = canonical JSON of its own content (sorted keys, compact)
    doc = json.loads((out / "turnover_summary.json").read_text())
    assert canonical_json_bytes(doc) == (out / "turnover_summary.json").read_bytes()
    assert doc["row_count"] == 3 and doc["key"] == ["run_id", "week_start"]
    assert doc["provenance"]["parameters"] == {"pip_value": 10.0} and doc["provenance"]["job_id"] == summary["job_id"]
    readme = json.loads((out / "README.json").read_text())
    assert [d["refresh_command"] for d in readme["datasets"]][0] == "obs dashboard export --dataset ev_history"
    hb = json.loads((work / "ops" / "dashboard_export_heartbeat.json").read_text())
    assert hb["status"] == "ok" and hb["last_success_at"] == T0 and hb["last_failure"] is None
    snap = json.loads(snapshot(work, summary["job_id"]).read_text())
    assert snap["sequence"] == 1 and {f["path"] for f in snap["files"]} == {e["path"] for e in m["datasets"]} | {
        "README.json", "manifest.json"}
    for f in snap["files"]:  # every file stored once, gzip, named by the sha256 of its bytes
        obj = work / "ops" / "dashboard_export_history" / "objects" / f["sha256"][:2] / f"{f['sha256']}.gz"
        assert hashlib.sha256(gzip.decompress(obj.read_bytes())).hexdigest() == f["sha256"] == sha(out / f["path"])
    assert out.is_symlink() and out.resolve().parent.name == "dashboard.versions"
    code, v, _ = obs(capsys, work, "verify")
    assert code == 0 and v["findings"] == 0


def test_parquet_schema_stable_with_all_null_columns(env, capsys):
    repo, work = env
    obs(capsys, work, "export", repo=repo)
    t = pq.read_table(work / "out" / "dashboard" / "slippage_telemetry.parquet")
    assert str(t.schema.field("fill_count").type) == "int64" and t.column("fill_count").null_count == 3
    assert str(t.schema.field("generated_at").type) == "timestamp[us, tz=UTC]"
    shutil.rmtree(work / "ops")  # no rollup file at all: empty dataset, same schema
    obs(capsys, work, "export", repo=repo)
    lat = pq.read_table(work / "out" / "dashboard" / "latency_rollups.parquet")
    assert lat.num_rows == 0 and str(lat.schema.field("hour_utc").type) == "timestamp[us, tz=UTC]"
    assert str(lat.schema.field("breach_flag").type) == "bool"


def test_flipped_byte_gives_checksum_mismatch(env, capsys):
    repo, work = env
    obs(capsys, work, "export", repo=repo)
    p = work / "out" / "dashboard" / "ev_history.json"
    data = bytearray(p.read_bytes())
    data[100] ^= 0x01
    p.write_bytes(bytes(data))
    code, v, err = obs(capsys, work, "verify")
    assert code == 1 and v["codes"] == {"checksum_mismatch": 1}
    assert "checksum_mismatch: out/dashboard/ev_history.json" in err


def test_deleted_manifest_continues_sequence(env, capsys):
    repo, work = env
    obs(capsys, work, "export", repo=repo)
    obs(capsys, work, "export", repo=repo)
    (work / "out" / "dashboard" / "manifest.json").unlink()
    code, s, _ = obs(capsys, work, "export", repo=repo)
    assert code == 0 and s["sequence"] == 3
    (work / "out" / "dashboard" / "manifest.json").write_text("{corrupt")
    (work / "ops" / "dashboard_export_sequence.json").unlink()
    code, s, _ = obs(capsys, work, "export", repo=repo)
    assert s["sequence"] == 4  # history still remembers 3
    assert obs(capsys, work, "verify")[0] == 0


def test_rule_violation_keeps_previous_version(env, capsys):
    repo, work = env
    obs(capsys, work, "export", repo=repo)
    out = work / "out" / "dashboard"
    before = {p.name: sha(p) for p in out.glob("slippage_telemetry.*")}
    tel = repo / "reports" / "portfolio_samples" / "router_demo" / "telemetry.json"
    t = json.loads(tel.read_text())
    t["execution_health"]["beta_v1"]["reject_rate"] = 1.5
    tel.write_text(json.dumps(t))
    (repo / "runs" / "run_B_20240115_000000" / "daily.csv").unlink()  # turnover changes: 2 rows now
    code, s, err = obs(capsys, work, "export", repo=repo, now="2024-01-21T00:00:00Z")
    assert code == 1 and s["status"] == "error"
    assert s["failed"][0]["dataset"] == "slippage_telemetry" and s["failed"][0]["rule"] == "schema"
    assert "reject_rate: 1.5 violates maximum 1" in s["failed"][0]["error"]  # plain number, no numpy repr
    assert "slippage_telemetry not published (rule schema)" in err
    assert {p.name: sha(p) for p in out.glob("slippage_telemetry.*")} == before
    m = json.loads((out / "manifest.json").read_text())
    assert m["sequence"] == 2
    sl = [e for e in m["datasets"] if e["name"] == "slippage_telemetry"]
    assert {e["generated_at"] for e in sl} == {T0}  # previous entries kept
    tu = next(e for e in m["datasets"] if e["name"] == "turnover_summary")
    assert tu["rows"] == 2 and tu["generated_at"] == "2024-01-21T00:00:00Z"
    hb = json.loads((work / "ops" / "dashboard_export_heartbeat.json").read_text())
    assert hb["status"] == "failed" and hb["datasets"]["slippage_telemetry"]["status"] == "failed"
    assert hb["last_success_at"] == T0 and hb["last_failure"]["failures"][0]["rule"] == "schema"
    assert obs(capsys, work, "verify", now="2024-01-21T00:00:00Z")[0] == 0


def test_single_dataset_export_keeps_other_entries(env, capsys):
    repo, work = env
    obs(capsys, work, "export", repo=repo)
    m1 = json.loads((work / "out" / "dashboard" / "manifest.json").read_text())
    code, s, _ = obs(capsys, work, "export", "--dataset", "latency_rollups", repo=repo, now="2024-01-22T00:00:00Z")
    assert code == 0 and s["published"] == ["latency_rollups"]
    m2 = json.loads((work / "out" / "dashboard" / "manifest.json").read_text())
    keep = [e for e in m1["datasets"] if e["name"] != "latency_rollups"]
    assert [e for e in m2["datasets"] if e["name"] != "latency_rollups"] == keep
    assert {e["generated_at"] for e in m2["datasets"] if e["name"] == "latency_rollups"} == {"2024-01-22T00:00:00Z"}


def test_history_retention_and_history_findings(env, capsys):
    repo, work = env
    code, s1, _ = obs(capsys, work, "export", repo=repo, now="2024-01-01T00:00:00Z")
    _, s2, _ = obs(capsys, work, "export", repo=repo, now="2024-02-20T00:00:00Z")  # 50 days later: both kept
    hist = work / "ops" / "dashboard_export_history"
    assert sorted(p.name for p in (hist / "snapshots").iterdir()) == [
        f"0000000001-{s1['job_id']}.json", f"0000000002-{s2['job_id']}.json"]
    code, v, _ = obs(capsys, work, "verify", now="2024-02-27T00:00:00Z")  # first is now 57 days old
    assert code == 1 and v["codes"] == {"retention_exceeded": 1}
    _, s3, _ = obs(capsys, work, "export", repo=repo, now="2024-02-27T00:00:00Z")
    assert s3["history_pruned"] == 1 and not snapshot_exists(work, s1["job_id"])
    # an object altered, and a snapshot whose record says another sequence than its manifest
    snap2 = json.loads(snapshot(work, s2["job_id"]).read_text())
    pq_sha = next(f["sha256"] for f in snap2["files"] if f["path"] == "ev_history.parquet")
    snap3 = json.loads(snapshot(work, s3["job_id"]).read_text())
    assert pq_sha in {f["sha256"] for f in snap3["files"]}  # unchanged content: one object for both
    (hist / "objects" / pq_sha[:2] / f"{pq_sha}.gz").write_bytes(gzip.compress(b"tampered"))
    p3 = snapshot(work, s3["job_id"])
    rec = json.loads(p3.read_text())
    rec["sequence"] = 1
    p3.write_text(json.dumps(rec))
    code, v, _ = obs(capsys, work, "verify", now="2024-02-27T00:00:00Z")
    assert code == 1
    assert v["codes"]["history_checksum_mismatch"] == 2 and v["codes"]["sequence_not_increasing"] >= 1


def snapshot_exists(work: Path, job_id: str) -> bool:
    return any((work / "ops" / "dashboard_export_history" / "snapshots").glob(f"*-{job_id}.json"))


def test_retention_uses_recorded_time_not_folder_name(env, capsys):
    repo, work = env
    _, s, _ = obs(capsys, work, "export", repo=repo, now="2024-03-01T00:00:00Z")
    p = snapshot(work, s["job_id"])
    old = p.with_name("0000000001-dashboard_export-20000101T000000Z-old.json")
    p.rename(old)  # name looks ancient
    _, s2, _ = obs(capsys, work, "export", repo=repo, now="2024-03-02T00:00:00Z")
    assert s2["history_pruned"] == 0 and old.is_file()


def test_manifest_incomplete_and_schema_invalid(env, capsys):
    repo, work = env
    obs(capsys, work, "export", repo=repo)
    out = work / "out" / "dashboard"
    m = json.loads((out / "manifest.json").read_text())
    m["datasets"] = [e for e in m["datasets"] if e["name"] != "ev_history"]
    (out / "manifest.json").write_text(json.dumps(m))
    code, v, _ = obs(capsys, work, "verify")
    assert code == 1 and v["codes"]["manifest_incomplete"] == 2
    # a consistently re-checksummed file that breaks the schema
    obs(capsys, work, "export", repo=repo)
    doc = json.loads((out / "latency_rollups.json").read_text())
    doc["rows"][0]["samples"] = 0
    data = canonical_json_bytes(doc)
    (out / "latency_rollups.json").write_bytes(data)
    m = json.loads((out / "manifest.json").read_text())
    for e in m["datasets"]:
        if e["path"] == "latency_rollups.json":
            e["bytes"], e["checksum_sha256"] = len(data), hashlib.sha256(data).hexdigest()
    (out / "manifest.json").write_text(json.dumps(m))
    code, v, err = obs(capsys, work, "verify", "--deep")  # the default (streaming) verify trusts the checksums
    assert code == 1 and v["codes"] == {"schema_invalid": 1} and "samples" in err


def test_unknown_dataset_is_a_usage_error(env, capsys):
    repo, work = env
    with pytest.raises(SystemExit) as exc:
        main(["dashboard", "export", "--dataset", "nope", "--work-root", str(work)])
    assert exc.value.code == 2
    capsys.readouterr()


def test_missing_index_fails_only_turnover(env, capsys):
    repo, work = env
    (repo / "runs" / "index.csv").unlink()
    code, s, err = obs(capsys, work, "export", repo=repo)
    assert code == 1 and [f["dataset"] for f in s["failed"]] == ["turnover_summary"]
    assert s["failed"][0]["rule"] == "input" and "runs/index.csv" in s["failed"][0]["error"]
    assert sorted(s["published"]) == ["ev_history", "latency_rollups", "slippage_telemetry"]
