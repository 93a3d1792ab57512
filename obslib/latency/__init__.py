"""Latency monitoring: sources, sampling, hourly rollups, SLO breach streaks, retention.

Modules (one job each):

- ``model``    the latency model: events, window parts, THE query (docs/architecture.md);
- ``sketch``   the deterministic mergeable sketch (DDSketch mapping, alpha 1 %, exact <= 64);
- ``table``    many window parts as numpy columns, merged per group at once (first runs);
- ``texts``    exact sketch texts of many values at once (``repr``'s text, vectorised);
- ``bulk``     the vectorised first read of an event log (pyarrow parse, numpy grouping);
- ``readahead`` the next batch of a bulk read parsed in a thread while this one is counted;
- ``sources``  read one source (``event_log`` / ``feed_freshness`` / ``http_probe``) into parts;
- ``events``   incremental reader of an event log (complete lines, rename-rotation, skew);
- ``store``    the live raw file ``ops/signal_latency.csv`` and the write-ahead journal;
- ``archive``  rotation into gzipped archives + manifest, raw retention;
- ``rollup``   hourly rollups through the query (merged sketches), incremental and idempotent;
- ``streaks``  the alert rules: breach streaks, absent data, burn rate -> ``Decision`` s;
- ``alerts``   alert payloads from decisions, the outbox, signed delivery;
- ``job``      the ``sample`` / ``rollup`` / ``status`` jobs;
- ``paths``    file locations; ``_faults`` test-only crash hooks.
"""
