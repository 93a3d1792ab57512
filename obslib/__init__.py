"""obslib: observability reporting kit for the trading-research repository.

The library holds every job's logic as plain functions; ``obslib.cli`` (the ``obs``
command) and the notebooks under ``notebooks/`` are thin callers.
"""

__version__ = "0.1.0"
