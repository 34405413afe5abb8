"""KIP-932 share groups on a 3-node cluster (RF 3): the group's coordinator, each
partition's leader and each share-partition's share coordinator (the leader of its
``__share_group_state`` partition) are spread over the nodes, so state goes between
brokers with Read/WriteShareGroupState. Two confluent-kafka share consumers take every
record of a 3-partition topic exactly once; then a node is SIGKILLed and, with whatever
roles moved, a fresh consumer gets only the records produced afterwards: no
acknowledged record is delivered again."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kio.index import load_request_schema
from kio.schema.errors import ErrorCode as E

from broker.group.partitioner import partition_for
from net.wire import WireClient
from protocol.build import build
from tests.e2e.test_cluster import Cluster, wait_until
from tests.e2e.test_replication import REPLICATED, coordinator_of, create_topic

pytestmark = pytest.mark.timeout(240)

PARTITIONS = 3


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path, overrides={
        **REPLICATED,
        "share.coordinator.state.topic.num.partitions": "3",
        "group.share.record.lock.duration.ms": "5000",
    })
    for node in c.nodes.values():
        node.startup_timeout = 60.0  # three nodes electing on a loaded machine
    try:
        yield c.start()
    finally:
        c.close()


def request(c: Cluster, node: int, api_key: int, version: int, values: dict[str, Any]) -> Any:
    with WireClient("127.0.0.1", c.client_ports[node], timeout=15) as w:
        return w.request(build(load_request_schema(api_key, version), values))


def start_offsets(c: Cluster, group: str, topic: str) -> dict[int, int] | None:
    """Per partition SPSO from the group's coordinator (None while it is moving)."""
    node = coordinator_of(c, group)
    resp = request(c, node, 90, 1, {"groups": [{"group_id": group, "topics": [
        {"topic_name": topic, "partitions": list(range(PARTITIONS))}]}]})
    g = resp.groups[0]
    if g.error_code != E.none or any(p.error_code for p in g.topics[0].partitions):
        return None
    return {p.partition_index: p.start_offset for p in g.topics[0].partitions}


def produce(c: Cluster, topic: str, per_partition: int, prefix: str) -> None:
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": ",".join(c.bootstrap(i) for i in c.nodes
                                                if c.nodes[i].running),
                  "acks": "all", "linger.ms": 5})
    for part in range(PARTITIONS):
        for i in range(per_partition):
            p.produce(topic, value=f"{prefix}-{part}-{i}".encode(), partition=part)
    assert p.flush(30) == 0


def consume(c: Cluster, group: str, topic: str, expected: int, consumers: int) -> list[bytes]:
    from confluent_kafka import ShareConsumer

    seen: list[list[bytes]] = [[] for _ in range(consumers)]
    stop = threading.Event()
    live = [i for i in c.nodes if c.nodes[i].running]

    def run(i: int) -> None:
        sc = ShareConsumer({"bootstrap.servers": c.bootstrap(live[i % len(live)]),
                            "group.id": group})
        sc.subscribe([topic])
        try:
            while not stop.is_set():
                got = [m.value() for m in sc.poll(0.3) or () if m.error() is None]
                seen[i].extend(got)
                if got:
                    time.sleep(0.02)
        finally:
            sc.close()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(consumers)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: sum(len(s) for s in seen) >= expected, 90,
                   f"{expected} records consumed")
        time.sleep(1.0)  # anything delivered twice would show up now
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    return [v for s in seen for v in s]


def leaders_and_id(c: Cluster, topic: str) -> tuple[uuid.UUID, dict[int, int]]:
    [t] = c.metadata(next(i for i in c.nodes if c.nodes[i].running), [topic]).topics
    return t.topic_id, {p.partition_index: p.leader_id for p in t.partitions}


def test_share_group_across_brokers_and_a_node_killed(cluster: Cluster) -> None:
    c = cluster
    topic = f"share-{uuid.uuid4().hex[:8]}"
    create_topic(c, topic, PARTITIONS)
    # __share_group_state appears with the first share state written
    request(c, 1, 91, 0, {"group_id": "warm-up", "topics": []})
    wait_until(lambda: all(leader > 0 for leader in leaders_and_id(
        c, "__share_group_state")[1].values()), 30, "__share_group_state led")
    topic_id, data_leaders = leaders_and_id(c, topic)
    state_leaders = leaders_and_id(c, "__share_group_state")[1]

    def share_coordinator(group: str, p: int) -> int:
        return state_leaders[partition_for(f"{group}:{topic_id}:{p}", 3)]

    # a group whose share state is kept away from some of its partitions' leaders, so the
    # state really travels between brokers
    group = next(g for g in (f"sg-{uuid.uuid4().hex[:8]}" for _ in range(200))
                 if any(share_coordinator(g, p) != data_leaders[p] for p in range(PARTITIONS)))
    # start at offset 0 (through the coordinator; the share coordinators may be elsewhere)
    def altered() -> bool:
        resp = request(c, coordinator_of(c, group), 91, 0, {"group_id": group, "topics": [
            {"topic_name": topic, "partitions": [
                {"partition_index": i, "start_offset": 0} for i in range(PARTITIONS)]}]})
        return resp.error_code == E.none and all(
            p.error_code == E.none for t in resp.responses for p in t.partitions)

    wait_until(altered, 30, "AlterShareGroupOffsets accepted")
    produce(c, topic, 50, "a")
    values = consume(c, group, topic, 3 * 50, consumers=2)
    assert sorted(values) == sorted(f"a-{p}-{i}".encode() for p in range(PARTITIONS)
                                    for i in range(50))  # each once
    wait_until(lambda: start_offsets(c, group, topic) == dict.fromkeys(range(PARTITIONS), 50),
               20, "every record acknowledged in the share state")
    # kill the share coordinator of partition 0's state (maybe more roles with it)
    c.nodes[share_coordinator(group, 0)].kill()
    produce(c, topic, 10, "b")
    after = consume(c, group, topic, 3 * 10, consumers=1)
    assert sorted(after) == sorted(f"b-{p}-{i}".encode() for p in range(PARTITIONS)
                                   for i in range(10)), "acknowledged records came back"
    wait_until(lambda: start_offsets(c, group, topic) == dict.fromkeys(range(PARTITIONS), 60),
               30, "the new records acknowledged")
