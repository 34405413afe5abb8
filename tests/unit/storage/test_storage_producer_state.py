"""Idempotent producer state: duplicates, sequence gaps, epochs, snapshots and replay."""

from __future__ import annotations

import pytest

from protocol.records import Record, build_batch, build_control_batch
from storage.errors import (
    DuplicateSequenceError,
    InvalidProducerEpochError,
    OutOfOrderSequenceError,
)
from storage.log_config import LogConfig
from storage.partition_log import PartitionLog


def pbatch(seq: int, n: int = 1, *, pid: int = 42, epoch: int = 0, txn: bool = False) -> bytes:
    return build_batch([Record(-1, 0, b"k", b"v") for _ in range(n)], producer_id=pid,
                       producer_epoch=epoch, base_sequence=seq, is_transactional=txn)


def test_duplicate_of_any_of_last_five_returns_original_offsets(open_log) -> None:
    log = open_log()
    results = [log.append_as_leader(pbatch(i * 2, 2), leader_epoch=0, now_ms=0)
               for i in range(6)]
    for i in range(1, 6):
        with pytest.raises(DuplicateSequenceError) as err:
            log.append_as_leader(pbatch(i * 2, 2), leader_epoch=0, now_ms=0)
        assert (err.value.first_offset, err.value.last_offset) == (
            results[i].first_offset, results[i].last_offset)
    # the oldest (6th from last) is no longer remembered: it is simply out of order
    with pytest.raises(OutOfOrderSequenceError):
        log.append_as_leader(pbatch(0, 2), leader_epoch=0, now_ms=0)
    assert log.log_end_offset == 12


def test_sequence_gap_and_epoch_rules(open_log) -> None:
    log = open_log()
    log.append_as_leader(pbatch(0), leader_epoch=0, now_ms=0)
    with pytest.raises(OutOfOrderSequenceError):
        log.append_as_leader(pbatch(2), leader_epoch=0, now_ms=0)
    log.append_as_leader(pbatch(1), leader_epoch=0, now_ms=0)
    # a new epoch must restart at 0
    with pytest.raises(OutOfOrderSequenceError):
        log.append_as_leader(pbatch(5, epoch=1), leader_epoch=0, now_ms=0)
    log.append_as_leader(pbatch(0, epoch=1), leader_epoch=0, now_ms=0)
    with pytest.raises(InvalidProducerEpochError):
        log.append_as_leader(pbatch(2, epoch=0), leader_epoch=0, now_ms=0)
    e = log.producer_state[42]
    assert (e.epoch, e.last_sequence) == (1, 0)
    # an unknown producer may start at any sequence (Kafka >= 2.5)
    log.append_as_leader(pbatch(17, pid=7), leader_epoch=0, now_ms=0)
    assert log.producer_state[7].last_sequence == 17


def test_sequence_wraps_at_int32_max(open_log) -> None:
    log = open_log()
    log.append_as_leader(pbatch(2**31 - 1), leader_epoch=0, now_ms=0)
    log.append_as_leader(pbatch(0), leader_epoch=0, now_ms=0)
    assert log.producer_state[42].last_sequence == 0


def test_multi_batch_request_is_all_or_nothing(open_log) -> None:
    log = open_log()
    with pytest.raises(OutOfOrderSequenceError):
        log.append_as_leader(pbatch(0) + pbatch(5), leader_epoch=0, now_ms=0)
    assert log.log_end_offset == 0 and 42 not in log.producer_state
    log.append_as_leader(pbatch(0) + pbatch(1), leader_epoch=0, now_ms=0)
    assert log.producer_state[42].last_sequence == 1


def test_state_survives_clean_and_unclean_reopen(tmp_path) -> None:
    cfg = LogConfig(segment_bytes=400)
    log = PartitionLog.open(tmp_path / "p-0", cfg, now_ms=0)
    for i in range(20):
        log.append_as_leader(pbatch(i), leader_epoch=0, now_ms=0)
    assert len(log.segments) > 2
    assert list((tmp_path / "p-0").glob("*.snapshot"))  # written at roll
    log.close()
    log = PartitionLog.open(tmp_path / "p-0", cfg, now_ms=0)
    with pytest.raises(DuplicateSequenceError):
        log.append_as_leader(pbatch(19), leader_epoch=0, now_ms=0)
    log.append_as_leader(pbatch(20), leader_epoch=0, now_ms=0)
    log.flush()
    # crash: no close; the snapshot at close is absent -> roll snapshot + tail replay
    log2 = PartitionLog.open(tmp_path / "p-0", cfg, now_ms=0)
    assert log2.producer_state[42].last_sequence == 20
    with pytest.raises(DuplicateSequenceError) as err:
        log2.append_as_leader(pbatch(20), leader_epoch=0, now_ms=0)
    assert err.value.first_offset == 20
    # damaged snapshots are ignored: replay from the log
    for p in (tmp_path / "p-0").glob("*.snapshot"):
        p.write_bytes(b"garbage")
    log3 = PartitionLog.open(tmp_path / "p-0", cfg, now_ms=0)
    assert log3.producer_state[42].last_sequence == 20
    log3.close()


def test_truncation_rewinds_producer_state(open_log) -> None:
    log = open_log(LogConfig(segment_bytes=300))
    for i in range(10):
        log.append_as_leader(pbatch(i), leader_epoch=0, now_ms=0)
    log.truncate_to(5)
    assert log.producer_state[42].last_sequence == 4
    log.append_as_leader(pbatch(5), leader_epoch=0, now_ms=0)


def test_transactions_tracked_for_lso(open_log) -> None:
    log = open_log()
    log.append_as_leader(pbatch(0, 2, txn=True), leader_epoch=0, now_ms=0)
    log.high_watermark = log.log_end_offset
    assert log.last_stable_offset == 0
    log.append_as_leader(
        build_control_batch(producer_id=42, producer_epoch=0, commit=True),
        leader_epoch=0, now_ms=0, origin="coordinator")
    log.high_watermark = log.log_end_offset
    assert log.last_stable_offset == 3
    assert log.aborted_transactions(0, 10) == []


def test_duplicate_reports_log_append_time_only_for_log_append_time_topics(open_log) -> None:
    create = open_log(name="c-0")
    create.append_as_leader(pbatch(0), leader_epoch=0, now_ms=5)
    with pytest.raises(DuplicateSequenceError) as err:
        create.append_as_leader(pbatch(0), leader_epoch=0, now_ms=9)
    assert err.value.log_append_time == -1
    append = open_log(LogConfig(message_timestamp_type="LogAppendTime"), name="l-0")
    append.append_as_leader(pbatch(0), leader_epoch=0, now_ms=5)
    with pytest.raises(DuplicateSequenceError) as err:
        append.append_as_leader(pbatch(0), leader_epoch=0, now_ms=9)
    assert (err.value.first_offset, err.value.log_append_time) == (0, 5)


def test_idle_producers_expire_at_retention(open_log) -> None:
    log = open_log(LogConfig(producer_id_expiration_ms=1000))
    log.append_as_leader(pbatch(0, pid=1), leader_epoch=0, now_ms=0)  # max timestamp 0
    log.append_as_leader(pbatch(0, pid=2, txn=True), leader_epoch=0, now_ms=0)
    log.enforce_retention(now_ms=500)
    assert set(log.producer_state) == {1, 2}
    log.enforce_retention(now_ms=5000)
    assert set(log.producer_state) == {2}  # an open transaction keeps its producer
