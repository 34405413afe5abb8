"""Replica placement for new partitions: rack-aware round robin (Kafka's algorithm shape).

``place_replicas(brokers, partitions, replication_factor, start_index, replica_shift)``
returns one replica list per partition. The first replica (preferred leader) of partition
p is broker ``(start_index + p) % n`` of the arranged broker list, so leaders spread
evenly; the following replicas come after it with a shift that grows every n partitions,
so followers spread too. Callers pass random ``start_index``/``replica_shift`` (from a
seeded RNG) so that successive topics do not all start on the same broker; the function
itself is deterministic.

Rack awareness: when every broker has a rack, the broker list is first arranged so racks
alternate (r1-b, r2-b, r3-b, r1-b', ...) and each further replica skips brokers whose rack
already holds a replica of the partition until every rack has one. The result: replicas of
a partition land on min(rf, racks) distinct racks. When only some brokers have a rack the
placement ignores racks (Kafka refuses in that case unless told to ignore racks; Strom
places rather than fails and says so in the docstring).

Errors: ``PlacementError`` (→ INVALID_REPLICATION_FACTOR / INVALID_PARTITIONS) when rf
< 1, rf > number of brokers, partitions < 1 or no brokers.
"""

from __future__ import annotations

from collections.abc import Sequence


class PlacementError(ValueError):
    pass


def arrange_by_rack(brokers: Sequence[tuple[int, str | None]]) -> list[int]:
    """Broker ids with racks alternating: take one broker per rack in turn."""
    by_rack: dict[str, list[int]] = {}
    for broker_id, rack in sorted(brokers):
        by_rack.setdefault(rack or "", []).append(broker_id)
    racks = sorted(by_rack)
    out: list[int] = []
    depth = 0
    while len(out) < len(brokers):
        for rack in racks:
            ids = by_rack[rack]
            if depth < len(ids):
                out.append(ids[depth])
        depth += 1
    return out


def _replica_index(first: int, shift: int, j: int, n: int) -> int:
    return (first + 1 + (shift + j) % (n - 1)) % n


def place_replicas(
    brokers: Sequence[tuple[int, str | None]],
    partitions: int,
    replication_factor: int,
    *,
    start_index: int = 0,
    replica_shift: int = 0,
    first_partition: int = 0,
) -> list[tuple[int, ...]]:
    """Assign ``partitions`` partitions (numbered from ``first_partition``) to
    ``brokers`` — (broker id, rack or None) pairs, normally the unfenced brokers."""
    n = len(brokers)
    if n == 0:
        raise PlacementError("no available brokers to place replicas on")
    if partitions < 1:
        raise PlacementError(f"number of partitions must be at least 1, got {partitions}")
    if replication_factor < 1:
        raise PlacementError(f"replication factor must be at least 1, got "
                             f"{replication_factor}")
    if replication_factor > n:
        raise PlacementError(f"replication factor {replication_factor} is larger than the "
                             f"{n} available brokers")
    racks = {b: r for b, r in brokers}
    rack_aware = all(r is not None for r in racks.values())
    arranged = arrange_by_rack(brokers) if rack_aware else sorted(b for b, _ in brokers)
    num_racks = len(set(racks.values())) if rack_aware else 1
    start = start_index % n
    shift = replica_shift % n
    out: list[tuple[int, ...]] = []
    for pid in range(first_partition, first_partition + partitions):
        if pid > 0 and pid % n == 0:
            shift += 1
        first = (pid + start) % n
        replicas = [arranged[first]]
        if rack_aware and num_racks > 1:
            used_racks = {racks[arranged[first]]}
            k = 0
            while len(replicas) < replication_factor:
                broker = arranged[_replica_index(first, shift * num_racks, k, n)]
                k += 1
                if broker in replicas:
                    continue
                if racks[broker] in used_racks and len(used_racks) < num_racks:
                    continue
                replicas.append(broker)
                used_racks.add(racks[broker])
                if len(used_racks) == num_racks:
                    used_racks = set()  # every rack used once: start another round
        else:
            for j in range(replication_factor - 1):
                replicas.append(arranged[_replica_index(first, shift, j, n)])
        out.append(tuple(replicas))
    return out
