"""Several client listeners (``listeners`` with names mapped to PLAINTEXT by
``listener.security.protocol.map``), the docker shape: an internal listener and an
external one advertised under another host name.

Each listener is served; Metadata, DescribeCluster and FindCoordinator answer with the
endpoints of the listener the request arrived on; a client bootstrapping on either
listener produces and consumes through it.
"""

from __future__ import annotations

import socket
import time
import uuid
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from net.wire import WireClient
from protocol.build import build
from protocol.codec import request_type
from tests.support.broker import BrokerProcess
from tests.support.fixtures import BROKER_DEFAULT_OVERRIDES

TIMEOUT = 20.0


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def req(api_key: int, version: int, **values: Any) -> Any:
    return build(request_type(api_key, version), values)


def answers(port: int) -> tuple[list[tuple[int, str, int]], tuple[str, int], tuple[str, int]]:
    """(Metadata brokers, DescribeCluster's first broker, the group coordinator) as
    seen through ``port``."""
    with WireClient("127.0.0.1", port, timeout=TIMEOUT) as c:
        meta = c.request(req(3, 12, topics=None, allow_auto_topic_creation=False,
                             include_topic_authorized_operations=False))
        cluster = c.request(req(60, 0, include_cluster_authorized_operations=False))
        deadline = time.monotonic() + TIMEOUT
        while True:
            coord = c.request(req(10, 3, key="g", key_type=0))
            if int(coord.error_code) == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert int(coord.error_code) == 0, coord
    return ([(b.node_id, b.host, b.port) for b in meta.brokers],
            (cluster.brokers[0].host, cluster.brokers[0].port), (coord.host, coord.port))


def test_each_listener_answers_with_its_own_endpoints(tmp_path: Path) -> None:
    internal, external = free_ports(2)
    node = BrokerProcess(tmp_path / "node", {
        **BROKER_DEFAULT_OVERRIDES,
        "listeners": f"PLAINTEXT://127.0.0.1:{internal},EXTERNAL://127.0.0.1:{external}",
        "advertised.listeners": f"EXTERNAL://localhost:{external}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,EXTERNAL:PLAINTEXT",
    })
    node.start()
    try:
        assert node.bootstrap == f"127.0.0.1:{internal}"  # the ready file: first listener
        assert answers(internal) == ([(1, "127.0.0.1", internal)], ("127.0.0.1", internal),
                                     ("127.0.0.1", internal))
        assert answers(external) == ([(1, "localhost", external)], ("localhost", external),
                                     ("localhost", external))

        topic = f"lst-{uuid.uuid4().hex[:8]}"
        producer = KafkaProducer(bootstrap_servers=f"localhost:{external}", acks="all")
        metas = [producer.send(topic, b"m%d" % i, partition=0) for i in range(10)]
        producer.flush(TIMEOUT)
        assert [m.get(TIMEOUT).offset for m in metas] == list(range(10))
        producer.close()
        for bootstrap in (f"localhost:{external}", f"127.0.0.1:{internal}"):
            consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                     enable_auto_commit=False)
            try:
                tp = TopicPartition(topic, 0)
                consumer.assign([tp])
                consumer.seek_to_beginning(tp)
                got: list[bytes] = []
                deadline = time.monotonic() + TIMEOUT
                while len(got) < 10 and time.monotonic() < deadline:
                    for records in consumer.poll(timeout_ms=500).values():
                        got += [r.value for r in records]
                assert got == [b"m%d" % i for i in range(10)], bootstrap
            finally:
                consumer.close()
        node.stop()  # SIGTERM: both listeners close, exit code 0
    finally:
        node.close()
