"""Latency monitoring: sources, sampling, hourly rollups, SLO breach streaks, retention.

Modules (one job each):

- ``sources``  sample one source (``event_log`` / ``feed_freshness`` / ``http_probe``);
- ``events``   incremental, replacement-safe reader of a signal event log;
- ``store``    the live raw file ``ops/signal_latency.csv`` and the write-ahead journal;
- ``archive``  rotation into gzipped archives + manifest, raw retention;
- ``rollup``   hourly type-7 percentiles, incremental and idempotent;
- ``streaks``  the SLO breach-streak state machine (DESIGN.md);
- ``alerts``   alert payloads, the outbox, signed delivery;
- ``job``      the ``sample`` / ``rollup`` / ``status`` jobs;
- ``paths``    file locations; ``_faults`` test-only crash hooks.
"""
