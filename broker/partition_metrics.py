"""Per-partition and per-consumer-group gauges, computed when Prometheus scrapes (a
``prometheus_client`` custom collector: nothing on the produce or fetch path). Kafka's
JMX names in parentheses.

For every partition replica hosted on this broker (leader or follower), labels
``{topic, partition}``:

- ``strom_log_start_offset`` (Log.LogStartOffset), ``strom_log_end_offset``
  (Log.LogEndOffset), ``strom_high_watermark`` (the last offset consumers can read + 1;
  on a follower, the leader's value as last fetched), ``strom_log_size_bytes`` (Log.Size:
  the bytes of all its segments).

For every partition this broker leads (from the metadata image), ``{topic, partition}``:

- ``strom_partition_under_replicated`` (Partition.UnderReplicated): 1 while its ISR is
  smaller than its replicas (during a reassignment: than the replicas not being added).

For every consumer group this broker coordinates, ``{group, topic, partition}`` for each
committed offset:

- ``strom_consumer_group_committed_offset``: the committed offset;
- ``strom_consumer_group_lag``: high watermark minus committed offset (never below 0),
  as ``kafka-consumer-groups.sh --describe`` computes it; only for partitions with a
  replica on this broker (every partition on a cluster whose replication factor equals
  its size), since a scrape cannot wait for another broker's answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from broker.group.service import EXTENSION_KEY as GROUPS_EXTENSION

_TP = ["topic", "partition"]
_GTP = ["group", "topic", "partition"]


def consumer_lag(high_watermark: int, committed: int) -> int:
    """Records a group has yet to consume from a partition (0 when it is ahead)."""
    return max(0, high_watermark - committed)


class PartitionCollector(Collector):
    """The gauges of the module doc for one ``ClusterNode``."""

    def __init__(self, node: Any) -> None:
        self.node = node

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield from self._families()

    def _families(self) -> list[GaugeMetricFamily]:
        return [
            GaugeMetricFamily("strom_log_start_offset",
                              "First offset of a partition replica's log.", labels=_TP),
            GaugeMetricFamily("strom_log_end_offset",
                              "Offset of the next record appended to a partition replica.",
                              labels=_TP),
            GaugeMetricFamily("strom_high_watermark",
                              "Offset up to which consumers read a partition replica.",
                              labels=_TP),
            GaugeMetricFamily("strom_log_size_bytes",
                              "Bytes of a partition replica's log segments.", labels=_TP),
            GaugeMetricFamily("strom_partition_under_replicated",
                              "1 while a partition this broker leads has an ISR smaller "
                              "than its replicas, else 0.", labels=_TP),
            GaugeMetricFamily("strom_consumer_group_committed_offset",
                              "Offset a consumer group committed for a partition.",
                              labels=_GTP),
            GaugeMetricFamily("strom_consumer_group_lag",
                              "High watermark minus the committed offset of a consumer "
                              "group, per partition.", labels=_GTP),
        ]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        start, end, hw, size, under, committed, lag = families = self._families()
        broker = self.node.broker
        logs: dict[tuple[str, int], Any] = {}
        if broker is not None and broker.log_manager is not None:
            for plog in list(broker.log_manager.logs()):
                key = (plog.topic, plog.partition)
                logs[key] = plog
                labels = [plog.topic, str(plog.partition)]
                start.add_metric(labels, plog.log_start_offset)
                end.add_metric(labels, plog.log_end_offset)
                hw.add_metric(labels, plog.high_watermark)
                size.add_metric(labels, plog.size_in_bytes)
        node_id = self.node.node_id
        for topic in self.node.quorum.image.topics.values():
            for index, p in topic.partitions.items():
                if p.leader == node_id:
                    lagging = len(p.isr) < len(p.replicas) - len(p.adding_replicas)
                    under.add_metric([topic.name, str(index)], int(lagging))
        service = broker.extensions.get(GROUPS_EXTENSION) if broker is not None else None
        groups = getattr(getattr(service, "coordinator", None), "groups", None) or {}
        for group_id, group in list(groups.items()):
            for (topic_name, index), offset in list(getattr(group, "offsets", {}).items()):
                labels = [group_id, topic_name, str(index)]
                committed.add_metric(labels, offset.offset)
                plog = logs.get((topic_name, index))
                if plog is not None:
                    lag.add_metric(labels, consumer_lag(plog.high_watermark, offset.offset))
        yield from families


def partition_gauges(registry: CollectorRegistry, node: Any) -> None:
    """Register the per-partition and per-group gauges of ``node``."""
    registry.register(PartitionCollector(node))
