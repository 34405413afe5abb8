"""The active controller's producer id decisions (Kafka's ProducerIdControlManager,
KIP-730): brokers get producer ids in blocks from the metadata log, so no two producers of
the cluster ever get the same id, whichever broker they asked.

Rules
- AllocateProducerIds(broker_id, broker_epoch): an unknown broker gets
  BROKER_ID_NOT_REGISTERED, a broker epoch other than the registered one
  STALE_BROKER_EPOCH (a restarted broker must re-register first). Otherwise the broker
  gets the block ``[image.next_producer_id, image.next_producer_id + BLOCK_SIZE)`` and
  the decision is one ``ProducerIdsRecord`` moving ``next_producer_id`` past the block;
  the block is the broker's once that record commits. Ids are int64: a block that would
  pass the largest int64 is refused with UNKNOWN_SERVER_ERROR (ids exhausted).
- Upgrade floor (``adopt_producer_id_floor``): a node that handed out ids from its own
  counter before this scheme existed tells its controller the counter's end; if that is
  above ``next_producer_id`` one ``ProducerIdsRecord`` (broker epoch -1) moves
  ``next_producer_id`` up to it, so no later block repeats an old id.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.metadata.image import MetadataImage
from controller.metadata.records import MetadataRecord, ProducerIdsRecord
from protocol.errors import ErrorCode

#: ids per block (Kafka's ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE)
BLOCK_SIZE = 1000
MAX_PRODUCER_ID = 2**63 - 1
NONE = 0


@dataclass(frozen=True, slots=True)
class ProducerIdBlock:
    """The outcome of an allocation: on success (``error_code`` 0) the ids
    ``[start, start + length)`` and the records that must commit before they are handed
    out; on an error no records, ``start`` -1 and ``length`` 0."""

    records: tuple[MetadataRecord, ...]
    error_code: int
    start: int = -1
    length: int = 0
    message: str | None = None


def allocate_producer_ids(image: MetadataImage, *, broker_id: int, broker_epoch: int,
                          block_size: int = BLOCK_SIZE) -> ProducerIdBlock:
    """A fresh block of ``block_size`` producer ids for broker ``broker_id``."""
    reg = image.brokers.get(broker_id)
    if reg is None:
        return ProducerIdBlock((), int(ErrorCode.broker_id_not_registered.value),
                               message=f"broker {broker_id} is not registered")
    if reg.broker_epoch != broker_epoch:
        return ProducerIdBlock((), int(ErrorCode.stale_broker_epoch.value),
                               message=f"broker {broker_id} has epoch {reg.broker_epoch}, "
                                       f"not {broker_epoch}")
    start = image.next_producer_id
    if start > MAX_PRODUCER_ID - block_size:
        return ProducerIdBlock((), int(ErrorCode.unknown_server_error.value),
                               message="the cluster has exhausted its producer ids")
    record = ProducerIdsRecord(broker_id, broker_epoch, start + block_size)
    return ProducerIdBlock((record,), NONE, start, block_size)


def adopt_producer_id_floor(image: MetadataImage, *, broker_id: int, floor: int
                            ) -> tuple[MetadataRecord, ...]:
    """The records that make every later block start at or above ``floor`` (none when
    ``next_producer_id`` is already there)."""
    if floor <= image.next_producer_id:
        return ()
    return (ProducerIdsRecord(broker_id, -1, min(floor, MAX_PRODUCER_ID)),)
