"""A blocking, metadata-aware Kafka client for tools (the ``strom`` CLI).

``KafkaClient(bootstrap, timeout=..., credentials=..., ssl_context=...)`` holds one
``BrokerSession`` per broker it has talked to. ``metadata()`` asks any bootstrap broker
for Metadata and returns a typed ``ClusterMetadata``; ``session(node_id)`` opens (once) a
connection to a broker named in the last metadata; ``coordinator(group)`` finds a group's
coordinator; ``by_leader(metadata, partitions)`` groups partitions by their leader for
per-leader requests (ListOffsets, Fetch, Produce); ``call_any`` sends a request to
whichever broker answers first (bootstrap addresses, then known brokers), so one dead
broker in the bootstrap list costs one failed connect.

Not thread-safe. ``close()`` closes every connection. Errors are ``net.session`` errors.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from net.session import (
    BrokerSession,
    BrokerUnreachable,
    ClientError,
    Credentials,
    KafkaApiError,
    parse_bootstrap,
)

if TYPE_CHECKING:
    import ssl

METADATA = 3
FIND_COORDINATOR = 10
COORDINATOR_GROUP = 0
NO_LEADER = -1


@dataclass(frozen=True, slots=True)
class BrokerInfo:
    node_id: int
    host: str
    port: int
    rack: str | None = None


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    partition: int
    leader: int
    leader_epoch: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    offline: tuple[int, ...] = ()
    error: str = "NONE"

    @property
    def under_replicated(self) -> bool:
        return len(self.isr) < len(self.replicas)

    @property
    def is_offline(self) -> bool:
        return self.leader == NO_LEADER


@dataclass(frozen=True, slots=True)
class TopicInfo:
    name: str
    topic_id: str
    internal: bool
    partitions: tuple[PartitionInfo, ...]
    error: str = "NONE"


@dataclass(frozen=True, slots=True)
class ClusterMetadata:
    cluster_id: str | None
    controller_id: int
    brokers: dict[int, BrokerInfo]
    topics: dict[str, TopicInfo] = field(default_factory=dict)


def error_name(code: object) -> str:
    name = getattr(code, "name", None)
    return str(name).upper() if name else str(code)


class KafkaClient:
    """See the module doc."""

    def __init__(self, bootstrap: str, *, timeout: float = 10.0,
                 credentials: Credentials | None = None, client_id: str = "strom-cli",
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.bootstrap = parse_bootstrap(bootstrap)
        self.timeout = timeout
        self.credentials = credentials
        #: TLS for every connection (SSL / SASL_SSL listeners); None: plain TCP
        self.ssl_context = ssl_context
        self.client_id = client_id
        self._sessions: dict[tuple[str, int], BrokerSession] = {}
        self._brokers: dict[int, BrokerInfo] = {}

    def __enter__(self) -> KafkaClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for session in self._sessions.values():
            session.close()
        self._sessions.clear()

    # ------------------------------------------------------------------ connections
    def _open(self, host: str, port: int) -> BrokerSession:
        key = (host, port)
        session = self._sessions.get(key)
        if session is None:
            session = BrokerSession(host, port, timeout=self.timeout,
                                    credentials=self.credentials, client_id=self.client_id,
                                    ssl_context=self.ssl_context)
            self._sessions[key] = session
        return session

    def any_session(self) -> BrokerSession:
        """A session to the first bootstrap broker that answers."""
        failures = []
        for host, port in self.bootstrap:
            try:
                return self._open(host, port)
            except BrokerUnreachable as exc:
                failures.append(str(exc))
        raise BrokerUnreachable("; ".join(failures))

    def call_any(self, api_key: int, values: Mapping[str, Any], *, highest: int,
                 lowest: int = 0) -> Any:
        """``call`` on the first broker that answers: the bootstrap addresses, then the
        brokers of the last metadata; a broker that fails is dropped and the next tried."""
        candidates = list(dict.fromkeys([*self.bootstrap, *(
            (b.host, b.port) for b in self._brokers.values())]))
        failures = []
        for host, port in candidates:
            try:
                session = self._open(host, port)
            except BrokerUnreachable as exc:
                failures.append(str(exc))
                continue
            try:
                return session.call(api_key, values, highest=highest, lowest=lowest)
            except BrokerUnreachable as exc:
                self.drop(session)
                failures.append(str(exc))
        raise BrokerUnreachable("; ".join(failures))

    def session(self, node_id: int) -> BrokerSession:
        """A session to broker ``node_id`` (known from the last ``metadata()``)."""
        if node_id not in self._brokers:
            self.metadata([])
        info = self._brokers.get(node_id)
        if info is None:
            raise ClientError(f"broker {node_id} is not in the cluster's metadata")
        return self._open(info.host, info.port)

    def forget(self, node_id: int) -> None:
        """Drop the session to broker ``node_id`` (it failed), so the next use reconnects."""
        info = self._brokers.get(node_id)
        session = self._sessions.get((info.host, info.port)) if info else None
        if session is not None:
            self.drop(session)

    def drop(self, session: BrokerSession) -> None:
        """Forget a session (after it failed), so the next use reconnects."""
        for key, value in list(self._sessions.items()):
            if value is session:
                del self._sessions[key]
                session.close()

    # ------------------------------------------------------------------ metadata
    def metadata(self, topics: Sequence[str] | None = None) -> ClusterMetadata:
        """Metadata for ``topics`` (None: every topic; []: brokers only)."""
        values = {
            "topics": None if topics is None else [{"name": t} for t in topics],
            "allow_auto_topic_creation": False,
        }
        response = self.call_any(METADATA, values, highest=12, lowest=1)
        brokers = {b.node_id: BrokerInfo(b.node_id, b.host, b.port, b.rack)
                   for b in response.brokers}
        self._brokers = brokers
        infos = {}
        for t in response.topics:
            parts = tuple(sorted((
                PartitionInfo(p.partition_index, p.leader_id, getattr(p, "leader_epoch", -1),
                              tuple(p.replica_nodes), tuple(p.isr_nodes),
                              tuple(getattr(p, "offline_replicas", ())), error_name(p.error_code))
                for p in t.partitions), key=lambda p: p.partition))
            infos[t.name] = TopicInfo(t.name, str(getattr(t, "topic_id", "")),
                                      bool(getattr(t, "is_internal", False)), parts,
                                      error_name(t.error_code))
        return ClusterMetadata(getattr(response, "cluster_id", None),
                               getattr(response, "controller_id", -1), brokers, infos)

    def topic(self, name: str) -> TopicInfo:
        """One existing topic's metadata; KafkaApiError UNKNOWN_TOPIC_OR_PARTITION if none."""
        info = self.metadata([name]).topics.get(name)
        if info is None or info.error != "NONE":
            code = info.error if info else "UNKNOWN_TOPIC_OR_PARTITION"
            if code == "UNKNOWN_TOPIC_OR_PARTITION":
                raise KafkaApiError(3, code, f"topic {name!r} does not exist")
            raise KafkaApiError(-1, code, f"topic {name!r}: {code}")
        return info

    @staticmethod
    def by_leader(metadata: ClusterMetadata, partitions: Iterable[tuple[str, int]]
                  ) -> dict[int, list[tuple[str, int]]]:
        """Partitions grouped by leader id; partitions without a leader under -1."""
        out: dict[int, list[tuple[str, int]]] = {}
        for topic, partition in partitions:
            leader = NO_LEADER
            info = metadata.topics.get(topic)
            if info is not None:
                for p in info.partitions:
                    if p.partition == partition:
                        leader = p.leader
            out.setdefault(leader, []).append((topic, partition))
        return out

    def coordinator(self, group: str) -> BrokerSession:
        """A session to ``group``'s coordinator (FindCoordinator, key type GROUP)."""
        response = self.call_any(FIND_COORDINATOR, {
            "key": group, "key_type": COORDINATOR_GROUP, "coordinator_keys": [group]},
            highest=4)
        entry = response.coordinators[0] if hasattr(response, "coordinators") else response
        if int(entry.error_code) != 0:
            name = error_name(entry.error_code)
            raise KafkaApiError(int(entry.error_code), name,
                                f"no coordinator for group {group!r}: {name}")
        return self._open(entry.host, entry.port)
