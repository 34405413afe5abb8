"""Large appends check CRCs on a helper thread while writing (storage/crc_check.py):
a bad CRC still means nothing appended, nothing visible, the file cut back."""

from __future__ import annotations

import os

import pytest

from protocol.records import iter_batches
from storage import crc_check
from storage.errors import CorruptRecordError
from storage.log_config import LogConfig
from tests.unit.storage.conftest import batch

BIG = 300  # records of 1000 bytes: ~300 KB, above PARALLEL_CRC_BYTES


def corrupt(data: bytes, at: int = -1) -> bytes:
    bad = bytearray(data)
    bad[at] ^= 0x01
    return bytes(bad)


def test_big_appends_take_the_parallel_path_and_read_back(open_log) -> None:
    log = open_log()
    big = batch(BIG, size=1000)
    assert len(big) >= crc_check.PARALLEL_CRC_BYTES
    r = log.append_as_leader(big, leader_epoch=1, now_ms=0)
    r2 = log.append_as_leader(big + batch(2), leader_epoch=1, now_ms=0)
    assert (r.first_offset, r2.first_offset, r2.last_offset) == (0, BIG, 2 * BIG + 1)
    data = log.read(0, 10**7).records
    assert [h.base_offset for _, h in iter_batches(bytes(data))] == [0, BIG, 2 * BIG]


@pytest.mark.parametrize("which", ["first", "second"])
def test_bad_crc_in_a_big_request_appends_nothing(open_log, which: str) -> None:
    log = open_log()
    log.append_as_leader(batch(3), leader_epoch=0, now_ms=0)
    seg = log.segments[-1]
    size_before = seg.size
    big = batch(BIG, size=1000)
    request = corrupt(big) + big if which == "first" else big + corrupt(big, -5)
    with pytest.raises(CorruptRecordError, match="CRC"):
        log.append_as_leader(request, leader_epoch=0, now_ms=0)
    assert log.log_end_offset == 3 and seg.size == size_before
    assert os.path.getsize(seg.log_path) == size_before  # the written bytes were cut
    r = log.append_as_leader(batch(1), leader_epoch=0, now_ms=0)
    assert r.first_offset == 3
    data = bytes(log.read(0, 10**7).records)
    assert [h.base_offset for _, h in iter_batches(data)] == [0, 3]


def test_corrupt_beats_duplicate_sequence(open_log) -> None:
    log = open_log()
    idem = dict(producer_id=7, producer_epoch=0, base_sequence=0)
    big = batch(BIG, size=1000, **idem)
    log.append_as_leader(big, leader_epoch=0, now_ms=0)
    with pytest.raises(CorruptRecordError):  # a retry of that batch, damaged in transit
        log.append_as_leader(corrupt(big), leader_epoch=0, now_ms=0)
    assert log.log_end_offset == BIG


def test_small_requests_and_compacted_topics_check_inline(open_log) -> None:
    compacted = open_log(LogConfig(cleanup_policy=frozenset({"compact"})), name="c-0")
    with pytest.raises(CorruptRecordError):
        compacted.append_as_leader(corrupt(batch(BIG, size=1000)), leader_epoch=0, now_ms=0)
    small = open_log(name="s-0")
    with pytest.raises(CorruptRecordError):
        small.append_as_leader(corrupt(batch(2)), leader_epoch=0, now_ms=0)
    assert compacted.log_end_offset == small.log_end_offset == 0
