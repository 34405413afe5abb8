"""Client quotas on a 3-node cluster: AlterClientQuotas sent to any broker is forwarded to
the active controller and lands in the metadata log, so every broker describes and
enforces the same quotas at once."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from confluent_kafka import Producer
from kio.schema.errors import ErrorCode

from net.wire import WireClient
from protocol.build import build
from protocol.codec import request_type
from tests.e2e.test_cluster import Cluster

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
