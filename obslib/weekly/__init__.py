"""The weekly report job: payload, job, report helpers, delivery.

- ``obslib.weekly.payload``: builds the schema-validated weekly payload (pure, no clock).
- ``obslib.weekly.job``: ``build_report`` runs the report notebook and publishes the week folder.
- ``obslib.weekly.report``: helpers the report notebook calls (tables, plots, prepare_weekly).
- ``obslib.weekly.delivery``: signs, POSTs, escalates and stores the delivered bytes.

Submodules are imported on use (the CLI keeps start-up cheap); this package itself imports
nothing.
"""

from .. import NOTEBOOK_DIR

NOTEBOOK = NOTEBOOK_DIR / "weekly_report.ipynb"  # the report notebook
SCHEMA_FILE = "observability_weekly_report.schema.json"  # schemas/: the weekly payload
