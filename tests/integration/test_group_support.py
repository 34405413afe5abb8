"""Shared helpers of the consumer-group integration tests (this module has no tests).

- ``GROUP_OVERRIDES``: broker settings that keep group tests fast (no initial rebalance
  delay, short session timeouts allowed).
- ``wait_until``: bounded polling for an observable condition.
- ``assert_split``: no partition owned twice, none unowned.
- ``ChildConsumer``: a consumer in a child process (so a test can kill -9 it) that
  prints its assignment as JSON lines; ``CHILD_*`` are the per-client child programs.
- Raw-protocol helpers over ``net.wire.WireClient`` for what clients do not expose.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from net.wire import WireClient

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable

#: fast groups: no initial rebalance delay, short session timeouts accepted
GROUP_OVERRIDES: dict[str, str] = {
    "group.initial.rebalance.delay.ms": "0",
    "group.min.session.timeout.ms": "500",
}
#: session timeout the test consumers use (ms)
SESSION_MS = 3000

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T], timeout: float, *, interval: float = 0.05, what: str = ""
) -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        time.sleep(interval)


def assert_split(assignments: Iterable[Iterable[int]], partitions: int) -> None:
    """Each partition owned by exactly one member."""
    sets = [set(a) for a in assignments]
    owned = [p for s in sets for p in s]
    assert len(owned) == len(set(owned)), f"partition owned twice: {sets}"
    assert set(owned) == set(range(partitions)), f"partitions unowned: {sets}"


def is_split(assignments: Iterable[Iterable[int]], partitions: int) -> bool:
    sets = [set(a) for a in assignments]
    owned = [p for s in sets for p in s]
    return all(sets) and len(owned) == len(set(owned)) and set(owned) == set(range(partitions))


def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(15)


def produce(bootstrap: str, topic: str, count: int, partitions: int) -> None:
    """``count`` messages, value ``b"<i>"``, spread round-robin over the partitions."""
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(count):
        p.produce(topic, key=b"k%d" % i, value=b"%d" % i, partition=i % partitions)
    assert p.flush(15) == 0


def host_port(bootstrap: str) -> tuple[str, int]:
    host, _, port = bootstrap.rpartition(":")
    return host, int(port)


def wire(bootstrap: str, timeout: float = 10.0) -> WireClient:
    return WireClient(*host_port(bootstrap), timeout=timeout)


def describe_group(bootstrap: str, group: str) -> Any:
    """DescribeGroups v5 of one group (the broker's own view)."""
    from kio.schema.describe_groups.v5.request import DescribeGroupsRequest

    with wire(bootstrap) as c:
        resp = c.request(
            DescribeGroupsRequest(groups=(group,), include_authorized_operations=False)
        )
    return resp.groups[0]


def decode_assignment(raw: bytes) -> dict[str, list[int]]:
    """ConsumerProtocolAssignment: version:int16, [topic:string, [partition:int32]], ..."""
    if not raw:
        return {}
    pos = 2
    out: dict[str, list[int]] = {}
    n = int.from_bytes(raw[pos : pos + 4], "big", signed=True)
    pos += 4
    for _ in range(max(n, 0)):
        ln = int.from_bytes(raw[pos : pos + 2], "big")
        pos += 2
        topic = raw[pos : pos + ln].decode()
        pos += ln
        count = int.from_bytes(raw[pos : pos + 4], "big", signed=True)
        pos += 4
        parts = [int.from_bytes(raw[pos + 4 * i : pos + 4 * i + 4], "big") for i in range(count)]
        pos += 4 * count
        out[topic] = parts
    return out


def broker_view(bootstrap: str, group: str, topic: str) -> tuple[str, list[list[int]]]:
    """(state, per-member partitions of ``topic``) as DescribeGroups reports them."""
    g = describe_group(bootstrap, group)
    return g.group_state, [
        sorted(decode_assignment(m.member_assignment).get(topic, [])) for m in g.members
    ]


# ---------------------------------------------------------------------- child consumers

CHILD_CONFLUENT = """
import json, sys
from confluent_kafka import Consumer
bootstrap, group, topic, session = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
extra = json.loads(sys.argv[5]) if len(sys.argv) > 5 else {}
c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "session.timeout.ms": session,
              "heartbeat.interval.ms": 300, "auto.offset.reset": "earliest", **extra})
last = None
c.subscribe([topic])
while True:
    c.poll(0.1)
    now = sorted(tp.partition for tp in c.assignment())
    if now != last:
        print(json.dumps(now), flush=True)
        last = now
"""

CHILD_KAFKA_PYTHON = """
import json, sys
from kafka import KafkaConsumer
bootstrap, group, topic, session = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
c = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                  session_timeout_ms=session, heartbeat_interval_ms=300,
                  auto_offset_reset="earliest")
last = None
while True:
    c.poll(timeout_ms=1000)  # well above a rebalance round trip (kafka-python 3.0.12 race)
    now = sorted(tp.partition for tp in c.assignment())
    if now != last:
        print(json.dumps(now), flush=True)
        last = now
"""

CHILD_AIOKAFKA = """
import asyncio, json, sys
from aiokafka import AIOKafkaConsumer
bootstrap, group, topic, session = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
async def main():
    c = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                         session_timeout_ms=session, heartbeat_interval_ms=300,
                         auto_offset_reset="earliest")
    await c.start()
    last = None
    while True:
        await c.getmany(timeout_ms=100)
        now = sorted(tp.partition for tp in c.assignment())
        if now != last:
            print(json.dumps(now), flush=True)
            last = now
asyncio.run(main())
"""


class ChildConsumer:
    """A group consumer in its own process, reporting its assignment on stdout."""

    def __init__(
        self,
        program: str,
        args: list[str],
        *,
        node: bool = False,
        env: dict[str, str] | None = None,
    ) -> None:
        cmd = (["node", "-e", program] if node else [PYTHON, "-c", program]) + args
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.assignment: list[int] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.put(raw.decode().strip())

    def current(self) -> list[int]:
        """The latest assignment the child reported."""
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                return self.assignment
            try:
                self.assignment = json.loads(line)
            except ValueError:
                continue

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stderr(self) -> str:
        if self.proc.poll() is None:
            return ""
        assert self.proc.stderr is not None
        return self.proc.stderr.read().decode(errors="replace")[-2000:]

    def close(self) -> None:
        self.kill()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
