"""Typed admin operations over ``KafkaClient``: topics, configs, log dirs, offsets,
cluster and quorum (blocking; for tools).

Every method returns plain dataclasses or raises ``KafkaApiError`` (a Kafka error code,
with the broker's error message when it gave one) or another ``net.session.ClientError``.
Requests go where Kafka's admin client sends them: topic and config changes to any broker
(Strom and KRaft brokers forward them to the controller), ListOffsets to each
partition's leader, DescribeLogDirs and broker configs to the broker concerned.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from net.kafka_client import ClusterMetadata, KafkaClient, error_name
from net.session import ClientError, KafkaApiError

LIST_OFFSETS = 2
CREATE_TOPICS = 19
DELETE_TOPICS = 20
DESCRIBE_CONFIGS = 32
DESCRIBE_LOG_DIRS = 35
CREATE_PARTITIONS = 37
INCREMENTAL_ALTER_CONFIGS = 44
DESCRIBE_QUORUM = 55
DESCRIBE_CLUSTER = 60

RESOURCE_TOPIC = 2
RESOURCE_BROKER = 4
OP_SET, OP_DELETE = 0, 1
EARLIEST, LATEST = -2, -1
METADATA_TOPIC = "__cluster_metadata"

# DescribeConfigs config_source values (Kafka's ConfigSource ids)
CONFIG_SOURCES = {0: "UNKNOWN", 1: "DYNAMIC_TOPIC_CONFIG", 2: "DYNAMIC_BROKER_CONFIG",
                  3: "DYNAMIC_DEFAULT_BROKER_CONFIG", 4: "STATIC_BROKER_CONFIG",
                  5: "DEFAULT_CONFIG", 6: "DYNAMIC_BROKER_LOGGER_CONFIG",
                  7: "CLIENT_METRICS_CONFIG", 8: "GROUP_CONFIG"}
DEFAULT_SOURCE = "DEFAULT_CONFIG"


@dataclass(frozen=True, slots=True)
class ConfigEntry:
    name: str
    value: str | None
    source: str
    read_only: bool
    sensitive: bool


@dataclass(frozen=True, slots=True)
class OffsetAnswer:
    """ListOffsets answer for one partition: ``offset`` -1 when none (timestamp beyond
    the log end)."""

    offset: int
    timestamp: int


@dataclass(frozen=True, slots=True)
class ClusterBroker:
    node_id: int
    host: str
    port: int
    rack: str | None
    fenced: bool = False


@dataclass(frozen=True, slots=True)
class ClusterDescription:
    cluster_id: str | None
    controller_id: int
    brokers: tuple[ClusterBroker, ...]


@dataclass(frozen=True, slots=True)
class QuorumReplica:
    replica_id: int
    log_end_offset: int
    last_fetch_timestamp: int
    last_caught_up_timestamp: int


@dataclass(frozen=True, slots=True)
class QuorumState:
    leader_id: int
    leader_epoch: int
    high_watermark: int
    voters: tuple[QuorumReplica, ...]
    observers: tuple[QuorumReplica, ...]


def _check(code: object, message: str | None, what: str) -> None:
    if int(code) != 0:  # type: ignore[call-overload]
        name = error_name(code)
        detail = f": {message}" if message else ""
        raise KafkaApiError(int(code), name, f"{what}: {name}{detail}")  # type: ignore[call-overload]


class Admin:
    """Admin operations; see the module doc."""

    def __init__(self, client: KafkaClient) -> None:
        self.client = client
        self.timeout_ms = int(client.timeout * 1000)

    # ------------------------------------------------------------------ topics
    def create_topic(self, name: str, partitions: int = -1, replication_factor: int = -1,
                     configs: Mapping[str, str] | None = None, *,
                     validate_only: bool = False) -> None:
        response = self.client.call_any(CREATE_TOPICS, {
            "topics": [{"name": name, "num_partitions": partitions,
                        "replication_factor": replication_factor, "assignments": [],
                        "configs": [{"name": k, "value": v} for k, v in (configs or {}).items()]}],
            "timeout": self.timeout_ms, "validate_only": validate_only}, highest=7, lowest=4)
        t = response.topics[0]
        _check(t.error_code, t.error_message, f"cannot create topic {name!r}")

    def delete_topics(self, names: Sequence[str]) -> None:
        response = self.client.call_any(DELETE_TOPICS, {
            "topics": [{"name": n} for n in names], "topic_names": list(names),
            "timeout": self.timeout_ms}, highest=6, lowest=1)
        for r in response.responses:
            _check(r.error_code, getattr(r, "error_message", None),
                   f"cannot delete topic {r.name!r}")

    def add_partitions(self, name: str, total: int, *, validate_only: bool = False) -> None:
        response = self.client.call_any(CREATE_PARTITIONS, {
            "topics": [{"name": name, "count": total, "assignments": None}],
            "timeout": self.timeout_ms, "validate_only": validate_only}, highest=3)
        r = response.results[0]
        _check(r.error_code, r.error_message, f"cannot grow topic {name!r} to {total} partitions")

    # ------------------------------------------------------------------ configs
    def describe_configs(self, resource_type: int, name: str,
                         keys: Sequence[str] | None = None) -> list[ConfigEntry]:
        session = (self.client.session(int(name)) if resource_type == RESOURCE_BROKER
                   else None)
        call = session.call if session is not None else self.client.call_any
        response = call(DESCRIBE_CONFIGS, {
            "resources": [{"resource_type": resource_type, "resource_name": name,
                           "configuration_keys": list(keys) if keys else None}],
            "include_synonyms": False, "include_documentation": False}, highest=4, lowest=1)
        r = response.results[0]
        _check(r.error_code, r.error_message, f"cannot describe configs of {name!r}")
        return sorted((ConfigEntry(c.name, c.value, CONFIG_SOURCES.get(c.config_source,
                                                                      str(c.config_source)),
                                   bool(c.read_only), bool(c.is_sensitive))
                       for c in r.configs), key=lambda c: c.name)

    def alter_configs(self, resource_type: int, name: str, set_: Mapping[str, str],
                      delete: Iterable[str] = (), *, validate_only: bool = False) -> None:
        """IncrementalAlterConfigs: SET each of ``set_``, DELETE each of ``delete``."""
        ops = [{"name": k, "config_operation": OP_SET, "value": v} for k, v in set_.items()]
        ops += [{"name": k, "config_operation": OP_DELETE, "value": None} for k in delete]
        session = (self.client.session(int(name)) if resource_type == RESOURCE_BROKER
                   else None)
        call = session.call if session is not None else self.client.call_any
        response = call(INCREMENTAL_ALTER_CONFIGS, {
            "resources": [{"resource_type": resource_type, "resource_name": name,
                           "configs": ops}], "validate_only": validate_only}, highest=1)
        r = response.responses[0]
        _check(r.error_code, r.error_message, f"cannot alter configs of {name!r}")

    # ------------------------------------------------------------------ offsets, sizes
    def list_offsets(self, metadata: ClusterMetadata, requests: Mapping[tuple[str, int], int],
                     *, isolation: int = 0) -> dict[tuple[str, int], OffsetAnswer]:
        """ListOffsets per partition: the value is a timestamp or EARLIEST / LATEST."""
        out: dict[tuple[str, int], OffsetAnswer] = {}
        for leader, parts in KafkaClient.by_leader(metadata, requests).items():
            if leader < 0:
                raise ClientError(f"partitions {parts} have no leader")
            by_topic: dict[str, list[dict[str, int]]] = {}
            for topic, p in parts:
                by_topic.setdefault(topic, []).append({
                    "partition_index": p, "current_leader_epoch": -1,
                    "timestamp": requests[(topic, p)]})
            response = self.client.session(leader).call(LIST_OFFSETS, {
                "replica_id": -1, "isolation_level": isolation,
                "topics": [{"name": t, "partitions": ps} for t, ps in by_topic.items()]},
                highest=8, lowest=1)
            for t in response.topics:
                for p in t.partitions:
                    _check(p.error_code, None, f"ListOffsets {t.name}-{p.partition_index}")
                    out[(t.name, p.partition_index)] = OffsetAnswer(p.offset, p.timestamp)
        return out

    def partition_sizes(self, metadata: ClusterMetadata, topic: str
                        ) -> dict[int, dict[int, int]]:
        """DescribeLogDirs of ``topic`` on every broker: partition → broker → bytes."""
        info = metadata.topics[topic]
        out: dict[int, dict[int, int]] = {}
        brokers = sorted({b for p in info.partitions for b in p.replicas})
        for broker in brokers:
            try:
                session = self.client.session(broker)
            except ClientError:
                continue  # a dead replica: its size is unknown
            response = session.call(DESCRIBE_LOG_DIRS, {"topics": [{
                "topic": topic, "partitions": [p.partition for p in info.partitions]}]},
                highest=4, lowest=1)
            for result in response.results:
                for t in result.topics:
                    for p in t.partitions:
                        if t.name == topic and not p.is_future_key:
                            out.setdefault(p.partition_index, {})[broker] = p.partition_size
        return out

    def log_dir_sizes(self, metadata: ClusterMetadata) -> dict[tuple[str, int], dict[int, int]]:
        """DescribeLogDirs of every topic on every broker of ``metadata`` (one request per
        broker): (topic, partition) → broker → bytes; an unreachable broker is left out."""
        out: dict[tuple[str, int], dict[int, int]] = {}
        for broker in sorted(metadata.brokers):
            try:
                response = self.client.session(broker).call(
                    DESCRIBE_LOG_DIRS, {"topics": None}, highest=4, lowest=1)
            except ClientError:
                continue
            for result in response.results:
                for t in result.topics:
                    for p in t.partitions:
                        if not p.is_future_key:
                            out.setdefault((t.name, p.partition_index), {})[broker] = \
                                p.partition_size
        return out

    # ------------------------------------------------------------------ cluster
    def describe_cluster(self) -> ClusterDescription:
        session = self.client.any_session()
        if 60 in session.versions:
            r = session.call(DESCRIBE_CLUSTER, {"include_cluster_authorized_operations": False,
                                                "endpoint_type": 1,
                                                "include_fenced_brokers": True}, highest=2)
            _check(r.error_code, r.error_message, "DescribeCluster")
            brokers = tuple(ClusterBroker(b.broker_id, b.host, b.port, b.rack,
                                          bool(getattr(b, "is_fenced", False)))
                            for b in r.brokers)
            return ClusterDescription(r.cluster_id, r.controller_id,
                                      tuple(sorted(brokers, key=lambda b: b.node_id)))
        md = self.client.metadata([])
        return ClusterDescription(md.cluster_id, md.controller_id, tuple(
            ClusterBroker(b.node_id, b.host, b.port, b.rack)
            for b in sorted(md.brokers.values(), key=lambda b: b.node_id)))

    def describe_quorum(self) -> QuorumState:
        """DescribeQuorum of ``__cluster_metadata`` (brokers forward it to the controller)."""
        r = self.client.call_any(DESCRIBE_QUORUM, {"topics": [{
            "topic_name": METADATA_TOPIC, "partitions": [{"partition_index": 0}]}]}, highest=2)
        _check(r.error_code, getattr(r, "error_message", None), "DescribeQuorum")
        p = r.topics[0].partitions[0]
        _check(p.error_code, getattr(p, "error_message", None), "DescribeQuorum")

        def replicas(items: Iterable[object]) -> tuple[QuorumReplica, ...]:
            return tuple(QuorumReplica(x.replica_id, x.log_end_offset,  # type: ignore[attr-defined]
                                       getattr(x, "last_fetch_timestamp", -1),
                                       getattr(x, "last_caught_up_timestamp", -1))
                         for x in items)

        return QuorumState(p.leader_id, p.leader_epoch, p.high_watermark,
                           replicas(p.current_voters), replicas(p.observers))
