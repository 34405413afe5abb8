"""The active controller's producer id decisions (KIP-730): blocks for registered brokers
at their current epoch, consecutive and never overlapping, and the upgrade floor."""

from __future__ import annotations

import uuid

from controller.metadata import (
    Endpoint,
    MetadataImage,
    ProducerIdsRecord,
    RegisterBrokerRecord,
    apply_all,
    decode_image,
    encode_image,
)
from controller.metadata.producer_id_control import (
    BLOCK_SIZE,
    MAX_PRODUCER_ID,
    adopt_producer_id_floor,
    allocate_producer_ids,
)
from protocol.errors import ErrorCode

EP = (Endpoint("PLAINTEXT", "127.0.0.1", 9092),)


def brokers() -> MetadataImage:
    return apply_all(MetadataImage(), [
        RegisterBrokerRecord(1, uuid.UUID(int=1), 10, EP, fenced=False),
        RegisterBrokerRecord(2, uuid.UUID(int=2), 11, EP, fenced=False),
    ], offset=11)


def test_blocks_are_consecutive_and_disjoint_across_brokers() -> None:
    image = brokers()
    blocks = []
    for broker_id, epoch in [(1, 10), (2, 11), (1, 10), (2, 11)]:
        res = allocate_producer_ids(image, broker_id=broker_id, broker_epoch=epoch)
        assert res.error_code == 0
        assert res.records == (ProducerIdsRecord(broker_id, epoch, res.start + BLOCK_SIZE),)
        blocks.append((res.start, res.length))
        image = apply_all(image, list(res.records))
    assert blocks == [(i * BLOCK_SIZE, BLOCK_SIZE) for i in range(4)]
    assert image.next_producer_id == 4 * BLOCK_SIZE
    # a controller that took over from a snapshot continues after the last block
    restored = decode_image(encode_image(image))
    res = allocate_producer_ids(restored, broker_id=2, broker_epoch=11)
    assert res.start == 4 * BLOCK_SIZE


def test_unknown_broker_and_stale_epoch_are_refused() -> None:
    unknown = allocate_producer_ids(brokers(), broker_id=7, broker_epoch=10)
    assert unknown.error_code == ErrorCode.broker_id_not_registered.value
    assert (unknown.records, unknown.start, unknown.length) == ((), -1, 0)
    stale = allocate_producer_ids(brokers(), broker_id=1, broker_epoch=9)
    assert stale.error_code == ErrorCode.stale_broker_epoch.value
    assert stale.records == ()


def test_exhausted_ids_are_an_error() -> None:
    image = apply_all(brokers(), [ProducerIdsRecord(1, 10, MAX_PRODUCER_ID - 10)])
    res = allocate_producer_ids(image, broker_id=1, broker_epoch=10)
    assert res.error_code == ErrorCode.unknown_server_error.value and res.records == ()


def test_upgrade_floor_moves_the_next_id_up_only() -> None:
    image = brokers()
    assert adopt_producer_id_floor(image, broker_id=1, floor=0) == ()
    records = adopt_producer_id_floor(image, broker_id=1, floor=5000)
    assert records == (ProducerIdsRecord(1, -1, 5000),)
    image = apply_all(image, list(records))
    assert allocate_producer_ids(image, broker_id=1, broker_epoch=10).start == 5000
    assert adopt_producer_id_floor(image, broker_id=1, floor=4000) == ()
    assert adopt_producer_id_floor(image, broker_id=1, floor=5000) == ()
