"""kcat's balanced consumer (``kcat -G``, librdkafka 2.0.2) against a real Strom broker."""

from __future__ import annotations

import shutil
import signal
import subprocess
import threading

import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient
from test_group_support import (
    GROUP_OVERRIDES,
    assert_split,
    broker_view,
    create_topic,
    produce,
    wait_until,
)

from tests.support.fixtures import unique_topic

BROKER_OVERRIDES = GROUP_OVERRIDES
pytestmark = pytest.mark.timeout(90)
KCAT = shutil.which("kcat")


class _Kcat:
    def __init__(self, bootstrap: str, group: str, topic: str) -> None:
        assert KCAT is not None
        self.proc = subprocess.Popen(
            [
                KCAT,
                "-b",
                bootstrap,
                "-G",
                group,
                topic,
                "-q",
                "-u",
                "-f",
                "%p:%o\\n",
                "-X",
                "auto.offset.reset=earliest",
                "-X",
                "session.timeout.ms=3000",
                "-X",
                "heartbeat.interval.ms=300",
                "-X",
                "auto.commit.interval.ms=200",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.seen: set[tuple[int, int]] = set()
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            p, _, o = line.decode().strip().partition(":")
            if o:
                self.seen.add((int(p), int(o)))

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(15)
        finally:
            self._t.join(5)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


@pytest.mark.skipif(KCAT is None, reason="kcat is not installed (make test installs it)")
def test_kcat_balanced_consumers_share_partitions_and_commit(bootstrap: str) -> None:
    topic, group = unique_topic("kcat-g"), unique_topic("g")
    create_topic(bootstrap, topic, 6)
    produce(bootstrap, topic, 30, 6)
    a, b = _Kcat(bootstrap, group, topic), _Kcat(bootstrap, group, topic)
    try:
        state, members = wait_until(
            lambda: (
                (v := broker_view(bootstrap, group, topic))[0] == "Stable"
                and len(v[1]) == 2
                and all(v[1])
                and v
            ),
            30,
            interval=0.1,
            what="two kcat members, stable",
        )
        assert_split(members, 6)
        everything = {(p, o) for p in range(6) for o in range(5)}
        wait_until(lambda: a.seen | b.seen >= everything, 20, what="all 30 messages")
        assert a.stop() == 0 and b.stop() == 0
    finally:
        a.kill()
        b.kill()
    admin = AdminClient({"bootstrap.servers": bootstrap})
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in range(6)])
    committed = admin.list_consumer_group_offsets([request])[group].result(10)
    assert {tp.partition: tp.offset for tp in committed.topic_partitions} == {
        p: 5 for p in range(6)
    }
