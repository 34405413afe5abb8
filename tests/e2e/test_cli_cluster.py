"""``strom`` against a 3-node cluster: a replicated topic made and described through any
node, records produced through one node and consumed through another, ``cluster info``
lists the three brokers and the quorum, and ``cluster health`` turns from healthy (exit 0)
to unhealthy (exit 1, naming what is wrong) when a broker is SIGKILLed."""

from __future__ import annotations

import json
import time

import pytest

from tests.e2e.test_cluster import Cluster
from tests.support.fixtures import unique_topic
from tests.support.strom_cli import strom

pytestmark = pytest.mark.timeout(150)


def _ok(proc) -> bytes:  # type: ignore[no-untyped-def]
    assert proc.returncode == 0, proc.stdout.decode() + proc.stderr.decode()
    return proc.stdout


def _poll_health(bootstrap: str, want: int, timeout: float = 40.0) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while True:
        proc = strom("cluster", "health", "--format", "json", "-b", bootstrap)
        if proc.returncode == want or time.monotonic() > deadline:
            assert proc.returncode == want, proc.stdout.decode() + proc.stderr.decode()
            return json.loads(proc.stdout)
        time.sleep(0.5)


def test_tools_against_a_cluster_and_health_when_a_broker_dies(cluster: Cluster) -> None:
    topic_name = unique_topic("cli")
    _ok(strom("topic", "create", topic_name, "-p", "3", "-r", "3", "-b", cluster.bootstrap(1)))
    data = b"".join(b"k%d|v%d\n" % (i, i) for i in range(30))
    _ok(strom("produce", topic_name, "-K", "|", "-b", cluster.bootstrap(2), input=data))
    back = _ok(strom("consume", topic_name, "-o", "earliest", "-e", "-f", "%k|%v\\n",
                     "-b", cluster.bootstrap(3)))
    assert sorted(back.splitlines()) == sorted(data.splitlines())

    info = json.loads(_ok(strom("cluster", "info", "--format", "json",
                                "-b", cluster.bootstrap(1))))
    assert [b["node_id"] for b in info["brokers"]] == [1, 2, 3]
    assert sorted(v["replica_id"] for v in info["quorum"]["voters"]) == [1, 2, 3]
    desc = json.loads(_ok(strom("topic", "describe", topic_name, "--format", "json",
                                "-b", cluster.bootstrap(2))))
    assert all(sorted(p["replicas"]) == [1, 2, 3] for p in desc["partitions"])
    assert sum(p["latest_offset"] for p in desc["partitions"]) == 30

    healthy = _poll_health(cluster.bootstrap(1), 0)  # ISRs may still be filling
    assert healthy == {"healthy": True, "problems": [], "brokers": [1, 2, 3]}

    cluster.nodes[3].kill()
    sick = _poll_health(cluster.bootstrap(1), 1)
    assert not sick["healthy"]
    text = " ".join(sick["problems"])
    assert "broker 3" in text or "voter 3" in text or "under-replicated" in text, text
    # and the message on stderr is one line for a script's log
    proc = strom("cluster", "health", "-b", cluster.bootstrap(2))
    assert proc.returncode == 1
    assert proc.stderr.decode().strip().startswith("strom: cluster unhealthy:")
    assert proc.stdout.decode().startswith("unhealthy:")

    # once the controller has fenced node 3, its partitions have other leaders: the dead
    # node first in the bootstrap list costs one refused connect, and nothing is lost
    deadline = time.monotonic() + 40
    while True:
        info = json.loads(_ok(strom("cluster", "info", "--format", "json",
                                    "-b", cluster.bootstrap(2))))
        if [b["node_id"] for b in info["brokers"]] == [1, 2] and not info["offline"]:
            break
        assert time.monotonic() < deadline, info
        time.sleep(0.5)
    more = b"".join(b"k%d|w%d\n" % (i, i) for i in range(10))
    _ok(strom("produce", topic_name, "-K", "|", "-b",
              f"{cluster.bootstrap(3)},{cluster.bootstrap(2)}", input=more))
    back = _ok(strom("consume", topic_name, "-o", "earliest", "-e", "-f", "%k|%v\n",
                     "-b", f"{cluster.bootstrap(3)},{cluster.bootstrap(1)}"))
    assert sorted(back.splitlines()) == sorted((data + more).splitlines())
