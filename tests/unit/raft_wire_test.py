"""Every quorum message survives core -> kio entity -> Kafka bytes -> kio -> core, which
shows they carry exactly the RPCs' fields and that a shell can put them on the wire."""

from __future__ import annotations

import io

import pytest
from kio.serial import entity_reader, entity_writer

from controller.raft import Entry, QuorumInfo, ReplicaInfo, SnapshotId
from controller.raft.messages import (
    BeginQuorumEpochRequest,
    BeginQuorumEpochResponse,
    EndQuorumEpochRequest,
    EndQuorumEpochResponse,
    FetchRequest,
    FetchResponse,
    FetchSnapshotRequest,
    FetchSnapshotResponse,
    VoteRequest,
    VoteResponse,
)
from controller.raft.wire import (
    WireError,
    describe_quorum_response,
    from_kio,
    records_to_entries,
    to_kio,
)
from protocol.records import iter_batches

ENTRIES = (
    Entry(10, 3, b"a"), Entry(11, 3, b"b"), Entry(12, 4, b"LC1 2 1,2,3", control=True),
    Entry(13, 4, b"c" * 300),
)
MESSAGES = [
    VoteRequest(1, 2, 7, "cid", 5, 1, 4, 120, True),
    VoteRequest(1, 2, 8, "cid", 5, 1, 4, 120, False),
    VoteResponse(2, 1, 7, 0, -1, 4, True),
    VoteResponse(2, 1, 7, 74, 3, 6, False),
    BeginQuorumEpochRequest(1, 3, 9, "cid", 1, 5),
    BeginQuorumEpochResponse(3, 1, 9, 0, 1, 5),
    EndQuorumEpochRequest(1, 2, 10, "cid", 1, 5, (3, 2)),
    EndQuorumEpochResponse(2, 1, 10, 0, 1, 5),
    FetchRequest(2, 1, 11, "cid", 2, 500, 5, 14, 4, 0, 1 << 20, 12),
    FetchResponse(1, 2, 11, 0, 12, 0, -1, -1, 1, 5, None, ENTRIES),
    FetchResponse(1, 2, 11, 0, 12, 0, 3, 11, 1, 5, None, ()),
    FetchResponse(1, 2, 11, 0, 12, 40, -1, -1, 1, 5, SnapshotId(40, 3), ()),
    FetchResponse(1, 2, 11, 6, -1, 0, -1, -1, 3, 7, None, ()),
    FetchSnapshotRequest(2, 1, 12, "cid", 2, 4096, 5, SnapshotId(40, 3), 128),
    FetchSnapshotResponse(1, 2, 12, 0, SnapshotId(40, 3), 1, 5, 1000, 128, b"chunk"),
]


def wire_round_trip(entity: object) -> object:
    buf = io.BytesIO()
    entity_writer(type(entity))(buf, entity)
    decoded, _ = entity_reader(type(entity))(buf.getvalue(), 0)
    return decoded


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: type(m).__name__)
def test_message_round_trips_through_kafka_bytes(msg: object) -> None:
    entity = to_kio(msg)
    assert type(entity).__api_key__ in (52, 53, 54, 1, 59)
    back = from_kio(wire_round_trip(entity), src=msg.src, dst=msg.dst,
                    correlation_id=msg.correlation_id)
    assert back == msg


def test_fetch_records_are_kafka_record_batches_carrying_the_epoch() -> None:
    entity = to_kio(FetchResponse(1, 2, 1, 0, 12, 0, -1, -1, 1, 5, None, ENTRIES))
    raw = entity.responses[0].partitions[0].records
    assert records_to_entries(raw) == ENTRIES
    epochs = [(h.base_offset, h.partition_leader_epoch, h.is_control)
              for _, h in iter_batches(raw)]
    assert epochs == [(10, 3, False), (12, 4, True), (13, 4, False)]


def test_malformed_records_are_a_wire_error() -> None:
    with pytest.raises(WireError, match="bad records"):
        records_to_entries(b"\x00" * 70)


def test_describe_quorum_response() -> None:
    info = QuorumInfo(1, 5, 42, (ReplicaInfo(1, 42, 1000, 1000), ReplicaInfo(2, 40, 990, 980)),
                      (ReplicaInfo(7, 30, 900, -1),))
    resp = wire_round_trip(describe_quorum_response(info))
    part = resp.topics[0].partitions[0]
    assert (part.leader_id, part.leader_epoch, part.high_watermark) == (1, 5, 42)
    assert [(v.replica_id, v.log_end_offset) for v in part.current_voters] == [(1, 42), (2, 40)]
    assert [o.replica_id for o in part.observers] == [7]
    refused = describe_quorum_response(None, leader_id=3, leader_epoch=5).topics[0]
    assert refused.partitions[0].error_code == 6 and refused.partitions[0].leader_id == 3
