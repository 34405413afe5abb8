"""bench.share_groups' pure arithmetic: rate, shares, duplicates and missing records."""

from __future__ import annotations

from bench.share_groups import summarize


def test_summarize_counts_rate_shares_duplicates_and_missing() -> None:
    out = summarize(5, 2.0, [[0, 1, 2], [2, 4]])
    assert out["records_per_s"] == 2.5
    assert out["shares"] == [3, 2]
    assert out["duplicates"] == 1  # offset 2 twice
    assert out["missing"] == 1  # offset 3 never delivered
    assert summarize(0, 0.0, [])["records_per_s"] == 0.0
