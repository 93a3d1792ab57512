"""Scheduled publishing of the dashboard bundle (issue #14): to a local folder and to
``memory://`` (fsspec), verification before and after the copy, at least 60 days kept at
the destination, a failed upload queued and retried by the next run, an alert after two
failed runs in a row, the published URI in the weekly payload's attachments, and the job
in ``obs cron --format json``."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import fsspec
import pytest
from dashboard_fixtures import make_repo, write_rollup

from obslib.cli import main
from obslib.config import load_config

T0 = "2024-01-21T22:00:00Z"


@pytest.fixture
def env(tmp_path):
    repo = make_repo(tmp_path / "repo")
    work = tmp_path / "work"
    write_rollup(work)
    return repo, work


def obs(capsys, work: Path, *args: str, now: str = T0, repo: Path | None = None) -> tuple[int, dict, str]:
    argv = [*args, "--work-root", str(work), "--now", now]
    if repo is not None:
        argv += ["--data-root", str(repo)]
    code = main(argv)
    out = capsys.readouterr()
    return code, json.loads(out.out.strip().splitlines()[-1]), out.err


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _bundle(work: Path) -> dict[str, bytes]:
    out = work / "out" / "dashboard"
    m = json.loads((out / "manifest.json").read_text())
    names = [e["path"] for e in m["datasets"]] + ["README.json", "manifest.json"]
    return {n: (out / n).read_bytes() for n in names}


def test_publish_to_a_local_folder_from_config(env, capsys, tmp_path):
    repo, work = env
    share = tmp_path / "share"
    (work / "obs.toml").write_text(f'[publish]\nto = "{share}"\n')
    code, s, _ = obs(capsys, work, "dashboard", "export", repo=repo)
    assert code == 0
    code, p, err = obs(capsys, work, "dashboard", "publish")
    assert code == 0 and p["status"] == "ok" and p["queued"] == [] and p["consecutive_failures"] == 0
    (pub,) = p["published"]
    assert pub["job_id"] == s["job_id"] and pub["uri"] == f"{share}/{s['job_id']}/" and pub["files"] == 10
    assert f"-> {share}/{s['job_id']}/" in err
    for name, data in _bundle(work).items():  # byte for byte at the destination
        assert sha((share / s["job_id"] / name).read_bytes()) == sha(data), name
    assert json.loads((share / "latest.json").read_text())["job_id"] == s["job_id"]
    # nothing new: nothing copied again
    code, p2, _ = obs(capsys, work, "dashboard", "publish")
    assert code == 0 and p2["published"] == [] and p2["queued"] == []
    hb = json.loads((work / "ops" / "dashboard_publish_heartbeat.json").read_text())
    assert hb["status"] == "ok" and hb["provenance"]["job_id"] == p2["job_id"]
    # the weekly payload's attachments carry the published URI
    from obslib.dashboard.publish_state import published_attachments

    att = published_attachments(load_config(work))
    assert att == [{"name": "dashboard_bundle", "path": "dashboard/manifest.json",
                    "uri": f"{share}/{s['job_id']}/manifest.json", "media_type": "application/json",
                    "job_id": s["job_id"]}]
    (work / "obs.toml").write_text("")
    assert published_attachments(load_config(work)) == []  # not configured: no attachment


def test_publish_to_memory_fsspec(env, capsys, monkeypatch):
    repo, work = env
    monkeypatch.setenv("OBS_PUBLISH_ALLOW_MEMORY", "1")  # memory:// is for in-process use (tests) only
    code, s, _ = obs(capsys, work, "dashboard", "export", repo=repo)
    code, p, _ = obs(capsys, work, "dashboard", "publish", "--to", "memory://obs-test-share/dash")
    assert code == 0, p
    fs = fsspec.filesystem("memory")
    for name, data in _bundle(work).items():
        assert sha(fs.cat(f"/obs-test-share/dash/{s['job_id']}/{name}")) == sha(data), name
    assert p["published"][0]["uri"] == f"memory://obs-test-share/dash/{s['job_id']}/"


def test_not_configured_does_nothing(env, capsys):
    repo, work = env
    code, p, _ = obs(capsys, work, "dashboard", "publish")
    assert code == 0 and p["destination"] is None and "no destination" in p["skipped"]


def test_failed_upload_is_queued_alerted_after_two_runs_and_retried(env, capsys, tmp_path):
    repo, work = env
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the share folder should be")
    share = blocker / "share"  # cannot be created while blocker is a file
    code, s1, _ = obs(capsys, work, "dashboard", "export", repo=repo, now="2024-01-20T01:00:00Z")
    code, p, _ = obs(capsys, work, "dashboard", "publish", "--to", str(share))
    assert code == 1 and p["status"] == "error" and p["queued"] == [s1["job_id"]]
    assert p["consecutive_failures"] == 1 and p["alerts"] == []  # one failure: no alert yet
    # a newer export meanwhile: both are queued, oldest first
    (repo / "runs" / "run_B_20240115_000000" / "daily.csv").unlink()
    code, s2, _ = obs(capsys, work, "dashboard", "export", repo=repo, now="2024-01-21T01:00:00Z")
    code, p, _ = obs(capsys, work, "dashboard", "publish", "--to", str(share))
    assert code == 1 and p["queued"] == [s1["job_id"], s2["job_id"]] and p["consecutive_failures"] == 2
    (alert,) = p["alerts"]
    assert alert["id"] == "dashboard-publish-failed" and alert["severity"] == "critical"
    assert alert["next_action"].endswith("#dashboard-publish") or "#dashboard-publish" in json.dumps(alert)
    doc = json.loads((work / alert["file"]).read_text())  # no webhook configured: written under out/ops_alerts
    assert doc["alerts"][0]["id"] == "dashboard-publish-failed"
    state = json.loads((work / "ops" / "dashboard_publish_state.json").read_text())["destinations"][str(share)]
    assert [q["attempts"] for q in state["queue"]] == [2, 0]  # the queue stops at its first failure
    # the share comes back: the next run sends both, the older one from history
    blocker.unlink()
    code, p, _ = obs(capsys, work, "dashboard", "publish", "--to", str(share))
    assert code == 0 and [e["job_id"] for e in p["published"]] == [s1["job_id"], s2["job_id"]]
    assert p["queued"] == [] and p["consecutive_failures"] == 0
    m1 = json.loads((share / s1["job_id"] / "manifest.json").read_text())
    assert m1["job_id"] == s1["job_id"] and m1["sequence"] == 1
    for e in m1["datasets"]:
        assert sha((share / s1["job_id"] / e["path"]).read_bytes()) == e["checksum_sha256"]
    assert json.loads((share / "latest.json").read_text())["job_id"] == s2["job_id"]


def test_destination_keeps_at_least_60_days(env, capsys, tmp_path):
    repo, work = env
    share = tmp_path / "share"
    (work / "obs.toml").write_text(f'[publish]\nto = "{share}"\nretention_days = 7\n')  # asks for less than 60
    _, s1, _ = obs(capsys, work, "dashboard", "export", repo=repo, now="2024-01-01T00:00:00Z")
    obs(capsys, work, "dashboard", "publish", now="2024-01-01T00:00:00Z")
    (repo / "runs" / "run_B_20240115_000000" / "daily.csv").unlink()
    _, s2, _ = obs(capsys, work, "dashboard", "export", repo=repo, now="2024-02-29T00:00:00Z")  # 59 days later
    code, p, _ = obs(capsys, work, "dashboard", "publish", now="2024-02-29T00:00:00Z")
    assert code == 0 and p["published"][0]["pruned"] == [] and (share / s1["job_id"]).is_dir()
    write_rollup(work, "hour_utc,source,p50_ms,p95_ms,samples,breach_flag\n"
                       "2024-03-02T10:00:00Z,feed,50.0,90.0,10,false\n")
    _, s3, _ = obs(capsys, work, "dashboard", "export", repo=repo, now="2024-03-02T00:00:00Z")  # 61 days
    code, p, _ = obs(capsys, work, "dashboard", "publish", now="2024-03-02T00:00:00Z")
    assert code == 0 and p["published"][0]["pruned"] == [s1["job_id"]] and (share / s2["job_id"]).is_dir()


def test_a_tampered_bundle_is_not_published(env, capsys, tmp_path):
    repo, work = env
    obs(capsys, work, "dashboard", "export", repo=repo)
    p = work / "out" / "dashboard" / "turnover_summary.parquet"
    p.write_bytes(p.read_bytes()[:-1] + b"X")
    code, s, _ = obs(capsys, work, "dashboard", "publish", "--to", str(tmp_path / "share"))
    assert code == 1 and "checksum_mismatch" in s["error"] and not (tmp_path / "share").exists()


def test_cron_json_lists_the_publish_job(capsys):
    assert main(["cron", "--format", "json"]) == 0
    jobs = json.loads(capsys.readouterr().out)
    jobs = jobs if isinstance(jobs, list) else jobs["jobs"]
    names = [j["job"] for j in jobs]
    pub = jobs[names.index("dashboard_publish")]
    assert pub["command"] == "obs dashboard publish" and pub["cadence"] == "0 22 * * 0"
    # after Sunday's 01:00 export, before the 23:30 weekly report
    assert names.index("dashboard_export") < names.index("dashboard_publish") < names.index("weekly_report")


def test_a_new_destination_gets_the_current_bundle(env, capsys, tmp_path):
    """One state slot per destination: publishing to /tmp/qa_pub1 first must not make a
    second destination (QA: ``../elsewhere``, and an absolute one) look up to date."""
    repo, work = env
    code, s, _ = obs(capsys, work, "dashboard", "export", repo=repo)
    first, second = tmp_path / "qa_pub1", tmp_path / "second"
    assert obs(capsys, work, "dashboard", "publish", "--to", str(first))[0] == 0
    for to, where in ((str(second), second), ("../elsewhere", tmp_path / "elsewhere")):  # relative: against the work root
        code, p, _ = obs(capsys, work, "dashboard", "publish", "--to", to)
        assert code == 0 and p["destination"] == str(where), p
        assert [e["job_id"] for e in p["published"]] == [s["job_id"]]
        assert p["published"][0]["uri"] == f"{where}/{s['job_id']}/"
        assert json.loads((where / s["job_id"] / "manifest.json").read_text())["job_id"] == s["job_id"]
    # the weekly attachment follows the configured destination, not the last one published to
    (work / "obs.toml").write_text(f'[publish]\nto = "{first}"\n')
    from obslib.dashboard.publish_state import published_attachments

    assert published_attachments(load_config(work))[0]["uri"] == f"{first}/{s['job_id']}/manifest.json"
    (work / "obs.toml").write_text('[publish]\nto = "../elsewhere"\n')
    assert published_attachments(load_config(work))[0]["uri"] == f"{tmp_path / 'elsewhere'}/{s['job_id']}/manifest.json"


@pytest.mark.parametrize("to, why", [
    ("nosuchproto://x", "unknown protocol 'nosuchproto'"),
    ("gopherish://host/x", "unknown protocol 'gopherish'"),
    ("memory://x", "memory:// lives only as long as this process"),
    ("out/share", "inside the work root's out/"),
    (".", "inside the work root's"),
])
def test_a_destination_that_cannot_work_is_refused_before_queueing(env, capsys, to, why):
    repo, work = env
    obs(capsys, work, "dashboard", "export", repo=repo)
    code, p, err = obs(capsys, work, "dashboard", "publish", "--to", to)
    assert code == 2 and p["status"] == "error" and why in p["error"] and why in err
    assert not (work / "ops" / "dashboard_publish_state.json").exists()  # nothing queued


@pytest.mark.parametrize("to", ["/proc/self", "ftp://127.0.0.1:1/x"])
def test_an_unwritable_destination_fails_and_stays_queued(env, capsys, tmp_path, to):
    repo, work = env
    code, s, _ = obs(capsys, work, "dashboard", "export", repo=repo)
    assert obs(capsys, work, "dashboard", "publish", "--to", str(tmp_path / "ok"))[0] == 0
    code, p, _ = obs(capsys, work, "dashboard", "publish", "--to", to)
    assert code == 1 and p["published"] == [] and p["queued"] == [s["job_id"]] and "upload failed" in p["error"]


def test_the_publish_failed_alert_goes_through_the_router(env, capsys, tmp_path, monkeypatch):
    """Two failed runs in a row: ``dashboard-publish-failed`` reaches a local Slack receiver
    through ``route_alerts`` (recorded in ops/active_alerts.json); the next good run resolves it."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    got: list[dict] = []

    class H(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("OBS_SLACK_WEBHOOK_URL", f"http://127.0.0.1:{srv.server_address[1]}/services/T0/B0/x")
        repo, work = env
        blocker = tmp_path / "blocker"
        blocker.write_text("a file where the share folder should be")
        share = blocker / "share"
        obs(capsys, work, "dashboard", "export", repo=repo)
        assert obs(capsys, work, "dashboard", "publish", "--to", str(share), repo=repo)[0] == 1
        assert got == []  # one failure: nothing yet
        code, p, _ = obs(capsys, work, "dashboard", "publish", "--to", str(share), repo=repo)
        assert code == 1 and p["alerts"][0]["routed"]["sent"] == 1
        (msg,) = got
        assert "dashboard-publish-failed" in json.dumps(msg) and str(share) in json.dumps(msg)
        active = json.loads((work / "ops" / "active_alerts.json").read_text())["alerts"]
        assert active["dashboard-publish-failed"]["source"] == "dashboard_publish"
        blocker.unlink()
        assert obs(capsys, work, "dashboard", "publish", "--to", str(share), repo=repo)[0] == 0
        assert len(got) == 2 and "resolved" in json.dumps(got[1]).lower()
        active = json.loads((work / "ops" / "active_alerts.json").read_text())["alerts"]
        assert "dashboard-publish-failed" not in active
    finally:
        srv.shutdown()
        srv.server_close()
