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
