"""A cluster node: ``process.roles`` broker, controller or both, in one process.

Started by ``strom serve``. Without ``controller.quorum.voters`` a combined node is a
one-voter quorum of itself (``single_voter``): no controller listener (a lone voter sends
no Raft messages; registration, heartbeats and admin requests reach its own controller
in-process), a short election timeout so it leads at once and the cluster id of
``meta.properties``; its client listener answers DescribeQuorum like any broker's. Roles:

- controller (``node.id`` must be a voter): a ``QuorumNode`` voter with its
  ``QuorumController`` and the controller listener (``controller.listener.names``; its
  address must match this node's entry in ``controller.quorum.voters``);
- broker: a ``Broker`` whose topics and leadership come from the metadata image
  (``ClusterTopicRegistry``/``ClusterReplicaManager``), the cluster handlers in its
  registry, and the broker lifecycle: BrokerRegistration with its client endpoint and
  rack, BrokerHeartbeat every ``broker.heartbeat.interval.ms`` (faster while fenced),
  re-registration after STALE_BROKER_EPOCH / BROKER_ID_NOT_REGISTERED, and a controlled
  shutdown (heartbeat ``want_shut_down``) on SIGTERM so leadership moves at once; the
  registration carries the data directory's ``directory.id`` (KIP-858), so a broker whose
  disk was wiped is not elected with an empty log (``controller.metadata.dir_control``);
- a broker that is not a controller follows the metadata log as a quorum observer
  (Fetch from the quorum leader, same code path);
- producer ids: the broker's ``ProducerIdManager`` gets its blocks from the active
  controller (AllocateProducerIds with this broker's id and epoch,
  ``allocate_producer_ids``). A lone node first has its own controller move the cluster's
  next producer id up to the end of the per-data-dir counter an earlier version kept
  (``broker.producer_ids.legacy_floor``), so it never repeats an id it handed out before.

The metadata log lives in ``<log.dirs>/__strom_metadata/__cluster_metadata-0`` (a name
the LogManager does not take for a partition). The cluster id is ``cluster.id`` or, when
unset, derived from the voter list so every node of one configuration agrees.

Startup refuses, with a message naming the problem: a malformed voter list, a controller
whose id is not a voter (or a voter that is not a controller), a controller listener that
disagrees with the voter entry, a damaged quorum-state file or metadata log, a stored
voter set or cluster id that differs from the configuration. A log written by a quorum
with another voter set stops the node while running (``InconsistentVoterSetError``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import datetime
import hashlib
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kio.schema.allocate_producer_ids.v0.request import AllocateProducerIdsRequest
from kio.schema.alter_partition.v3 import request as ap_req
from kio.schema.broker_heartbeat.v1.request import BrokerHeartbeatRequest
from kio.schema.broker_registration.v4.request import BrokerRegistrationRequest
from kio.schema.broker_registration.v4.request import Listener as RegListener
from kio.schema.create_topics.v7 import request as ct_req
from kio.schema.envelope.v0.request import EnvelopeRequest
from kio.schema.errors import ErrorCode

from broker.broker import Broker, _read_or_create_cluster_id, read_directory_id
from broker.cluster import controller_api, legacy_topics
from broker.cluster.handlers import (
    NOT_CONTROLLER,
    OFFSETS_TOPIC,
    broker_entries,
    cluster_handlers,
    controller_id,
    error_codes,
    partition_entries,
)
from broker.cluster.registry import ClusterTopicRegistry
from broker.config import BrokerConfig, Listener, parse_protocol_map
from broker.handlers import ApiHandler, RequestContext
from broker.producer_ids import ProducerIdsUnavailable
from broker.quotas import MutationQuotaManager, QuotaManager, quota_wrapped
from broker.security.authz import StandardAuthorizer, make_authorizer
from broker.security.gates import GuardedRegistry
from broker.security.inter_broker import controller_login, inter_broker_login
from broker.tls import peer_context
from broker.topics import BrokerDefaults, NewTopicRequest, TopicError
from common.logging import get_logger
from common.security.scram import ScramCredential, parse_add_scram
from controller.metadata.producer_id_control import adopt_producer_id_floor
from controller.metadata.scram_control import bootstrap_records as scram_bootstrap_records
from controller.quorum import QuorumNode, VoterConfigError, parse_voters, wall_ms
from controller.quorum_controller import NotControllerError, QuorumController
from net.client import ClientPool, RequestError
from protocol import envelope
from protocol.api_registry import ApiRegistry
from protocol.codec import DecodeError
from protocol.headers import RequestHeader
from replication.fetcher import ReplicaFetcher
from replication.partition import Assignment, IsrProposal
from replication.replica_manager import ReplicaManager, ReplicationConfig
from storage.dir_lock import lock_dir

_log = get_logger("strom.cluster")

METADATA_PARENT = "__strom_metadata"
METADATA_DIR = "__cluster_metadata-0"
#: election timeout of a one-voter quorum: nobody else can lead, so campaign at once
SINGLE_VOTER_ELECTION_TIMEOUT_MS = 20
#: how long a lone node waits for its own controller to create a topic it needs now
LOCAL_CREATE_WAIT_S = 5.0
#: group APIs whose first use may write to ``__consumer_offsets`` (OffsetCommit,
#: JoinGroup, SyncGroup, TxnOffsetCommit)
GROUP_WRITES = frozenset({8, 11, 14, 28})
#: AllocateProducerIds answers worth asking again (the broker re-registers meanwhile)
_PRODUCER_IDS_RETRIABLE = frozenset({int(ErrorCode.not_controller),
                                     int(ErrorCode.stale_broker_epoch),
                                     int(ErrorCode.broker_id_not_registered)})


class ClusterConfigError(ValueError):
    """The cluster configuration is inconsistent (message names the properties)."""


def derived_cluster_id(voters_spec: str) -> str:
    digest = hashlib.sha256(b"strom-cluster:" + voters_spec.replace(" ", "").encode()).digest()
    return base64.urlsafe_b64encode(digest[:16]).decode().rstrip("=")


def metadata_dir(config: BrokerConfig) -> Path:
    return config.data_dir / METADATA_PARENT / METADATA_DIR


class ClusterBroker(Broker):
    """A Broker whose topic registry and replica manager read the metadata image."""

    cluster: ClusterNode
    #: ACL decisions (``broker.security.authz``); None: no authorizer configured
    authorizer: StandardAuthorizer | None = None

    def scram_credential(self, user: str, mechanism: int) -> ScramCredential | None:
        """The user's SCRAM credential in the current metadata image (SASL logins)."""
        return self.cluster.quorum.image.scram.get((user, mechanism))

    def make_topic_registry(self, defaults: BrokerDefaults) -> Any:
        return ClusterTopicRegistry(self.data_dir, defaults, log_manager=self.log_manager,
                                    node_id=self.node_id)

    def make_replica_manager(self) -> ReplicaManager:
        c = self.config
        config = ReplicationConfig(
            replica_lag_time_max_ms=c.replica_lag_time_max_ms,
            replica_fetch_max_bytes=c.replica_fetch_max_bytes,
            replica_fetch_response_max_bytes=c.replica_fetch_response_max_bytes,
            replica_fetch_wait_max_ms=c.replica_fetch_wait_max_ms,
            replica_fetch_min_bytes=c.replica_fetch_min_bytes,
            replica_fetch_backoff_ms=c.replica_fetch_backoff_ms,
            default_min_insync_replicas=c.min_insync_replicas,
            replica_selector_class=c.replica_selector_class)
        return ReplicaManager(self.log_manager, self.node_id, self.purgatory, config=config,
                              min_insync_replicas=self._topic_min_insync)

    def _topic_min_insync(self, topic: str) -> int | None:
        try:
            value = self.topics.effective_configs(topic).get("min.insync.replicas")
        except Exception:  # unknown topic: the broker default
            return None
        return int(value) if value is not None else None

    def metadata_brokers(self, listener: str) -> list[dict[str, Any]]:
        return broker_entries(self.cluster.quorum.image,
                              listener or self.cluster.client_listener)

    def metadata_controller_id(self) -> int:
        return controller_id(self.cluster, self.cluster.quorum.image)

    def metadata_partitions(self, info: Any) -> list[dict[str, Any]]:
        return partition_entries(self.cluster.quorum.image, info.name)

    async def fetch_producer_ids(self, timeout: float) -> tuple[int, int]:
        return await self.cluster.allocate_producer_ids(timeout)

    async def auto_create_topic(self, name: str, origin: Any = None) -> Any:
        """Through the controller, as the client of ``origin`` (its Metadata request:
        charged to its KIP-599 quota, as Kafka's broker does with an Envelope): a lone node
        waits for its own controller (the topic is in this answer, as before); otherwise
        the creation is forwarded in the background and the answer is
        LEADER_NOT_AVAILABLE (the client retries), as Kafka does."""
        cluster = self.cluster
        if cluster.single_voter:
            await cluster.create_now([NewTopicRequest(name)], origin=origin)
            info = self.topics.get(name)
            if info is not None:
                return info
            raise TopicError(ErrorCode.leader_not_available,
                             f"Topic '{name}' is being created.")
        if self.topics.get(name) is not None:
            raise TopicError(ErrorCode.topic_already_exists, f"Topic '{name}' already exists.")
        cluster.request_create([NewTopicRequest(name)], origin=origin)
        raise TopicError(ErrorCode.leader_not_available, f"Topic '{name}' is being created.")


#: Kafka's SecurityProtocol ids, as BrokerRegistration carries them
_PROTOCOL_IDS = {"PLAINTEXT": 0, "SSL": 1, "SASL_PLAINTEXT": 2, "SASL_SSL": 3}


class ClusterNode:
    def __init__(self, config: BrokerConfig) -> None:
        roles = {r.strip().lower() for r in config.process_roles.split(",") if r.strip()}
        if not roles or not roles <= {"broker", "controller"}:
            raise ClusterConfigError(f"process.roles must be broker, controller or both, got "
                                     f"{config.process_roles!r}")
        self.single_voter = not config.controller_quorum_voters.strip()
        self.node_id = config.node_id
        if self.single_voter:
            if roles != {"broker", "controller"}:
                raise ClusterConfigError(
                    "without controller.quorum.voters a node must have both roles "
                    f"(process.roles=broker,controller), got {config.process_roles!r}")
            # a one-voter quorum of itself: the address is never dialled
            self.voters = {config.node_id: ("127.0.0.1", 0)}
        else:
            try:
                self.voters = parse_voters(config.controller_quorum_voters)
            except VoterConfigError as exc:
                raise ClusterConfigError(str(exc)) from None
        self.is_controller = "controller" in roles
        self.is_broker = "broker" in roles
        if self.is_controller and self.node_id not in self.voters:
            raise ClusterConfigError(
                f"node.id {self.node_id} has the controller role but is not in "
                f"controller.quorum.voters ({sorted(self.voters)})")
        if not self.is_controller and self.node_id in self.voters:
            raise ClusterConfigError(
                f"node.id {self.node_id} is in controller.quorum.voters but process.roles "
                f"({config.process_roles}) has no controller role")
        names = {n.strip().upper() for n in config.controller_listener_names.split(",")
                 if n.strip()}
        listeners = config.listener_list
        self.controller_listener: Listener | None = next(
            (li for li in listeners if li.name in names), None)
        #: every listener but the controller's, each served by its own server
        self.client_listeners = [li for li in listeners if li.name not in names]
        #: the first client listener's name (for requests that arrive in-process)
        self.client_listener = self.client_listeners[0].name if self.client_listeners \
            else "PLAINTEXT"
        if self.is_controller and not self.single_voter:
            if self.controller_listener is None:
                raise ClusterConfigError(
                    f"a controller needs a listener named in controller.listener.names "
                    f"({config.controller_listener_names}) in listeners ({config.listeners})")
            host, port = self.voters[self.node_id]
            if self.controller_listener.port not in (0, port):
                raise ClusterConfigError(
                    f"controller listener {self.controller_listener} does not match this "
                    f"node's controller.quorum.voters entry {self.node_id}@{host}:{port}")
        inter = (config.inter_broker_listener_name or "").strip().upper()
        if inter and inter not in {li.name for li in self.client_listeners}:
            raise ClusterConfigError(
                f"inter.broker.listener.name {config.inter_broker_listener_name} is not a "
                f"client listener of listeners ({config.listeners})")
        if self.is_broker and not self.client_listeners:
            raise ClusterConfigError(f"a broker needs a client listener besides "
                                     f"{config.controller_listener_names} in listeners")
        if self.single_voter:
            config.data_dir.mkdir(parents=True, exist_ok=True)
            self.cluster_id = _read_or_create_cluster_id(config.data_dir, self.node_id,
                                                         config.cluster_id)
        else:
            self.cluster_id = config.cluster_id or derived_cluster_id(
                config.controller_quorum_voters)
        self.config = config.model_copy(update={"cluster_id": self.cluster_id})
        # TLS towards the controllers' and the other brokers' listeners when those are
        # SSL/SASL_SSL (broker.tls; TlsConfigError, a ValueError, stops startup)
        controller_tls = peer_context(config, next(iter(sorted(names)), None))
        # the SASL login on a SASL controller listener (ValueError names the property); a
        # one-voter quorum dials nobody
        controller_sasl = None if self.single_voter else controller_login(config)
        self.quorum = QuorumNode(
            node_id=self.node_id, voters=self.voters, directory=metadata_dir(config),
            cluster_id=self.cluster_id,
            election_timeout_ms=SINGLE_VOTER_ELECTION_TIMEOUT_MS if self.single_voter
            else config.controller_quorum_election_timeout_ms,
            fetch_timeout_ms=config.controller_quorum_fetch_timeout_ms,
            request_timeout_ms=config.controller_quorum_request_timeout_ms,
            ssl_context=controller_tls, sasl=controller_sasl)
        self.controller: QuorumController | None = None
        #: KIP-599 controller_mutation_rate buckets, charged while this node is the
        #: active controller (``controller_api.mutation_quota``)
        self.mutation_quotas = MutationQuotaManager(
            lambda: self.quorum.image.quotas, window_num=config.controller_quota_window_num,
            window_ms=config.controller_quota_window_size_seconds * 1000)
        if self.is_controller:
            self.controller = QuorumController(
                self.quorum, session_timeout_ms=config.broker_session_timeout_ms,
                unclean_default=self._unclean_default,
                auto_leader_rebalance=config.auto_leader_rebalance_enable,
                imbalance_check_interval_ms=config.leader_imbalance_check_interval_seconds
                * 1000,
                imbalance_percentage=config.leader_imbalance_per_broker_percentage,
                unclean_check_interval_ms=config.unclean_leader_election_interval_ms)
        self._static_defaults: BrokerDefaults | None = None
        self.broker: ClusterBroker | None = None
        self.pool = ClientPool(client_id=f"strom-broker-{self.node_id}",
                               ssl_context=controller_tls, sasl=controller_sasl)
        self.replica_pool = ClientPool(
            client_id=f"strom-broker-{self.node_id}",
            ssl_context=peer_context(config, inter or self.client_listener),
            sasl=inter_broker_login(config, inter or self.client_listener,
                                    required=bool(inter)))
        self.incarnation_id = uuid.uuid4()
        self.broker_epoch = -1
        self.fenced = True
        self._strays_checked = False
        self._offsets_led: set[int] = set()
        self._tasks: list[asyncio.Task[Any]] = []
        self._creating: set[str] = set()
        self._stopping = False
        #: (listener name, host, port) registered for each client listener
        self.advertised: list[tuple[str, str, int]] = []
        self.log = _log.bind(node_id=self.node_id)
        self._local_endpoint: controller_api.ControllerEndpoint | None = None
        self._dir_lock = -1
        self._replication_key: tuple[int, int, int, bool] | None = None
        self._producer_floor_adopted = False
        #: ``directory.id`` of the data directory (broker role), sent in BrokerRegistration
        self.directory_id: uuid.UUID | None = None

    # ---- startup -------------------------------------------------------------------------
    def open(self) -> list[str]:
        """Lock the data directory (``storage.dir_lock``: one process per directory), open
        the metadata store (refuses a damaged or foreign one) and, for a broker, storage.
        Returns notes about repairs."""
        self._dir_lock = lock_dir(self.config.data_dir)
        notes = [f"metadata log: {n}" for n in self.quorum.open()]
        if self.is_broker:
            self.broker = ClusterBroker(self.config)
            self.broker.cluster = self
            self.broker.authorizer = make_authorizer(self.config, lambda: self.quorum.image)
            notes += self.broker.open_storage()
            self.directory_id = read_directory_id(self.config.data_dir)
            assert isinstance(self.broker.topics, ClusterTopicRegistry)
            self.broker.topics.request_create = self.request_create
            self.quorum.on_image(self.broker.topics.apply_image)
            self.quorum.on_image(self._replication_image)
            replicas = self.broker.replica_manager
            assert replicas is not None
            replicas.alter_partition = self._alter_partition
            replicas.fetcher_factory = lambda leader: ReplicaFetcher(
                leader, replicas, self.replica_pool, self._broker_address)
            self.quorum.on_image(self._group_leadership)
            self._install_handlers(self.broker)
        return notes

    def _group_leadership(self, image: Any) -> None:
        """Tell the group coordinator which ``__consumer_offsets`` partitions this broker
        now leads (it loads their groups) or no longer leads (it unloads them)."""
        topic = image.topic(OFFSETS_TOPIC)
        led = set() if topic is None else {
            i for i, p in topic.partitions.items() if p.leader == self.node_id}
        if led == self._offsets_led:
            return
        service = self.broker.extensions.get("groups") if self.broker else None
        if service is None:
            return  # not loaded yet: it loads the partitions led at its start
        gained, lost = led - self._offsets_led, self._offsets_led - led
        self._offsets_led = led
        for partition in sorted(lost):
            service.on_partition_leadership(partition, leader=False)
        for partition in sorted(gained):
            service.on_partition_leadership(partition, leader=True)

    def _install_handlers(self, broker: Broker) -> None:
        replaced: dict[int, ApiHandler] = {
            h.api_key: h for h in cluster_handlers()}
        specs = []
        for spec in broker.registry.specs():
            h = replaced.pop(spec.api_key, None)
            if h is None and self.single_voter and spec.api_key in GROUP_WRITES:
                h = ApiHandler(spec.api_key, spec.min_version, spec.max_version,
                               self._with_offsets_topic(spec.handler))
            if h is None:
                specs.append(spec)
            else:
                specs.append(ApiHandler(spec.api_key, spec.min_version, spec.max_version,
                                        h.handle, spec.advertised_min).spec())
        specs += [h.spec() for h in replaced.values()]
        # client quotas of the metadata image on every client API (broker.quotas)
        c = self.config
        broker.quotas = QuotaManager(
            lambda: self.quorum.image.quotas, window_num=c.quota_window_num,
            window_ms=c.quota_window_size_seconds * 1000)
        broker.quotas.register_metrics(
            getattr(getattr(broker, "metrics", None), "registry", None))
        if self.is_controller:
            self.mutation_quotas.register_metrics(
                getattr(getattr(broker, "metrics", None), "registry", None))
        specs = [dataclasses.replace(s, handler=quota_wrapped(s.api_key, s.handler,
                                                              broker.quotas))
                 for s in specs]
        # with an authorizer every API sits behind its check (broker.security.gates)
        guarded = getattr(broker, "authorizer", None) is not None
        broker.registry = (GuardedRegistry if guarded else ApiRegistry)(specs)

    def _with_offsets_topic(self, handler: Any) -> Any:
        """On a lone node the group coordinator's first write finds ``__consumer_offsets``
        already created (by its own controller, awaited), as a plain broker's did."""
        async def handle(ctx: RequestContext, request: Any) -> Any:
            if self.quorum.image.topic(OFFSETS_TOPIC) is None:
                await self.create_now([self.offsets_topic_request()])
            return await handler(ctx, request)

        return handle

    def _unclean_default(self) -> bool:
        """This node's ``unclean.leader.election.enable`` (its dynamic broker configs
        included): the controller's default for topics that do not set it."""
        topics = self.broker.topics if self.broker is not None else None
        if topics is not None:
            defaults = topics.broker
        else:
            if self._static_defaults is None:
                self._static_defaults = BrokerDefaults.from_broker_config(self.config)
            defaults = self._static_defaults
        return bool(defaults.default_value("unclean.leader.election.enable")[0])

    def controller_endpoint(self) -> controller_api.ControllerEndpoint:
        static = BrokerDefaults.from_broker_config(self.config)

        def defaults() -> BrokerDefaults:
            # this node's topic defaults, with its dynamic broker configs
            topics = self.broker.topics if self.broker is not None else None
            return topics.broker if topics is not None else static

        endpoint = controller_api.ControllerEndpoint(
            self.config, self.quorum, self.controller, defaults, self.cluster_id)
        endpoint.authorizer = make_authorizer(self.config, lambda: self.quorum.image)
        endpoint.mutation_quotas = self.mutation_quotas
        return endpoint

    async def start_quorum(self) -> None:
        await self.quorum.start()
        if self.controller is not None and self.config.strom_add_scram:
            self._tasks.append(asyncio.get_running_loop().create_task(
                self._bootstrap_scram()))

    async def _bootstrap_scram(self) -> None:
        """``strom.add.scram`` (``kafka-storage.sh format --add-scram``): once this node is
        the active controller, write a credential for each configured (user, mechanism)
        the metadata log has none for. Salts are random unless given."""
        users = parse_add_scram(self.config.strom_add_scram)
        assert self.controller is not None
        while not self._stopping:
            if self.controller.is_active:
                try:
                    added = await self.controller.decide(
                        lambda image, _next: scram_bootstrap_records(image, users))
                    if added:
                        self.log.info("scram_users_bootstrapped", users=added)
                    return
                except NotControllerError:
                    pass
            await asyncio.sleep(0.1)

    async def wait_caught_up(self, timeout: float) -> bool:
        """Wait (bounded) until a quorum leader is known and the local image has applied
        the high watermark, so a restarted broker does not serve an empty cluster."""
        quorum = self.quorum
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while loop.time() < end:
            if quorum.leader_id >= 0 and quorum.high_watermark > 0 \
                    and quorum.image.offset >= quorum.high_watermark - 1:
                return True
            await asyncio.sleep(0.02)
        return False

    async def wait_serving(self, timeout: float) -> bool:
        """Wait (bounded) until the image shows this broker registered and unfenced."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while loop.time() < end:
            me = self.quorum.image.brokers.get(self.node_id)
            if me is not None and not me.fenced and not self.fenced:
                return True
            await asyncio.sleep(0.005)
        return False

    async def adopt_legacy_topics(self) -> None:
        """A lone node: bring the topics of ``__strom_topics.json`` from before the metadata
        log into it (``legacy_topics``) before the broker registers. If that fails, the
        logs are kept: stray logs are then not removed in this run."""
        broker = self.broker
        if broker is None or self.controller is None or not broker.topics.legacy_topics:
            return
        legacy = broker.topics.legacy_topics
        try:
            adopted, skipped = await self.controller.decide(
                legacy_topics.adopt(legacy, self.node_id))
            if not skipped:
                broker.topics.forget_legacy_topics()
        except (NotControllerError, OSError) as exc:
            adopted, skipped = [], [(name, str(exc)) for name in sorted(legacy)]
        if adopted:
            self.log.info("legacy_topics_adopted", topics=adopted)
        for name, why in skipped:
            self._strays_checked = True
            self.log.error("legacy_topic_not_adopted", topic=name, problem=why,
                           logs="kept; retried at the next start")

    def start_broker(self, advertised: list[tuple[str, str, int]]) -> None:
        """Start registration and heartbeats (broker role) with the advertised endpoints
        (listener name, host, port) of the client listeners, and replication."""
        self.advertised = advertised
        if self.is_broker:
            self._tasks.append(asyncio.get_running_loop().create_task(self._lifecycle()))
            assert self.broker is not None and self.broker.replica_manager is not None
            self.broker.replica_manager.start()

    # ---- replication ---------------------------------------------------------------------
    def _serving(self, image: Any) -> bool:
        """This broker leads and follows only while the image has it registered in this
        process (its broker epoch) and unfenced."""
        me = image.brokers.get(self.node_id)
        return me is not None and not me.fenced and me.broker_epoch == self.broker_epoch \
            and self.broker_epoch >= 0

    def _replication_image(self, image: Any) -> None:
        replicas = self.broker.replica_manager if self.broker is not None else None
        if replicas is None:
            return
        serving = self._serving(image)
        # topic configs carry min.insync.replicas
        key = (id(image.topics), id(image.brokers), id(image.configs), serving)
        if key == self._replication_key:
            return
        self._replication_key = key
        assignments = {(t.name, i): Assignment(p.leader, p.leader_epoch, p.partition_epoch,
                                               p.replicas, p.isr)
                       for t in image.topics.values() for i, p in t.partitions.items()}
        replicas.apply_assignments(
            assignments, topic_ids={t.name: t.topic_id for t in image.topics.values()},
            broker_epochs={b.broker_id: b.broker_epoch for b in image.brokers.values()},
            eligible=frozenset(b.broker_id for b in image.unfenced_brokers()),
            serving=serving, now_ms=wall_ms(),
            broker_racks={b.broker_id: b.rack for b in image.brokers.values()})

    def _broker_address(self, broker_id: int) -> tuple[str, int] | None:
        """Where to fetch from a leader: its endpoint on ``inter.broker.listener.name``
        (default: our first client listener)."""
        reg = self.quorum.image.brokers.get(broker_id)
        name = (self.config.inter_broker_listener_name or self.client_listener).upper()
        ep = reg.endpoint(name) if reg is not None else None
        if ep is None and reg is not None and reg.endpoints:
            ep = reg.endpoints[0]
        return (ep.host, ep.port) if ep is not None else None

    async def _alter_partition(self, items: Sequence[tuple[uuid.UUID, int, IsrProposal]]
                               ) -> list[int]:
        """AlterPartition v3 to the active controller → each item's error code."""
        image = self.quorum.image
        by_topic: dict[uuid.UUID, list[ap_req.PartitionData]] = {}
        for topic_id, index, prop in items:
            by_topic.setdefault(topic_id, []).append(ap_req.PartitionData(
                partition_index=index, leader_epoch=prop.leader_epoch,
                new_isr_with_epochs=tuple(
                    ap_req.BrokerState(broker_id=b, broker_epoch=image.brokers[b].broker_epoch
                                       if b in image.brokers else -1) for b in prop.isr),
                partition_epoch=prop.partition_epoch))
        body = ap_req.AlterPartitionRequest(
            broker_id=self.node_id, broker_epoch=self.broker_epoch,
            topics=tuple(ap_req.TopicData(topic_id=t, partitions=tuple(ps))
                         for t, ps in by_topic.items()))
        response = await self._to_controller(body, timeout=5.0, channel="alter-partition")
        top = int(response.error_code)
        codes = {(t.topic_id, int(p.partition_index)): int(p.error_code)
                 for t in response.topics for p in t.partitions}
        return [top or codes.get((tid, index), int(ErrorCode.unknown_server_error))
                for tid, index, _ in items]

    # ---- talking to the active controller -----------------------------------------------
    def _leader_address(self) -> tuple[str, int] | None:
        leader = self.quorum.leader_id
        return self.voters.get(leader) if leader >= 0 else None

    async def _to_controller(self, body: Any, *, timeout: float, channel: str,
                             origin: RequestContext | None = None) -> Any:
        """``body`` answered by the active controller; with ``origin`` (a client's
        request) it carries the client's principal and client id (KIP-590 Envelope; on a
        lone node in-process), so the controller charges the client's quota."""
        if self.single_voter:
            return await self._local_controller(body, timeout, origin)
        address = self._leader_address()
        if address is None:
            raise RequestError("no quorum leader known yet")
        if origin is None:
            return await self.pool.request(address[0], address[1], body, timeout=timeout,
                                           channel=channel)
        api_key, version = int(body.__api_key__), int(body.__version__)
        wrapped = EnvelopeRequest(
            request_data=envelope.request_data(api_key, version, origin.header.correlation_id,
                                               origin.client_id, body),
            request_principal=envelope.serialize_principal(origin.principal),
            client_host_address=envelope.host_bytes(origin.client_host))
        answer = await self.pool.request(address[0], address[1], wrapped, timeout=timeout,
                                         channel=channel)
        if int(answer.error_code) != 0 or answer.response_data is None:
            raise RequestError(f"the controller refused the envelope: {answer.error_code}")
        try:
            return envelope.open_response(api_key, version, bytes(answer.response_data))
        except (ValueError, DecodeError) as exc:
            raise RequestError(f"unreadable forwarded response: {exc}") from None

    async def _local_controller(self, body: Any, timeout: float,
                                origin: RequestContext | None = None) -> Any:
        """A request to this node's own controller, answered in-process by the controller
        listener's handler (a one-voter quorum has no controller listener); a client's
        (``origin``) as the controller answers an Envelope."""
        if self._local_endpoint is None:
            self._local_endpoint = self.controller_endpoint()
        endpoint = self._local_endpoint
        api_key, version = int(body.__api_key__), int(body.__version__)
        forwardable = controller_api.FORWARDABLE.get(api_key) if origin is not None else None
        if forwardable is not None and origin is not None:
            header = RequestHeader(api_key, version, origin.header.correlation_id,
                                   origin.client_id, 2, 0)
            ctx = RequestContext(endpoint, header, origin.peer, 0,  # type: ignore[arg-type]
                                 principal=origin.principal, forwarded=True)
            try:
                return await asyncio.wait_for(forwardable.handle(ctx, body), timeout)
            except TimeoutError:
                raise RequestError("the local controller did not answer in time") from None
        spec = endpoint.registry.lookup(api_key, version)
        if spec is None:
            raise RequestError(f"the controller does not answer api {api_key} v{version}")
        header = RequestHeader(api_key, version, 0, None, 2, 0)
        ctx = RequestContext(endpoint, header, "in-process", 0,  # type: ignore[arg-type]
                             internal=True)
        try:
            return await asyncio.wait_for(spec.handler(ctx, body), timeout)
        except TimeoutError:
            raise RequestError("the local controller did not answer in time") from None

    async def allocate_producer_ids(self, timeout: float) -> tuple[int, int]:
        """A block of producer ids ``(start, length)`` from the active controller for this
        broker (id and current broker epoch). Waits for the broker's registration and
        retries NOT_CONTROLLER, STALE_BROKER_EPOCH / BROKER_ID_NOT_REGISTERED (the
        lifecycle re-registers) and connection errors until ``timeout`` seconds have
        passed; then, or on another error, raises ProducerIdsUnavailable."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        problem = "no answer"
        while not self._stopping and loop.time() < deadline:
            if self.broker_epoch < 0:
                problem = "this broker is not registered yet"
                await asyncio.sleep(0.05)
                continue
            try:
                await self._adopt_producer_id_floor()
                resp = await self._to_controller(
                    AllocateProducerIdsRequest(broker_id=self.node_id,  # type: ignore[arg-type]
                                               broker_epoch=self.broker_epoch),  # type: ignore[arg-type]
                    timeout=max(min(deadline - loop.time(), 5.0), 0.1), channel="forward")
            except (RequestError, NotControllerError) as exc:
                problem = str(exc)
                await asyncio.sleep(0.1)
                continue
            code = int(resp.error_code)
            if code == 0 and int(resp.producer_id_len) > 0:
                return int(resp.producer_id_start), int(resp.producer_id_len)
            problem = f"the controller answered {ErrorCode(code).name}"
            if code not in _PRODUCER_IDS_RETRIABLE:
                raise ProducerIdsUnavailable(problem)
            await asyncio.sleep(0.1)
        raise ProducerIdsUnavailable(f"no producer id block within {timeout}s: {problem}")

    async def _adopt_producer_id_floor(self) -> None:
        """A lone node, once: its controller moves the next producer id up to the legacy
        counter's end (an earlier version's ids; see the module doc)."""
        broker = self.broker
        if not self.single_voter or self._producer_floor_adopted or self.controller is None \
                or broker is None or broker.producer_ids is None:
            return
        floor, node_id = broker.producer_ids.floor, self.node_id
        await self.controller.decide(lambda image, _next: (
            adopt_producer_id_floor(image, broker_id=node_id, floor=floor), None))
        self._producer_floor_adopted = True

    async def create_now(self, requests: Sequence[NewTopicRequest],
                         origin: RequestContext | None = None) -> None:
        """Create topics and wait (bounded) until this broker's image has them — on a lone
        node, whose controller is in-process; elsewhere only ask in the background.
        ``origin``: the client request the creation is made for (see ``forward``)."""
        image = self.quorum.image
        wanted = [r for r in requests if image.topic(r.name) is None]
        if not wanted:
            return
        if not self.single_voter:
            self.request_create(wanted, origin=origin)
            return
        body = self._create_request(wanted)
        response = await self.forward(body, LOCAL_CREATE_WAIT_S, origin=origin)
        if response is not None:
            self._log_refused(response)
            await self.await_visible(19, body, response, LOCAL_CREATE_WAIT_S)

    def _log_refused(self, response: Any) -> None:
        """Log each topic the controller refused to create (auto-creation has no client
        to tell but the Metadata error it gets)."""
        for t in response.topics:
            if int(t.error_code) not in (0, int(ErrorCode.topic_already_exists)):
                self.log.info("auto_create_refused", topic=t.name,
                              error=ErrorCode(int(t.error_code)).name)

    async def forward(self, request: Any, deadline_s: float,
                      origin: RequestContext | None = None) -> Any | None:
        """Send ``request`` to the active controller until it answers as controller
        (``origin``: the client's request it forwards, see ``_to_controller``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + deadline_s
        while loop.time() < deadline:
            try:
                response = await self._to_controller(request, timeout=max(
                    min(deadline - loop.time(), 12.0), 0.1), channel="forward",
                    origin=origin)
            except RequestError as exc:
                self.log.debug("forward_failed", error=str(exc))
                await asyncio.sleep(0.1)
                continue
            if NOT_CONTROLLER in error_codes(response):
                await asyncio.sleep(0.1)
                continue
            return response
        return None

    async def await_visible(self, api_key: int, request: Any, response: Any,
                            timeout: float = 3.0) -> None:
        """Wait (bounded) until this broker's image shows a forwarded change."""
        def visible() -> bool:
            image = self.quorum.image
            if api_key == 19 and not request.validate_only:
                return all(image.topic(t.name) is not None for t in response.topics
                           if int(t.error_code) == 0)
            if api_key == 20:
                return all(image.topic(t.name) is None for t in response.responses
                           if int(t.error_code) == 0 and t.name)
            if api_key == 37 and not request.validate_only:
                counts = {t.name: t.count for t in request.topics}
                for r in response.results:
                    topic = image.topic(r.name)
                    if int(r.error_code) == 0 and (
                            topic is None or len(topic.partitions) < counts[r.name]):
                        return False
            return True

        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while not visible() and loop.time() < end:
            await asyncio.sleep(0.02)

    async def describe_quorum(self, request: Any) -> Any:
        if self.is_controller and self.quorum.is_leader:
            return self.quorum.describe()
        try:
            return await self._to_controller(request, timeout=3.0, channel="admin")
        except RequestError:
            return self.quorum.describe()

    def offsets_topic_request(self) -> NewTopicRequest:
        c = self.config
        present = len(self.quorum.image.unfenced_brokers())
        return NewTopicRequest(
            "__consumer_offsets", c.offsets_topic_num_partitions,
            max(1, min(c.offsets_topic_replication_factor, present)),
            {"cleanup.policy": "compact", "segment.bytes": str(c.offsets_topic_segment_bytes),
             "compression.type": "producer"})

    def request_create(self, requests: Sequence[NewTopicRequest],
                       origin: RequestContext | None = None) -> None:
        """Create topics through the controller in the background (auto-creation; with
        ``origin``, the client's Metadata request, in an Envelope as that client)."""
        wanted = [r for r in requests if r.name not in self._creating]
        if not wanted or self._stopping:
            return
        self._creating.update(r.name for r in wanted)
        body = self._create_request(wanted)

        async def run() -> None:
            try:
                response = await self.forward(body, 10.0, origin=origin)
                if response is not None:
                    self._log_refused(response)
            finally:
                self._creating.difference_update(r.name for r in wanted)

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.append(task)
        task.add_done_callback(lambda t: t in self._tasks and self._tasks.remove(t))

    @staticmethod
    def _create_request(wanted: Sequence[NewTopicRequest]) -> Any:
        return ct_req.CreateTopicsRequest(
            topics=tuple(ct_req.CreatableTopic(
                name=r.name, num_partitions=r.partitions, replication_factor=r.replication_factor,
                assignments=(), configs=tuple(
                    ct_req.CreatableTopicConfig(name=k, value=None if v is None else str(v))
                    for k, v in sorted(r.configs.items()))) for r in wanted),
            timeout=datetime.timedelta(seconds=10),
            validate_only=False)

    # ---- broker lifecycle ------------------------------------------------------------------
    def _registration(self) -> BrokerRegistrationRequest:
        # endpoints outside the protocol map (the Kinesis HTTP listener) register as
        # PLAINTEXT: they are no Kafka listener
        protocols = parse_protocol_map(self.config.listener_security_protocol_map)
        return BrokerRegistrationRequest(
            broker_id=self.node_id, cluster_id=self.cluster_id,
            incarnation_id=self.incarnation_id,
            listeners=tuple(RegListener(name=name, host=host, port=port,
                                        security_protocol=_PROTOCOL_IDS.get(
                                            protocols.get(name, "PLAINTEXT"), 0))
                            for name, host, port in self.advertised),
            features=(), rack=self.config.broker_rack,
            log_dirs=(self.directory_id,) if self.directory_id is not None else ())

    def _heartbeat(self, *, shut_down: bool = False) -> BrokerHeartbeatRequest:
        return BrokerHeartbeatRequest(
            broker_id=self.node_id, broker_epoch=self.broker_epoch,
            current_metadata_offset=self.quorum.image.offset, want_fence=False,
            want_shut_down=shut_down)

    async def _lifecycle(self) -> None:
        interval = self.config.broker_heartbeat_interval_ms / 1000
        timeout = self.config.controller_quorum_request_timeout_ms / 1000 + 1
        while not self._stopping:
            try:
                if self.broker_epoch < 0:
                    resp = await self._to_controller(self._registration(), timeout=timeout,
                                                     channel="lifecycle")
                    if int(resp.error_code) == 0:
                        self.broker_epoch = int(resp.broker_epoch)
                        self.log.info("broker_registered", broker_epoch=self.broker_epoch)
                        self._replication_image(self.quorum.image)
                        continue
                    self.log.debug("broker_registration_refused",
                              error=ErrorCode(int(resp.error_code)).name)
                else:
                    resp = await self._to_controller(self._heartbeat(), timeout=timeout,
                                                     channel="lifecycle")
                    code = int(resp.error_code)
                    if code in (int(ErrorCode.stale_broker_epoch),
                                int(ErrorCode.broker_id_not_registered)):
                        self.log.warning("broker_reregistering", error=ErrorCode(code).name)
                        self.broker_epoch = -1
                        self._replication_image(self.quorum.image)
                        continue
                    if code == 0 and resp.is_fenced != self.fenced:
                        self.fenced = bool(resp.is_fenced)
                        self.log.info("broker_fencing_changed", fenced=self.fenced)
                        if not self.fenced and not self._strays_checked and self.broker:
                            # unfenced = caught up with the log up to our registration
                            self._strays_checked = True
                            self.broker.topics.remove_strays()
            except RequestError as exc:
                self.log.debug("controller_unreachable", error=str(exc))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep heartbeating whatever happened
                self.log.exception("broker_lifecycle_error", error=repr(exc))
            await asyncio.sleep(min(interval, 0.2) if self.fenced or self.broker_epoch < 0
                                else interval)

    async def controlled_shutdown(self, timeout: float = 3.0) -> None:
        """Ask the controller to fence this broker and move its leaderships away."""
        if not self.is_broker or self.broker_epoch < 0:
            return
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while loop.time() < end:
            try:
                resp = await self._to_controller(self._heartbeat(shut_down=True),
                                                 timeout=max(end - loop.time(), 0.1),
                                                 channel="lifecycle")
                if int(resp.error_code) == 0 and resp.should_shut_down:
                    self.log.info("controlled_shutdown_done")
                    return
            except RequestError:
                pass
            await asyncio.sleep(0.1)

    async def stop(self) -> None:
        self._stopping = True
        if self.broker is not None and self.broker.producer_ids is not None:
            self.broker.producer_ids.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        await self.quorum.stop()
        self.pool.close()
        self.replica_pool.close()

    def release_data_dir(self) -> None:
        """Release the data directory lock (last, once storage is closed)."""
        if self._dir_lock >= 0:
            os.close(self._dir_lock)
            self._dir_lock = -1
