"""Encoding a dataset as its JSON document, and checking it: the JSON Schema
(``schemas/dashboard/<name>.schema.json``, draft 2020-12, formats checked) and the row
rules a schema cannot state (uniqueness and order across rows, comparisons of two fields).

The JSON document (canonical JSON: sorted keys, compact, UTF-8, no NaN)::

    {"dataset", "generated_at", "key", "provenance", "row_count", "rows": [...], "schema_version", "warnings"}

Schema checks: the envelope and (up to ``FULL_CHECK_ROWS`` rows) the whole document go
through a full draft 2020-12 validator with format checks (``jsonschema_rs`` when
installed, a compiled validator ~30x faster than ``jsonschema``, else
``jsonschema.Draft202012Validator`` with the format checker). Every row of every size is
checked column by column (``column_violations``): each column's property subschema is
applied to each distinct value, so 600 000 rows cost what their distinct values cost.

A ``Violation`` names the ``rule``: ``schema`` (the JSON path and message say which
keyword) or one of ``key_unique``, ``generated_at_strictly_increasing``,
``active_day_avg_ge_daily_avg``, ``p95_ge_p50``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from ..timeutil import to_rfc3339
from . import SCHEMA_VERSION
from .columns import SPECS
from .encode import Column, columns, rows_json_chunks
from .schema_check import property_validator, schema_file
from .schema_check import schema as _schema
from .schema_check import validator as _validator

FULL_CHECK_ROWS = 20000
MAX_VIOLATIONS = 20
_ROWS_SENTINEL = "\x00rows\x00"


@dataclass(frozen=True)
class Violation:
    rule: str
    message: str

    def __str__(self) -> str:
        return f"rule {self.rule}: {self.message}"


def _path(parts) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


def schema_violations(name: str, instance: dict, limit: int = MAX_VIOLATIONS) -> list[Violation]:
    """Schema violations of ``instance`` (each with its JSON path)."""
    v = _validator(name)
    out = []
    for e in v.iter_errors(instance):
        parts = getattr(e, "instance_path", None)
        if parts is None:
            parts = e.absolute_path
        out.append(Violation("schema", f"{_path(parts)}: {str(e.message)[:300]}"))
        if len(out) >= limit:
            break
    return out


@functools.lru_cache(maxsize=None)
def _row_schema(name: str) -> dict:
    row = _schema(name)["properties"]["rows"]["items"]
    cols = SPECS[name].column_names
    if set(row["properties"]) != set(cols) or set(row.get("required", [])) != set(cols) or \
            row.get("additionalProperties") is not False:
        raise ValueError(f"{schema_file(name)}: row properties/required must be exactly {cols}")
    return row


@functools.lru_cache(maxsize=None)
def _property_validator(name: str, col: str):
    return property_validator(_row_schema(name)["properties"][col])


_NUMERIC_KEYS = {"type", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "description"}


def _float_violations(c: Column, sub: dict) -> list[tuple[int, str]]:
    types = sub.get("type", [])
    types = [types] if isinstance(types, str) else list(types)
    arr = c.floats
    nan = np.isnan(arr)
    checks = []
    if "null" not in types:
        checks.append((nan, "None is not of type 'number'"))
    checks.append((np.isinf(arr), "is not a finite number"))
    with np.errstate(invalid="ignore"):
        for key, bad in (("minimum", lambda b: arr < b), ("maximum", lambda b: arr > b),
                         ("exclusiveMinimum", lambda b: arr <= b), ("exclusiveMaximum", lambda b: arr >= b)):
            if key in sub:
                checks.append((bad(sub[key]) & ~nan, f"violates {key} {sub[key]}"))
        if "integer" in types and "number" not in types:
            checks.append((~nan & (np.floor(arr) != arr), "is not of type 'integer'"))
    out = []
    for mask, msg in checks:
        if mask.any():
            i = int(np.argmax(mask))
            out.append((i, f"{float(arr[i])!r} {msg}" if not msg.startswith("None") else msg))
    return out


def column_violations(name: str, cols: list[Column], limit: int = MAX_VIOLATIONS) -> list[Violation]:
    """Schema check of every row, column by column: the property subschema of each column
    (``schemas/dashboard/<name>.schema.json``) is applied to each distinct value with
    ``jsonschema`` (format checker on); float columns whose subschema uses only type and
    bounds are checked vectorised. Row shape (the exact set of required properties) is
    fixed by construction and checked against the schema once."""
    row = _row_schema(name)
    out: list[Violation] = []
    for c in cols:
        sub = row["properties"][c.name]
        found: list[tuple[int, str]] = []
        if c.floats is not None and set(sub) <= _NUMERIC_KEYS:
            found = _float_violations(c, sub)
        else:
            v = _property_validator(name, c.name)
            candidates = ([(-1, None)] if (c.codes < 0).any() else []) + list(enumerate(c.values))
            for k, val in candidates:
                errs = list(v.iter_errors(val))
                if errs:
                    found.append((c.first_row(k), errs[0].message[:300]))
                if len(found) >= limit:
                    break
        out += [Violation("schema", f"$.rows[{i}].{c.name}: {m}") for i, m in found]
        if len(out) >= limit:
            break
    return out[:limit]


def envelope(name: str, generated_at: datetime, warnings: list[str], row_count: int,
             provenance: dict | None = None) -> dict:
    """The document without rows (with the ``provenance`` block when given)."""
    env = {"schema_version": SCHEMA_VERSION, "dataset": name, "generated_at": to_rfc3339(generated_at),
           "key": list(SPECS[name].key), "row_count": row_count, "warnings": list(warnings), "rows": []}
    if provenance is not None:
        env["provenance"] = provenance
    return env


def encode_and_check(name: str, frame: pd.DataFrame, generated_at: datetime, warnings: list[str],
                     sink: Callable[[bytes], None] | None = None,
                     provenance: dict | None = None) -> tuple[bytes | None, list[Violation]]:
    """Encode ``frame`` as the dataset's canonical JSON bytes and check it: the envelope
    against the schema, every row column by column (``column_violations``), the whole
    document again with the full validator when it has at most ``FULL_CHECK_ROWS`` rows,
    then the row rules. Returns ``(bytes, [])`` when valid, ``(None, violations)``
    otherwise. The bytes equal ``storage.canonical_json_bytes`` of the document. ``sink``
    (optional) is given the bytes piece by piece while they are encoded (before the checks
    that follow the encoding end: on ``(None, ...)`` the caller discards what it got)."""
    env = envelope(name, generated_at, warnings, len(frame), provenance)
    violations = schema_violations(name, env)
    cols = columns(name, frame)
    violations += column_violations(name, cols)
    data = None
    if not violations:
        head = json.dumps({**env, "rows": _ROWS_SENTINEL}, sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False, allow_nan=False)
        before, _, after = (part.encode("utf-8") for part in head.partition(json.dumps(_ROWS_SENTINEL)))
        pending = [before]  # the head goes out with the first row chunk (none if encoding fails)

        def row_sink(chunk: bytes) -> None:
            while pending:
                sink(pending.pop())
            sink(chunk)
        try:
            rows_chunks = rows_json_chunks(cols, len(frame), sink=row_sink if sink is not None else None)
        except ValueError as exc:
            violations.append(Violation("schema", f"$.rows: {exc}"))
        else:
            if sink is not None:
                sink(after)
            data = b"".join([before, *rows_chunks, after])
            del rows_chunks
            if len(frame) <= FULL_CHECK_ROWS:
                violations += schema_violations(name, json.loads(data))
    if not violations and not frame.attrs.get("untyped"):
        violations += row_rule_violations(name, frame)
    if violations or data is None:
        return None, violations
    return data, []


def _dupes(frame: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    return frame[frame.duplicated(key, keep=False)]


def row_rule_violations(name: str, frame: pd.DataFrame) -> list[Violation]:
    """The cross-row / cross-field rules of a typed frame (see module doc)."""
    out: list[Violation] = []
    key = list(SPECS[name].key)
    if len(frame) == 0:
        return out
    if name == "ev_history":
        group = ["strategy", "symbol", "mode"]
        s = frame.sort_values([*group, "generated_at", "source_path"], kind="stable")
        same = (s[group].eq(s[group].shift())).all(axis=1) & (s["generated_at"].diff() <= pd.Timedelta(0))
        for i in np.flatnonzero(same.to_numpy())[:MAX_VIOLATIONS]:
            a, b = s.iloc[i - 1], s.iloc[i]
            out.append(Violation("generated_at_strictly_increasing",
                                 f"{b['strategy']}/{b['symbol']}/{b['mode']}: {b['source_path']} and "
                                 f"{a['source_path']} share generated_at {to_rfc3339(b['generated_at'])} with "
                                 f"different EV values"))
        return out
    d = _dupes(frame, key)
    if len(d):
        out.append(Violation("key_unique", f"{len(d)} rows share a key ({', '.join(key)}); first: "
                                           f"{d.iloc[0][key].astype(str).to_dict()}"))
    if name == "turnover_summary":
        a, p = frame["avg_trades_active_day"], frame["avg_trades_per_day"]
        bad = (a.notna() & p.notna() & (a < p)).to_numpy()
        if bad.any():
            r = frame[bad].iloc[0]
            out.append(Violation("active_day_avg_ge_daily_avg",
                                 f"{int(bad.sum())} row(s) with avg_trades_active_day < avg_trades_per_day; first "
                                 f"run {r['run_id']} week {to_rfc3339(r['week_start'])}"))
    if name == "latency_rollups":
        bad = (frame["p95_ms"] < frame["p50_ms"]).to_numpy()
        if bad.any():
            r = frame[bad].iloc[0]
            out.append(Violation("p95_ge_p50", f"{int(bad.sum())} row(s) with p95_ms < p50_ms; first "
                                               f"{r['source']} {to_rfc3339(r['hour_utc'])}"))
    return out
