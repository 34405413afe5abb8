"""Which ``__consumer_offsets`` partition owns a group, computed exactly as Kafka does:
``Utils.abs(groupId.hashCode()) % offsets.topic.num.partitions``."""

from __future__ import annotations

_INT_MIN = -(2**31)


def java_string_hashcode(text: str) -> int:
    """Java's ``String.hashCode``: ``s[0]*31^(n-1) + ... + s[n-1]`` over UTF-16 code units,
    in 32-bit two's complement."""
    h = 0
    data = text.encode("utf-16-be", "surrogatepass")
    for i in range(0, len(data), 2):
        h = (31 * h + ((data[i] << 8) | data[i + 1])) & 0xFFFFFFFF
    return h - 2**32 if h >= 2**31 else h


def java_abs(n: int) -> int:
    """Kafka's ``Utils.abs``: like Math.abs but maps Integer.MIN_VALUE to 0."""
    return 0 if n == _INT_MIN else abs(n)


def partition_for(group_id: str, num_partitions: int) -> int:
    """The ``__consumer_offsets`` partition (and so the coordinator) of ``group_id``."""
    return java_abs(java_string_hashcode(group_id)) % num_partitions
