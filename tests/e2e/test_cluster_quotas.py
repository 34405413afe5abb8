"""Client quotas on a 3-node cluster: AlterClientQuotas sent to any broker is forwarded to
the active controller and lands in the metadata log, so every broker describes and
enforces the same quotas at once; KIP-599 mutation quotas are one bucket on the active
controller, charged through whichever broker a client asks."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from confluent_kafka import Producer
from kio.schema.errors import ErrorCode

from net.wire import WireClient
from protocol import envelope
from protocol.build import build
from protocol.codec import request_type
from tests.e2e.test_cluster import Cluster, wait_until

pytestmark = pytest.mark.timeout(150)
TIMEOUT = 20.0


def req(api_key: int, version: int, **values: Any) -> Any:
    return build(request_type(api_key, version), values)


def call(cluster: Cluster, node_id: int, body: Any) -> Any:
    with WireClient("127.0.0.1", cluster.client_ports[node_id], timeout=TIMEOUT) as c:
        return c.request(body)


def quotas_of(cluster: Cluster, node_id: int) -> dict[tuple, dict[str, float]]:
    r = call(cluster, node_id, req(48, 1, components=[], strict=False))
    assert r.error_code == ErrorCode.none, r
    return {tuple(sorted((e.entity_type, e.entity_name) for e in entry.entity)):
            {v.key: v.value for v in entry.values} for entry in r.entries}


def test_quotas_set_through_any_broker_apply_on_all(cluster: Cluster) -> None:
    expected = {}
    for node_id in cluster.client_ports:  # the active controller is one of them
        client_id = f"c{node_id}"
        r = call(cluster, node_id, req(49, 1, validate_only=False, entries=[{
            "entity": [{"entity_type": "client-id", "entity_name": client_id}],
            "ops": [{"key": "producer_byte_rate", "value": 1000.0, "remove": False}]}]))
        assert r.entries[0].error_code == ErrorCode.none, r
        expected[(("client-id", client_id),)] = {"producer_byte_rate": 1000.0}
    deadline = time.monotonic() + TIMEOUT
    pending = set(cluster.client_ports)
    while pending and time.monotonic() < deadline:
        pending = {n for n in pending if quotas_of(cluster, n) != expected}
        time.sleep(0.05)
    assert not pending, f"brokers {sorted(pending)} lack the quotas"
    # bad input is refused by the controller, answered through the broker
    r = call(cluster, 2, req(49, 1, validate_only=False, entries=[{
        "entity": [{"entity_type": "client-id", "entity_name": "x"}],
        "ops": [{"key": "producer_byte_rate", "value": 0.5, "remove": False}]}]))
    assert r.entries[0].error_code == ErrorCode.invalid_request
    # enforced by whichever broker leads the partition: 1 kB/s for "c1"
    topic = f"q-{uuid.uuid4().hex[:8]}"
    throttles: list[int] = []
    producer = Producer({"bootstrap.servers": cluster.bootstrap(3), "client.id": "c1",
                         "throttle_cb": lambda e: throttles.append(e.throttle_time)})
    producer.produce(topic, b"x" * 20_000)  # one request: twice the padded 10 s' worth
    assert producer.flush(TIMEOUT) == 0
    end = time.monotonic() + 5
    while not throttles and time.monotonic() < end:
        producer.poll(0.1)
    assert throttles and max(throttles) > 0


def _create(cluster: Cluster, node_id: int, version: int, topics: list[tuple[str, int]],
            client_id: str) -> Any:
    with WireClient("127.0.0.1", cluster.client_ports[node_id], timeout=TIMEOUT,
                    client_id=client_id) as c:
        return c.request(req(19, version, timeout_ms=10_000, validate_only=False, topics=[
            {"name": n, "num_partitions": p, "replication_factor": 1, "assignments": [],
             "configs": []} for n, p in topics]))


def test_controller_mutation_rate_is_one_bucket_for_the_cluster(cluster: Cluster) -> None:
    """KIP-599 through brokers that forward to the active controller (KIP-590 Envelope with
    the client's principal and client id): client id "mut" at 1 partition/s holds 11
    tokens (11 windows of 1 s) shared by requests sent to any broker; a strict CreateTopics
    while in debt is refused THROTTLING_QUOTA_EXCEEDED with the throttle time, an old one
    (v4) is admitted and throttled."""
    r = call(cluster, 1, req(49, 1, validate_only=False, entries=[{
        "entity": [{"entity_type": "client-id", "entity_name": "mut"}],
        "ops": [{"key": "controller_mutation_rate", "value": 1.0, "remove": False}]}]))
    assert r.entries[0].error_code == ErrorCode.none, r
    tag = uuid.uuid4().hex[:6]
    first = _create(cluster, 1, 7, [(f"m{tag}-{i}", 1) for i in range(8)], "mut")
    assert [t.error_code for t in first.topics] == [ErrorCode.none] * 8, first
    # 3 tokens left: a 6-partition topic is admitted whole and leaves 3 tokens of debt
    second = _create(cluster, 2, 7, [(f"m{tag}-big", 6)], "mut")
    assert second.topics[0].error_code == ErrorCode.none, second
    third = _create(cluster, 3, 7, [(f"m{tag}-late", 1)], "mut")
    assert third.topics[0].error_code == ErrorCode.throttling_quota_exceeded, third
    assert 500 < third.throttle_time.total_seconds() * 1000 <= 3000, third.throttle_time
    other = _create(cluster, 3, 7, [(f"m{tag}-other", 1)], "someone-else")
    assert other.topics[0].error_code == ErrorCode.none, other
    old = _create(cluster, 3, 4, [(f"m{tag}-old", 1)], "mut")
    assert old.topics[0].error_code == ErrorCode.none, old
    assert old.throttle_time.total_seconds() > 0, old
    # auto-creation is charged as the Metadata request's client (Envelope, CreateTopics
    # v7: strict): 10 more tokens of debt, then "mut"'s auto-created topic is refused by
    # the controller (the broker logs it) while another client's is created
    deeper = _create(cluster, 3, 4, [(f"m{tag}-deep", 10)], "mut")
    assert deeper.topics[0].error_code == ErrorCode.none, deeper

    def auto(name: str, client_id: str) -> Any:
        with WireClient("127.0.0.1", cluster.client_ports[2], timeout=TIMEOUT,
                        client_id=client_id) as c:
            return c.request(req(3, 12, topics=[{"name": name, "topic_id": uuid.UUID(int=0)}],
                                 allow_auto_topic_creation=True,
                                 include_topic_authorized_operations=False)).topics[0]

    assert auto(f"m{tag}-auto", "mut").error_code == ErrorCode.leader_not_available
    wait_until(lambda: any('"auto_create_refused"' in ln and f"m{tag}-auto" in ln
                           and "throttling_quota_exceeded" in ln.lower() for ln in
                           cluster.nodes[2].log_path.read_text(errors="replace").splitlines()),
               TIMEOUT, "the controller's refusal of mut's auto-created topic")
    assert auto(f"m{tag}-auto", "mut").error_code == ErrorCode.leader_not_available
    wait_until(lambda: auto(f"m{tag}-free", "someone-else").error_code == ErrorCode.none,
               TIMEOUT, "someone-else's auto-created topic")
    # the controller listener's Envelope refuses what it cannot forward, and lives on
    def wrapped(data: bytes, principal: bytes) -> Any:
        with WireClient("127.0.0.1", cluster.controller_ports[1], timeout=TIMEOUT) as c:
            return c.request(req(58, 0, request_data=data, request_principal=principal,
                                 client_host_address=b"\x7f\x00\x00\x01"))

    metadata = req(3, 12, topics=None, allow_auto_topic_creation=False,
                   include_topic_authorized_operations=False)
    alice = envelope.serialize_principal("User:alice")
    for data, principal in ((envelope.request_data(3, 12, 1, "x", metadata), alice),
                            (b"\x00\x13\x00", alice),
                            (envelope.request_data(19, 7, 1, "x", req(
                                19, 7, timeout_ms=1, validate_only=True, topics=[])),
                             b"garbage")):
        got = wrapped(data, principal)
        assert got.error_code == ErrorCode.invalid_request and got.response_data is None, got
    assert call(cluster, 1, metadata).brokers
