"""Signing and verification: fixed vectors (computed with openssl), the standardwebhooks
reference verifier, rotation, and every rejection reason."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest
import standardwebhooks
from hypothesis import given, settings
from hypothesis import strategies as st
from test_webhook_support import SECRET_RAW, SECRET_WHSEC

from obslib.webhook import backoff_delay, parse_secrets, retry_after_s, sign_headers, verify

T0 = datetime(2025, 9, 29, 12, 0, 0, tzinfo=timezone.utc)  # unix 1759147200 (date -u -d @1759147200)
BODY = b'{"a":1}'
WID = "weekly-2025-09-22-x"


def test_sign_headers_match_openssl_vectors():
    # printf '%s' '1759147200.{"a":1}' | openssl dgst -sha256 -hmac 'obs-test-secret-A'
    h = sign_headers(BODY, WID, ["obs-test-secret-A"], T0)
    assert h["Content-Type"] == "application/json"
    assert h["X-OBS-Signature"] == "t=1759147200,v1=2380d5fb73f82af95fbcbd2c07c376ca49fd11d2967967b1c4625b86f36fb8fb"
    assert h["webhook-id"] == WID
    assert h["webhook-timestamp"] == "1759147200"
    # printf '%s' 'weekly-2025-09-22-x.1759147200.{"a":1}' | openssl dgst -sha256 -hmac 'obs-test-secret-A' -binary | base64
    assert h["webhook-signature"] == "v1,ZSM9pDhS0CKeQePZFQqSUePSq+OGqJtORmDE1+IeaVs="


def test_whsec_secret_uses_decoded_key_for_standard_and_literal_for_obs():
    h = sign_headers(BODY, WID, [SECRET_WHSEC], T0)
    # openssl ... -hmac 'whsec_MDEy...ZWY='  (the literal string)
    assert h["X-OBS-Signature"] == "t=1759147200,v1=139fb52bda20069aa25e8131d53ed9f42f4c743ada63022dda121d014ccc2115"
    # openssl ... -mac HMAC -macopt hexkey:<hex of b"0123456789abcdef0123456789abcdef">
    assert h["webhook-signature"] == "v1,aLChDmqMYCKOwkOxpdQ3ClyboODiRnXJEk4VCkIn8So="


def test_two_secrets_give_two_signatures_each_scheme():
    h = sign_headers(BODY, WID, ["obs-test-secret-A", SECRET_WHSEC], T0)
    assert h["X-OBS-Signature"] == (
        "t=1759147200,v1=2380d5fb73f82af95fbcbd2c07c376ca49fd11d2967967b1c4625b86f36fb8fb"
        ",v1=139fb52bda20069aa25e8131d53ed9f42f4c743ada63022dda121d014ccc2115")
    assert h["webhook-signature"] == ("v1,ZSM9pDhS0CKeQePZFQqSUePSq+OGqJtORmDE1+IeaVs= "
                                      "v1,aLChDmqMYCKOwkOxpdQ3ClyboODiRnXJEk4VCkIn8So=")


def test_sign_refuses_without_secret():
    with pytest.raises(ValueError):
        sign_headers(BODY, WID, [], T0)
    with pytest.raises(ValueError):
        sign_headers(BODY, "has space", ["x"], T0)


@pytest.mark.parametrize("secret", [SECRET_RAW, SECRET_WHSEC])
def test_standardwebhooks_reference_verifier_accepts_unchanged(secret):
    now = datetime.now(timezone.utc)  # the reference verifier reads the real clock
    h = sign_headers(BODY, WID, [secret], now)
    key = secret if secret.startswith("whsec_") else secret.encode("utf-8")
    assert standardwebhooks.Webhook(key).verify(BODY, h) == {"a": 1}
    with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
        standardwebhooks.Webhook(key).verify(b'{"a":2}', h)


def test_rotation_with_two_secrets_each_receiver_accepts():
    new, old = "new-secret-1111", "old-secret-2222"
    h = sign_headers(BODY, WID, [new, old], T0)
    assert verify(BODY, h, [old], now=T0).ok
    assert verify(BODY, h, [new], now=T0).ok
    assert verify(BODY, h, ["third-secret-33"], now=T0).ok is False
    now = datetime.now(timezone.utc)
    h2 = sign_headers(BODY, WID, [new, old], now)
    standardwebhooks.Webhook(old.encode()).verify(BODY, h2)
    standardwebhooks.Webhook(new.encode()).verify(BODY, h2)
    # the receiver holding both during rotation accepts a sender that only has the new one
    assert verify(BODY, sign_headers(BODY, WID, [new], T0), [old, new], now=T0).ok


def test_verify_accepts_good_request_and_names_schemes():
    r = verify(BODY, sign_headers(BODY, WID, [SECRET_RAW], T0), [SECRET_RAW], now=T0)
    assert r.ok and r.schemes == ("x-obs-signature", "standard-webhooks")


def test_verify_tampered_body():
    h = sign_headers(BODY, WID, [SECRET_RAW], T0)
    r = verify(b'{"a":2}', h, [SECRET_RAW], now=T0)
    assert not r.ok and "does not match" in r.reason
    # tamper that only the standard scheme sees: a changed id
    h2 = dict(h, **{"webhook-id": "weekly-other"})
    r2 = verify(BODY, h2, [SECRET_RAW], now=T0)
    assert not r2.ok and "webhook-signature does not match" in r2.reason


def test_verify_wrong_secret():
    r = verify(BODY, sign_headers(BODY, WID, [SECRET_RAW], T0), ["another-secret"], now=T0)
    assert not r.ok and "wrong secret" in r.reason


@pytest.mark.parametrize("offset_s,ok,word", [(300, True, None), (301, False, "past"), (-301, False, "future"),
                                              (-300, True, None), (3600, False, "past")])
def test_verify_timestamp_tolerance(offset_s, ok, word):
    h = sign_headers(BODY, WID, [SECRET_RAW], T0)
    r = verify(BODY, h, [SECRET_RAW], tolerance_s=300, now=T0 + timedelta(seconds=offset_s))
    assert r.ok is ok
    if word:
        assert word in r.reason and "tolerance 300 s" in r.reason


def test_verify_timestamp_mismatch_between_schemes():
    h = sign_headers(BODY, WID, [SECRET_RAW], T0)
    h2 = sign_headers(BODY, WID, [SECRET_RAW], T0 + timedelta(seconds=5))
    mixed = dict(h, **{"X-OBS-Signature": h2["X-OBS-Signature"]})
    r = verify(BODY, mixed, [SECRET_RAW], now=T0)
    assert not r.ok and "differ" in r.reason


@pytest.mark.parametrize("mutate,reason", [
    (lambda h: {}, "missing signature headers"),
    (lambda h: {"Content-Type": "application/json"}, "missing signature headers"),
    (lambda h: {"X-OBS-Signature": "garbage"}, "malformed X-OBS-Signature"),
    (lambda h: {"X-OBS-Signature": "t=1759147200"}, "malformed X-OBS-Signature"),
    (lambda h: {"X-OBS-Signature": "t=1759147200,v1=zz"}, "not hex"),
    (lambda h: {"X-OBS-Signature": "t=abc,v1=00"}, "malformed X-OBS-Signature timestamp"),
    (lambda h: {k: v for k, v in h.items() if k != "webhook-signature" and k != "X-OBS-Signature"},
     "missing webhook-id"),
    (lambda h: {"webhook-id": WID, "webhook-timestamp": "1759147200", "webhook-signature": "v1"},
     "malformed webhook-signature"),
    (lambda h: {"webhook-id": WID, "webhook-timestamp": "1759147200", "webhook-signature": "v1,!!!"},
     "not base64"),
    (lambda h: {"webhook-id": WID, "webhook-timestamp": "1759147200", "webhook-signature": "v2,AAAA"},
     "no v1 signature"),
])
def test_verify_missing_or_malformed_headers(mutate, reason):
    r = verify(BODY, mutate(sign_headers(BODY, WID, [SECRET_RAW], T0)), [SECRET_RAW], now=T0)
    assert not r.ok and reason in r.reason


def test_verify_header_names_case_insensitive_and_no_secret_configured():
    h = {k.upper(): v for k, v in sign_headers(BODY, WID, [SECRET_RAW], T0).items()}
    assert verify(BODY, h, [SECRET_RAW], now=T0).ok
    assert verify(BODY, h, [], now=T0).reason == "no secrets configured to verify with"


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=64),
       headers=st.dictionaries(st.sampled_from(["X-OBS-Signature", "webhook-id", "webhook-timestamp",
                                                "webhook-signature", "x"]),
                               st.one_of(st.text(max_size=40), st.integers(), st.none()), max_size=5))
def test_verify_never_raises(body, headers):
    r = verify(body, headers, [SECRET_RAW, SECRET_WHSEC, "whsec_***"], now=T0)
    assert r.ok is False and isinstance(r.reason, str) and SECRET_RAW not in r.reason


def test_parse_secrets():
    assert parse_secrets(None) == []
    assert parse_secrets("  ") == []
    assert parse_secrets(" a1\n b2\ta1 ") == ["a1", "b2"]


def test_backoff_delay_bounds_by_hand():
    # base 60: attempt 1 -> d=60 -> [60,75]; attempt 3 -> d=240 -> [240,300]; attempt 6 -> 1920 capped at 900
    rng = random.Random(1)
    for attempt, lo, hi in [(1, 60, 75), (3, 240, 300), (4, 480, 600), (5, 900, 900), (6, 900, 900)]:
        for _ in range(50):
            assert lo <= backoff_delay(attempt, 60, 900, rng) <= hi


class _Fixed:
    def __init__(self, v):
        self.v = v

    def uniform(self, a, b):
        return a + (b - a) * self.v


def test_backoff_delay_exact_with_fixed_rng():
    assert backoff_delay(2, 60, 900, _Fixed(0.0)) == 120.0  # d=120, no jitter
    assert backoff_delay(2, 60, 900, _Fixed(1.0)) == 150.0  # d=120, +25 %


def test_retry_after_parsing():
    assert retry_after_s("1", T0, 300) == 1.0
    assert retry_after_s("7200", T0, 300) == 300.0  # capped
    assert retry_after_s("Mon, 29 Sep 2025 12:00:30 GMT", T0, 300) == 30.0
    assert retry_after_s("Mon, 29 Sep 2025 11:00:00 GMT", T0, 300) == 0.0
    assert retry_after_s("soon", T0, 300) is None
    assert retry_after_s(None, T0, 300) is None
