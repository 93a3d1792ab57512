"""The compiled JSON Schema validators of the dashboard schemas (``schemas/dashboard/``),
light to import (no pandas): ``jsonschema_rs`` when installed (compiled, ~30x faster than
``jsonschema``), else ``jsonschema.Draft202012Validator``; formats are checked either way."""

from __future__ import annotations

import functools
import json

from ..schemas import SCHEMA_DIR


def schema_file(name: str) -> str:
    """Schema path relative to ``schemas/`` for a dataset (or ``manifest``/``heartbeat``)."""
    return f"dashboard/{name}.schema.json"


@functools.lru_cache(maxsize=None)
def schema(name: str) -> dict:
    return json.loads((SCHEMA_DIR / schema_file(name)).read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=None)
def validator(name: str):
    """A validator with ``iter_errors(instance)`` for ``schemas/dashboard/<name>.schema.json``."""
    s = schema(name)
    try:
        import jsonschema_rs

        return jsonschema_rs.Draft202012Validator(s, validate_formats=True)
    except ImportError:  # pragma: no cover - exercised only without the compiled validator
        from jsonschema import Draft202012Validator

        return Draft202012Validator(s, format_checker=Draft202012Validator.FORMAT_CHECKER)


def property_validator(sub: dict):
    """A validator for one property subschema (same engine as ``validator``)."""
    try:
        import jsonschema_rs

        return jsonschema_rs.Draft202012Validator(sub, validate_formats=True)
    except ImportError:  # pragma: no cover
        from jsonschema import Draft202012Validator

        return Draft202012Validator(sub, format_checker=Draft202012Validator.FORMAT_CHECKER)


def validate(instance, name: str, what: str) -> None:
    """Raise ``ValidationError`` listing (at most 20) violations of
    ``schemas/dashboard/<name>.schema.json`` (the fast engine: no ``jsonschema`` import)."""
    from ..errors import ValidationError

    errs = []
    for e in validator(name).iter_errors(instance):
        parts = getattr(e, "instance_path", None) or []
        path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)
        errs.append(f"{path}: {str(e.message)[:300]}")
        if len(errs) >= 20:
            break
    if errs:
        raise ValidationError(f"{what} fails {schema_file(name)}: " + "; ".join(errs))
