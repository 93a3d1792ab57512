"""Issue #11 observations 3 and 4: routing to Slack, PagerDuty and email, the active-alerts
state, repeats every repeat_interval unless acknowledged, resolve with the same dedup_key,
`obs alerts list|ack`, time to acknowledge in `obs check`, 401/403 as its own alert.

Real receivers on 127.0.0.1 check each format's documented required fields and enums
(Slack incoming webhook: ``text`` + Block Kit ``blocks``; PagerDuty Events API v2); a real
SMTP server (aiosmtpd) receives the email."""

from __future__ import annotations

import email
import json
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
from conftest import obs_subprocess_env
from test_webhook_support import SECRET_RAW, Receiver, Reply, free_port, make_cfg

from obslib.alerting.destinations import Destinations
from obslib.alerting.router import acknowledge, route_alerts
from obslib.alerting.state import read_state
from obslib.alerts import make_alert
from obslib.runlog import JobContext

UTC = timezone.utc
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
PD_KEY = "R0uT1nGkEy0123456789abcdefABCDEF"
SLACK_PATH = "/services/T0AAA/B0BBB/slackSECRETtoken99"
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


def check_slack(body: dict) -> None:
    """Slack incoming webhook: a non-empty ``text`` fallback, Block Kit blocks of known types."""
    assert isinstance(body["text"], str) and body["text"]
    assert body["blocks"] and all(b["type"] in ("header", "section", "context", "divider", "actions")
                                  for b in body["blocks"])
    header = [b for b in body["blocks"] if b["type"] == "header"]
    assert header and header[0]["text"]["type"] == "plain_text" and len(header[0]["text"]["text"]) <= 150
    for b in body["blocks"]:
        if b["type"] == "section":
            assert "text" in b or "fields" in b
            for f in b.get("fields", []):
                assert f["type"] in ("mrkdwn", "plain_text") and len(f["text"]) <= 2000
            if "text" in b:
                assert len(b["text"]["text"]) <= 3000


def check_pagerduty(body: dict) -> None:
    """Events API v2: routing_key, event_action enum, dedup_key; a trigger's payload fields."""
    assert body["routing_key"] == PD_KEY
    assert body["event_action"] in ("trigger", "acknowledge", "resolve")
    assert isinstance(body["dedup_key"], str) and body["dedup_key"]
    if body["event_action"] == "trigger":
        p = body["payload"]
        assert 0 < len(p["summary"]) <= 1024 and p["source"]
        assert p["severity"] in ("critical", "error", "warning", "info")
        assert RFC3339.match(p["timestamp"])
        assert isinstance(p.get("custom_details", {}), dict)
        assert all("href" in link for link in body.get("links", []))


class Receivers:
    def __init__(self, slack_reply: Reply | None = None, pd_reply: Reply | None = None):
        self.slack = Receiver(default=slack_reply or Reply(200, b"ok"))
        self.pd = Receiver(default=pd_reply or Reply(202, b'{"status":"success","dedup_key":"x"}'))

    def env(self) -> dict[str, str]:
        return {"OBS_SLACK_WEBHOOK_URL": self.slack.url(SLACK_PATH), "OBS_PAGERDUTY_ROUTING_KEY": PD_KEY,
                "OBS_PAGERDUTY_EVENTS_URL": self.pd.url("/v2/enqueue")}

    def slack_bodies(self):
        out = [json.loads(r.body) for r in self.slack.received]
        for b in out:
            check_slack(b)
        return out

    def pd_bodies(self):
        out = [json.loads(r.body) for r in self.pd.received]
        for b in out:
            check_pagerduty(b)
        return out

    def close(self):
        self.slack.close()
        self.pd.close()


@pytest.fixture
def rx():
    r = Receivers()
    yield r
    r.close()


def _ctx(cfg, now):
    return JobContext(job_name="latency", ops_dir=cfg.ops_dir, now=now)


def streak_alert(sev: str) -> dict:
    """A latency streak alert as the latency job produces it (stable id per rule and source)."""
    a = make_alert("latency-streak:router_demo", sev, f"router_demo: {sev}: p95 150000 ms vs SLO 120000 ms",
                   anchor="signal-latency", source="router_demo")
    a["rule"] = "streak"
    return a


def route(cfg, rx, alerts, now, **kw):
    dest = Destinations.from_env(rx.env(), cfg)
    return route_alerts(alerts, cfg=cfg, ctx=_ctx(cfg, now), now=now, dest=dest, source="latency", **kw)


def test_critical_streak_pages_once_repeats_unless_acked_and_resolves_with_the_same_dedup_key(tmp_path, rx):
    cfg = make_cfg(tmp_path)
    window = timedelta(minutes=15)
    # windows 1-3 breach: warning at 2, critical at 3 (the latency rule); then it stays critical
    route(cfg, rx, [], T0)
    route(cfg, rx, [streak_alert("warning")], T0 + window)
    route(cfg, rx, [streak_alert("critical")], T0 + 2 * window)
    for k in range(3, 8):  # still critical: nothing new is sent
        route(cfg, rx, [], T0 + k * window)
    slack, pd = rx.slack_bodies(), rx.pd_bodies()
    assert [b["event_action"] for b in pd] == ["trigger"]  # one PagerDuty trigger ...
    assert pd[0]["dedup_key"] == "latency-streak:router_demo" and pd[0]["payload"]["severity"] == "critical"
    assert [b["blocks"][0]["text"]["text"].split(":")[0] for b in slack] == ["WARNING", "CRITICAL"]  # ... one Slack
    # repeat_interval (4 h) later, not acknowledged: re-sent on both channels
    route(cfg, rx, [], T0 + 2 * window + timedelta(hours=4))
    assert [b["event_action"] for b in rx.pd_bodies()] == ["trigger", "trigger"]
    assert rx.slack_bodies()[-1]["blocks"][0]["text"]["text"].startswith("REPEAT CRITICAL")
    # the streak ends: a resolve with the same dedup_key, and a Slack "resolved"
    route(cfg, rx, [{"id": "latency-streak:router_demo", "severity": "resolved", "source": "router_demo"}],
          T0 + timedelta(hours=5))
    pd = rx.pd_bodies()
    assert pd[-1] == {"routing_key": PD_KEY, "event_action": "resolve", "dedup_key": "latency-streak:router_demo"}
    assert rx.slack_bodies()[-1]["text"].startswith("RESOLVED")
    st = read_state(cfg.ops_dir)
    assert st["alerts"] == {} and st["resolved"][-1]["id"] == "latency-streak:router_demo"
    # every send is on record under ops/, with the routing key and the Slack token redacted
    sent = (cfg.ops_dir / "alerts_sent.log").read_text()
    assert len(sent.splitlines()) == 7 and PD_KEY not in sent and "slackSECRETtoken99" not in sent


def test_acknowledged_critical_is_not_repeated_and_ack_is_sent_to_pagerduty(tmp_path, rx):
    cfg = make_cfg(tmp_path)
    route(cfg, rx, [streak_alert("critical")], T0)
    out = acknowledge("latency-streak:router_demo", by="alice", note="looking", cfg=cfg, ctx=_ctx(cfg, T0),
                      now=T0 + timedelta(minutes=7), dest=Destinations.from_env(rx.env(), cfg))
    assert out["time_to_ack_s"] == 420.0 and out["sent"] == [{"channel": "pagerduty", "event": "acknowledge"}]
    route(cfg, rx, [], T0 + timedelta(hours=9))  # two repeat intervals later: nothing, it is acknowledged
    assert [b["event_action"] for b in rx.pd_bodies()] == ["trigger", "acknowledge"]
    assert len(rx.slack_bodies()) == 1
    e = read_state(cfg.ops_dir)["alerts"]["latency-streak:router_demo"]
    assert e["acknowledged_by"] == "alice" and e["ack_note"] == "looking"
    assert e["acknowledged_at"] == "2026-03-02T12:07:00Z"


def test_outbox_sends_criticals_first_and_keeps_what_failed(tmp_path):
    cfg = make_cfg(tmp_path, max_attempts=1)
    rx = Receivers(slack_reply=Reply(500, b"down"))
    try:
        warn = make_alert("w-1", "warning", "a warning", anchor="missed-runs")
        crit = make_alert("c-1", "critical", "a critical", anchor="missed-runs")
        rep = route(cfg, rx, [warn, crit], T0)
        # PagerDuty got the critical; Slack failed twice (critical first, then the warning): kept pending
        assert [b["dedup_key"] for b in rx.pd_bodies()] == ["c-1"]
        assert [json.loads(r.body)["text"].split(":")[0] for r in rx.slack.received] == ["CRITICAL", "WARNING"]
        assert rep["pending"] == 2 and len(rep["failed"]) == 2
        rx.slack.default = Reply(200, b"ok")
        rep = route(cfg, rx, [], T0 + timedelta(minutes=15))  # the next run delivers them, critical first
        assert [b["text"].split(":")[0] for b in rx.slack_bodies()[2:]] == ["CRITICAL", "WARNING"]
        assert rep["pending"] == 0
    finally:
        rx.close()


def test_latest_state_per_alert_id_wins_before_sending(tmp_path, rx):
    cfg = make_cfg(tmp_path)
    dest_none = Destinations.from_env({}, cfg)
    ctx = _ctx(cfg, T0)
    # nothing configured yet: warning then critical of one condition are recorded, not sent
    route_alerts([streak_alert("warning")], cfg=cfg, ctx=ctx, now=T0, dest=dest_none, source="latency")
    rep = route_alerts([streak_alert("critical")], cfg=cfg, ctx=ctx, now=T0, dest=dest_none, source="latency")
    assert rep["unrouted"] == ["latency-streak:router_demo"]
    route(cfg, rx, [], T0 + timedelta(minutes=15))  # now Slack is configured: one message, the critical
    assert [b["text"].split(":")[0] for b in rx.slack_bodies()] == ["CRITICAL"]


@pytest.mark.parametrize("code", [401, 403])
def test_a_receiver_rejecting_the_key_raises_its_own_alert(tmp_path, code):
    cfg = make_cfg(tmp_path, max_attempts=1)
    rx = Receivers(pd_reply=Reply(code, b'{"message":"Invalid routing key R0uT1nGkEy0123456789abcdefABCDEF"}'))
    try:
        rep = route(cfg, rx, [make_alert("c-2", "critical", "boom", anchor="missed-runs")], T0)
        assert rep["rejected"] == ["pagerduty"]
        st = read_state(cfg.ops_dir)["alerts"]
        rej = st["receiver-rejected:pagerduty"]
        assert rej["severity"] == "critical" and "receiver rejected the signature or key" in rej["message"]
        assert rej["route"] == ["slack"]  # not to the channel that refused
        texts = [b["text"] for b in rx.slack_bodies()]
        assert any("receiver rejected the signature or key (check secret rotation)" in t for t in texts)
        log = (cfg.ops_dir / "automation_runs.log").read_text() + (cfg.ops_dir / "alerts_sent.log").read_text()
        assert PD_KEY not in log  # the echoed key is redacted
    finally:
        rx.close()


# --------------------------------------------------------------------------- email (real SMTP server)

@pytest.fixture
def smtp():
    from aiosmtpd.controller import Controller

    class Handler:
        def __init__(self):
            self.messages = []

        async def handle_DATA(self, server, session, envelope):
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
            return "250 OK"

    h = Handler()
    port = free_port()
    c = Controller(h, hostname="127.0.0.1", port=port)
    c.start()
    try:
        yield h, port
    finally:
        c.stop()


def test_exhausted_weekly_delivery_emails_with_the_attempt_log_and_posts_the_escalation(tmp_path, smtp):
    from obslib.errors import DeliveryError
    from obslib.weekly.delivery import deliver_weekly

    handler, port = smtp
    cfg = make_cfg(tmp_path, max_attempts=2)
    cfg.alerts.smtp_host, cfg.alerts.smtp_port = "127.0.0.1", port
    cfg.alerts.smtp_to, cfg.alerts.smtp_from = "oncall@example.test, lead@example.test", "obslib@example.test"
    payload = {"week_start": "2026-02-23", "alerts": [], "x": 1}
    with Receiver(default=Reply(503, b"busy")) as weekly, Receiver() as esc:
        env = {"OBS_WEEKLY_WEBHOOK_URL": weekly.url(), "OBS_WEBHOOK_SECRET": SECRET_RAW,
               "OBS_ESCALATION_WEBHOOK_URL": esc.url("/escalate")}
        with pytest.raises(DeliveryError):
            deliver_weekly(payload, week_start="2026-02-23", cfg=cfg, ctx=_ctx(cfg, T0), now=T0, env=env,
                           sleep=lambda s: None)
        assert len(weekly.received) == 2 and len(esc.received) == 1  # the escalation webhook
    assert len(handler.messages) == 1
    sender, rcpts, raw = handler.messages[0]
    assert sender == "obslib@example.test" and rcpts == ["oncall@example.test", "lead@example.test"]
    msg = email.message_from_bytes(raw)
    assert msg["Subject"] == "[obslib CRITICAL] delivery-exhausted:weekly:2026-02-23"
    att = [p for p in msg.walk() if p.get_filename() == "attempt_log.json"]
    log = json.loads(att[0].get_payload(decode=True))
    assert [r["attempt"] for r in log] == [1, 2] and {r["status_code"] for r in log} == {503}
    assert SECRET_RAW.encode() not in raw and weekly.url().encode() not in raw


# --------------------------------------------------------------------------- CLI: list, ack, check

def obs(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, "-m", "obslib", *args], capture_output=True, text=True, timeout=120,
                          env=obs_subprocess_env(**(env or {})), cwd=cwd)


def test_obs_alerts_list_ack_and_time_to_ack_in_obs_check(tmp_path, rx):
    cfg = make_cfg(tmp_path)
    route(cfg, rx, [streak_alert("critical"), make_alert("w-9", "warning", "a warning", anchor="missed-runs")], T0)
    w = ["--work-root", str(tmp_path)]
    p = obs("alerts", "list", "--json", "--now", "2026-03-02T12:30:00Z", *w)
    assert p.returncode == 0, p.stderr
    rows = json.loads(p.stdout)["alerts"]
    assert [(r["id"], r["severity"], r["age_s"]) for r in rows] == [
        ("latency-streak:router_demo", "critical", 1800.0), ("w-9", "warning", 1800.0)]
    assert rows[0]["channels"]["pagerduty"]["status"] == "sent" and rows[1]["channels"]["slack"]["status"] == "sent"
    p = obs("alerts", "list", "--now", "2026-03-02T12:30:00Z", *w)
    assert "critical latency-streak:router_demo  age 30m  not acked  [pagerduty:sent, slack:sent]" in p.stderr
    p = obs("alerts", "ack", "latency-streak:router_demo", "--by", "bob", "--note", "on it", "--now",
            "2026-03-02T12:12:00Z", *w, env=rx.env())
    assert p.returncode == 0, p.stderr
    s = json.loads(p.stdout)
    assert s["time_to_ack_s"] == 720.0 and s["acknowledged_by"] == "bob"
    assert rx.pd_bodies()[-1]["event_action"] == "acknowledge"
    p = obs("alerts", "ack", "no-such-alert", *w)
    assert p.returncode == 2 and "no active alert 'no-such-alert'" in p.stderr
    # obs check reports the time to acknowledge against the 10-minute goal
    from obslib.schedule import load_schedule

    (tmp_path / "obs.toml").write_text("".join(f"[schedule.{j.name}]\nenabled = false\n" for j in load_schedule()))
    p = obs("check", "--now", "2026-03-02T13:00:00Z", "--since", "2026-03-02T11:00:00Z", *w)
    s = json.loads(p.stdout)
    assert s["time_to_ack"]["count"] == 1 and s["time_to_ack"]["max_s"] == 720.0
    assert s["time_to_ack"]["over_goal"] == 1 and s["time_to_ack"]["goal_s"] == 600.0
    assert "1 ack(s) since the last check, median 12.0 min, max 12.0 min, 1 over the 10 min goal" in p.stderr


# --------------------------------------------------------------------------- end to end through `obs latency sample`

def test_latency_streak_end_to_end_pages_once_and_resolves(tmp_path, rx):
    """The latency job's own decisions flow through the router: breach x4 then ok gives Slack
    WARNING, CRITICAL, RESOLVED and one PagerDuty trigger, then a resolve with the same dedup_key."""
    from latency_fixtures import EVENT_HEADER, event_line, iso, minutes
    from latency_fixtures import T0 as LT0

    data = tmp_path / "data"
    (data / "ops").mkdir(parents=True)
    log = data / "ops/signal_latency.csv"
    log.write_text(EVENT_HEADER)
    work = tmp_path / "work"
    work.mkdir()
    now = LT0
    for v in (150000, 150000, 150000, 160000, 1000):
        with open(log, "a") as fh:
            fh.write(event_line(now - minutes(1), v))
        p = obs("latency", "sample", "--data-root", str(data), "--now", iso(now), "--work-root", str(work),
                env={**rx.env(), "OBS_LATENCY_BURN_PAGE": "1e9", "OBS_LATENCY_BURN_WARN": "1e9"}, cwd=work)
        assert p.returncode == 0, p.stderr
        now += minutes(15)
    pd = rx.pd_bodies()
    assert [(b["event_action"], b["dedup_key"]) for b in pd] == [("trigger", "latency-streak:router"),
                                                                  ("resolve", "latency-streak:router")]
    assert [b["text"].split(":")[0] for b in rx.slack_bodies()] == ["WARNING", "CRITICAL", "RESOLVED"]
    assert read_state(work / "ops")["alerts"] == {}


def test_a_real_critical_with_no_channel_is_said_on_stderr(tmp_path):
    """Observation 3: with no destination, a critical is no longer only a file and a quiet `ok`."""
    from latency_fixtures import EVENT_HEADER, event_line, iso, minutes
    from latency_fixtures import T0 as LT0

    data = tmp_path / "data"
    (data / "ops").mkdir(parents=True)
    log = data / "ops/signal_latency.csv"
    log.write_text(EVENT_HEADER)
    now, errs = LT0, []
    for v in (150000, 150000, 150000):
        with open(log, "a") as fh:
            fh.write(event_line(now - minutes(1), v))
        p = obs("latency", "sample", "--data-root", str(data), "--now", iso(now), "--work-root", str(tmp_path / "w"),
                env={"OBS_LATENCY_BURN_PAGE": "1e9", "OBS_LATENCY_BURN_WARN": "1e9"}, cwd=tmp_path)
        assert p.returncode == 0, p.stderr
        errs.append(p.stderr)
        now += minutes(15)
    assert "have no configured channel" not in errs[0]  # nothing active yet
    assert "1 active warning/critical alert(s) have no configured channel" in errs[2]
    assert read_state(tmp_path / "w/ops")["alerts"]["latency-streak:router"]["severity"] == "critical"
