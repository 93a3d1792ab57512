"""Config precedence, statistics definitions, storage primitives (expected values by hand)."""

from __future__ import annotations

import json
import math

import pytest

from obslib.config import load_config
from obslib.errors import ConfigError
from obslib.stats import ev_per_trade, percentile, win_rate_lcb
from obslib.storage import atomic_write_bytes, canonical_json_bytes


def test_config_precedence_defaults_toml_env_cli(tmp_path):
    assert load_config(tmp_path, env={}).latency.slo_ms == 120000.0
    (tmp_path / "obs.toml").write_text('data_root = "data"\n[latency]\nslo_ms = 5000\n[webhook]\nmax_attempts = 4\n')
    cfg = load_config(tmp_path, env={})
    assert cfg.latency.slo_ms == 5000.0 and cfg.webhook.max_attempts == 4
    assert cfg.data_root == tmp_path / "data"  # relative to the toml's folder
    cfg = load_config(tmp_path, env={"LATENCY_SLO_MS": "7000", "OBS_WEBHOOK_MAX_ATTEMPTS": "2"})
    assert cfg.latency.slo_ms == 7000.0 and cfg.webhook.max_attempts == 2
    cfg = load_config(tmp_path, env={"LATENCY_SLO_MS": "7000"}, overrides={"latency": {"slo_ms": 9000}})
    assert cfg.latency.slo_ms == 9000.0


@pytest.mark.parametrize("toml, needle", [
    ("bogus = 1\n", "unknown setting"),
    ("[latency]\nslo_ms = 'fast'\n", "latency.slo_ms"),
    ("[latency\n", "invalid TOML"),
    ("[[latency.sources]]\nname='a'\nkind='carrier_pigeon'\npath='x'\n", "carrier_pigeon"),
    # ranges are checked at load, before anything runs
    ("[webhook]\nbackoff_base_s = -1\n", "webhook.backoff_base_s must be a finite number >= 0"),
    ("[webhook]\nconnect_timeout_s = -1\n", "webhook.connect_timeout_s must be a finite number > 0"),
    ("lock_timeout_s = nan\n", "lock_timeout_s must be a finite number >= 0"),
    ("[latency]\nslo_ms = 0\n", "latency.slo_ms must be a finite number > 0"),
    ("[webhook]\nmax_attempts = 0\n", "webhook.max_attempts must be >= 1"),
])
def test_config_errors_name_the_setting(tmp_path, toml, needle):
    (tmp_path / "obs.toml").write_text(toml)
    with pytest.raises(ConfigError, match=needle):
        load_config(tmp_path, env={})


def test_win_rate_lcb_reference_values():
    # DESIGN.md / realdata README: 5 % quantile 0.41890, 2.5 % quantile 0.39713
    assert win_rate_lcb(26.73646, 23.26354) == pytest.approx(0.41890, abs=1e-5)
    assert win_rate_lcb(26.73646, 23.26354, conf=0.975) == pytest.approx(0.39713, abs=1e-5)
    # priors are added to the counts: Beta(1+1, 1+1) 5 % quantile solves 3x^2-2x^3 = 0.05
    x = win_rate_lcb(1, 1, 1, 1, 0.95)
    assert 3 * x**2 - 2 * x**3 == pytest.approx(0.05, abs=1e-9)
    # Beta(1, 1) is uniform: the 5 % quantile is 0.05
    assert win_rate_lcb(1, 1) == pytest.approx(0.05, abs=1e-12)
    with pytest.raises(ValueError):
        win_rate_lcb(0, 1)


def test_beta_quantile_matches_scipy_without_importing_it():
    """``win_rate_lcb`` no longer needs scipy (its import cost ~0.3 s per process): the pure
    Python quantile agrees with scipy's betaincinv (a second method) across shapes."""
    import random
    import subprocess
    import sys

    from scipy.special import betaincinv

    from obslib.stats import beta_ppf

    rng = random.Random(3)
    for _ in range(2000):
        a, b = 10 ** rng.uniform(-1, 3), 10 ** rng.uniform(-1, 3)
        p = rng.choice([0.05, 0.025, 0.5, rng.random()])
        assert beta_ppf(p, a, b) == pytest.approx(float(betaincinv(a, b, p)), rel=1e-9, abs=1e-300)
    code = ("import sys; from obslib.stats import win_rate_lcb; v = win_rate_lcb(26.73646, 23.26354); "
            "print(round(v, 5), 'scipy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["0.4189", "False"]


def test_percentile_type7_by_hand():
    vals = [10, 20, 30, 40]  # type 7: h = (n-1)p = 2.85 -> 30 + 0.85*10
    assert percentile(vals, 95) == pytest.approx(38.5)
    assert percentile(vals, 50) == pytest.approx(25.0)
    assert percentile([], 95) is None
    assert ev_per_trade(222.9371428573188, 300) == pytest.approx(0.743124, abs=1e-6)
    assert ev_per_trade(10, 0) is None


def test_canonical_json_is_sorted_compact_and_rejects_nan():
    assert canonical_json_bytes({"b": 1, "a": [1.5, "é"]}) == '{"a":[1.5,"é"],"b":1}'.encode()
    with pytest.raises(ValueError, match=r"\$\.x"):
        canonical_json_bytes({"x": math.nan})


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    p = tmp_path / "a.json"
    atomic_write_bytes(p, b"old")

    class Boom(bytes):
        pass

    with pytest.raises(TypeError):
        atomic_write_bytes(p, "not bytes")  # type: ignore[arg-type]
    assert p.read_bytes() == b"old"
    assert [q.name for q in tmp_path.iterdir()] == ["a.json"]  # no temp file left
    assert json.loads(b"1") == 1


def test_read_json_rejects_non_finite_numbers(tmp_path):
    from obslib.errors import InputError
    from obslib.storage import read_json

    for text, needle in (('{"a": NaN}', "NaN"), ('{"a": -Infinity}', "-Infinity"), ('{"a": 1e999}', "1e999")):
        p = tmp_path / "x.json"
        p.write_text(text)
        with pytest.raises(InputError, match=needle):
            read_json(p)


def test_run_stamp_tz_must_be_a_zone(tmp_path):
    (tmp_path / "obs.toml").write_text('run_stamp_tz = "Mars/Base"\n')
    with pytest.raises(ConfigError, match="Mars/Base"):
        load_config(tmp_path, env={})


def test_win_rate_point_is_the_posterior_mean_with_priors():
    from obslib.stats import win_rate_point

    assert win_rate_point(30, 20) == pytest.approx(0.6)  # 30 / 50
    assert win_rate_point(30, 20, 1, 1) == pytest.approx(31 / 52)
    assert win_rate_point(0, 0) is None
