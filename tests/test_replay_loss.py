"""Loss is kept as bounded ranges: a counter read from a packet never sizes a structure."""

from __future__ import annotations

import tracemalloc

from wgscope.replay.loss import MAX_RANGES, LossRanges


def test_a_huge_gap_is_one_range():
    tracemalloc.start()
    loss = LossRanges()
    loss.add(1, (1 << 63) - 1, 10, 11)
    size, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert loss.count() == (1 << 63) - 1 and len(loss.ranges) == 1 and size < 10_000


def test_late_counters_fill_their_gap():
    loss = LossRanges()
    loss.add(3, 9, 1, 2)
    for c in (3, 9, 6):
        assert loss.fill(c)
    assert not loss.fill(6) and not loss.fill(100)
    assert [(g.lo, g.hi) for g in loss.ranges] == [(4, 5), (7, 8)] and loss.count() == 4


def test_ranges_are_bounded():
    loss = LossRanges()
    for i in range(MAX_RANGES + 100):
        loss.add(3 * i, 3 * i + 1, None, None)
    assert len(loss.ranges) == MAX_RANGES and loss.overflow == 200 and loss.count() == 2 * (MAX_RANGES + 100)
    for i in range(20):  # many ranges: filled through the bisecting path
        assert loss.fill(3 * i)
