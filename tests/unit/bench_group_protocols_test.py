"""The pure parts of bench/group_protocols.py: pause and balance arithmetic."""

from __future__ import annotations

import pytest

from bench.group_protocols import balanced, max_gap, summarize


def test_max_gap_counts_the_window_edges():
    assert max_gap([], 10.0, 12.0) == 2.0
    assert max_gap([10.5, 11.0, 11.9], 10.0, 12.0) == pytest.approx(0.9)
    assert max_gap([9.0, 10.2, 13.0], 10.0, 12.0) == pytest.approx(1.8)  # outside: ignored


def test_balanced_needs_every_partition_once_and_even_sizes():
    assert balanced([{0, 1}, {2, 3}, {4, 5}], 6)
    assert not balanced([{0, 1, 2}, {3}, {4, 5}], 6)  # sizes 3 and 1
    assert not balanced([{0, 1}, {1, 2}, {3, 4, 5}], 6)  # 1 twice
    assert not balanced([{0, 1}, {2, 3}, set()], 4)  # a member without partitions


def test_summarize_in_milliseconds():
    assert summarize([0.1, 0.2, 0.3]) == {"p50_ms": 200.0, "max_ms": 300.0}
