"""Sparse indexes: lookups against bisect (differential, random), persistence, damage."""

from __future__ import annotations

import bisect
import random

import pytest

from storage.index import CorruptIndexError, OffsetIndex, TimeIndex


@pytest.mark.parametrize("seed", range(20))
def test_offset_index_lookup_matches_bisect(tmp_path, seed: int) -> None:
    rng = random.Random(seed)
    base = rng.randrange(0, 10**12)
    idx = OffsetIndex(tmp_path / "x.index", base)
    offsets, positions = [], []
    off, pos = base, 0
    for _ in range(rng.randrange(0, 300)):
        off += rng.randrange(1, 50)
        pos += rng.randrange(1, 5000)
        idx.append(off, pos)
        offsets.append(off)
        positions.append(pos)
    for _ in range(300):
        target = rng.randrange(base - 5, off + 100)
        i = bisect.bisect_right(offsets, target)
        expected = (base, 0) if i == 0 else (offsets[i - 1], positions[i - 1])
        assert idx.lookup(target) == expected
    # persistence round trip (append-only writes, then a full reload)
    idx.persist(sync=False)
    loaded = OffsetIndex.load(tmp_path / "x.index", base, pos + 1)
    assert list(loaded.offsets) == offsets and list(loaded.positions) == positions
    # truncation by position, then re-persist shortens the file
    if positions:
        cut = rng.choice(positions)
        idx.truncate_to_position(cut)
        idx.persist(sync=False)
        again = OffsetIndex.load(tmp_path / "x.index", base, pos + 1)
        assert list(again.positions) == [p for p in positions if p < cut]


@pytest.mark.parametrize("seed", range(10))
def test_time_index_lookup_matches_bisect(tmp_path, seed: int) -> None:
    rng = random.Random(seed)
    idx = TimeIndex(tmp_path / "x.timeindex", 100)
    stamps, offs = [], []
    ts, off = rng.randrange(0, 10**6), 100
    for _ in range(rng.randrange(0, 200)):
        ts += rng.randrange(0, 30)  # equal timestamps are not added
        off += rng.randrange(1, 9)
        before = len(idx)
        idx.maybe_append(ts, off)
        if not stamps or ts > stamps[-1]:
            stamps.append(ts)
            offs.append(off)
            assert len(idx) == before + 1
    for _ in range(200):
        target = rng.randrange(0, ts + 50)
        i = bisect.bisect_left(stamps, target)
        expected = None if i == 0 else (stamps[i - 1], offs[i - 1])
        assert idx.lookup_below(target) == expected
    idx.persist(sync=False)
    loaded = TimeIndex.load(tmp_path / "x.timeindex", 100)
    assert list(loaded.timestamps) == stamps and list(loaded.offsets) == offs


def test_damaged_index_files_are_rejected(tmp_path) -> None:
    p = tmp_path / "d.index"
    p.write_bytes(b"\x00" * 7)
    with pytest.raises(CorruptIndexError):
        OffsetIndex.load(p, 0, 100)
    p.write_bytes((5).to_bytes(4, "big") + (10).to_bytes(4, "big")
                  + (3).to_bytes(4, "big") + (20).to_bytes(4, "big"))
    with pytest.raises(CorruptIndexError):
        OffsetIndex.load(p, 0, 100)
    p.write_bytes((5).to_bytes(4, "big") + (500).to_bytes(4, "big"))
    with pytest.raises(CorruptIndexError):
        OffsetIndex.load(p, 0, 100)  # points past the log
    with pytest.raises(CorruptIndexError):
        OffsetIndex.load(tmp_path / "missing.index", 0, 100)
