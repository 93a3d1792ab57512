"""The JSON Schemas and the column contract agree; the column-wise check rejects what the
full draft 2020-12 validator (python ``jsonschema``, format checker on) rejects."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pandas as pd
import pytest
from dashboard_fixtures import make_repo
from jsonschema import Draft202012Validator

from obslib.dashboard import DATASETS
from obslib.dashboard.columns import SPECS
from obslib.dashboard.rules import encode_and_check
from obslib.dashboard.turnover import build_turnover_summary
from obslib.schemas import SCHEMA_DIR

NOW = datetime(2024, 1, 20, tzinfo=timezone.utc)


@pytest.mark.parametrize("name", [*DATASETS, "manifest", "heartbeat", "readme"])
def test_schema_files_are_valid_2020_12_with_version(name):
    schema = json.loads((SCHEMA_DIR / "dashboard" / f"{name}.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    assert "schema_version" in schema["properties"]


@pytest.mark.parametrize("name", DATASETS)
def test_row_schema_matches_column_spec(name):
    row = json.loads((SCHEMA_DIR / "dashboard" / f"{name}.schema.json").read_text())["properties"]["rows"]["items"]
    assert list(row["properties"]) == SPECS[name].column_names
    assert set(row["required"]) == set(SPECS[name].column_names)


def _full_validator(name):
    schema = json.loads((SCHEMA_DIR / "dashboard" / f"{name}.schema.json").read_text())
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


@pytest.mark.parametrize("column,value", [("drawdown_pct", 0.5), ("win_rate", 1.2), ("drawdown_pips", -1.0),
                                          ("avg_trades_per_day", float("nan"))])
def test_column_check_agrees_with_full_validator(tmp_path, column, value):
    frame = build_turnover_summary(make_repo(tmp_path / "r")).frame.copy()
    data, violations = encode_and_check("turnover_summary", frame, NOW, [])
    assert violations == [] and not list(_full_validator("turnover_summary").iter_errors(json.loads(data)))
    frame.loc[1, column] = value
    data, violations = encode_and_check("turnover_summary", frame, NOW, [])
    assert data is None and violations[0].rule == "schema" and f"$.rows[1].{column}" in violations[0].message
    rows = json.loads(encode_and_check("turnover_summary", frame.assign(**{column: 0.0}), NOW, [])[0])
    rows["rows"][1][column] = None if value != value else value
    assert list(_full_validator("turnover_summary").iter_errors(rows))


def test_bad_timestamp_string_in_untyped_frame_is_reported():
    frame = pd.DataFrame([{"generated_at": "yesterday", "generated_at_source": "telemetry", "strategy": "s",
                           "slippage_bps": 1.0, "reject_rate": 0.1, "fill_count": None, "window_days": 9,
                           "slippage_zscore": None}])
    frame.attrs["untyped"] = True
    data, violations = encode_and_check("slippage_telemetry", frame, NOW, [])
    assert data is None
    msgs = " ".join(v.message for v in violations)
    assert "$.rows[0].generated_at" in msgs and "$.rows[0].window_days" in msgs
