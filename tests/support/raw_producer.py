"""Hand-built idempotent record batches sent over aiokafka's low-level client.

For protocol-level producer-state checks (duplicates, sequence gaps, epochs) that a
normal producer never does on purpose.  Batches are built by aiokafka's own
``DefaultRecordBatchBuilder`` (an encoder independent of the broker's), sent as
Produce with acks=-1 to partition 0 of one topic; ``produce`` returns
``(error_code, base_offset)`` of the partition response.  Every await is bounded.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka.client import AIOKafkaClient
from aiokafka.protocol.produce import ProduceRequest
from aiokafka.protocol.transaction import InitProducerIdRequest
from aiokafka.record.default_records import DefaultRecordBatchBuilder

TIMEOUT_S = 30.0


def idempotent_batch(
    pid: int, epoch: int, base_sequence: int, values: list[bytes], base_ts: int | None = None
) -> bytes:
    """One uncompressed v2 batch of ``values`` carrying (pid, epoch, base_sequence);
    record timestamps ``base_ts + i`` (default: now)."""
    if base_ts is None:
        base_ts = int(time.time() * 1000)
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=0,
        is_transactional=0,
        producer_id=pid,
        producer_epoch=epoch,
        base_sequence=base_sequence,
        batch_size=1 << 20,
    )
    for i, value in enumerate(values):
        builder.append(i, timestamp=base_ts + i, key=None, value=value, headers=[])
    return bytes(builder.build())


class RawProducer:
    """``async with RawProducer(bootstrap, topic) as raw``: InitProducerId and Produce."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
        self.node = -1

    async def __aenter__(self) -> RawProducer:
        await asyncio.wait_for(self.client.bootstrap(), TIMEOUT_S)
        self.node = self.client.get_random_node()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.wait_for(self.client.close(), TIMEOUT_S)

    async def send(self, request: Any) -> Any:
        return await asyncio.wait_for(self.client.send(self.node, request), TIMEOUT_S)

    async def init_producer_id(self) -> tuple[int, int]:
        init = await self.send(InitProducerIdRequest(None, 60000))
        assert init.error_code == 0, init
        return init.producer_id, init.producer_epoch

    async def produce_batch(self, batch: bytes) -> tuple[int, int]:
        response = await self.send(ProduceRequest(None, -1, 10000, [(self.topic, [(0, batch)])]))
        ((_, partitions),) = response.topics
        (part,) = partitions
        return part[1], part[2]  # error_code, base offset

    async def produce(self, pid: int, epoch: int, seq: int, values: list[bytes]) -> tuple[int, int]:
        return await self.produce_batch(idempotent_batch(pid, epoch, seq, values))
