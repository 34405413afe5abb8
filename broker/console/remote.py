"""The console's values asked over the Kafka protocol, for ``strom console
--bootstrap-server ...`` against any cluster (Strom or Apache Kafka), with the blocking
client of ``net/``. Same output types as ``snapshot`` (``Cluster``, ``Group``, records),
so ``pages`` renders both alike.

Where each value comes from: brokers, controller and fencing from DescribeCluster (or
Metadata); topics, leaders, replicas and ISR from Metadata; the quorum from
DescribeQuorum when the cluster serves it (else no quorum is shown); log start offsets and
high watermarks from ListOffsets (earliest, latest) at each leader; sizes from
DescribeLogDirs (the leader's replica); groups from ListGroups, DescribeGroups and
OffsetFetch, their lag against the latest offsets; the message browser from ListOffsets
(for a time) and Fetch at the leader. The log end offset of a replica is not in the
protocol's answers to clients: it shows as unknown. ``Cluster.node_id`` is -1 (no node
serves the page).

``ProtocolSource`` runs the blocking calls in a worker thread, one at a time (the
client is not thread-safe); any ``net.session.ClientError`` becomes an error page or an
error message of the browser.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from broker.console.pages import BrowseQuery
from broker.console.snapshot import (
    BrokerRow,
    Cluster,
    Group,
    GroupOffset,
    PartitionRow,
    TopicRow,
)
from net.admin import EARLIEST, LATEST, Admin
from net.consumer import PartitionReader
from net.groups import Groups
from net.kafka_client import ClusterMetadata, KafkaClient
from net.session import ClientError, KafkaApiError, UnsupportedVersion
from protocol.records import Record

T = TypeVar("T")
NO_NODE = -1
#: how long the browser keeps fetching to fill a page (a partition trimmed meanwhile)
BROWSE_DEADLINE_S = 5.0


def _offsets(client: KafkaClient, md: ClusterMetadata, spec: int
             ) -> dict[tuple[str, int], int]:
    """ListOffsets ``spec`` of every partition with a leader; a failing leader's
    partitions are left out."""
    admin = Admin(client)
    out: dict[tuple[str, int], int] = {}
    by_leader = KafkaClient.by_leader(md, [(t.name, p.partition) for t in md.topics.values()
                                           if t.error == "NONE" for p in t.partitions])
    for leader, parts in by_leader.items():
        if leader < 0:
            continue
        try:
            answers = admin.list_offsets(md, dict.fromkeys(parts, spec))
        except ClientError:
            continue
        out.update({tp: a.offset for tp, a in answers.items()})
    return out


def cluster(client: KafkaClient) -> Cluster:
    admin = Admin(client)
    described = admin.describe_cluster()
    md = client.metadata(None)
    try:
        quorum = admin.describe_quorum()
    except (UnsupportedVersion, KafkaApiError):
        quorum = None  # not served (an older Kafka, or ZooKeeper mode)
    starts, ends = _offsets(client, md, EARLIEST), _offsets(client, md, LATEST)
    sizes = admin.log_dir_sizes(md)
    topics = []
    for info in sorted(md.topics.values(), key=lambda t: t.name):
        if info.error != "NONE":
            continue
        rows = []
        for p in info.partitions:
            key = (info.name, p.partition)
            rows.append(PartitionRow(p.partition, p.leader, p.replicas, p.isr,
                                     starts.get(key), ends.get(key), None,
                                     sizes.get(key, {}).get(p.leader)))
        topics.append(TopicRow(info.name, tuple(rows)))
    brokers = tuple(BrokerRow(b.node_id, (f"{b.host}:{b.port}",), b.rack, b.fenced)
                    for b in described.brokers)
    return Cluster(described.cluster_id or md.cluster_id or "", NO_NODE,
                   quorum.leader_id if quorum else NO_NODE,
                   quorum.leader_epoch if quorum else -1,
                   tuple(sorted(v.replica_id for v in quorum.voters)) if quorum else (),
                   brokers, tuple(topics))


def groups(client: KafkaClient) -> list[Group]:
    api = Groups(client)
    out = []
    described = []
    wanted: set[tuple[str, int]] = set()
    for listing in api.list():
        try:
            committed = api.committed(listing.group_id)
        except KafkaApiError:
            continue  # not allowed to see its offsets (GROUP_AUTHORIZATION_FAILED)
        try:
            desc = api.describe(listing.group_id)
            state, protocol = desc.state, desc.protocol or ""
            members = tuple(sorted(m.member_id for m in desc.members))
        except KafkaApiError:
            desc = None
        if desc is None or (desc.state == "Dead" and listing.state not in ("", "Dead")):
            # a consumer (KIP-848) or share group: DescribeGroups knows classic ones only
            state, protocol, members = listing.state or "?", listing.protocol_type, ()
        described.append((listing.group_id, state, protocol, members, committed))
        wanted.update(committed)
    ends: dict[tuple[str, int], int] = {}
    if wanted:
        md = client.metadata(sorted({t for t, _ in wanted}))
        ends = _offsets(client, md, LATEST)
    for group_id, state, protocol, members, committed in described:
        offsets = tuple(GroupOffset(t, p, o, ends.get((t, p)))
                        for (t, p), o in sorted(committed.items()))
        out.append(Group(group_id, state, protocol, members, offsets))
    return out


def records(client: KafkaClient, topic: TopicRow, q: BrowseQuery) -> list[Record]:
    """Up to ``q.limit`` records of ``topic``/``q.partition`` from where ``q`` says (as
    ``browse.start_offset``: an offset clamped into the log, a time, or the last ones),
    never past the high watermark."""
    md = client.metadata([topic.name])
    tp = (topic.name, q.partition)
    admin = Admin(client)
    first = admin.list_offsets(md, {tp: EARLIEST})[tp].offset
    hw = admin.list_offsets(md, {tp: LATEST})[tp].offset
    if q.timestamp_ms is not None:
        found = admin.list_offsets(md, {tp: q.timestamp_ms})[tp].offset
        start = hw if found < 0 else min(found, hw)
    elif q.offset is None:
        start = max(first, hw - q.limit)
    else:
        start = min(max(q.offset, first), hw)
    reader = PartitionReader(client, topic.name, {q.partition: start}, max_wait_ms=100)
    out: list[Record] = []
    deadline = time.monotonic() + BROWSE_DEADLINE_S
    while len(out) < q.limit and reader.positions[q.partition] < hw and \
            time.monotonic() < deadline:
        for r in reader.poll():
            if r.offset < hw and len(out) < q.limit:
                out.append(Record(r.offset, r.timestamp, r.key, r.value, list(r.headers)))
    return out


def stats(client: KafkaClient, now_ms: int) -> dict[str, Any]:
    """``/api/stats`` over the protocol: ``messages_in`` per topic is the sum of its
    high watermarks, ``bytes_in`` the sum of its leaders' sizes (running totals whose
    differences the charts show as rates); bytes out are not known to a client."""
    md = client.metadata(None)
    ends = _offsets(client, md, LATEST)
    sizes = Admin(client).log_dir_sizes(md)
    messages: dict[str, float] = {}
    bytes_in: dict[str, float] = {}
    parts = [(t, p) for t in md.topics.values() if t.error == "NONE" for p in t.partitions]
    for t, p in parts:
        if t.internal:
            continue
        key = (t.name, p.partition)
        messages[t.name] = messages.get(t.name, 0) + ends.get(key, 0)
        bytes_in[t.name] = bytes_in.get(t.name, 0) + sizes.get(key, {}).get(p.leader, 0)
    live = set(md.brokers)
    return {"time_ms": now_ms, "bytes_in": bytes_in, "messages_in": messages,
            "bytes_out": {},
            "under_replicated": sum(1 for _, p in parts if p.under_replicated),
            "offline": sum(1 for _, p in parts if p.leader not in live)}


class ProtocolSource:
    """A ``routes.Source`` over a ``KafkaClient`` made by ``connect()`` (opened on first
    use, reopened after a failure)."""

    def __init__(self, connect: Callable[[], KafkaClient]) -> None:
        self._connect = connect
        self._client: KafkaClient | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def _run(self, func: Callable[[KafkaClient], T]) -> T:
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            try:
                return func(self._client)
            except ClientError:
                self._client.close()
                self._client = None
                raise

    async def _call(self, func: Callable[[KafkaClient], T]) -> T:
        return await asyncio.to_thread(self._run, func)

    async def cluster(self) -> Cluster:
        return await self._call(cluster)

    async def groups(self) -> list[Group]:
        return await self._call(groups)

    async def records(self, topic: TopicRow, q: BrowseQuery) -> tuple[list[Record], str]:
        try:
            return await self._call(lambda c: records(c, topic, q)), ""
        except ClientError as exc:
            return [], f"could not read {topic.name}-{q.partition}: {exc}"

    async def stats(self, now_ms: int) -> dict[str, Any]:
        return await self._call(lambda c: stats(c, now_ms))
