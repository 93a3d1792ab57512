"""obslib: observability reporting kit for the trading-research repository.

The library holds every job's logic as plain functions; ``obslib.cli`` (the ``obs``
command) and the notebooks under ``notebooks/`` are thin callers.
"""

from pathlib import Path

__version__ = "0.1.0"
# the parameterised notebooks (notebooks/ beside the package); the kernels' working folder
NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
