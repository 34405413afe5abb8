"""Wiring of the Kinesis facade (``kinesis``) into a cluster node: its ``StreamCluster``
over the node's metadata image and controller forwarding, and the listener's start.

Topic changes go to the active controller as the Kafka admin requests would
(CreateTopics, DeleteTopics, IncrementalAlterConfigs through ``ClusterNode.forward``) and
each call returns once this broker's image shows the change, so a stream created here is
described at once by the same broker.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import re
from collections.abc import Mapping
from typing import Any

from kio.schema.create_partitions.v3 import request as cp_req
from kio.schema.create_topics.v7 import request as ct_req
from kio.schema.delete_topics.v6 import request as dt_req
from kio.schema.incremental_alter_configs.v1 import request as iac_req

from broker.cluster.node import ClusterNode
from broker.config import BrokerConfig
from common.logging import get_logger
from kinesis.cluster import TopicView
from kinesis.http import KinesisServer
from kinesis.service import KinesisService, KinesisSettings
from kinesis.sigv4 import Authenticator, parse_access_keys

log = get_logger("strom.kinesis")

ADMIN_TIMEOUT_S = 15.0
#: the name the Kinesis listener is registered under (BrokerRegistration), so every
#: broker finds every other's Kinesis API in the metadata image (forwarding)
LISTENER_NAME = "KINESIS"
_URL = re.compile(r"(?:http://)?(?P<host>\[[^\]]*\]|[^:/]*):(?P<port>\d+)/?")
_RESOURCE_TOPIC = 2
_OP_SET, _OP_DELETE = 0, 1


def parse_listener(value: str, prop: str = "strom.kinesis.listener") -> tuple[str, int]:
    """``http://host:port`` (or ``host:port``) -> (host, port); ValueError naming ``prop``
    otherwise."""
    m = _URL.fullmatch(value.strip())
    if m is None or int(m["port"]) > 65535:
        raise ValueError(f"{prop}: {value!r} is not http://host:port")
    return m["host"].strip("[]"), int(m["port"])


def _first_error(results: Any) -> tuple[int, str | None]:
    for r in results:
        if int(r.error_code):
            return int(r.error_code), r.error_message
    return 0, None


class ClusterStreams:
    """``kinesis.cluster.StreamCluster`` over a ``ClusterNode``."""

    def __init__(self, node: ClusterNode) -> None:
        self.node = node

    def topic(self, name: str) -> TopicView | None:
        image = self.node.quorum.image
        t = image.topic(name)
        if t is None:
            return None
        retention: Any = -1
        broker = self.node.broker
        try:
            if broker is not None:
                retention = broker.topics.effective_configs(name).get("retention.ms", -1)
        except Exception:  # the registry has not applied the image yet
            retention = image.topic_config(name).get("retention.ms", -1)
        return TopicView(name, t.topic_id, {i: p.leader for i, p in t.partitions.items()},
                         dict(image.topic_config(name)), int(retention))

    def topic_names(self) -> list[str]:
        return sorted(t.name for t in self.node.quorum.image.topics.values())

    def kinesis_address(self, broker_id: int) -> tuple[str, int] | None:
        reg = self.node.quorum.image.brokers.get(broker_id)
        ep = reg.endpoint(LISTENER_NAME) if reg is not None else None
        return (ep.host, ep.port) if ep is not None else None

    async def _wait(self, visible: Any) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + ADMIN_TIMEOUT_S
        while not visible() and loop.time() < end:
            await asyncio.sleep(0.01)

    async def create_topic(self, name: str, partitions: int, configs: Mapping[str, str]
                           ) -> tuple[int, str | None]:
        body = ct_req.CreateTopicsRequest(
            topics=(ct_req.CreatableTopic(
                name=name, num_partitions=partitions, replication_factor=-1, assignments=(),
                configs=tuple(ct_req.CreatableTopicConfig(name=k, value=v)
                              for k, v in sorted(configs.items()))),),
            timeout=datetime.timedelta(seconds=ADMIN_TIMEOUT_S), validate_only=False)
        response = await self.node.forward(body, ADMIN_TIMEOUT_S)
        if response is None:
            return 7, "the controller did not answer"  # REQUEST_TIMED_OUT
        code, message = _first_error(response.topics)
        if not code:
            # visible, and every partition has a leader (a put right after succeeds)
            def ready() -> bool:
                t = self.node.quorum.image.topic(name)
                return t is not None and len(t.partitions) == partitions and all(
                    p.leader >= 0 for p in t.partitions.values())
            await self._wait(ready)
            await self._wait(lambda: self._leads_or_elsewhere(name))
        return code, message

    def _leads_or_elsewhere(self, name: str) -> bool:
        """Every partition this broker leads in the image is led in its replica manager."""
        broker = self.node.broker
        t = self.node.quorum.image.topic(name)
        if broker is None or broker.replica_manager is None or t is None:
            return True
        replicas = broker.replica_manager
        return all(replicas.log(name, i) is not None for i, p in t.partitions.items()
                   if p.leader == self.node.node_id)

    async def add_partitions(self, name: str, total: int) -> tuple[int, str | None]:
        t = self.node.quorum.image.topic(name)
        if t is not None and len(t.partitions) >= total:
            return 0, None
        body = cp_req.CreatePartitionsRequest(
            topics=(cp_req.CreatePartitionsTopic(name=name, count=total, assignments=None),),
            timeout=datetime.timedelta(seconds=ADMIN_TIMEOUT_S), validate_only=False)
        response = await self.node.forward(body, ADMIN_TIMEOUT_S)
        if response is None:
            return 7, "the controller did not answer"
        code, message = _first_error(response.results)
        if not code:
            def ready() -> bool:
                t = self.node.quorum.image.topic(name)
                return t is not None and len(t.partitions) >= total and all(
                    p.leader >= 0 for p in t.partitions.values())
            await self._wait(ready)
            await self._wait(lambda: self._leads_or_elsewhere(name))
        return code, message

    async def delete_topic(self, name: str) -> tuple[int, str | None]:
        body = dt_req.DeleteTopicsRequest(
            topics=(dt_req.DeleteTopicState(name=name, topic_id=None),),
            timeout=datetime.timedelta(seconds=ADMIN_TIMEOUT_S))
        response = await self.node.forward(body, ADMIN_TIMEOUT_S)
        if response is None:
            return 7, "the controller did not answer"
        code, message = _first_error(response.responses)
        if not code:
            await self._wait(lambda: self.node.quorum.image.topic(name) is None)
        return code, message

    async def alter_topic_configs(self, name: str, changes: Mapping[str, str | None]
                                  ) -> tuple[int, str | None]:
        body = iac_req.IncrementalAlterConfigsRequest(
            resources=(iac_req.AlterConfigsResource(
                resource_type=_RESOURCE_TOPIC, resource_name=name,
                configs=tuple(iac_req.AlterableConfig(
                    name=k, config_operation=_OP_DELETE if v is None else _OP_SET, value=v)
                    for k, v in sorted(changes.items()))),),
            validate_only=False)
        response = await self.node.forward(body, ADMIN_TIMEOUT_S)
        if response is None:
            return 7, "the controller did not answer"
        code, message = _first_error(response.responses)
        if not code:
            def applied() -> bool:
                current = self.node.quorum.image.topic_config(name)
                return all(current.get(k) == v for k, v in changes.items())
            await self._wait(applied)
        return code, message


def iterator_key(config: BrokerConfig, cluster_id: str) -> bytes:
    """The cluster's HMAC key for shard iterators and relayed requests: from
    ``strom.kinesis.iterator.secret``; unset, from the cluster id and, when access keys
    are configured, their secrets (the cluster id alone is public: Kafka clients read it,
    and a relayed request skips SigV4)."""
    secret = config.strom_kinesis_iterator_secret
    if not secret:
        keys = parse_access_keys(config.strom_kinesis_access_keys)
        secret = "\n".join([f"strom-kinesis-iterators:{cluster_id}",
                             *(f"{k}:{v}" for k, v in sorted(keys.items()))])
    return hashlib.sha256(secret.encode("utf-8")).digest()


def make_server(node: ClusterNode, config: BrokerConfig) -> KinesisServer:
    """The listener of ``strom.kinesis.listener`` (not started). ValueError on bad
    settings."""
    broker = node.broker
    if broker is None or broker.replica_manager is None:
        raise ValueError("strom.kinesis.listener needs the broker role")
    if config.strom_kinesis_max_record_bytes < 1:
        raise ValueError("strom.kinesis.max.record.bytes must be at least 1")
    if config.strom_kinesis_shard_write_records_per_second < 0 \
            or config.strom_kinesis_shard_write_bytes_per_second < 0:
        raise ValueError("strom.kinesis.shard.write.records.per.second and "
                         "strom.kinesis.shard.write.bytes.per.second must be >= 0 "
                         "(0 = not enforced)")
    keys = parse_access_keys(config.strom_kinesis_access_keys)
    settings = KinesisSettings(iterator_key(config, node.cluster_id),
                               max_record_bytes=config.strom_kinesis_max_record_bytes,
                               region=config.strom_kinesis_region,
                               shard_write_records_per_s=(
                                   config.strom_kinesis_shard_write_records_per_second),
                               shard_write_bytes_per_s=(
                                   config.strom_kinesis_shard_write_bytes_per_second))
    service = KinesisService(broker.replica_manager, ClusterStreams(node), settings)
    return KinesisServer(service, Authenticator(keys))


def advertised_endpoint(config: BrokerConfig, bound_host: str, bound_port: int
                        ) -> tuple[str, int]:
    """(host, port) other brokers relay Kinesis requests to: ``strom.kinesis.advertised.
    listener`` when set, else the bound address with a wildcard host shown as 127.0.0.1."""
    if config.strom_kinesis_advertised_listener:
        return parse_listener(config.strom_kinesis_advertised_listener,
                              "strom.kinesis.advertised.listener")
    shown = "127.0.0.1" if bound_host in ("", "0.0.0.0", "::") else bound_host
    return shown, bound_port


async def start_kinesis(node: ClusterNode, config: BrokerConfig,
                        advertised: list[tuple[str, str, int]]) -> KinesisServer:
    """Start the listener of ``strom.kinesis.listener`` and add it to the endpoints the
    broker registers (``advertised``: (name, host, port); ``strom.kinesis.advertised.listener``
    when set); ValueError/OSError when it cannot."""
    server = make_server(node, config)
    host, port = parse_listener(config.strom_kinesis_listener)
    bound_host, bound_port = await server.start(host, port)
    advertised.append((LISTENER_NAME, *advertised_endpoint(config, bound_host, bound_port)))
    return server
