"""bench.failover's audit: lost, duplicated and reordered records per partition."""

from __future__ import annotations

from bench.failover import audit


def test_clean_run_finds_nothing() -> None:
    found = audit({0: [0, 1, 2], 1: [0, 1]}, {}, {0: [0, 1, 2], 1: [0, 1]})
    assert (found.acked, found.read, found.lost, found.duplicated, found.reordered) == (
        5, 5, 0, 0, 0)


def test_lost_duplicated_reordered_and_unacked_written() -> None:
    acked = {0: [0, 1, 2, 3, 4], 1: [0, 1]}
    failed = {0: [5], 1: [2]}
    read = {0: [0, 2, 1, 2, 5], 1: [0]}  # 3 and 4 lost, 2 twice, 1 after 2, 5 unacked
    found = audit(acked, failed, read)
    assert found.lost == 3  # (0, 3), (0, 4), (1, 1)
    assert found.lost_examples == [(0, 3), (0, 4), (1, 1)]
    assert found.duplicated == 1
    assert found.reordered == 1
    assert found.unacked_written == 1
    assert (found.acked, found.read) == (7, 6)


def test_gaps_from_failed_records_are_not_reordering() -> None:
    found = audit({0: [0, 2, 3]}, {0: [1]}, {0: [0, 2, 3]})
    assert (found.lost, found.duplicated, found.reordered, found.unacked_written) == (
        0, 0, 0, 0)
