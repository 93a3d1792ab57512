"""The dashboard bundle: four datasets (JSON + Parquet), a checksummed and versioned
manifest, README.json, a heartbeat, history with retention, verification and publishing.

Modules: ``datasets`` / ``turnover`` (one builder per dataset), ``columns`` (the column
contract shared by the JSON and Parquet writers), ``parquet``, ``rules`` (schema and
row-rule checks), ``bundle`` (export: manifest, sequence, README, heartbeat, history),
``verify``, ``publish``, ``job`` (the notebook run).
"""

from .. import NOTEBOOK_DIR

NOTEBOOK = NOTEBOOK_DIR / "dashboard_bundle.ipynb"  # the bundle notebook
DATASETS = ("ev_history", "slippage_telemetry", "turnover_summary", "latency_rollups")
FORMATS = ("json", "parquet")
SCHEMA_VERSION = "1.0.0"
# account currency per pip used to turn drawdown pips into percent of equity (see turnover)
DEFAULT_PIP_VALUE = 10.0

__all__ = ["DATASETS", "DEFAULT_PIP_VALUE", "FORMATS", "NOTEBOOK", "SCHEMA_VERSION"]
