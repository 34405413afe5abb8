"""What a Strom node reports to Prometheus (``prometheus_client`` instruments from
``common.metrics`` in one ``CollectorRegistry`` per broker; scraped through
``broker.metrics_http``). Kafka's JMX names in parentheses.

Counted by the request path:

- ``strom_requests_total{api}`` (RequestsPerSec) and ``strom_request_seconds{api}``
  (TotalTimeMs, a histogram over ``common.metrics.LATENCY_BUCKETS``): requests answered,
  and the time from the request's arrival to its response being ready (a Fetch includes
  its long-poll wait);
- ``strom_bytes_in_total{topic}``, ``strom_messages_in_total{topic}`` (BytesInPerSec,
  MessagesInPerSec): record batch bytes and records appended by producers;
- ``strom_bytes_out_total{topic}`` (BytesOutPerSec): record batch bytes sent to consumers;
- ``strom_connections_throttled_total{listener}``: new connections closed unserved over
  their address's ``connection_creation_rate`` (KIP-612; per address:
  ``connection_quota_gauges``).

Read when scraped (``node_gauges``): client connections; partitions this broker leads
(LeaderCount) and how many of them have an ISR smaller than their replica set
(UnderReplicatedPartitions); partitions without a live leader in the whole cluster
(OfflinePartitionsCount); the metadata image's offset and its lag behind the quorum high
watermark; the quorum epoch; 1 on the active controller (ActiveControllerCount); 1 while
this broker is fenced. Per partition and per consumer group: ``broker.partition_metrics``.

The registry also holds prometheus_client's standard ``process_*``, ``python_info`` and
``python_gc_*`` collectors.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry

from common.metrics import CallbackGauges, LabelledCounter, LabelledHistogram, new_registry


class BrokerMetrics:
    def __init__(self) -> None:
        self.registry = r = new_registry()
        self.requests = LabelledCounter(r, "strom_requests_total", "Requests answered, by API.",
                                        ("api",))
        self.request_seconds = LabelledHistogram(
            r, "strom_request_seconds",
            "Seconds from a request's arrival to its response being ready, by API.", ("api",))
        self.bytes_in = LabelledCounter(r, "strom_bytes_in_total",
                                        "Record batch bytes appended by producers, by topic.",
                                        ("topic",))
        self.messages_in = LabelledCounter(r, "strom_messages_in_total",
                                           "Records appended by producers, by topic.",
                                           ("topic",))
        self.bytes_out = LabelledCounter(r, "strom_bytes_out_total",
                                         "Record batch bytes sent to consumers, by topic.",
                                         ("topic",))
        self.connections_throttled = LabelledCounter(
            r, "strom_connections_throttled_total",
            "New connections closed unserved over their address's connection_creation_rate "
            "(KIP-612), by listener.", ("listener",))
        self._api_labels: dict[str, str] = {}

    def request_done(self, api_name: str, seconds: float) -> None:
        """Count one answered request of ``api_name`` (kio's ``offset_fetch`` is labelled
        with Kafka's ``OffsetFetch``) that took ``seconds``."""
        label = self._api_labels.get(api_name)
        if label is None:
            label = self._api_labels[api_name] = "".join(
                part.capitalize() for part in api_name.split("_"))
        self.requests.inc(label)
        self.request_seconds.observe(seconds, label)


def node_gauges(registry: CollectorRegistry, node: Any, connections: Callable[[], int]
                ) -> None:
    """Register the gauges read from a ``ClusterNode`` (see the module doc)."""
    quorum = node.quorum
    gauges = CallbackGauges()

    def led() -> list[Any]:
        image = quorum.image
        return [p for t in image.topics.values() for p in t.partitions.values()
                if p.leader == node.node_id]

    def offline() -> int:
        image = quorum.image
        live = {b.broker_id for b in image.unfenced_brokers()}
        return sum(1 for t in image.topics.values() for p in t.partitions.values()
                 if p.leader not in live)

    gauges.gauge("strom_connections", "Open client connections.", connections)
    gauges.gauge("strom_partitions_leader", "Partitions this broker leads.",
                 lambda: len(led()))
    gauges.gauge("strom_under_replicated_partitions",
                 "Partitions this broker leads whose ISR is smaller than their replicas "
                 "(during a reassignment: than the replicas not being added).",
                 lambda: sum(1 for p in led()
                             if len(p.isr) < len(p.replicas) - len(p.adding_replicas)))
    gauges.gauge("strom_reassigning_partitions",
                 "Partitions this broker leads with a reassignment in progress.",
                 lambda: sum(1 for p in led() if p.reassigning))
    gauges.gauge("strom_offline_partitions",
                 "Partitions of the cluster without a live leader (metadata image).",
                 offline)
    gauges.gauge("strom_metadata_offset", "Offset of the last metadata record applied.",
                 lambda: quorum.image.offset)
    gauges.gauge("strom_metadata_lag_records",
                 "Committed metadata records not yet applied to this node's image.",
                 lambda: quorum.metadata_lag)
    gauges.gauge("strom_quorum_epoch", "Current epoch of the metadata quorum.",
                 lambda: quorum.epoch)
    gauges.gauge("strom_active_controller", "1 on the active controller, else 0.",
                 lambda: int(node.controller is not None and node.controller.is_active))
    gauges.gauge("strom_broker_fenced", "1 while this broker is fenced, else 0.",
                 lambda: int(node.is_broker and node.fenced))
    gauges.register(registry)


def connection_quota_gauges(registry: CollectorRegistry, quotas: Any) -> None:
    """KIP-612 gauges of ``broker.connection_quotas.ConnectionQuotas``, label ``ip``, per
    address an ip quota applies to (Kafka's connection-creation-rate and
    ip-connection-accept-throttle-time): ``strom_connection_creation_rate`` (new connections
    per second, as the quota measures them), ``strom_connection_creation_rate_limit`` (the
    bound in force), ``strom_connection_accept_throttle_time_ms`` (average throttle time of
    the throttled connections over the quota window)."""
    gauges = CallbackGauges()

    def each(value: Callable[[Any, int], float]
             ) -> Callable[[], list[tuple[tuple[str, ...], float]]]:
        def read() -> list[tuple[tuple[str, ...], float]]:
            now = time.monotonic_ns() // 1_000_000
            return [((ip,), value(s, now)) for ip, s in list(quotas.ip_sensors.items())]
        return read

    gauges.gauge("strom_connection_creation_rate",
                 "New connections per second from an address with an ip quota (KIP-612).",
                 each(lambda s, now: s.rate.rate(now)), ("ip",))
    gauges.gauge("strom_connection_creation_rate_limit",
                 "connection_creation_rate quota in force for the address.",
                 each(lambda s, _now: s.bound), ("ip",))
    gauges.gauge("strom_connection_accept_throttle_time_ms",
                 "Average throttle time of the address's throttled connections over the "
                 "quota window.", each(lambda s, now: s.throttle.avg(now)), ("ip",))
    gauges.register(registry)
