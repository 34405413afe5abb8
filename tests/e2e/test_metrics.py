"""The Prometheus endpoint of a running node (``strom.metrics.address``) counts what real
clients did: produced records and bytes, fetched bytes (equal to the bytes produced, as
batches are stored as sent), requests and their latency per API; and reports the node's
state: partitions led, none under-replicated or offline, the active controller, no
metadata lag, open connections."""

from __future__ import annotations

import re
import socket
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

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


def test_metrics_count_what_clients_did(tmp_path: Path) -> None:
    port = free_port()
    node = BrokerProcess(tmp_path / "node", {**BROKER_DEFAULT_OVERRIDES,
                                             "strom.metrics.address": f"127.0.0.1:{port}"})
    node.start()
    try:
        topic = f"met-{uuid.uuid4().hex[:8]}"
        admin = KafkaAdminClient(bootstrap_servers=node.bootstrap)
        admin.create_topics([NewTopic(topic, 2, 1)])
        admin.close()
        producer = KafkaProducer(bootstrap_servers=node.bootstrap, acks="all", linger_ms=5)
        for i in range(30):
            producer.send(topic, b"x" * i, partition=i % 2)
        producer.flush(TIMEOUT)
        producer.close()
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
        assert value(m, "strom_partitions_leader") == 2
        assert value(m, "strom_under_replicated_partitions") == 0
        assert value(m, "strom_offline_partitions") == 0
        assert value(m, "strom_active_controller") == 1
        assert value(m, "strom_broker_fenced") == 0
        assert value(m, "strom_metadata_lag_records") == 0
        assert value(m, "strom_metadata_offset") > 0
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/other", timeout=TIMEOUT)
        assert err.value.code == 404
        node.stop()
    finally:
        node.close()
