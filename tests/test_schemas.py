"""Every committed schema is a valid draft 2020-12 schema with a ``schema_version``, and
the validator really checks formats (a malformed ``date-time`` is rejected)."""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator

from obslib.schemas import SCHEMA_DIR, errors

SCHEMA_FILES = sorted(p.relative_to(SCHEMA_DIR).as_posix() for p in SCHEMA_DIR.rglob("*.schema.json"))


def test_all_fourteen_schemas_are_found():
    assert len(SCHEMA_FILES) >= 15 and "observability_weekly_report.schema.json" in SCHEMA_FILES
    assert "provenance.schema.json" in SCHEMA_FILES


@pytest.mark.parametrize("name", SCHEMA_FILES)
def test_schema_is_valid_draft_2020_12(name):
    schema = json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "schema_version" in schema.get("properties", {}), name


def test_format_checker_is_on():
    bad = {"schema_version": "1.0.0", "generated_at": "yesterday"}
    found = errors(bad, "observability_weekly_report.schema.json", limit=50)
    assert any(e.startswith("$.generated_at:") and "date-time" in e for e in found), found
