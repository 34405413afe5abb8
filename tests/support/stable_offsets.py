"""``stable_and_end_offsets(bootstrap, topic)``: (last stable offset, log end offset) of a
partition, from ListOffsets v5 ``latest`` asked read_committed and then read_uncommitted
over one raw connection (timeout 20 s), for transaction tests."""

from __future__ import annotations

from kio.schema.list_offsets.v5 import request as lo

from net.wire import WireClient


def stable_and_end_offsets(bootstrap: str, topic: str, partition: int = 0
                           ) -> tuple[int, int]:
    """See the module doc."""
    host, _, port = bootstrap.rpartition(":")
    out = []
    with WireClient(host, int(port), timeout=20.0) as wire:
        for isolation in (1, 0):
            r = wire.request(lo.ListOffsetsRequest(
                replica_id=-1, isolation_level=isolation, topics=(lo.ListOffsetsTopic(
                    name=topic, partitions=(lo.ListOffsetsPartition(
                        partition_index=partition, current_leader_epoch=-1,
                        timestamp=-1),)),)))
            out.append(int(r.topics[0].partitions[0].offset))
    return out[0], out[1]
