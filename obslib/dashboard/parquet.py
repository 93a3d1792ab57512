"""Parquet files with an explicit, stable schema per dataset.

The Arrow schema comes from ``columns.SPECS`` (never inferred from the data), so every
export has the same column names, order and types, even when a column is all null or
the dataset is empty: ``string`` -> string, ``float`` -> float64, ``int`` -> int64,
``bool`` -> bool, ``timestamp`` -> timestamp[us, tz=UTC], ``string_list`` ->
list<string>. Schema metadata carries ``dataset``, ``schema_version`` and
``obslib.provenance`` (JSON: generated_at, source_command, commit_sha, job_id, inputs with
sha256, schema_version).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from . import SCHEMA_VERSION
from .columns import SPECS

if TYPE_CHECKING:
    import pandas as pd

_TYPES = {"string": pa.string(), "float": pa.float64(), "int": pa.int64(), "bool": pa.bool_(),
          "timestamp": pa.timestamp("us", tz="UTC"), "string_list": pa.list_(pa.string())}


def arrow_schema(name: str) -> pa.Schema:
    """The Arrow schema of dataset ``name`` (with metadata)."""
    spec = SPECS[name]
    fields = [pa.field(col, _TYPES[kind], nullable=col not in spec.key) for col, kind in spec.columns]
    return pa.schema(fields, metadata={"dataset": name, "schema_version": SCHEMA_VERSION})


def parquet_bytes(name: str, frame: pd.DataFrame, provenance: dict | None = None) -> bytes:
    """The Parquet file (bytes, snappy) of a typed frame; ``provenance`` (the block of
    ``obslib.provenance.block``) goes into the schema metadata under ``obslib.provenance``
    as JSON. Raises ``pyarrow.ArrowInvalid`` when a value does not fit its column type."""
    import json

    from ..provenance import PARQUET_KEY

    schema = arrow_schema(name)
    table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
    meta = dict(schema.metadata)
    if provenance is not None:
        meta[PARQUET_KEY.encode()] = json.dumps(provenance, sort_keys=True, separators=(",", ":")).encode()
    table = table.replace_schema_metadata(meta)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="snappy")
    return sink.getvalue().to_pybytes()


def schema_differences(name: str, path) -> list[str]:
    """How the Parquet file at ``path`` differs from the dataset's schema ([] = same)."""
    got = pq.read_schema(path)
    want = arrow_schema(name)
    out = []
    if got.names != want.names:
        out.append(f"columns {got.names} != {want.names}")
    else:
        for f in want:
            g = got.field(f.name)
            if not g.type.equals(f.type):
                out.append(f"{f.name}: type {g.type} != {f.type}")
    meta = got.metadata or {}
    if meta.get(b"dataset") != name.encode():
        out.append(f"metadata dataset {meta.get(b'dataset')!r} != {name!r}")
    return out


def row_count(path) -> int:
    """Rows in a Parquet file (from its footer)."""
    return pq.read_metadata(path).num_rows
