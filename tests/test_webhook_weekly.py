"""deliver_weekly / replay_weekly: history, idempotency, --force, changed payloads,
replay, dry run, require-delivery and escalation, against a real local receiver."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jsonschema
import pytest
import standardwebhooks
from test_webhook_support import NOW, SECRET_RAW, SECRET_WHSEC, Receiver, Reply, make_cfg, make_ctx

from obslib.errors import DeliveryError, InputError, ValidationError
from obslib.webhook import verify
from obslib.weekly.delivery import deliver_weekly, replay_weekly

WS = "2025-09-22"
PAYLOAD = {"week_start": WS, "ev": {"latest": 0.5}, "runs": 3, "name": "caf\u00e9"}
SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"


def _bytes(payload):  # canonical JSON computed independently of obslib
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _wid(payload):
    return f"weekly-{WS}-{hashlib.sha256(_bytes(payload)).hexdigest()[:16]}"


def _validate(doc, name):
    schema = json.loads((SCHEMAS / name).read_text())
    v = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    assert list(v.iter_errors(doc)) == []


def _env(url=None, secret=SECRET_RAW, esc=None):
    env = {}
    if url:
        env["OBS_WEEKLY_WEBHOOK_URL"] = url
    if secret:
        env["OBS_WEBHOOK_SECRET"] = secret
    if esc:
        env["OBS_ESCALATION_WEBHOOK_URL"] = esc
    return env


def _deliver(cfg, env, payload=PAYLOAD, **kw):
    return deliver_weekly(payload, week_start=WS, cfg=cfg, ctx=make_ctx(cfg, "weekly_deliver"), now=NOW, env=env,
                          **kw)


def test_delivered_history_receipt_and_signature(tmp_path):
    cfg = make_cfg(tmp_path)
    with Receiver() as rx:
        res = _deliver(cfg, _env(rx.url()))
    d = res["delivery"]
    assert res["alerts"] == []
    assert d["status"] == "delivered" and d["attempts"] == 1 and d["webhook_id"] == _wid(PAYLOAD)
    assert d["payload_checksum_sha256"] == hashlib.sha256(_bytes(PAYLOAD)).hexdigest()
    hist = tmp_path / "ops" / "weekly_report_history"
    assert (hist / f"{WS}.json").read_bytes() == _bytes(PAYLOAD) == rx.received[0].body
    receipt = json.loads((hist / f"{WS}.receipt.json").read_text())
    _validate(receipt, "delivery_receipt.schema.json")
    sent = rx.received[0].headers
    assert receipt["webhook_id"] == _wid(PAYLOAD) and receipt["attempts"] == 1 and receipt["status_codes"] == [200]
    delivered = datetime.fromisoformat(receipt["delivered_at"].replace("Z", "+00:00"))
    assert NOW <= delivered < NOW + timedelta(seconds=30)  # the --now clock, advanced by real elapsed time
    assert sent["webhook-timestamp"] == str(int(delivered.timestamp()))
    for k in ("X-OBS-Signature", "webhook-id", "webhook-timestamp", "webhook-signature"):
        assert receipt["signature_headers"][k] == sent[k]
    assert d["history"] == f"ops/weekly_report_history/{WS}.json"


def test_receiver_verifies_with_both_verifiers_under_real_clock(tmp_path):
    cfg = make_cfg(tmp_path)
    now = datetime.now(timezone.utc)
    with Receiver() as rx:
        deliver_weekly(PAYLOAD, week_start=WS, cfg=cfg, ctx=make_ctx(cfg), now=now,
                       env=_env(rx.url(), secret=f"{SECRET_WHSEC} {SECRET_RAW}"))
    got = rx.received[0]
    assert verify(got.body, got.headers, [SECRET_RAW], now=datetime.now(timezone.utc)).ok
    standardwebhooks.Webhook(SECRET_WHSEC).verify(got.body, got.headers)
    standardwebhooks.Webhook(SECRET_RAW.encode()).verify(got.body, got.headers)


def test_idempotent_rerun_force_and_changed_payload(tmp_path):
    cfg = make_cfg(tmp_path)
    hist = tmp_path / "ops" / "weekly_report_history"
    with Receiver() as rx:
        env = _env(rx.url())
        assert _deliver(cfg, env)["delivery"]["status"] == "delivered"
        again = _deliver(cfg, env)["delivery"]
        assert again["status"] == "already_delivered" and again["attempts"] == 0
        assert len(rx.received) == 1
        forced = _deliver(cfg, env, force=True)["delivery"]
        assert forced["status"] == "delivered" and forced["forced"] is True
        assert len(rx.received) == 2 and rx.received[1].body == rx.received[0].body
        assert rx.received[1].headers["webhook-id"] == rx.received[0].headers["webhook-id"] == _wid(PAYLOAD)
        receipt = json.loads((hist / f"{WS}.receipt.json").read_text())
        assert [x["kind"] for x in receipt["deliveries"]] == ["delivery", "forced"]

        changed = dict(PAYLOAD, runs=4)
        ch = _deliver(cfg, env, payload=changed)["delivery"]
        assert ch["status"] == "delivered" and ch["webhook_id"] == _wid(changed) != _wid(PAYLOAD)
        assert rx.received[2].headers["webhook-id"] == _wid(changed)
    old16 = hashlib.sha256(_bytes(PAYLOAD)).hexdigest()[:16]
    assert ch["previous_version"] == f"ops/weekly_report_history/{WS}.{old16}.json"
    assert (hist / f"{WS}.{old16}.json").read_bytes() == _bytes(PAYLOAD)
    old_receipt = json.loads((hist / f"{WS}.{old16}.receipt.json").read_text())
    assert old_receipt["webhook_id"] == _wid(PAYLOAD)
    assert (hist / f"{WS}.json").read_bytes() == _bytes(changed)
    new_receipt = json.loads((hist / f"{WS}.receipt.json").read_text())
    assert new_receipt["webhook_id"] == _wid(changed) and len(new_receipt["deliveries"]) == 1


def test_replay_is_byte_identical_same_id_fresh_timestamp(tmp_path):
    cfg = make_cfg(tmp_path)
    with Receiver() as rx:
        env = _env(rx.url())
        _deliver(cfg, env)
        later = NOW + timedelta(hours=2)
        res = replay_weekly(WS, cfg=cfg, ctx=make_ctx(cfg, "weekly_replay"), now=later, env=env)
    assert res["delivery"]["status"] == "replayed" and res["delivery"]["webhook_id"] == _wid(PAYLOAD)
    first, again = rx.received
    assert again.body == first.body == _bytes(PAYLOAD)
    assert again.headers["webhook-id"] == first.headers["webhook-id"]
    assert int(again.headers["webhook-timestamp"]) - int(first.headers["webhook-timestamp"]) >= 7200
    assert verify(again.body, again.headers, [SECRET_RAW], now=later).ok
    receipt = json.loads((tmp_path / "ops/weekly_report_history" / f"{WS}.receipt.json").read_text())
    assert [x["kind"] for x in receipt["deliveries"]] == ["delivery", "replay"]


def test_replay_without_history_or_with_altered_bytes(tmp_path):
    cfg = make_cfg(tmp_path)
    with Receiver() as rx:
        env = _env(rx.url())
        with pytest.raises(InputError, match="nothing to replay"):
            replay_weekly(WS, cfg=cfg, ctx=make_ctx(cfg), now=NOW, env=env)
        _deliver(cfg, env)
        (tmp_path / "ops/weekly_report_history" / f"{WS}.json").write_bytes(b'{"tampered":1}')
        with pytest.raises(ValidationError, match="do not match"):
            replay_weekly(WS, cfg=cfg, ctx=make_ctx(cfg), now=NOW, env=env)
    assert len(rx.received) == 1


def test_no_url_is_dry_run_with_alert(tmp_path):
    cfg = make_cfg(tmp_path)
    res = _deliver(cfg, _env(None))
    assert res["delivery"]["status"] == "dry_run" and res["delivery"]["attempts"] == 0
    (alert,) = res["alerts"]
    assert set(alert) == {"id", "severity", "message", "owner", "next_action"}
    assert alert["next_action"] == "docs/runbook.md#weekly-webhook" and alert["owner"] == "obs-oncall"
    assert "OBS_WEEKLY_WEBHOOK_URL" in alert["message"]
    assert not (tmp_path / "ops" / "weekly_report_history").exists()


def test_url_without_secret_is_not_sent_unsigned(tmp_path):
    cfg = make_cfg(tmp_path)
    with Receiver() as rx:
        res = _deliver(cfg, _env(rx.url(), secret=None))
        assert res["delivery"]["status"] == "dry_run" and res["alerts"][0]["severity"] == "critical"
        with pytest.raises(DeliveryError, match="OBS_WEBHOOK_SECRET not set") as ei:
            _deliver(cfg, _env(rx.url(), secret=None), require_delivery=True)
        assert rx.url() not in str(ei.value)
    assert rx.received == []


def test_require_delivery_without_url_fails(tmp_path):
    cfg = make_cfg(tmp_path)
    with pytest.raises(DeliveryError, match="OBS_WEEKLY_WEBHOOK_URL"):
        _deliver(cfg, _env(None), require_delivery=True)


def test_five_503_escalates_file_and_post(tmp_path):
    cfg = make_cfg(tmp_path)
    ctx = make_ctx(cfg, "weekly_deliver")
    with Receiver(default=Reply(503, b"down")) as rx, Receiver() as esc:
        with pytest.raises(DeliveryError) as ei:
            deliver_weekly(PAYLOAD, week_start=WS, cfg=cfg, ctx=ctx, now=NOW,
                           env=_env(rx.url(), esc=esc.url("/esc")))
    assert len(rx.received) == 5
    msg = str(ei.value)
    assert "after 5 attempt(s)" in msg and "HTTP 503" in msg and rx.url() not in msg and SECRET_RAW not in msg
    path = tmp_path / "ops" / "escalations" / f"{ctx.job_id}.json"
    rec = json.loads(path.read_text())
    _validate(rec, "escalation.schema.json")
    assert rec["attempts"] == 5 and rec["status_codes"] == [503] * 5 and rec["last_status_code"] == 503
    assert rec["next_action"] == "docs/runbook.md#weekly-webhook" and rec["week_start"] == WS
    assert rec["webhook_id"] == _wid(PAYLOAD)
    assert rec["post"] == {"status": "delivered", "attempts": 1, "status_code": 200}
    posted = esc.received[0]
    assert verify(posted.body, posted.headers, [SECRET_RAW], now=NOW).ok
    assert json.loads(posted.body)["job_id"] == ctx.job_id
    assert not (tmp_path / "ops" / "weekly_report_history" / f"{WS}.json").exists()
    assert ei.value.summary["delivery"]["status"] == "error"


def test_failure_keeps_previous_delivery(tmp_path):
    cfg = make_cfg(tmp_path, max_attempts=2)
    hist = tmp_path / "ops" / "weekly_report_history"
    with Receiver() as ok_rx:
        _deliver(cfg, _env(ok_rx.url()))
    with Receiver(default=Reply(400)) as bad, pytest.raises(DeliveryError, match="after 1 attempt"):
        _deliver(cfg, _env(bad.url()), payload=dict(PAYLOAD, runs=9))
    assert (hist / f"{WS}.json").read_bytes() == _bytes(PAYLOAD)
    assert json.loads((hist / f"{WS}.receipt.json").read_text())["webhook_id"] == _wid(PAYLOAD)
    (esc_file,) = (tmp_path / "ops" / "escalations").iterdir()
    assert json.loads(esc_file.read_text())["post"]["status"] == "not_configured"


def test_bad_week_and_non_finite_payload(tmp_path):
    cfg = make_cfg(tmp_path)
    with pytest.raises(InputError, match="not a Monday"):
        deliver_weekly(PAYLOAD, week_start="2025-09-23", cfg=cfg, ctx=make_ctx(cfg), now=NOW, env={})
    with pytest.raises(ValidationError, match="non-finite"):
        _deliver(cfg, {}, payload={"x": float("nan")})


def test_rerun_with_new_generation_time_and_job_id_is_not_resent(tmp_path):
    """Two runs of the same week on the same inputs differ only in generated_at/job_id:
    the second is recognised (same idempotency key) and not sent again."""
    cfg = make_cfg(tmp_path)
    first = {**PAYLOAD, "generated_at": "2025-09-28T23:30:00Z",
             "provenance": {"job_id": "weekly-a", "generated_at": "2025-09-28T23:30:00Z", "inputs": []}}
    second = {**first, "generated_at": "2025-09-29T00:10:00Z",
              "provenance": {"job_id": "weekly-b", "generated_at": "2025-09-29T00:10:00Z", "inputs": []}}
    content = {k: v for k, v in first.items() if k != "generated_at"}
    content["provenance"] = {"inputs": []}
    expected_id = f"weekly-{WS}-{hashlib.sha256(_bytes(content)).hexdigest()[:16]}"
    with Receiver() as rx:
        a = _deliver(cfg, _env(rx.url()), payload=first)["delivery"]
        b = _deliver(cfg, _env(rx.url()), payload=second)["delivery"]
        assert len(rx.received) == 1
    assert a["status"] == "delivered" and b["status"] == "already_delivered"
    assert a["webhook_id"] == b["webhook_id"] == expected_id
    stored = (tmp_path / "ops/weekly_report_history" / f"{WS}.json").read_bytes()
    assert stored == _bytes(first)  # the bytes actually sent are what is kept
