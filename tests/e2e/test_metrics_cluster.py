"""What an operator alerts on, in a 3-node cluster: every replica of a partition reports
its offsets (followers too, with the leader's high watermark), only the leader reports
whether it is under-replicated; SIGKILL a follower and the leader's
``strom_partition_under_replicated`` and ``strom_under_replicated_partitions`` go to 1
while the console's topic page marks the short ISR and the overview the fenced broker;
restart it and both return to 0."""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from tests.e2e.test_cluster import Cluster, free_ports, wait_until
from tests.e2e.test_metrics import scrape, value

TIMEOUT = 30.0
TOPIC = "alerts"


class HttpCluster(Cluster):
    """``Cluster`` whose nodes serve metrics and the console on one port each."""

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir, overrides={"replica.lag.time.max.ms": "3000"})
        self.http_ports = dict(zip(self.nodes, free_ports(len(self.nodes)), strict=True))
        for i, node in self.nodes.items():
            address = f"127.0.0.1:{self.http_ports[i]}"
            node.overrides["strom.metrics.address"] = address
            node.overrides["strom.console.address"] = address

    def page(self, node_id: int, path: str) -> str:
        url = f"http://127.0.0.1:{self.http_ports[node_id]}{path}"
        with urllib.request.urlopen(url, timeout=TIMEOUT) as resp:
            return resp.read().decode()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[HttpCluster]:
    c = HttpCluster(tmp_path)
    try:
        yield c.start()
    finally:
        c.close()


def partition_gauge(c: HttpCluster, node_id: int, name: str) -> float | None:
    return scrape(c.http_ports[node_id]).get(
        (name, frozenset({("topic", TOPIC), ("partition", "0")})))


def test_a_killed_follower_shows_as_under_replicated(cluster: HttpCluster) -> None:
    c = cluster
    admin = KafkaAdminClient(bootstrap_servers=c.bootstrap(1))
    admin.create_topics([NewTopic(TOPIC, 1, 3)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=c.bootstrap(1), acks="all")
    for i in range(5):
        producer.send(TOPIC, f"r{i}".encode())
    producer.flush(TIMEOUT)
    producer.close()
    wait_until(lambda: all(partition_gauge(c, i, "strom_high_watermark") == 5
                           and partition_gauge(c, i, "strom_log_end_offset") == 5
                           for i in c.nodes), TIMEOUT, "every replica at offset 5")
    leader = c.leaders(1, TOPIC)[0][0]
    follower = next(i for i in c.nodes if i != leader)
    # (on a loaded machine a slow follower may leave the ISR for a moment: wait it out)
    wait_until(lambda: partition_gauge(c, leader, "strom_partition_under_replicated") == 0,
               TIMEOUT, f"{TOPIC}-0 fully replicated")
    assert partition_gauge(c, follower, "strom_partition_under_replicated") is None

    def isr_shown() -> list[str]:
        cell = re.search(r'<td data-col="isr"(?: class="bad")?>([^<]*)</td>',
                         c.page(leader, f"/topics/{TOPIC}"))
        assert cell, "no ISR cell"
        return cell[1].split(", ")

    c.nodes[follower].kill()
    wait_until(lambda: str(follower) not in isr_shown(), TIMEOUT,
               f"the console showing {follower} out of the ISR")
    assert partition_gauge(c, leader, "strom_partition_under_replicated") == 1
    assert value(scrape(c.http_ports[leader]), "strom_under_replicated_partitions") >= 1
    assert '<td data-col="isr" class="bad">' in c.page(leader, f"/topics/{TOPIC}")
    wait_until(lambda: re.search(rf'<td data-col="id" class="n">{follower}</td><td>[^<]*'
                                 r'</td><td>[^<]*</td><td data-col="state" class="bad">fenced',
                                 c.page(leader, "/")), TIMEOUT,
               f"the overview showing broker {follower} fenced")

    c.nodes[follower].start()
    wait_until(lambda: partition_gauge(c, leader, "strom_partition_under_replicated") == 0
               and value(scrape(c.http_ports[leader]), "strom_under_replicated_partitions") == 0,
               TIMEOUT, f"{TOPIC}-0 fully replicated again")
