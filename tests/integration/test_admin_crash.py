"""kill -9 in the middle of a large CreateTopics, then of a large DeleteTopics: after each
restart the topic table and the partition directories agree (every listed topic has all its
partitions, nothing else is on disk), and every topic whose creation was acknowledged before
the kill is there."""

from __future__ import annotations

import time

from confluent_kafka.admin import AdminClient, NewTopic

from net.wire import WireClient
from protocol.build import build
from protocol.codec import request_type
from tests.support.broker import BrokerProcess

TIMEOUT = 20


def _partition_dirs(broker: BrokerProcess) -> set[str]:
    return {
        p.name for p in broker.data_dir.iterdir()
        if p.is_dir() and not p.name.startswith((".", "__"))
    }


def test_kill_9_during_create_topics_leaves_a_consistent_table(
    fresh_broker: BrokerProcess,
) -> None:
    admin = AdminClient({"bootstrap.servers": fresh_broker.bootstrap})
    acked = [f"crash-acked-{i}" for i in range(20)]
    for future in admin.create_topics([NewTopic(n, 2, 1) for n in acked],
                                      request_timeout=TIMEOUT).values():
        future.result(TIMEOUT)
    # a big request in flight when the process dies (raw wire: no client retries it later)
    host, port = fresh_broker.bootstrap.split(":")
    big = build(request_type(19, 7), {
        "topics": [{"name": f"crash-pending-{i}", "num_partitions": 2, "replication_factor": 1,
                    "assignments": [], "configs": []} for i in range(300)],
        "timeout": 30_000, "validate_only": False,
    })
    with WireClient(host, int(port), timeout=TIMEOUT) as wire:
        wire.send(big)
        deadline = time.monotonic() + TIMEOUT
        while not any(d.startswith("crash-pending-") for d in _partition_dirs(fresh_broker)):
            assert time.monotonic() < deadline, "the big CreateTopics never reached the disk"
            time.sleep(0.002)
        fresh_broker.kill()

    fresh_broker.start()
    admin = AdminClient({"bootstrap.servers": fresh_broker.bootstrap})
    listed = {
        name: len(meta.partitions)
        for name, meta in admin.list_topics(timeout=TIMEOUT).topics.items()
        if name.startswith("crash-")
    }
    assert set(acked) <= set(listed)
    assert all(count == 2 for count in listed.values()), listed
    expected_dirs = {f"{name}-{p}" for name in listed for p in range(2)}
    assert {d for d in _partition_dirs(fresh_broker) if d.startswith("crash-")} == expected_dirs

    # and a big DeleteTopics cut short the same way
    doomed = sorted(listed)
    with WireClient(host, int(port), timeout=TIMEOUT) as wire:
        wire.send(build(request_type(20, 6), {
            "topics": [{"name": n} for n in doomed], "timeout": 30_000}))
        deadline = time.monotonic() + TIMEOUT
        while len(_partition_dirs(fresh_broker)) == len(expected_dirs):
            assert time.monotonic() < deadline, "the big DeleteTopics never reached the disk"
            time.sleep(0.002)
        fresh_broker.kill()
    fresh_broker.start()
    admin = AdminClient({"bootstrap.servers": fresh_broker.bootstrap})
    left = [n for n in admin.list_topics(timeout=TIMEOUT).topics if n.startswith("crash-")]
    assert {d for d in _partition_dirs(fresh_broker) if d.startswith("crash-")} == {
        f"{name}-{p}" for name in left for p in range(2)
    }
