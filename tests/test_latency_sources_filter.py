"""Event-log sources that share one log and count only their own `source` rows, and the
default sources for the demo and for a real research repository."""

from __future__ import annotations

from obslib.config import LatencySource, load_config
from obslib.latency.sources import sample_event_log
from obslib.timeutil import parse_ts


def test_match_source_counts_only_its_rows(tmp_path):
    log = tmp_path / "events.csv"
    log.write_text("timestamp_utc,latency_ms,status,detail,source\n"
                   "2026-01-01T00:01:00Z,100,success,,a\n"
                   "2026-01-01T00:02:00Z,900,success,,b\n"
                   "2026-01-01T00:03:00Z,300,success,,a\n"
                   "2026-01-01T00:04:00Z,5,error,down,b\n")
    now = parse_ts("2026-01-01T00:10:00Z")
    kw = {"slo_of": lambda s: 120000.0, "window_s": 900}
    a = sample_event_log(LatencySource("a", "event_log", str(log), match_source="a"), None, now, **kw)
    b = sample_event_log(LatencySource("b", "event_log", str(log), match_source="b"), None, now, **kw)
    both = sample_event_log(LatencySource("all", "event_log", str(log)), None, now, **kw)
    by_col = sample_event_log(LatencySource("all", "event_log", str(log), by_source_column=True), None, now, **kw)
    (pa,) = a.parts
    assert (pa.source, pa.events, pa.sketch.quantile(0.5), pa.sketch.quantile(0.95)) == (
        "a", 2, 200.0, 290.0)  # 100 + 0.95*(300-100)
    assert [(p.source, p.events, p.errors) for p in b.parts] == [("b", 2, 1)]
    assert [(p.source, p.events, p.errors) for p in both.parts] == [("all", 4, 1)]
    assert [(p.source, p.events, p.errors) for p in by_col.parts] == [("a", 2, 0), ("b", 2, 1)]


def test_default_sources(tmp_path):
    # demo and real data root alike: the event log, one source per value of its source column
    for env in ({}, {"OBS_DATA_ROOT": str(tmp_path)}):
        (src,) = load_config(tmp_path, env=env).latency_sources(tmp_path)
        assert src.kind == "event_log" and src.path == f"{tmp_path}/ops/signal_latency.csv"
        assert (src.name, src.by_source_column, src.match_source) == ("signal_events", True, None)


def test_a_run_older_than_the_newest_sample_adds_no_row(tmp_path, capsys):
    """A run whose time is before the last run's is skipped (exit 0, logged): its "now"
    would hold back or reject events the earlier run already counted."""
    import csv
    import json

    from obslib.cli import main

    log = tmp_path / "ev.csv"
    log.write_text("timestamp_utc,latency_ms,status,detail,source\n2026-01-01T00:05:00Z,100,success,,a\n")
    (tmp_path / "obs.toml").write_text(f'[[latency.sources]]\nname = "e"\nkind = "event_log"\npath = "{log}"\n')
    assert main(["latency", "sample", "--work-root", str(tmp_path), "--now", "2026-01-01T00:15:00Z"]) == 0
    assert main(["latency", "sample", "--work-root", str(tmp_path), "--now", "2026-01-01T00:10:00Z"]) == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["status"] == "skipped" and "2026-01-01T00:15:00Z" in last["reason"]
    with open(tmp_path / "ops/signal_latency.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["timestamp_utc"] for r in rows] == ["2026-01-01T00:00:00Z"]  # the event's window
    recs = [json.loads(x) for x in (tmp_path / "ops/automation_runs.log").read_text().splitlines()]
    assert [r["status"] for r in recs if r["job_name"] == "latency"] == ["ok", "skipped"]
