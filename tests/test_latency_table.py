"""The vectorised path of the sample job (``latency.table``, ``latency.texts``, the block
reader) against the reference object path (per-line parser, ``format_part`` per part,
``model.query`` + ``format_rollup_row`` per hour): byte-identical sample rows, rollups,
state and counts on a log with awkward cases, over several runs."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from latency_fixtures import EVENT_HEADER, T0, iso, make_cfg

import obslib.latency.bulk as bulk
import obslib.latency.job as job
import obslib.latency.rollup as rollup
from obslib.latency.alerts import AlertTarget
from obslib.latency.model import HOUR_S, Event, parts_from_events, query
from obslib.latency.rollup import compute_rollups, format_rollup_row, parse_sample_lines
from obslib.latency.sketch import EXACT_MAX
from obslib.latency.store import HEADER, format_part, format_parts
from obslib.latency.table import PartTable
from obslib.runlog import JobContext

SLO = 1000.0
# latency cells whose sketch text is not simply the cell: repr decides
ODD_CELLS = ["-0", "0", "0.000", "0012", "5.", ".5", "1.50", "100.000", "2E+3", "1e-05", "0.0001", "0.00009",
             "123456789012345678", "1234567890.12345", "0.1000000000000000055511151231257827", "999.9995", "1000",
             "1000.0005", "7"]


def _ref_rows(parts, *, slo_of, job_id: str, sampled_at: str) -> str:
    return "".join(format_part(p, slo_ms=slo_of(p.source), job_id=job_id, sampled_at=sampled_at) for p in parts)


def _ref_rollups(parts, slo_of):
    return {(k[0] // HOUR_S, k[1]): format_rollup_row(st) for k, st in query(list(parts), by="hour",
                                                                             slo_of=slo_of).items()}


def _cell(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.05:
        return rng.choice(ODD_CELLS)
    if r < 0.1:
        return f"{SLO + rng.choice([-0.0005, 0.0, 0.0004, 0.0005, 0.001]):.4f}"  # around the SLO
    return f"{rng.lognormvariate(6, 1):.3f}"


def _lines(n: int, t0, rng: random.Random, *, sources=("a", "b", "c"), step_s: float = 5.0) -> list[str]:
    out = []
    for i in range(n):
        st = rng.choice(["success"] * 8 + ["OK", "error", "Timeout"])
        lat = _cell(rng)
        if st != "success" and st != "OK" and rng.random() < 0.5:
            lat = ""  # an error without a latency
        out.append(f"{iso(t0 + timedelta(seconds=int(i * step_s)))},{lat},{st},d,{rng.choice(sources)}\n")
    return out


def _window(t, n: int, src: str, rng: random.Random) -> list[str]:
    """``n`` latencies of one source in the window starting at ``t`` (exactly EXACT_MAX, + 1)."""
    return [f"{iso(t + timedelta(seconds=i % 890))},{_cell(rng)},success,,{src}\n" for i in range(n)]


def _reference(monkeypatch) -> None:
    monkeypatch.setattr(bulk, "MIN_LINES", 10 ** 12)  # the per-line reader
    monkeypatch.setattr(job, "format_parts", _ref_rows)
    monkeypatch.setattr(rollup, "compute_rollups", _ref_rollups)


def _runs(tmp_path: Path, name: str, chunks: list[tuple[list[str], object]]) -> list[dict]:
    work = tmp_path / name
    (work / "data" / "ops").mkdir(parents=True)
    log = work / "data" / "ops" / "signal_latency.csv"
    log.write_text(EVENT_HEADER)
    cfg = make_cfg(work)
    cfg.latency.slo_ms = SLO
    out = []
    for i, (lines, now) in enumerate(chunks):
        with open(log, "a", encoding="utf-8") as fh:
            fh.write("".join(lines))
        ctx = JobContext(job_name="latency", ops_dir=cfg.ops_dir, now=now, job_id=f"run{i}")
        s = job.run_sample(cfg, ctx, now, data_root=work / "data", target=AlertTarget())
        ops = work / "ops"
        out.append({"rows": (ops / "signal_latency.csv").read_bytes(),
                    "rollup": (ops / "signal_latency_rollup.csv").read_bytes(),
                    "state": (ops / "signal_latency_state.json").read_bytes(),
                    "counts": {k: s[k] for k in ("events_read", "bad_rows", "samples_written", "rollups_written",
                                                 "breach_count", "held_rows")}})
    return out


def test_job_vectorised_equals_reference_over_runs(tmp_path, monkeypatch):
    rng = random.Random(11)
    hour = T0.replace(minute=0) + timedelta(hours=1)
    first = _lines(3000, T0, rng)  # 4+ hours, 3 sources: a clean first run (the block path)
    first += _window(hour + timedelta(hours=4), EXACT_MAX, "a", rng) + _window(hour + timedelta(hours=4), EXACT_MAX + 1,
                                                                             "b", rng)
    first.sort()  # (time order; equal times keep both)
    now1 = hour + timedelta(hours=5)
    # run 2: late events into written windows (an hour merges old and new rows, 64 + 1 -> 65),
    # bad rows, a window crossing the hour, then more events
    late = [f"{iso(hour + timedelta(hours=4, seconds=7))},{_cell(rng)},success,,a\n",
            f"{iso(hour + timedelta(minutes=59, seconds=59))},12.5,success,,c\n",
            f"{iso(hour + timedelta(hours=1))},-0,success,,c\n",
            "not,a,row\n", f"{iso(hour)},1_000,success,,a\n", f"{iso(hour)},10,weird,,a\n"]
    second = late + _lines(200, now1, rng)
    now2 = now1 + timedelta(hours=1)
    # >= MIN_LINES again, no bad row; it starts in an hour that already has rows (run 2's)
    third = _lines(1500, now2 - timedelta(minutes=20), rng, sources=("a", "b", "c", "d"), step_s=1.5)
    now3 = now2 + timedelta(hours=1)
    chunks = [(first, now1), (second, now2), (third, now3)]
    calls = []
    real = bulk.parse_block
    monkeypatch.setattr("obslib.latency.events.parse_block", lambda *a, **k: calls.append(r := real(*a, **k)) or r)
    fast = _runs(tmp_path, "fast", chunks)
    assert [c is not None for c in calls] == [True, False, True]  # the block path: first and third run
    _reference(monkeypatch)
    ref = _runs(tmp_path, "ref", chunks)
    for f, r in zip(fast, ref, strict=True):
        assert f["counts"] == r["counts"]
        assert f["rows"] == r["rows"]
        assert f["rollup"] == r["rollup"]
        assert f["state"] == r["state"]
    assert fast[1]["counts"]["bad_rows"] == 3
    text = fast[-1]["rows"].decode()
    assert ",x1:-0;" in text or ",x1:-0\n" in text  # repr of -0.0 kept


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_table_stats_and_texts_equal_object_path(seed):
    """Object parts (exact and bucket sketches, read back from rows, several parts per
    window and hour) through ``PartTable``: the same rows and rollups as the object path."""
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    events = []
    for i in range(4000):
        v = float(rng.choice([0.0, -0.0, 1e-05, 5e16, 1000.0005])) if rng.random() < 0.02 else round(
            float(nrng.lognormal(6, 1.5)), rng.choice([0, 1, 3, 6]))
        events.append(Event(T0 + timedelta(seconds=rng.randrange(0, 2 * 3600)), v, rng.random() < 0.03,
                            rng.choice(["a", "b"]) if i % 50 else "c"))
        if i % 400 == 0:  # a source with error events only
            events.append(Event(T0 + timedelta(seconds=rng.randrange(0, 2 * 3600)), None, True, "e"))
    slo_of = lambda s: SLO  # noqa: E731
    batches = [parts_from_events(events[i:i + 1500], slo_of=slo_of) for i in range(0, len(events), 1500)]
    parts = [p for b in batches for p in b]
    assert format_parts(PartTable.from_parts(parts), slo_of=slo_of, job_id="j", sampled_at="s") == \
        _ref_rows(parts, slo_of=slo_of, job_id="j", sampled_at="s")
    assert compute_rollups(parts, slo_of) == _ref_rollups(parts, slo_of)
    # read back from the rows (bucket sketches, no raw values), with fresh parts after them
    back = parse_sample_lines((HEADER + _ref_rows(parts, slo_of=slo_of, job_id="j", sampled_at="s")).encode(), "x",
                              [], slo_of=slo_of)
    assert any(p.sketch.exact is None for p in back) and any(p.sketch.count == 0 for p in back)
    mixed = PartTable.concat([PartTable.from_parts(back), PartTable.from_parts(batches[0])])
    assert compute_rollups(mixed, slo_of) == _ref_rollups(back + batches[0], slo_of)
    assert format_parts(mixed, slo_of=slo_of, job_id="j", sampled_at="s") == \
        _ref_rows(back + batches[0], slo_of=slo_of, job_id="j", sampled_at="s")
    ordered = mixed.ordered()
    assert [(p.start, p.source) for p in ordered] == sorted((p.start, p.source) for p in back + batches[0])


def test_block_timestamps_equal_datetime():
    """The block reader's numpy timestamp parse: epoch seconds as ``datetime`` gives them;
    anything ``YYYY-MM-DDTHH:MM:SSZ`` that names no real time is refused (per-line path)."""
    from datetime import datetime, timezone

    rng = random.Random(5)
    base = datetime(1, 1, 1, tzinfo=timezone.utc)
    times = [base + timedelta(seconds=rng.randrange(0, 315537897599)) for _ in range(20000)]
    times += [datetime(y, m, d, tzinfo=timezone.utc) for y, m, d in ((2000, 2, 29), (1900, 2, 28), (9999, 12, 31),
                                                                      (1, 1, 1), (1970, 1, 1), (2024, 12, 31))]
    text = "".join(f"{t.year:04d}-{t:%m-%dT%H:%M:%S}Z" for t in times).encode()
    got = bulk._epoch_seconds(np.frombuffer(text, np.uint8), np.arange(len(times) + 1) * 20)
    assert got.tolist() == [int(t.timestamp()) for t in times]
    for bad in ("1900-02-29T00:00:00Z", "2023-02-29T00:00:00Z", "0000-01-01T00:00:00Z", "2025-13-01T00:00:00Z",
                "2025-04-31T00:00:00Z", "2025-01-01T24:00:00Z", "2025-01-01T00:60:00Z", "2025-01-01T00:00:60Z",
                "2025-01-01 00:00:00Z", "2025/01-01T00:00:00Z", "2025-01-0aT00:00:00Z", "2025-01-01T00:00:0\x00Z"):
        assert bulk._epoch_seconds(np.frombuffer(bad.encode(), np.uint8), np.array([0, 20])) is None, bad
