"""Latency monitoring: sources, sampling, hourly rollups, SLO breach streaks, retention."""
