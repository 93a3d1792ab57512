"""Loading and applying the JSON Schemas in ``schemas/`` (draft 2020-12, format-checked).

``validate(instance, name)`` raises ``ValidationError`` listing every violation with its
JSON path; ``errors(instance, name)`` returns them without raising.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from .errors import ValidationError

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "schemas"


@functools.lru_cache(maxsize=None)
def validator(name: str):
    """The ``jsonschema.Draft202012Validator`` for ``schemas/<name>`` (e.g.
    ``dashboard/ev_history.schema.json``), with the format checker on so ``date-time`` etc.
    are really checked. (jsonschema is imported here, not at module load: it is slow.)
    The committed schemas themselves are checked against the draft 2020-12 meta-schema by
    the test suite (``tests/test_schemas.py``), not on every run (~0.1 s per process)."""
    from jsonschema import Draft202012Validator

    path = SCHEMA_DIR / name
    schema = json.loads(path.read_text(encoding="utf-8"))
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def errors(instance, name: str, limit: int = 20) -> list[str]:
    """Violations as ``"<json path>: <message>"`` strings (at most ``limit``)."""
    out = []
    for e in sorted(validator(name).iter_errors(instance), key=lambda e: list(map(str, e.absolute_path))):
        path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e.absolute_path)
        out.append(f"{path}: {e.message[:300]}")
        if len(out) >= limit:
            break
    return out


def validate(instance, name: str, what: str = "artefact") -> None:
    """Raise ``ValidationError`` when ``instance`` does not match ``schemas/<name>``."""
    errs = errors(instance, name)
    if errs:
        raise ValidationError(f"{what} fails {name}: " + "; ".join(errs))
