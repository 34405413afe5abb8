"""The Prometheus endpoint of a running node (``strom.metrics.address``) counts what real
clients did: produced records and bytes, fetched bytes (equal to the bytes produced, as
batches are stored as sent), requests and their latency per API; and reports the node's
state: partitions led, none under-replicated or offline, the active controller, no
metadata lag, open connections; per partition its offsets and size, per consumer group
its committed offsets and lag; and prometheus_client's process and Python collectors.
One broker for the module; each test uses topics of its own."""

from __future__ import annotations

import re
import socket
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.structs import OffsetAndMetadata

from net.wire import WireClient
from protocol.build import build
from protocol.codec import request_type
from tests.support.broker import BrokerProcess
from tests.support.fixtures import BROKER_DEFAULT_OVERRIDES

TIMEOUT = 20.0
_SAMPLE = re.compile(r'^([a-z_]+)(?:\{(.*)\})? (\S+)$')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=TIMEOUT) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = resp.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        assert m, line
        labels = frozenset(re.findall(r'([a-z_]+)="((?:[^"\\]|\\.)*)"', m[2] or ""))
        out[(m[1], labels)] = float(m[3])
    return out


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def fetch_all(c: WireClient, topic: str, partition: int) -> int:
    """Fetch the partition from offset 0 once; returns the record bytes received."""
    resp = c.request(build(request_type(1, 12), dict(
        replica_id=-1, max_wait=0, min_bytes=0, max_bytes=1 << 20, isolation_level=0,
        session_id=0, session_epoch=-1, forgotten_topics_data=[], topics=[{
            "topic": topic, "partitions": [{
                "partition": partition, "fetch_offset": 0, "partition_max_bytes": 1 << 20,
                "current_leader_epoch": -1, "last_fetched_epoch": -1,
                "log_start_offset": -1}]}], rack_id="")))
    return len(resp.responses[0].partitions[0].records or b"")


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    port = free_port()
    proc = BrokerProcess(tmp_path_factory.mktemp("metrics") / "node",
                         {**BROKER_DEFAULT_OVERRIDES,
                          "strom.metrics.address": f"127.0.0.1:{port}"})
    proc.metrics_port = port  # type: ignore[attr-defined]
    proc.start()
    try:
        yield proc
        proc.stop()
    finally:
        proc.close()


def produce_to_two_partitions(bootstrap: str, records: int = 30) -> str:
    """A new 2-partition topic with ``records`` records, alternating partitions."""
    topic = f"met-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, 2, 1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    for i in range(records):
        producer.send(topic, b"x" * i, partition=i % 2)
    producer.flush(TIMEOUT)
    producer.close()
    return topic


def commit(bootstrap: str, group: str, offsets: dict[TopicPartition, int]) -> None:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                             enable_auto_commit=False)
    try:
        consumer.assign(list(offsets))
        consumer.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in offsets.items()})
    finally:
        consumer.close()


def test_metrics_count_what_clients_did(node: BrokerProcess) -> None:
    port = node.metrics_port  # type: ignore[attr-defined]
    topic = produce_to_two_partitions(node.bootstrap)
    host, _, client_port = node.bootstrap.rpartition(":")
    with WireClient(host, int(client_port), timeout=TIMEOUT) as c:
        fetched = fetch_all(c, topic, 0) + fetch_all(c, topic, 1)
        deadline = time.monotonic() + TIMEOUT
        while True:  # the Fetch response is counted once it is ready
            m = scrape(port)
            if value(m, "strom_bytes_out_total", topic=topic) >= fetched \
                    or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert value(m, "strom_connections") >= 1
    assert value(m, "strom_messages_in_total", topic=topic) == 30
    assert value(m, "strom_bytes_in_total", topic=topic) == fetched > 30 * 15
    assert value(m, "strom_bytes_out_total", topic=topic) == fetched
    produces = value(m, "strom_requests_total", api="Produce")
    assert produces >= 1
    assert value(m, "strom_request_seconds_count", api="Produce") == produces
    assert value(m, "strom_request_seconds_bucket", api="Produce", le="+Inf") == produces
    assert value(m, "strom_requests_total", api="Fetch") >= 2
    assert value(m, "strom_partitions_leader") >= 2
    assert value(m, "strom_under_replicated_partitions") == 0
    assert value(m, "strom_offline_partitions") == 0
    assert value(m, "strom_active_controller") == 1
    assert value(m, "strom_broker_fenced") == 0
    assert value(m, "strom_metadata_lag_records") == 0
    assert value(m, "strom_metadata_offset") > 0
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/other", timeout=TIMEOUT)
    assert err.value.code == 404
    assert value(m, "process_resident_memory_bytes") > 0
    assert value(m, "process_open_fds") > 0


def test_partition_offsets_sizes_and_group_lag(node: BrokerProcess) -> None:
    port = node.metrics_port  # type: ignore[attr-defined]
    topic = produce_to_two_partitions(node.bootstrap)  # 15 records in each partition
    group = f"g-{uuid.uuid4().hex[:8]}"
    commit(node.bootstrap, group, {TopicPartition(topic, 0): 5, TopicPartition(topic, 1): 15})
    m = scrape(port)
    led = [labels for name, labels in m if name == "strom_partition_under_replicated"]
    assert len(led) == value(m, "strom_partitions_leader")
    for p in ("0", "1"):
        assert value(m, "strom_log_start_offset", topic=topic, partition=p) == 0
        assert value(m, "strom_log_end_offset", topic=topic, partition=p) == 15
        assert value(m, "strom_high_watermark", topic=topic, partition=p) == 15
        assert value(m, "strom_partition_under_replicated", topic=topic, partition=p) == 0
    host, _, client_port = node.bootstrap.rpartition(":")
    with WireClient(host, int(client_port), timeout=TIMEOUT) as c:
        stored = fetch_all(c, topic, 0), fetch_all(c, topic, 1)
    # a log's size is its batches as stored, the bytes a fetch from 0 returns
    assert value(m, "strom_log_size_bytes", topic=topic, partition="0") == stored[0] > 0
    assert value(m, "strom_log_size_bytes", topic=topic, partition="1") == stored[1] > 0
    assert value(m, "strom_consumer_group_committed_offset", group=group, topic=topic,
                 partition="0") == 5
    assert value(m, "strom_consumer_group_lag", group=group, topic=topic, partition="0") == 10
    assert value(m, "strom_consumer_group_lag", group=group, topic=topic, partition="1") == 0
    # the lag follows new records without another commit
    producer = KafkaProducer(bootstrap_servers=node.bootstrap, acks="all")
    producer.send(topic, b"more", partition=1)
    producer.flush(TIMEOUT)
    producer.close()
    m = scrape(port)
    assert value(m, "strom_consumer_group_lag", group=group, topic=topic, partition="1") == 1
    assert value(m, "strom_high_watermark", topic=topic, partition="1") == 16


def test_every_metric_the_grafana_dashboard_queries_is_served(node: BrokerProcess) -> None:
    from tests.unit.cluster_compose_test import broker_metric_names, dashboard_queries

    topic = produce_to_two_partitions(node.bootstrap, records=4)
    commit(node.bootstrap, f"g-{uuid.uuid4().hex[:8]}", {TopicPartition(topic, 0): 1})
    host, _, client_port = node.bootstrap.rpartition(":")
    with WireClient(host, int(client_port), timeout=TIMEOUT) as c:
        fetch_all(c, topic, 0)
    deadline = time.monotonic() + TIMEOUT
    wanted = set().union(*(broker_metric_names(e) for e in dashboard_queries()))
    while True:  # the fetch is counted once its response is ready
        served = {name for name, _ in scrape(node.metrics_port)}  # type: ignore[attr-defined]
        if wanted <= served or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(wanted) > 20
    assert not wanted - served, f"queried by the dashboard, not served: {wanted - served}"
