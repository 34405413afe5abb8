"""Consumer groups with aiokafka 0.14 (non-flexible protocol versions only)."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import Array, Int16, Int32, Schema, String
from aiokafka.structs import OffsetAndMetadata
from test_group_support import (
    CHILD_AIOKAFKA,
    GROUP_OVERRIDES,
    SESSION_MS,
    ChildConsumer,
    create_topic,
    is_split,
    produce,
)

from tests.support.fixtures import unique_topic

BROKER_OVERRIDES = GROUP_OVERRIDES
pytestmark = pytest.mark.timeout(90)


def _consumer(bootstrap: str, group: str, *topics: str, **extra: object) -> AIOKafkaConsumer:
    conf: dict[str, object] = {
        "bootstrap_servers": bootstrap,
        "group_id": group,
        "session_timeout_ms": SESSION_MS,
        "heartbeat_interval_ms": 300,
        "auto_offset_reset": "earliest",
        "enable_auto_commit": False,
        **extra,
    }
    return AIOKafkaConsumer(*topics, **conf)


def _parts(c: AIOKafkaConsumer) -> list[int]:
    return sorted(tp.partition for tp in c.assignment())


async def _until(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_members_split_leave_and_kill(bootstrap: str) -> None:
    topic, group = unique_topic("aio-split"), unique_topic("g")
    create_topic(bootstrap, topic, 6)
    cs = [_consumer(bootstrap, group, topic) for _ in range(2)]
    for c in cs:
        await c.start()
    child = ChildConsumer(CHILD_AIOKAFKA, [bootstrap, group, topic, str(SESSION_MS)])
    try:
        await _until(
            lambda: is_split([_parts(c) for c in cs] + [child.current()], 6), 30, "3-way split"
        )
        leaver = cs.pop()
        await leaver.stop()  # LeaveGroup
        await _until(lambda: is_split([_parts(cs[0]), child.current()], 6), 15, "after leave")
        child.kill()
        t0 = time.monotonic()
        await _until(
            lambda: _parts(cs[0]) == list(range(6)), SESSION_MS / 1000 + 10, "takeover after kill"
        )
        print(f"aiokafka takeover after kill: {time.monotonic() - t0:.2f} s")
    finally:
        child.close()
        for c in cs:
            await c.stop()


async def test_commit_restart_resume_and_broker_kill9(fresh_broker) -> None:  # type: ignore[no-untyped-def]
    bootstrap = fresh_broker.bootstrap
    topic, group = unique_topic("aio-resume"), unique_topic("g")
    create_topic(bootstrap, topic, 1)
    produce(bootstrap, topic, 10, 1)
    c = _consumer(bootstrap, group, topic)
    await c.start()
    try:
        batch = await c.getmany(timeout_ms=10000, max_records=4)
        (records,) = batch.values()
        assert [r.offset for r in records] == [0, 1, 2, 3]
        await c.commit({TopicPartition(topic, 0): OffsetAndMetadata(4, "aio-meta")})
    finally:
        await c.stop()
    c2 = _consumer(bootstrap, group, topic)
    await c2.start()
    try:
        record = await asyncio.wait_for(c2.getone(), 20)
        assert record.offset == 4
    finally:
        await c2.stop()
    fresh_broker.restart(clean=False)  # kill -9
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
        assert {tp.partition: (o.offset, o.metadata) for tp, o in offsets.items()} == {
            0: (4, "aio-meta")
        }
    finally:
        await admin.close()


async def test_static_membership_round_trip(bootstrap: str) -> None:
    topic, group = unique_topic("aio-static"), unique_topic("g")
    create_topic(bootstrap, topic, 4)
    a = _consumer(bootstrap, group, topic, group_instance_id="a", session_timeout_ms=10000)
    b = _consumer(bootstrap, group, topic, group_instance_id="b", session_timeout_ms=10000)
    await a.start()
    await b.start()
    b2 = None
    try:
        await _until(lambda: is_split([_parts(a), _parts(b)], 4), 30, "split")
        generation = a._coordinator.generation
        before_b = _parts(b)
        await b.stop()  # static: no LeaveGroup
        b2 = _consumer(bootstrap, group, topic, group_instance_id="b", session_timeout_ms=10000)
        await b2.start()
        await _until(lambda: _parts(b2) == before_b, 20, "same assignment back")
        await asyncio.sleep(0.5)  # give a rebalance (which must not happen) a chance to show
        assert a._coordinator.generation == generation
        assert b2._coordinator.generation == generation
    finally:
        await a.stop()
        if b2 is not None:
            await b2.stop()


class _DeleteGroupsResponse_v0(Response):  # noqa: N801 - aiokafka's naming
    API_KEY = 42
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("results", Array(("group_id", String("utf-8")), ("error_code", Int16))),
    )


class _DeleteGroupsRequest_v0(RequestStruct):  # noqa: N801
    API_KEY = 42
    API_VERSION = 0
    RESPONSE_TYPE = _DeleteGroupsResponse_v0
    SCHEMA = Schema(("groups_names", Array(String("utf-8"))))


class _DeleteGroupsRequest(Request[_DeleteGroupsRequest_v0]):
    """aiokafka's admin has no delete_consumer_groups: DeleteGroups v0 on its own client."""

    API_KEY = 42

    def __init__(self, groups: list[str]) -> None:
        self._groups = groups

    def build(self, request_struct_class: type[_DeleteGroupsRequest_v0]) -> _DeleteGroupsRequest_v0:
        return request_struct_class(self._groups)


async def test_admin_list_describe_delete(bootstrap: str) -> None:
    topic, active, idle = unique_topic("aio-admin"), unique_topic("act"), unique_topic("idle")
    create_topic(bootstrap, topic, 2)
    c = _consumer(bootstrap, active, topic, client_id="aio-admin-client")
    await c.start()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await _until(lambda: _parts(c) == [0, 1], 20, "assignment")
        simple = _consumer(bootstrap, idle)
        await simple.start()
        simple.assign([TopicPartition(topic, 1)])
        await simple.commit({TopicPartition(topic, 1): OffsetAndMetadata(2, "")})
        await simple.stop()
        listed = dict(await admin.list_consumer_groups())
        assert listed[active] == "consumer" and listed[idle] == ""
        (resp,) = await admin.describe_consumer_groups([active])
        group = resp.groups[0]
        error_code, group_id, state = group[0], group[1], group[2]
        assert (error_code, group_id, state) == (0, active, "Stable")
        assert len(group[5]) == 1 and group[5][0][1] == "aio-admin-client"
        node = await admin.find_coordinator(idle)
        result = await admin._client.send(node, _DeleteGroupsRequest([active, idle]))
        assert dict(result.results) == {active: 68, idle: 0}  # NON_EMPTY_GROUP, NONE
        assert idle not in dict(await admin.list_consumer_groups())
    finally:
        await admin.close()
        await c.stop()
