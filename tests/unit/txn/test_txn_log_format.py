"""``__transaction_state`` records, byte for byte as Kafka's TransactionLogKey/Value, and
the coordinator partition of a transactional id."""

from __future__ import annotations

import struct

import pytest

from broker.group.partitioner import partition_for
from broker.txn.log_format import (
    LogFormatError,
    TxnLogValue,
    decode_key,
    decode_value,
    encode_key,
    encode_value,
    encode_value_v1,
    group_partitions,
)
from broker.txn.state import TransactionState


def test_key_is_version_0_and_a_short_string() -> None:
    raw = encode_key("tx-1")
    assert raw == b"\x00\x00" + b"\x00\x04" + b"tx-1"
    assert decode_key(raw) == "tx-1"
    assert decode_key(b"\x00\x05\x00\x01x") is None  # unknown key version: skipped


def test_value_v0_layout_field_by_field() -> None:
    v = TxnLogValue(producer_id=4242, producer_epoch=7, transaction_timeout_ms=60_000,
                    state=int(TransactionState.ONGOING),
                    partitions=group_partitions([("b", 1), ("a", 3), ("a", 0)]),
                    last_update_timestamp_ms=1_700_000_000_123,
                    start_timestamp_ms=1_700_000_000_000)
    raw = encode_value(v)
    expected = (struct.pack(">hqhib", 0, 4242, 7, 60_000, 1)
                + struct.pack(">i", 2)
                + struct.pack(">h", 1) + b"a" + struct.pack(">iii", 2, 0, 3)
                + struct.pack(">h", 1) + b"b" + struct.pack(">ii", 1, 1)
                + struct.pack(">qq", 1_700_000_000_123, 1_700_000_000_000))
    assert raw == expected
    assert decode_value(raw) == v


def test_value_v1_flexible_with_tagged_fields_round_trips() -> None:
    v = TxnLogValue(9, 1, 1000, int(TransactionState.PREPARE_COMMIT), (("t", (0, 2)),),
                    5, 4, previous_producer_id=8, next_producer_id=-1,
                    client_transaction_version=2)
    raw = encode_value_v1(v)
    assert raw[:2] == b"\x00\x01"
    back = decode_value(raw)
    assert back == v
    assert back.previous_producer_id == 8 and back.client_transaction_version == 2


@pytest.mark.parametrize("cut", [1, 5, 17, 30])
def test_truncated_values_are_refused(cut: int) -> None:
    raw = encode_value(TxnLogValue(1, 0, 10, 1, (("topic", (0,)),), 1, 1))
    with pytest.raises(LogFormatError):
        decode_value(raw[:cut])


def test_unknown_version_and_state_are_refused() -> None:
    with pytest.raises(LogFormatError):
        decode_value(b"\x00\x09" + b"\x00" * 40)
    bad_state = bytearray(encode_value(TxnLogValue(1, 0, 10, 1)))
    bad_state[16] = 42
    with pytest.raises(LogFormatError):
        decode_value(bytes(bad_state))


def test_state_ids_are_kafkas() -> None:
    assert [s.value for s in TransactionState] == list(range(8))
    assert TransactionState.PREPARE_EPOCH_FENCE.kafka_name == "PrepareEpochFence"
    assert TransactionState.from_kafka_name("CompleteAbort") is TransactionState.COMPLETE_ABORT
    assert TransactionState.from_kafka_name("Nope") is None


def test_coordinator_partition_is_kafkas_hash() -> None:
    # Java: "my-txn".hashCode() == -1061187895, Utils.abs -> 1061187895, % 50 == 45
    assert partition_for("my-txn", 50) == 45
    assert partition_for("", 50) == 0
