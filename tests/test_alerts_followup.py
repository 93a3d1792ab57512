"""Issue #11 follow-up (QA): routing faults found after the first landing.

Real Slack / PagerDuty receivers on 127.0.0.1 (``test_alerts_routing.Receivers``)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from test_alerts_routing import PD_KEY, Receivers
from test_webhook_support import make_cfg

from obslib.alerting.destinations import Destinations
from obslib.alerting.router import route_alerts
from obslib.alerting.state import read_state
from obslib.alerts import make_alert
from obslib.commands import weekly_cmd
from obslib.runlog import JobContext

UTC = timezone.utc
NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)  # a Wednesday: the current week starts 2026-11-23
THIS_WEEK, LAST_WEEK, OLDER_WEEK = "2026-11-23", "2026-11-16", "2026-11-09"


@pytest.fixture
def rx():
    r = Receivers()
    yield r
    r.close()


def _weekly(cfg, rx, alerts, week, now=NOW):
    ctx = JobContext(job_name="weekly_report", ops_dir=cfg.ops_dir, now=now)
    return route_alerts(alerts, cfg=cfg, ctx=ctx, now=now, dest=Destinations.from_env(rx.env(), cfg),
                        source="weekly_report", resolve_missing=True, scope=week)


def _crit(week):
    return make_alert(f"utilisation-breach:gpu:{week}", "critical", f"gpu over budget in {week}", anchor="weekly-webhook")


@pytest.mark.parametrize("old_week", [LAST_WEEK, OLDER_WEEK])
def test_reporting_an_older_week_never_resolves_the_current_weeks_alerts(tmp_path, rx, old_week):
    cfg = make_cfg(tmp_path)
    _weekly(cfg, rx, [_crit(THIS_WEEK)], THIS_WEEK)
    assert [b["event_action"] for b in rx.pd_bodies()] == ["trigger"]
    # the input: the older week re-run reports nothing of this week (no alerts / its own)
    _weekly(cfg, rx, [], old_week)
    _weekly(cfg, rx, [_crit(old_week)], old_week)
    pd = rx.pd_bodies()
    assert [b for b in pd if b["event_action"] == "resolve"] == []
    st = read_state(cfg.ops_dir)["alerts"]
    assert st[f"utilisation-breach:gpu:{THIS_WEEK}"]["resolved_at"] is None
    # the current week's next report without the alert still resolves it (same scope)
    _weekly(cfg, rx, [], THIS_WEEK)
    assert rx.pd_bodies()[-1] == {"routing_key": PD_KEY, "event_action": "resolve",
                                  "dedup_key": f"utilisation-breach:gpu:{THIS_WEEK}"}


def test_a_new_week_resolves_last_weeks_missing_alerts(tmp_path, rx):
    cfg = make_cfg(tmp_path)
    _weekly(cfg, rx, [_crit(LAST_WEEK)], LAST_WEEK)
    _weekly(cfg, rx, [], THIS_WEEK)
    assert rx.pd_bodies()[-1]["event_action"] == "resolve"


@pytest.mark.parametrize("week", [LAST_WEEK, OLDER_WEEK])
def test_a_past_weeks_report_routes_nothing(tmp_path, rx, week):
    cfg = make_cfg(tmp_path)
    _weekly(cfg, rx, [_crit(THIS_WEEK)], THIS_WEEK)
    ctx = JobContext(job_name="weekly_report", ops_dir=cfg.ops_dir, now=NOW)
    ctx.destinations = Destinations.from_env(rx.env(), cfg)
    out = weekly_cmd._route(cfg, ctx, NOW, [_crit(week)], week)
    assert "past week" in out["skipped"]
    assert len(rx.pd.received) == 1 and len(rx.slack.received) == 1  # only the first trigger
    assert f"utilisation-breach:gpu:{week}" not in read_state(cfg.ops_dir)["alerts"]


@pytest.mark.parametrize("kind", ["delivery_exhausted", None])
def test_an_alert_whose_route_is_unconfigured_falls_back_to_its_severity_route(tmp_path, rx, kind):
    cfg = make_cfg(tmp_path)  # Slack + PagerDuty configured, no email
    a = make_alert("delivery-exhausted:weekly:2026-11-23", "critical", "weekly delivery failed", anchor="weekly-webhook")
    if kind:
        a["kind"] = kind
    else:
        a["route"] = ["email"]  # an explicit route to an unconfigured channel: the other member of the class
    rep = _weekly(cfg, rx, [a], THIS_WEEK)
    assert rep["unrouted"] == []
    assert [b["event_action"] for b in rx.pd_bodies()] == ["trigger"]
    assert rx.pd_bodies()[0]["dedup_key"] == "delivery-exhausted:weekly:2026-11-23"
    assert len(rx.slack.received) == 1


def test_with_nothing_configured_the_critical_is_counted_unrouted(tmp_path):
    cfg = make_cfg(tmp_path)
    ctx = JobContext(job_name="weekly_report", ops_dir=cfg.ops_dir, now=NOW)
    a = make_alert("delivery-exhausted:weekly:2026-11-23", "critical", "weekly delivery failed", anchor="weekly-webhook")
    a["kind"] = "delivery_exhausted"
    rep = route_alerts([a], cfg=cfg, ctx=ctx, now=NOW, dest=Destinations.from_env({}, cfg), source="weekly_delivery")
    assert rep["unrouted"] == ["delivery-exhausted:weekly:2026-11-23"]


# --------------------------------------------------------------------------- unreadable / malformed state

@pytest.mark.parametrize("content", ["{not json", "[]", '{"alerts": 5}', '{"acks": {}}'])
def test_an_unreadable_state_is_refused_by_list_and_moved_aside_by_a_writer(tmp_path, rx, content):
    import subprocess
    import sys

    from conftest import obs_subprocess_env

    cfg = make_cfg(tmp_path)
    path = cfg.ops_dir / "active_alerts.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    p = subprocess.run([sys.executable, "-m", "obslib", "alerts", "list", "--work-root", str(tmp_path)],
                       capture_output=True, text=True, env=obs_subprocess_env(), cwd=tmp_path, timeout=60)
    assert p.returncode == 2 and "active_alerts.json" in p.stderr and "no active alerts" not in p.stderr
    assert path.read_text() == content  # a reader never changes it
    _weekly(cfg, rx, [_crit(THIS_WEEK)], THIS_WEEK)  # a writer moves it aside, never overwrites it
    moved = sorted(cfg.ops_dir.glob("active_alerts.json.corrupt-*"))
    assert [m.read_text() for m in moved] == [content]
    st = read_state(cfg.ops_dir)["alerts"]
    assert moved[0].name in st["alert-state-quarantined"]["message"]
    assert st["alert-state-quarantined"]["severity"] == "warning"
    assert f"utilisation-breach:gpu:{THIS_WEEK}" in st


@pytest.mark.parametrize("bad", [{"channels": None}, {"channels": {"slack": None}}, {"severity": None}, 7])
def test_a_malformed_entry_is_reported_by_list_and_kept(tmp_path, rx, bad):
    import json
    import subprocess
    import sys

    from conftest import obs_subprocess_env

    cfg = make_cfg(tmp_path)
    _weekly(cfg, rx, [_crit(THIS_WEEK)], THIS_WEEK)
    path = cfg.ops_dir / "active_alerts.json"
    doc = json.loads(path.read_text())
    good = dict(doc["alerts"][f"utilisation-breach:gpu:{THIS_WEEK}"])
    doc["alerts"]["broken"] = {**good, "id": "broken", **bad} if isinstance(bad, dict) else bad
    path.write_text(json.dumps(doc))
    p = subprocess.run([sys.executable, "-m", "obslib", "alerts", "list", "--work-root", str(tmp_path)],
                       capture_output=True, text=True, env=obs_subprocess_env(), cwd=tmp_path, timeout=60)
    assert p.returncode == 2 and "Traceback" not in p.stderr and "internal error" not in p.stderr
    assert "malformed entry 'broken'" in p.stderr and f"utilisation-breach:gpu:{THIS_WEEK}" in p.stderr
    _weekly(cfg, rx, [_crit(THIS_WEEK)], THIS_WEEK)  # a writer keeps the malformed entry as it was
    assert json.loads(path.read_text())["alerts"]["broken"] == doc["alerts"]["broken"]


# --------------------------------------------------------------------------- replay: the stored payload's data

@pytest.mark.parametrize(("label", "flags", "sent"), [
    ("demo (seed 7)", [], False),            # the input: --data-root given, a demo payload stored
    ("demo (seed 123)", ["--demo"], True),   # sent on purpose
    ("research_repo", [], True),             # a real payload replays as before
])
def test_replay_guard_looks_at_the_stored_payloads_data_root(tmp_path, label, flags, sent):
    import json
    import subprocess
    import sys

    from conftest import obs_subprocess_env
    from test_webhook_support import SECRET_RAW, Receiver, Reply

    rcv = Receiver(default=Reply(200, b"ok"))
    try:
        data = tmp_path / "research_repo"
        data.mkdir()
        hist = tmp_path / "work/ops/weekly_report_history"
        hist.mkdir(parents=True)
        (hist / f"{LAST_WEEK}.json").write_text(json.dumps(
            {"week_start": LAST_WEEK, "provenance": {"data_root": label}}, sort_keys=True))
        env = obs_subprocess_env(OBS_WEEKLY_WEBHOOK_URL=rcv.url("/hook"), OBS_WEBHOOK_SECRET=SECRET_RAW)
        p = subprocess.run([sys.executable, "-m", "obslib", "weekly", "replay", "--week-start", LAST_WEEK,
                            "--work-root", str(tmp_path / "work"), "--data-root", str(data),
                            "--now", "2026-11-25T09:00:00Z", *flags],
                           capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
        if sent:
            assert p.returncode == 0, p.stderr
            assert len(rcv.received) == 1
        else:
            assert p.returncode == 2 and "demo data" in p.stderr and f"{LAST_WEEK}.json" in p.stderr
            assert rcv.received == []
    finally:
        rcv.close()


# --------------------------------------------------------------------------- a second acknowledgement

def _obs(*args, env=None):
    import subprocess
    import sys

    from conftest import obs_subprocess_env

    return subprocess.run([sys.executable, "-m", "obslib", *args], capture_output=True, text=True, timeout=120,
                          env=obs_subprocess_env(**(env or {})))


def test_a_second_ack_keeps_the_first_and_sends_nothing(tmp_path, rx):
    import json

    cfg = make_cfg(tmp_path)
    aid = f"utilisation-breach:gpu:{THIS_WEEK}"
    _weekly(cfg, rx, [_crit(THIS_WEEK)], THIS_WEEK)  # first seen 09:00
    w = ["--work-root", str(tmp_path)]
    p = _obs("alerts", "ack", aid, "--by", "alice", "--note", "on it", "--now", "2026-11-25T09:05:00Z", *w,
             env=rx.env())
    assert p.returncode == 0, p.stderr
    assert [b["event_action"] for b in rx.pd_bodies()] == ["trigger", "acknowledge"]
    for by, note in (("bob", "me too"), ("alice", None)):  # another person, and the same one again
        p = _obs("alerts", "ack", aid, "--by", by, *(["--note", note] if note else []),
                 "--now", "2026-11-25T09:30:00Z", *w, env=rx.env())
        assert p.returncode == 0, p.stderr
        assert "already acknowledged by alice at 2026-11-25T09:05:00Z" in p.stderr
        assert json.loads(p.stdout)["time_to_ack_s"] == 300.0
    assert [b["event_action"] for b in rx.pd_bodies()] == ["trigger", "acknowledge"]  # nothing re-sent
    st = read_state(cfg.ops_dir)
    e = st["alerts"][aid]
    assert (e["acknowledged_by"], e["acknowledged_at"], e["ack_note"]) == ("alice", "2026-11-25T09:05:00Z", "on it")
    assert [a["by"] for a in st["acks"]] == ["alice"]


@pytest.mark.parametrize(("flag", "value"), [("--by", "b" * 101), ("--note", "n" * 1001), ("--by", "")])
def test_ack_by_and_note_lengths_are_limited(tmp_path, rx, flag, value):
    cfg = make_cfg(tmp_path)
    aid = f"utilisation-breach:gpu:{THIS_WEEK}"
    _weekly(cfg, rx, [_crit(THIS_WEEK)], THIS_WEEK)
    p = _obs("alerts", "ack", aid, flag, value, "--now", "2026-11-25T09:05:00Z", "--work-root", str(tmp_path),
             env=rx.env())
    assert p.returncode == 2 and flag in p.stderr
    assert read_state(cfg.ops_dir)["alerts"][aid]["acknowledged_at"] is None
    assert [b["event_action"] for b in rx.pd_bodies()] == ["trigger"]


# --------------------------------------------------------------------------- small ones

@pytest.mark.parametrize("secret", ["zq7", "Xy0-weak"])  # weak secrets that are no word of the message
def test_a_weak_secret_refusal_keeps_its_fixed_text(tmp_path, secret):
    p = _obs("weekly", "run", "--work-root", str(tmp_path), "--demo",
             env={"OBS_WEEKLY_WEBHOOK_URL": "http://127.0.0.1:9/x", "OBS_WEBHOOK_SECRET": secret})
    assert p.returncode == 2
    assert "a secret must be at least 16 bytes" in p.stderr and "this one is too short" in p.stderr
    assert "[REDACTED]" not in p.stderr and secret not in p.stderr + p.stdout


def test_secrets_of_any_length_are_redacted():
    from obslib.runlog import redact

    env = {"OBS_WEBHOOK_SECRET": "Abcdefgh", "OBS_SMTP_PASSWORD": "pw12345"}
    assert redact("x Abcdefgh y pw12345", env) == "x [REDACTED] y [REDACTED]"


@pytest.mark.parametrize("port", [0, 65536, 70000, -1, 25.5])
def test_smtp_port_outside_1_to_65535_is_refused(tmp_path, port):
    from obslib.config import load_config
    from obslib.errors import ConfigError

    with pytest.raises(ConfigError, match="alerts.smtp_port"):
        load_config(tmp_path, env={}, overrides={"alerts": {"smtp_port": port}})


@pytest.mark.parametrize("port", [1, 587, 65535])
def test_smtp_port_in_range_is_accepted(tmp_path, port):
    from obslib.config import load_config

    assert load_config(tmp_path, env={}, overrides={"alerts": {"smtp_port": port}}).alerts.smtp_port == port


@pytest.mark.parametrize("n", [256, 2000])
def test_a_long_alert_id_gets_a_hashed_pagerduty_dedup_key_shared_by_trigger_and_resolve(tmp_path, rx, n):
    import hashlib

    cfg = make_cfg(tmp_path)
    aid = ("utilisation-breach:" + "g" * n)[:n]
    a = make_alert(aid, "critical", "long id", anchor="weekly-webhook")
    _weekly(cfg, rx, [a], THIS_WEEK)
    _weekly(cfg, rx, [{"id": aid, "severity": "resolved"}], THIS_WEEK)
    pd = rx.pd_bodies()
    want = "obs-sha256:" + hashlib.sha256(aid.encode()).hexdigest()  # 75 chars
    assert [(b["event_action"], b["dedup_key"]) for b in pd] == [("trigger", want), ("resolve", want)]
    assert pd[0]["payload"]["custom_details"]["id"] == aid


def test_an_id_of_255_chars_is_its_own_dedup_key(tmp_path, rx):
    cfg = make_cfg(tmp_path)
    aid = "x" * 255
    _weekly(cfg, rx, [make_alert(aid, "critical", "at the limit", anchor="weekly-webhook")], THIS_WEEK)
    assert rx.pd_bodies()[0]["dedup_key"] == aid


# --------------------------------------------------------------------------- end to end through `obs weekly run`

def test_weekly_run_end_to_end_failed_delivery_still_pages_and_an_old_week_resolves_nothing(tmp_path, rx):
    """The issue's inputs: `obs weekly run --demo` (current week) then `--week-start 2026-11-16`,
    with Slack/PagerDuty configured and the weekly receiver answering 500 (no email)."""
    import json

    from test_webhook_support import SECRET_RAW, Receiver, Reply

    hook = Receiver(default=Reply(500, b"down"))
    try:
        env = {**rx.env(), "OBS_WEEKLY_WEBHOOK_URL": hook.url("/hook"), "OBS_WEBHOOK_SECRET": SECRET_RAW,
               "OBS_WEBHOOK_BACKOFF_BASE_S": "0", "OBS_WEBHOOK_BACKOFF_MAX_S": "0"}
        w = ["--work-root", str(tmp_path), "--demo", "--now", "2026-11-26T09:40:00Z"]
        p = _obs("weekly", "run", *w, env=env)
        assert p.returncode == 3, p.stderr  # undelivered
        payload = json.loads((tmp_path / "out/weekly_report/2026-11-23/payload.json").read_text())
        crit = sorted(a["id"] for a in payload["alerts"] if a["severity"] == "critical")
        assert crit  # the demo week has criticals
        triggered = sorted(b["dedup_key"] for b in rx.pd_bodies() if b["event_action"] == "trigger")
        # the report's criticals and the exhausted delivery (no email: falls back to PagerDuty)
        assert triggered == sorted([*crit, "delivery-exhausted:weekly:2026-11-23"])
        p = _obs("weekly", "run", *w, "--week-start", LAST_WEEK, env=env)
        assert p.returncode == 3, p.stderr
        assert [b for b in rx.pd_bodies() if b["event_action"] == "resolve"] == []
        st = read_state(tmp_path / "ops")["alerts"]
        assert all(st[i]["resolved_at"] is None for i in crit)
        assert not any(i.endswith(f":{LAST_WEEK}") and not i.startswith("delivery-exhausted") for i in st)
    finally:
        hook.close()


def test_a_delivered_week_with_an_unreadable_state_still_succeeds_and_moves_it_aside(tmp_path):
    from test_webhook_support import SECRET_RAW, Receiver, Reply

    from obslib.weekly.delivery import deliver_weekly

    cfg = make_cfg(tmp_path)
    (cfg.ops_dir).mkdir(parents=True, exist_ok=True)
    (cfg.ops_dir / "active_alerts.json").write_text("{not json")
    hook = Receiver(default=Reply(200, b"ok"))
    try:
        ctx = JobContext(job_name="weekly_report", ops_dir=cfg.ops_dir, now=NOW)
        out = deliver_weekly({"week_start": THIS_WEEK, "provenance": {"data_root": "research_repo"}},
                             week_start=THIS_WEEK, cfg=cfg, ctx=ctx, now=NOW,
                             env={"OBS_WEEKLY_WEBHOOK_URL": hook.url("/hook"), "OBS_WEBHOOK_SECRET": SECRET_RAW})
    finally:
        hook.close()
    assert out["delivery"]["status"] == "delivered" and len(hook.received) == 1
    assert [m.read_text() for m in cfg.ops_dir.glob("active_alerts.json.corrupt-*")] == ["{not json"]
