"""Canonical strategy ids (obslib.inputs.strategy) on the names the real data uses."""

from __future__ import annotations

import json

import pytest

from obslib.inputs.strategy import strategy_id, strategy_keys

REAL_NAMES = {  # every strategy name in the real data: state-archive folders and router telemetry
    "day_orb_5m": "day_orb_5m",
    "day_orb_5m.DayORB5m": "day_orb_5m",
    "strategies.day_orb_5m.DayORB5m": "day_orb_5m",
    "day_orb_5m_v1": "day_orb_5m",
    "mean_reversion.MeanReversionStrategy": "mean_reversion",
    "strategies.mean_reversion.MeanReversionStrategy": "mean_reversion",
    "strategies.session_momentum_continuation.SessionMomentumContinuation": "session_momentum_continuation",
    "strategies.tokyo_micro_mean_reversion.TokyoMicroMeanReversion": "tokyo_micro_mean_reversion",
    "tokyo_micro_mean_reversion_v0": "tokyo_micro_mean_reversion",
}


@pytest.mark.parametrize("raw,expected", sorted(REAL_NAMES.items()))
def test_real_names(raw, expected):
    assert strategy_id(raw) == expected


@pytest.mark.parametrize("raw,expected", [
    ("strategies.fx.day_orb_5m.DayORB5m", "day_orb_5m"),  # a package path: the module name
    (" day_orb_5m ", "day_orb_5m"),
    ("strategies.", "strategies."),  # nothing left: kept as given
    ("v2_breakout", "v2_breakout"),  # only a trailing _v<digits> is a version tag
    ("orb_v10", "orb"),
    ("alpha.beta", "beta"),  # no class suffix (lower case): the last part is the module
])
def test_edge_names(raw, expected):
    assert strategy_id(raw) == expected


def test_one_value_per_strategy_keeps_distinct_versions_apart():
    assert strategy_keys(["day_orb_5m_v1", "tokyo_micro_mean_reversion_v0"]) == {
        "day_orb_5m_v1": "day_orb_5m", "tokyo_micro_mean_reversion_v0": "tokyo_micro_mean_reversion"}
    # two versions reported at once would overwrite each other under one id: raw names kept
    assert strategy_keys(["orb_v1", "orb_v2", "other_v1"]) == {"orb_v1": "orb_v1", "orb_v2": "orb_v2",
                                                              "other_v1": "other"}


def test_every_real_name_is_covered(real_root):
    """The folders of the real state archive and the telemetry's strategies are all in the
    table above, so the table is the documented mapping of the real data."""
    archive = real_root / "ops" / "state_archive"
    folders = {p.name for p in archive.iterdir() if p.is_dir()}
    tel = json.loads((real_root / "reports/portfolio_samples/router_demo/telemetry.json").read_text())
    assert folders | set(tel["execution_health"]) == set(REAL_NAMES)


def test_real_ev_history_one_key_per_strategy(real_root):
    """Acceptance: the weekly report's and the dashboard's EV history name each strategy once."""
    from obslib.dashboard.datasets import build_ev_history
    from obslib.weekly.report import ev_history

    keys = ["day_orb_5m", "mean_reversion", "session_momentum_continuation", "tokyo_micro_mean_reversion"]
    assert sorted(ev_history(real_root, "2025-10-20T00:00:00Z")) == keys
    df = build_ev_history(real_root).frame
    assert sorted(df["strategy"].unique()) == keys
    assert set(df["strategy_source"]) <= set(REAL_NAMES)
