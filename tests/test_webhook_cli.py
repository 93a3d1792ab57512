"""The CLI as cron runs it (real subprocesses, real receiver): obs weekly deliver|replay,
obs webhook verify, exit codes, escalation, and a scan for leaked secrets and URLs."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_webhook_support import PATH_TOKEN, SECRET_RAW, SECRET_WHSEC, Receiver, Reply, free_port

REPO = Path(__file__).resolve().parents[1]
OBS = [sys.executable, "-m", "obslib"]
WS = "2025-09-22"
PAYLOAD = {"week_start": WS, "ev": {"latest": 0.25, "trend_7d": None}, "runs": 12}
CANON = json.dumps(PAYLOAD, sort_keys=True, separators=(",", ":")).encode()


def _base_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("OBS_") and not k.endswith(("_SECRET", "_TOKEN")) and k not in ("JOB_ID",)}
    env.update({"OBS_WEBHOOK_BACKOFF_BASE_S": "0.01", "OBS_WEBHOOK_BACKOFF_MAX_S": "0.02",
                "OBS_WEBHOOK_READ_TIMEOUT_S": "5"})
    env.update({k: v for k, v in extra.items() if v is not None})
    return env


class Runner:
    def __init__(self, root: Path):
        self.root = root
        self.outputs: list[str] = []

    def __call__(self, *args, **env):
        env.setdefault("OBS_DATA_ROOT", str(self.root / "research"))  # not the demo: destinations are allowed
        p = subprocess.run([*OBS, *args, "--work-root", str(self.root)], capture_output=True, text=True,
                           env=_base_env(**env), cwd=self.root, timeout=120)
        self.outputs += [p.stdout, p.stderr]
        return p

    @staticmethod
    def summary(p):
        return json.loads(p.stdout.strip().splitlines()[-1])


@pytest.fixture
def obs(tmp_path):
    pdir = tmp_path / "out" / "weekly_report" / WS
    pdir.mkdir(parents=True)
    (pdir / "payload.json").write_text(json.dumps(PAYLOAD, indent=2))  # not canonical on disk
    return Runner(tmp_path)


def test_deliver_then_idempotent_then_replay(obs, tmp_path):
    with Receiver() as rx:
        p = obs("weekly", "deliver", "--week-start", WS, OBS_WEEKLY_WEBHOOK_URL=rx.url(),
                OBS_WEBHOOK_SECRET=SECRET_RAW)
        assert p.returncode == 0, p.stderr
        s = obs.summary(p)
        assert s["status"] == "ok" and s["delivery"]["status"] == "delivered"
        assert s["delivery"]["webhook_id"] == f"weekly-{WS}-{hashlib.sha256(CANON).hexdigest()[:16]}"
        p2 = obs("weekly", "deliver", "--week-start", WS, OBS_WEEKLY_WEBHOOK_URL=rx.url(),
                 OBS_WEBHOOK_SECRET=SECRET_RAW)
        assert p2.returncode == 0 and obs.summary(p2)["delivery"]["status"] == "already_delivered"
        p3 = obs("weekly", "replay", "--week-start", WS, OBS_WEEKLY_WEBHOOK_URL=rx.url(),
                 OBS_WEBHOOK_SECRET=SECRET_RAW)
        assert p3.returncode == 0, p3.stderr
        assert obs.summary(p3)["delivery"]["status"] == "replayed"
    assert [r.body for r in rx.received] == [CANON, CANON]
    assert rx.received[0].headers["webhook-id"] == rx.received[1].headers["webhook-id"]
    log = [json.loads(x) for x in (tmp_path / "ops/automation_runs.log").read_text().splitlines()]
    finals = [r for r in log if r.get("event") != "webhook_attempt"]
    assert [(r["job_name"], r["status"]) for r in finals] == [
        ("weekly_deliver", "ok"), ("weekly_deliver", "ok"), ("weekly_replay", "ok")]
    assert f"ops/weekly_report_history/{WS}.json" in finals[0]["artefacts"]


def test_five_503_escalation_file_and_nonzero_exit(obs, tmp_path):
    with Receiver(default=Reply(503)) as rx:
        p = obs("weekly", "deliver", "--week-start", WS, OBS_WEEKLY_WEBHOOK_URL=rx.url(),
                OBS_WEBHOOK_SECRET=SECRET_RAW)
    assert p.returncode == 3 and len(rx.received) == 5
    s = obs.summary(p)
    assert s["status"] == "error" and "after 5 attempt(s)" in s["error"]
    (esc,) = (tmp_path / "ops" / "escalations").iterdir()
    assert esc.name == f"{s['job_id']}.json"
    rec = json.loads(esc.read_text())
    assert rec["attempts"] == 5 and rec["last_status_code"] == 503
    assert "error" in p.stderr and "Traceback" not in p.stderr
    log = [json.loads(x) for x in (tmp_path / "ops/automation_runs.log").read_text().splitlines()]
    assert log[-1]["status"] == "error" and f"ops/escalations/{esc.name}" in log[-1]["artefacts"]


def test_require_delivery_without_secret_fails(obs):
    with Receiver() as rx:
        p = obs("weekly", "deliver", "--week-start", WS, "--require-delivery", OBS_WEEKLY_WEBHOOK_URL=rx.url())
    assert p.returncode != 0 and rx.received == []
    assert "OBS_WEBHOOK_SECRET not set" in obs.summary(p)["error"]


def test_no_url_is_dry_run_not_silent(obs):
    p = obs("weekly", "deliver", "--week-start", WS, OBS_WEBHOOK_SECRET=SECRET_RAW)
    assert p.returncode == 0
    s = obs.summary(p)
    assert s["status"] == "dry_run" and s["alerts"][0]["next_action"] == "docs/runbook.md#weekly-webhook"
    assert "ALERT [warning]" in p.stderr


def test_dry_run_webhook_prints_payload_writes_file_signs_nothing(obs, tmp_path):
    with Receiver() as rx:
        p = obs("weekly", "deliver", "--week-start", WS, "--dry-run-webhook", "--now", "2025-09-29T12:00:00Z",
                OBS_WEEKLY_WEBHOOK_URL=rx.url(), OBS_WEBHOOK_SECRET=SECRET_RAW)
    assert p.returncode == 0 and rx.received == []
    first, last = p.stdout.strip().splitlines()
    assert first.encode() == CANON
    summary = json.loads(last)
    suffix = summary["job_id"].rsplit("-", 1)[-1]
    name = f"out/weekly_report/20250929T120000Z_{WS}_{suffix}.json"  # unique per run: never overwritten
    assert (tmp_path / name).read_bytes() == CANON
    assert summary["delivery"] == {"status": "dry_run", "signed": False, "output": name}
    assert not (tmp_path / "ops/weekly_report_history").exists()


def test_missing_payload_is_clear_error(tmp_path):
    p = Runner(tmp_path)("weekly", "deliver", "--week-start", WS)
    assert p.returncode == 2 and "obs weekly run" in p.stderr and "Traceback" not in p.stderr


def test_webhook_verify_cli(tmp_path, monkeypatch, capsys):
    # in-process (obslib.cli.main) to keep the suite fast; the subprocess path is covered above
    from datetime import datetime, timezone

    from obslib.cli import main
    from obslib.webhook import sign_headers

    now = datetime(2025, 9, 29, 12, 0, tzinfo=timezone.utc)
    (tmp_path / "body.bin").write_bytes(CANON)
    (tmp_path / "headers.json").write_text(json.dumps(sign_headers(CANON, "weekly-x", [SECRET_RAW], now)))
    for k in [k for k in os.environ if k.startswith("OBS_")]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("OBS_WORK_ROOT", str(tmp_path))
    args = ["webhook", "verify", "--body", str(tmp_path / "body.bin"), "--headers", str(tmp_path / "headers.json")]

    def run(*extra, secret=SECRET_RAW):
        if secret:
            monkeypatch.setenv("OBS_WEBHOOK_SECRET", secret)
        else:
            monkeypatch.delenv("OBS_WEBHOOK_SECRET", raising=False)
        code = main([*args, *extra])
        out, err = capsys.readouterr()
        return code, json.loads(out.strip().splitlines()[-1]), err

    code, s, _ = run("--now", "2025-09-29T12:01:00Z", secret=f"other-secret-0123456789 {SECRET_RAW}")
    assert code == 0 and s["verified"] is True
    code, s, _ = run("--now", "2025-09-29T12:06:00Z")
    assert code == 1 and "360 s in the past" in s["reason"]
    code, s, _ = run("--now", "2025-09-29T12:06:00Z", "--tolerance-s", "600")
    assert code == 0
    (tmp_path / "body.bin").write_bytes(CANON.replace(b"12", b"13"))
    code, s, err = run("--now", "2025-09-29T12:01:00Z")
    assert code == 1 and "does not match" in err
    code, s, err = run(secret=None)
    assert code == 2 and "OBS_WEBHOOK_SECRET is not set" in err
    (tmp_path / "headers.json").write_text("[1, 2]")
    code, s, err = run()
    assert code == 2 and "must be a JSON object" in err
    assert not (tmp_path / "ops" / "automation_runs.log").exists()  # a receiver tool: no run-log record


def _scan(paths, needles):
    leaks = []
    for base in paths:
        if not base.exists():
            continue
        for f in base.rglob("*"):
            if f.is_file():
                data = f.read_bytes()
                leaks += [(str(f), n) for n in needles if n.encode() in data]
    return leaks


def test_secrets_and_urls_never_written_or_printed(obs, tmp_path):
    secrets_env = f"{SECRET_WHSEC} {SECRET_RAW}"
    with Receiver([Reply(500, b"echo " + SECRET_RAW.encode()), Reply(200)]) as rx, \
            Receiver(default=Reply(503)) as down, Receiver() as esc:
        url, bad_url, esc_url = rx.url(), down.url(f"/down-{PATH_TOKEN}"), esc.url(f"/esc-{PATH_TOKEN}")
        env = {"OBS_WEEKLY_WEBHOOK_URL": url, "OBS_WEBHOOK_SECRET": secrets_env, "OBS_ESCALATION_WEBHOOK_URL": esc_url}
        assert obs("weekly", "deliver", "--week-start", WS, **env).returncode == 0
        assert obs("weekly", "deliver", "--week-start", WS, "--force", **env).returncode == 0
        assert obs("weekly", "replay", "--week-start", WS, **env).returncode == 0
        assert obs("weekly", "deliver", "--week-start", WS, "--dry-run-webhook", **env).returncode == 0
        (tmp_path / "out/weekly_report" / WS / "payload.json").write_text(json.dumps(dict(PAYLOAD, runs=13)))
        assert obs("weekly", "deliver", "--week-start", WS, **dict(env, OBS_WEEKLY_WEBHOOK_URL=bad_url)).returncode == 3
        assert obs("weekly", "replay", "--week-start", WS, **dict(env, OBS_WEEKLY_WEBHOOK_URL=bad_url)).returncode == 3
        assert obs("weekly", "deliver", "--week-start", WS, "--require-delivery",
                   OBS_WEEKLY_WEBHOOK_URL=url).returncode == 3
        refused = f"http://127.0.0.1:{free_port()}/refused-{PATH_TOKEN}"  # requests' error text names the URL
        assert obs("weekly", "deliver", "--week-start", WS, OBS_WEBHOOK_MAX_ATTEMPTS="2",
                   **dict(env, OBS_WEEKLY_WEBHOOK_URL=refused)).returncode == 3
        (tmp_path / "h.json").write_text(json.dumps(dict(rx.received[0].headers)))
        (tmp_path / "b.bin").write_bytes(rx.received[0].body)
        obs("webhook", "verify", "--body", str(tmp_path / "b.bin"), "--headers", str(tmp_path / "h.json"), **env)
    assert len(esc.received) == 3  # one escalation POST per failed job
    needles = [SECRET_RAW, SECRET_WHSEC, SECRET_WHSEC[len("whsec_"):], url, bad_url, esc_url, refused, PATH_TOKEN,
               f"127.0.0.1:{rx.port}", f"127.0.0.1:{down.port}", f"127.0.0.1:{esc.port}"]
    assert (tmp_path / "ops" / "escalations").is_dir() and (tmp_path / "ops/weekly_report_history").is_dir()
    assert _scan([tmp_path / "out", tmp_path / "ops"], needles) == []
    assert [(i, n) for i, text in enumerate(obs.outputs) for n in needles if n in text] == []
    # nothing from these tests reached the repository's own out/ and ops/ either
    assert _scan([REPO / "out", REPO / "ops"], [SECRET_RAW, SECRET_WHSEC, PATH_TOKEN]) == []


from conftest import REAL_ROOT as REALDATA  # noqa: E402


def _has_weekly_run() -> bool:
    p = subprocess.run([*OBS, "weekly", "run", "--help"], capture_output=True, text=True, env=_base_env())
    return p.returncode == 0


@pytest.mark.realdata
@pytest.mark.slow
def test_make_weekly_delivers_real_payload_and_replay_is_identical(tmp_path):
    if not REALDATA.exists():
        pytest.skip("../shared/realdata/research_repo is absent")
    if not _has_weekly_run():
        pytest.skip("`obs weekly run` is not available yet")
    with Receiver() as rx:
        env = _base_env(OBS_WORK_ROOT=str(tmp_path), OBS_WEEKLY_WEBHOOK_URL=rx.url(), OBS_WEBHOOK_SECRET=SECRET_RAW,
                        OBS_DATA_ROOT=str(REALDATA))
        make = subprocess.run(["make", "-s", "-C", str(REPO), "weekly", f"DATA_ROOT={REALDATA}", f"WEEK_START={WS}"],
                              capture_output=True, text=True, env=env, timeout=600)
        assert make.returncode == 0, make.stderr[-2000:]
        rep = subprocess.run([*OBS, "weekly", "replay", "--week-start", WS], capture_output=True, text=True,
                             env=env, cwd=tmp_path, timeout=120)
        assert rep.returncode == 0, rep.stderr
    stored = (tmp_path / "ops/weekly_report_history" / f"{WS}.json").read_bytes()
    payload = json.loads((tmp_path / "out/weekly_report" / WS / "payload.json").read_text())
    assert stored == json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert [r.body for r in rx.received] == [stored, stored]
    assert rx.received[0].headers["webhook-id"] == rx.received[1].headers["webhook-id"]
    for text in (make.stdout, make.stderr, rep.stdout, rep.stderr):
        assert SECRET_RAW not in text and rx.url() not in text


def test_pretend_now_still_signs_with_the_real_clock(obs):
    """`--now` moves the report's clock, not the signature's: a receiver checking the
    timestamp against its own clock accepts the delivery."""
    from datetime import datetime, timezone

    from obslib.webhook import verify

    with Receiver() as rx:
        p = obs("weekly", "deliver", "--week-start", WS, "--now", "2025-09-29T00:00:00Z",
                OBS_WEEKLY_WEBHOOK_URL=rx.url(), OBS_WEBHOOK_SECRET=SECRET_RAW)
        assert p.returncode == 0, p.stderr
        req = rx.received[0]
    res = verify(req.body, req.headers, [SECRET_RAW], tolerance_s=300, now=datetime.now(timezone.utc))
    assert res.ok, res.reason
