"""What the console shows, read from a ``ClusterNode`` at request time.

Cluster-wide facts (brokers, quorum, topics, leaders, replicas, ISR) come from the node's
metadata image; offsets and sizes from the partition replicas this node hosts (``None``
for a partition without one here); consumer groups from the coordinator on this node
(the groups of the ``__consumer_offsets`` partitions it leads).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from broker.group.service import EXTENSION_KEY as GROUPS_EXTENSION
from broker.partition_metrics import consumer_lag


@dataclass(frozen=True, slots=True)
class BrokerRow:
    broker_id: int
    endpoints: tuple[str, ...]
    rack: str | None
    fenced: bool


@dataclass(frozen=True, slots=True)
class PartitionRow:
    partition: int
    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    #: from this node's replica; None when it hosts none
    log_start_offset: int | None
    high_watermark: int | None
    log_end_offset: int | None
    size_bytes: int | None

    @property
    def under_replicated(self) -> bool:
        return len(self.isr) < len(self.replicas)


@dataclass(frozen=True, slots=True)
class TopicRow:
    name: str
    partitions: tuple[PartitionRow, ...]

    @property
    def replication_factor(self) -> int:
        return max((len(p.replicas) for p in self.partitions), default=0)

    @property
    def under_replicated(self) -> int:
        return sum(1 for p in self.partitions if p.under_replicated)

    @property
    def size_bytes(self) -> int | None:
        sizes = [p.size_bytes for p in self.partitions if p.size_bytes is not None]
        return sum(sizes) if sizes else None


@dataclass(frozen=True, slots=True)
class Cluster:
    cluster_id: str
    node_id: int
    quorum_leader: int
    quorum_epoch: int
    voters: tuple[int, ...]
    brokers: tuple[BrokerRow, ...]
    topics: tuple[TopicRow, ...]


@dataclass(frozen=True, slots=True)
class GroupOffset:
    topic: str
    partition: int
    committed: int
    high_watermark: int | None

    @property
    def lag(self) -> int | None:
        if self.high_watermark is None:
            return None
        return consumer_lag(self.high_watermark, self.committed)


@dataclass(frozen=True, slots=True)
class Group:
    group_id: str
    state: str
    protocol: str
    members: tuple[str, ...]
    offsets: tuple[GroupOffset, ...]


def _logs(node: Any) -> dict[tuple[str, int], Any]:
    broker = node.broker
    if broker is None or broker.log_manager is None:
        return {}
    return {(plog.topic, plog.partition): plog for plog in broker.log_manager.logs()}


def local_log(node: Any, topic: str, partition: int) -> Any:
    """This node's replica of ``topic-partition`` (a ``PartitionLog``), or None."""
    broker = node.broker
    if broker is None or broker.log_manager is None:
        return None
    return broker.log_manager.get(topic, partition)


def cluster(node: Any) -> Cluster:
    image = node.quorum.image
    logs = _logs(node)
    topics = []
    for topic in sorted(image.topics.values(), key=lambda t: t.name):
        rows = []
        for index, p in sorted(topic.partitions.items()):
            plog = logs.get((topic.name, index))
            rows.append(PartitionRow(
                index, p.leader, tuple(p.replicas), tuple(p.isr),
                plog.log_start_offset if plog else None,
                plog.high_watermark if plog else None,
                plog.log_end_offset if plog else None,
                plog.size_in_bytes if plog else None))
        topics.append(TopicRow(topic.name, tuple(rows)))
    brokers = tuple(
        BrokerRow(b.broker_id, tuple(f"{e.name}://{e.host}:{e.port}" for e in b.endpoints),
                  b.rack, b.fenced)
        for _, b in sorted(image.brokers.items()))
    quorum = node.quorum
    return Cluster(node.cluster_id, node.node_id, quorum.leader_id, quorum.epoch,
                   tuple(sorted(node.voters)), brokers, tuple(topics))


def groups(node: Any) -> list[Group]:
    broker = node.broker
    service = broker.extensions.get(GROUPS_EXTENSION) if broker is not None else None
    coordinated = getattr(getattr(service, "coordinator", None), "groups", None) or {}
    consumer_groups = getattr(getattr(service, "coordinator", None), "consumer_groups", {})
    logs = _logs(node)
    out = []
    for group_id, group in sorted(coordinated.items()):
        offsets = []
        for (topic, index), committed in sorted(getattr(group, "offsets", {}).items()):
            plog = logs.get((topic, index))
            offsets.append(GroupOffset(topic, index, committed.offset,
                                       plog.high_watermark if plog else None))
        # a KIP-848 group: its offsets are kept by an Empty classic group of the same id
        shown = consumer_groups.get(group_id, group)
        state = getattr(shown, "state", None)
        protocol = "consumer" if shown is not group else (
            getattr(group, "protocol_name", None) or "")
        out.append(Group(group_id, getattr(state, "value", str(state)), protocol,
                         tuple(sorted(getattr(shown, "members", {}))), tuple(offsets)))
    return out


def _totals(counter: Any) -> dict[str, float]:
    """label value -> count of a one-label ``common.metrics.LabelledCounter``."""
    out: dict[str, float] = {}
    for family in counter.metric.collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                out[next(iter(sample.labels.values()))] = sample.value
    return out


def stats(node: Any, now_ms: int) -> dict[str, Any]:
    """What the live charts poll (``/api/stats``): this broker's running totals of bytes
    in, records in and bytes out per topic (rates are the client's differences), and the
    cluster's under-replicated and offline partitions (metadata image), at ``now_ms``."""
    image = node.quorum.image
    live = {b.broker_id for b in image.unfenced_brokers()}
    parts = [p for t in image.topics.values() for p in t.partitions.values()]
    metrics = getattr(node.broker, "metrics", None)
    return {
        "time_ms": now_ms,
        "bytes_in": _totals(metrics.bytes_in) if metrics else {},
        "messages_in": _totals(metrics.messages_in) if metrics else {},
        "bytes_out": _totals(metrics.bytes_out) if metrics else {},
        "under_replicated": sum(
            1 for p in parts if len(p.isr) < len(p.replicas) - len(p.adding_replicas)),
        "offline": sum(1 for p in parts if p.leader not in live),
    }
