"""``latency.readahead.read_ahead``: same items, same order, errors where they happen, and
a consumer that stops early stops the worker."""

from __future__ import annotations

import threading
import time

import pytest

from obslib.latency.readahead import read_ahead


def test_items_come_in_order_and_complete():
    assert list(read_ahead(iter(range(1000)), depth=3)) == list(range(1000))
    assert list(read_ahead([])) == []


def test_an_error_in_the_source_is_raised_at_its_item():
    def source():
        yield 1
        yield 2
        raise ValueError("block 3 is damaged")

    got = []
    with pytest.raises(ValueError, match="block 3 is damaged"):
        for x in read_ahead(source()):
            got.append(x)
    assert got == [1, 2]


def test_a_consumer_that_stops_early_stops_the_worker():
    produced = []

    def source():
        for i in range(10_000):
            produced.append(i)
            yield i

    gen = read_ahead(source(), depth=2)
    assert [next(gen) for _ in range(3)] == [0, 1, 2]
    gen.close()
    time.sleep(0.3)
    n = len(produced)
    time.sleep(0.2)
    assert len(produced) == n <= 3 + 2 + 2  # taken, queued, one being read: nothing after the stop
    assert not any(t.name == "obs-read-ahead" and t.is_alive() for t in threading.enumerate())


def test_the_read_overlaps_the_work():
    def slow_source():
        for i in range(5):
            time.sleep(0.1)  # as a parse that releases the GIL
            yield i

    t = time.perf_counter()
    for _ in read_ahead(slow_source()):
        time.sleep(0.1)  # as numpy work on the batch
    took = time.perf_counter() - t
    assert took < 0.85  # serial: 1.0 s; overlapped: ~0.6 s


def test_read_parallel_keeps_each_sources_order_and_raises_its_error():
    from obslib.latency.readahead import read_parallel

    got = list(read_parallel([iter(range(0, 500)), iter(range(1000, 1500))], depth=3))
    assert sorted(got) == [*range(0, 500), *range(1000, 1500)]
    assert [x for x in got if x < 1000] == list(range(500)) and [x for x in got if x >= 1000] == list(range(1000, 1500))

    def bad():
        yield 1
        raise OSError("range 2 unreadable")

    with pytest.raises(OSError, match="range 2 unreadable"):
        list(read_parallel([iter(range(100)), bad()]))


@pytest.mark.parametrize("parts", [1, 2, 3, 7])
def test_csv_batches_read_every_line_once_whatever_the_split(tmp_path, parts):
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from obslib.latency.readahead import csv_batches, csv_ranges

    path = tmp_path / "events.csv"
    rows = [(f"2026-11-30T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z", f"{(i * 37) % 1000}.{i % 7}",
             "x" * (i % 13) or "src") for i in range(5000)]
    path.write_text("timestamp_utc,latency_ms,source\n" + "".join(f"{a},{b},{c}\n" for a, b, c in rows))
    names, ranges = csv_ranges(path, parts)
    assert names == ["timestamp_utc", "latency_ms", "source"]
    data = path.read_bytes()
    assert ranges[0][0] == data.index(b"\n") + 1 and ranges[-1][1] == len(data)
    assert all(data[a - 1:a] == b"\n" for a, _ in ranges) and all(b == c for (_, b), (c, _) in zip(ranges, ranges[1:], strict=False))
    opts = pacsv.ConvertOptions(column_types={"timestamp_utc": pa.string(), "latency_ms": pa.float64(),
                                              "source": pa.string()})
    got = [(r["timestamp_utc"], r["latency_ms"], r["source"])
           for b in csv_batches(path, convert_options=opts, block_size=4096, parts=parts) for r in b.to_pylist()]
    assert sorted(got) == sorted((a, float(b), c) for a, b, c in rows)  # every line exactly once
