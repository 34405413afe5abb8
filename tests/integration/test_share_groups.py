"""KIP-932 share groups with confluent-kafka's ShareConsumer (librdkafka 2.16) and, for
what the client does not exercise, Strom's own wire client.

One broker for the module with a short record lock (``group.share.record.lock.duration.ms``)
and delivery count limit; the kill -9 test has its own broker. Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import AcknowledgeType, Producer, ShareConsumer
from confluent_kafka.admin import AdminClient, NewTopic
from kio.index import load_request_schema
from kio.schema.errors import ErrorCode as E

from net.wire import WireClient
from protocol.build import build
from tests.support.broker import BrokerProcess
from tests.support.fixtures import BROKER_DEFAULT_OVERRIDES, unique_topic

LOCK_MS = 3000
DELIVERY_LIMIT = 3
BROKER_OVERRIDES = {
    "group.share.record.lock.duration.ms": str(LOCK_MS),
    "group.share.delivery.count.limit": str(DELIVERY_LIMIT),
    "share.coordinator.state.topic.num.partitions": "3",
    "offsets.topic.num.partitions": "3",
}
PYTHON = sys.executable
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# ---------------------------------------------------------------------- helpers
def host_port(bootstrap: str) -> tuple[str, int]:
    host, port = bootstrap.rsplit(":", 1)
    return host, int(port)


def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def request(bootstrap: str, api_key: int, version: int, values: dict[str, Any]) -> Any:
    with WireClient(*host_port(bootstrap), timeout=15) as c:
        return c.request(build(load_request_schema(api_key, version), values))


def create_topic(bootstrap: str, partitions: int = 1) -> str:
    name = unique_topic("share")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(15)
    return name


def produce(bootstrap: str, topic: str, count: int, *, batches: int = 1,
            prefix: str = "v") -> None:
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    per = max(1, count // batches)
    n = 0
    while n < count:
        for _ in range(min(per, count - n)):
            p.produce(topic, value=f"{prefix}{n}".encode(), partition=0)
            n += 1
        assert p.flush(10) == 0
    assert p.flush(10) == 0


def start_at_earliest(bootstrap: str, group: str, topic: str, partitions: int = 1) -> None:
    """AlterShareGroupOffsets to offset 0 (share groups start at the log end otherwise)."""
    resp = request(bootstrap, 91, 0, {"group_id": group, "topics": [
        {"topic_name": topic, "partitions": [
            {"partition_index": i, "start_offset": 0} for i in range(partitions)]}]})
    assert resp.error_code == E.none, resp
    assert all(p.error_code == E.none for t in resp.responses for p in t.partitions), resp


def share_offsets(bootstrap: str, group: str, topic: str) -> tuple[int, int]:
    """(start offset, lag) of partition 0 from DescribeShareGroupOffsets v1."""
    resp = request(bootstrap, 90, 1, {"groups": [
        {"group_id": group, "topics": [{"topic_name": topic, "partitions": [0]}]}]})
    [g] = resp.groups
    assert g.error_code == E.none, g
    [p] = g.topics[0].partitions
    assert p.error_code == E.none, p
    return p.start_offset, p.lag


def consumer(bootstrap: str, group: str, topic: str, *, explicit: bool = False) -> ShareConsumer:
    conf = {"bootstrap.servers": bootstrap, "group.id": group}
    if explicit:
        conf["share.acknowledgement.mode"] = "explicit"
    c = ShareConsumer(conf)
    c.subscribe([topic])
    return c


def poll(c: ShareConsumer, timeout: float = 0.5) -> list[Any]:
    out = []
    for m in c.poll(timeout) or ():
        if m.error() is None:
            out.append(m)
    return out


# ---------------------------------------------------------------------- advertised
def test_share_apis_advertised_at_kafka_4_2_versions(bootstrap: str) -> None:
    resp = request(bootstrap, 18, 3, {"client_software_name": "t",
                                       "client_software_version": "1"})
    versions = {k.api_key: (k.min_version, k.max_version) for k in resp.api_keys}
    assert versions[76] == (1, 1) and versions[77] == (1, 1)
    assert versions[78] == (1, 2) and versions[79] == (1, 2)
    assert versions[90] == (0, 1) and versions[91] == (0, 0) and versions[92] == (0, 0)
    # the share coordinator's Read/Write/DeleteShareGroupState between brokers, v0;
    # InitializeShareGroupState and ReadShareGroupStateSummary are not served
    assert versions[84] == versions[85] == versions[86] == (0, 0)
    assert not {83, 87} & set(versions)


# ---------------------------------------------------------------------- confluent-kafka
def test_two_share_consumers_split_one_partition(bootstrap: str) -> None:
    """Both consumers get records of the one partition; none reaches both; all are
    acknowledged (the SPSO reaches the log end)."""
    topic, group = create_topic(bootstrap), f"sg-{uuid.uuid4().hex[:8]}"
    start_at_earliest(bootstrap, group, topic)
    total = 300
    seen: dict[str, list[int]] = {"a": [], "b": []}
    stop = threading.Event()

    def run(name: str) -> None:
        c = consumer(bootstrap, group, topic)
        try:
            while not stop.is_set():
                got = [m.offset() for m in poll(c, 0.2)]
                seen[name].extend(got)
                if got:
                    time.sleep(0.05)  # "work" on them: the other member fetches meanwhile
        finally:
            c.close()  # commits the last poll's implicit acknowledgements

    threads = [threading.Thread(target=run, args=(n,), daemon=True) for n in seen]
    for t in threads:
        t.start()

    def both_assigned() -> bool:
        desc = request(bootstrap, 77, 1, {"group_ids": [group],
                                          "include_authorized_operations": False})
        members = desc.groups[0].members
        return len(members) == 2 and all(m.assignment.topic_partitions for m in members)

    wait_until(both_assigned, 30, "both consumers assigned the partition")
    time.sleep(0.5)  # and fetching
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    for i in range(total):
        p.produce(topic, value=f"v{i}".encode(), partition=0)
        if i % 5 == 4:
            p.flush(10)
            time.sleep(0.01)
    assert p.flush(10) == 0
    wait_until(lambda: len(seen["a"]) + len(seen["b"]) >= total, 40, "all records consumed")
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join(20)
    a, b = seen["a"], seen["b"]
    assert not set(a) & set(b), "a record was delivered to both consumers"
    assert len(a) == len(set(a)) and len(b) == len(set(b)), "a record was delivered twice"
    assert sorted(a + b) == list(range(total))
    assert a and b, f"one consumer got everything: {len(a)} / {len(b)}"
    wait_until(lambda: share_offsets(bootstrap, group, topic) == (total, 0), 10,
               "every record acknowledged")
    listed = request(bootstrap, 16, 5, {"states_filter": [], "types_filter": ["share"]})
    assert [(g.group_id, g.group_type) for g in listed.groups if g.group_id == group] == [
        (group, "share")]


CHILD = r"""
import json, sys, time
from confluent_kafka import ShareConsumer
bootstrap, group, topic = sys.argv[1:4]
c = ShareConsumer({"bootstrap.servers": bootstrap, "group.id": group,
                   "share.acknowledgement.mode": "explicit"})
c.subscribe([topic])
deadline = time.time() + 30
while time.time() < deadline:
    msgs = [m for m in c.poll(0.5) or () if m.error() is None]
    if msgs:
        print(json.dumps([m.offset() for m in msgs]), flush=True)
        break
time.sleep(120)  # holds its records until SIGKILLed
"""


def test_killed_consumer_records_redelivered_after_lock_timeout(bootstrap: str) -> None:
    topic, group = create_topic(bootstrap), f"sg-{uuid.uuid4().hex[:8]}"
    start_at_earliest(bootstrap, group, topic)
    produce(bootstrap, topic, 20)
    child = subprocess.Popen([PYTHON, "-c", CHILD, bootstrap, group, topic],
                             stdout=subprocess.PIPE, cwd=ROOT, text=True)
    try:
        line = child.stdout.readline() if child.stdout else ""
        held = json.loads(line)
        assert held == list(range(20))
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    killed = time.monotonic()
    c = consumer(bootstrap, group, topic, explicit=True)
    got: dict[int, int] = {}
    try:
        deadline = time.monotonic() + LOCK_MS / 1000 + 20
        while len(got) < 20 and time.monotonic() < deadline:
            for m in poll(c):
                got[m.offset()] = m.delivery_count()
                c.acknowledge(m)
        c.commit_sync(10)
    finally:
        c.close()
    waited = time.monotonic() - killed
    assert sorted(got) == held
    assert set(got.values()) == {2}, got  # second delivery of each
    assert waited >= LOCK_MS / 1000 * 0.5  # not before the lock could expire
    assert share_offsets(bootstrap, group, topic) == (20, 0)


def test_reject_archives_and_release_redelivers(bootstrap: str) -> None:
    topic, group = create_topic(bootstrap), f"sg-{uuid.uuid4().hex[:8]}"
    start_at_earliest(bootstrap, group, topic)
    produce(bootstrap, topic, 3)
    c = consumer(bootstrap, group, topic, explicit=True)
    try:
        first = wait_until(lambda: poll(c), 20, "records")
        assert [m.offset() for m in first] == [0, 1, 2]
        c.acknowledge(first[0], AcknowledgeType.REJECT)
        c.acknowledge(first[1], AcknowledgeType.RELEASE)
        c.acknowledge(first[2], AcknowledgeType.ACCEPT)
        c.commit_sync(10)
        again = wait_until(lambda: poll(c), 20, "the released record")
        assert [(m.offset(), m.delivery_count()) for m in again] == [(1, 2)]
        c.acknowledge(again[0], AcknowledgeType.ACCEPT)
        c.commit_sync(10)
    finally:
        c.close()
    # the rejected record 0 is done (archived): the SPSO passed it, nothing is in flight
    assert share_offsets(bootstrap, group, topic) == (3, 0)


def test_delivery_count_limit_archives_poison_record(bootstrap: str) -> None:
    topic, group = create_topic(bootstrap), f"sg-{uuid.uuid4().hex[:8]}"
    start_at_earliest(bootstrap, group, topic)
    produce(bootstrap, topic, 1, prefix="poison")
    c = consumer(bootstrap, group, topic, explicit=True)
    deliveries = []
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for m in poll(c, 0.3):
                deliveries.append(m.delivery_count())
                c.acknowledge(m, AcknowledgeType.RELEASE)  # the consumer fails on it
            c.commit_sync(10)
            if len(deliveries) >= DELIVERY_LIMIT and share_offsets(
                    bootstrap, group, topic)[0] == 1:
                break
        # a good record after it is delivered, the poison one no more
        produce(bootstrap, topic, 1, prefix="good")
        after = wait_until(lambda: poll(c), 20, "the next record")
        assert [(m.offset(), m.value()) for m in after] == [(1, b"good0")]
        c.acknowledge(after[0])
        c.commit_sync(10)
    finally:
        c.close()
    assert deliveries == list(range(1, DELIVERY_LIMIT + 1))
    assert share_offsets(bootstrap, group, topic) == (2, 0)


def test_acknowledgements_survive_broker_kill_9(tmp_path: Any) -> None:
    b = BrokerProcess(tmp_path / "b", {**BROKER_DEFAULT_OVERRIDES, **BROKER_OVERRIDES})
    b.start()
    try:
        topic, group = create_topic(b.bootstrap), "sg-kill"
        start_at_earliest(b.bootstrap, group, topic)
        produce(b.bootstrap, topic, 40)
        c = consumer(b.bootstrap, group, topic, explicit=True)
        accepted: list[int] = []
        held: list[int] = []
        deadline = time.monotonic() + 20
        while len(accepted) + len(held) < 40 and time.monotonic() < deadline:
            for m in poll(c):
                if m.offset() < 25 or m.offset() % 2 == 0:
                    c.acknowledge(m)
                    accepted.append(m.offset())
                else:
                    held.append(m.offset())  # acquired, never acknowledged
            if held or accepted:
                c.commit_sync(10)
                break  # the held records stay unacknowledged: no further poll
        assert sorted(accepted + held) == list(range(40))
        b.kill()  # kill -9 with the consumer holding its unacknowledged records
        b.start()
        c.close()  # its session died with the broker
        # after the restart: the SPSO and acknowledged records were kept
        start, lag = share_offsets(b.bootstrap, group, topic)
        assert start == 25 and lag == len(held)
        c2 = consumer(b.bootstrap, group, topic, explicit=True)
        again: list[int] = []
        try:
            deadline = time.monotonic() + 20
            while len(again) < len(held) and time.monotonic() < deadline:
                for m in poll(c2):
                    again.append(m.offset())
                    c2.acknowledge(m)
                c2.commit_sync(10)
        finally:
            c2.close()
        assert sorted(again) == sorted(held), "accepted records redelivered or held ones lost"
        assert share_offsets(b.bootstrap, group, topic) == (40, 0)
    finally:
        b.close()


# ---------------------------------------------------------------------- wire level
def heartbeat(bootstrap: str, group: str, member: str, epoch: int,
              topics: list[str] | None) -> Any:
    return request(bootstrap, 76, 1, {"group_id": group, "member_id": member,
                                      "member_epoch": epoch, "rack_id": None,
                                      "subscribed_topic_names": topics})


def test_heartbeat_errors_and_describe_shared_partition(bootstrap: str) -> None:
    topic, group = create_topic(bootstrap), f"sg-{uuid.uuid4().hex[:8]}"
    assert heartbeat(bootstrap, group, "", 0, [topic]).error_code == E.invalid_request
    assert heartbeat(bootstrap, group, "m1", 0, None).error_code == E.invalid_request
    assert heartbeat(bootstrap, group, "ghost", 3, None).error_code == E.unknown_member_id
    one = heartbeat(bootstrap, group, "m1", 0, [topic])
    assert one.error_code == E.none and one.member_epoch == 1
    two = heartbeat(bootstrap, group, "m2", 0, [topic])
    assert two.error_code == E.none and two.member_epoch == 2
    assert heartbeat(bootstrap, group, "m1", 5, None).error_code == E.fenced_member_epoch
    again = heartbeat(bootstrap, group, "m1", 1, None)
    assert again.error_code == E.none and again.member_epoch == 2
    # two members, one partition: both are assigned partition 0 (a shared partition)
    for r in (one, two):
        assert [list(tp.partitions) for tp in r.assignment.topic_partitions] == [[0]]
    desc = request(bootstrap, 77, 1, {"group_ids": [group, "nope"],
                                      "include_authorized_operations": False})
    g, missing = desc.groups
    assert g.error_code == E.none and g.group_state == "Stable" and g.assignor_name == "simple"
    assert sorted(m.member_id for m in g.members) == ["m1", "m2"]
    assert {m.assignment.topic_partitions[0].topic_name for m in g.members} == {topic}
    assert missing.error_code == E.group_id_not_found
    leave = heartbeat(bootstrap, group, "m2", -1, None)
    assert leave.error_code == E.none and leave.member_epoch == -1
    # m2 left: m1 alone remains
    classic = request(bootstrap, 77, 1, {"group_ids": [group],
                                         "include_authorized_operations": False})
    assert [m.member_id for m in classic.groups[0].members] == ["m1"]


def topic_id(bootstrap: str, topic: str) -> uuid.UUID:
    resp = request(bootstrap, 3, 12, {"topics": [{"name": topic, "topic_id": None}],
                                      "allow_auto_topic_creation": False,
                                      "include_topic_authorized_operations": False})
    return resp.topics[0].topic_id


def share_fetch(c: WireClient, group: str, member: str, epoch: int, tid: uuid.UUID,
                acks: list[dict[str, Any]] | None = None, wait_ms: int = 0,
                version: int = 1, **extra: Any) -> Any:
    return c.request(build(load_request_schema(78, version), {
        "group_id": group, "member_id": member, "share_session_epoch": epoch,
        "max_wait": wait_ms, "min_bytes": 1, "max_bytes": 1 << 20, "max_records": 100,
        "batch_size": 100, "topics": [{"topic_id": tid, "partitions": [
            {"partition_index": 0, "acknowledgement_batches": acks or []}]}],
        "forgotten_topics_data": [], **extra}))


def test_share_fetch_sessions_and_acknowledgements_on_the_wire(bootstrap: str) -> None:
    topic, group = create_topic(bootstrap), f"sg-{uuid.uuid4().hex[:8]}"
    start_at_earliest(bootstrap, group, topic)
    produce(bootstrap, topic, 4)
    tid = topic_id(bootstrap, topic)
    with WireClient(*host_port(bootstrap), timeout=15) as c:
        # no session yet / acknowledgements on the opening request
        assert share_fetch(c, group, "w1", 1, tid).error_code == E.share_session_not_found
        bad = share_fetch(c, group, "w1", 0, tid, [
            {"first_offset": 0, "last_offset": 0, "acknowledge_types": [1]}])
        assert bad.error_code == E.invalid_request
        first = share_fetch(c, group, "w1", 0, tid, wait_ms=2000)
        assert first.error_code == E.none
        assert first.acquisition_lock_timeout.total_seconds() * 1000 == LOCK_MS
        [part] = first.responses[0].partitions
        assert [(a.first_offset, a.last_offset, a.delivery_count)
                for a in part.acquired_records] == [(0, 3, 1)]
        assert part.records  # the stored batch
        # a second member finds nothing available (every record is locked by w1)
        with WireClient(*host_port(bootstrap), timeout=15) as c2:
            other = share_fetch(c2, group, "w2", 0, tid)
            assert not any(p.acquired_records for t in other.responses for p in t.partitions)
            # w2 cannot acknowledge w1's record
            nack = share_fetch(c2, group, "w2", 1, tid, [
                {"first_offset": 0, "last_offset": 0, "acknowledge_types": [1]}])
            [p2] = nack.responses[0].partitions
            assert p2.acknowledge_error_code == E.invalid_record_state
        assert share_fetch(c, group, "w1", 5, tid).error_code == E.invalid_share_session_epoch
        # v1 has no RENEW
        renew = share_fetch(c, group, "w1", 1, tid, [
            {"first_offset": 0, "last_offset": 0, "acknowledge_types": [4]}])
        assert renew.responses[0].partitions[0].acknowledge_error_code == E.invalid_request
        # per-offset types: accept, release, reject, accept
        acked = c.request(build(load_request_schema(79, 2), {
            "group_id": group, "member_id": "w1", "share_session_epoch": 2,
            "topics": [{"topic_id": tid, "partitions": [{"partition_index": 0,
                        "acknowledgement_batches": [{"first_offset": 0, "last_offset": 3,
                                                     "acknowledge_types": [1, 2, 3, 1]}]}]}]}))
        assert acked.error_code == E.none
        assert acked.responses[0].partitions[0].error_code == E.none
        assert share_offsets(bootstrap, group, topic) == (1, 1)  # offset 1 released
        # v2 record-limit mode and RENEW: the released record comes back, renewed
        again = share_fetch(c, group, "w1", 3, tid, version=2, share_acquire_mode=1)
        [p] = again.responses[0].partitions
        assert [(a.first_offset, a.delivery_count) for a in p.acquired_records] == [(1, 2)]
        renewed = share_fetch(c, group, "w1", 4, tid, [
            {"first_offset": 1, "last_offset": 1, "acknowledge_types": [4]}],
            version=2, is_renew_ack=True)
        assert renewed.responses[0].partitions[0].acknowledge_error_code == E.none
        assert not renewed.responses[0].partitions[0].acquired_records
        # closing the session releases what the member holds
        closed = share_fetch(c, group, "w1", -1, tid)
        assert closed.error_code == E.none
    assert share_offsets(bootstrap, group, topic) == (1, 1)
    # Alter/Delete need an empty group; Delete drops the state
    deleted = request(bootstrap, 92, 0, {"group_id": group, "topics": [{"topic_name": topic}]})
    assert deleted.error_code == E.none and deleted.responses[0].error_code == E.none
    assert share_offsets(bootstrap, group, topic) == (-1, -1)


@pytest.mark.parametrize("api_key,version", [(91, 0), (92, 0)])
def test_offsets_admin_refuses_a_group_with_members(bootstrap: str, api_key: int,
                                                    version: int) -> None:
    topic, group = create_topic(bootstrap), f"sg-{uuid.uuid4().hex[:8]}"
    assert heartbeat(bootstrap, group, "m", 0, [topic]).error_code == E.none
    body: dict[str, Any] = {"group_id": group, "topics": [{"topic_name": topic}]}
    if api_key == 91:
        body["topics"][0]["partitions"] = [{"partition_index": 0, "start_offset": 0}]
    assert request(bootstrap, api_key, version, body).error_code == E.non_empty_group


def test_describe_and_delete_groups_know_share_groups(bootstrap: str) -> None:
    topic, group = create_topic(bootstrap), f"sg-{uuid.uuid4().hex[:8]}"
    start_at_earliest(bootstrap, group, topic)
    assert heartbeat(bootstrap, group, "m", 0, [topic]).error_code == E.none
    described = request(bootstrap, 15, 6, {"groups": [group],
                                          "include_authorized_operations": False})
    assert described.groups[0].error_code == E.group_id_not_found
    assert described.groups[0].error_message == f"Group {group} is not a classic group."
    busy = request(bootstrap, 42, 2, {"groups_names": [group]})
    assert busy.results[0].error_code == E.non_empty_group
    assert heartbeat(bootstrap, group, "m", -1, None).error_code == E.none
    gone = request(bootstrap, 42, 2, {"groups_names": [group]})
    assert gone.results[0].error_code == E.none
    listed = request(bootstrap, 16, 5, {"states_filter": [], "types_filter": []})
    assert group not in {g.group_id for g in listed.groups}
    offsets = request(bootstrap, 90, 1, {"groups": [{"group_id": group, "topics": None}]})
    assert offsets.groups[0].error_code == E.group_id_not_found


def test_share_state_goes_with_a_deleted_topic(bootstrap: str) -> None:
    topic, group = create_topic(bootstrap), f"sg-{uuid.uuid4().hex[:8]}"
    start_at_earliest(bootstrap, group, topic)
    assert share_offsets(bootstrap, group, topic)[0] == 0
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.delete_topics([topic])[topic].result(15)

    def no_state_left() -> bool:
        resp = request(bootstrap, 90, 1, {"groups": [{"group_id": group, "topics": None}]})
        assert resp.groups[0].error_code == E.none
        return resp.groups[0].topics == ()

    wait_until(no_state_left, 15, "the share state of the deleted topic dropped")


def test_share_version_0_advertises_no_share_api(broker_factory: Callable[..., Any]) -> None:
    off = broker_factory({"share.version": "0"})
    resp = request(off.bootstrap, 18, 3, {"client_software_name": "t",
                                           "client_software_version": "1"})
    keys = {k.api_key for k in resp.api_keys}
    assert not {76, 77, 78, 79, 90, 91, 92} & keys
    assert {68, 69} <= keys  # the consumer protocol is unaffected


def test_share_state_apis_fence_stale_state_epochs(bootstrap: str) -> None:
    """Write/Read/DeleteShareGroupState v0 as a partition leader on another broker would
    call them: a write older than the stored state epoch is FENCED_STATE_EPOCH."""
    topic, group = create_topic(bootstrap), f"sg-{uuid.uuid4().hex[:8]}"
    start_at_earliest(bootstrap, group, topic)  # state epoch 1 at SPSO 0
    tid = topic_id(bootstrap, topic)

    def write(state_epoch: int, start: int) -> int:
        resp = request(bootstrap, 85, 0, {"group_id": group, "topics": [
            {"topic_id": tid, "partitions": [
                {"partition": 0, "state_epoch": state_epoch, "leader_epoch": 0,
                 "start_offset": start, "state_batches": [
                     {"first_offset": start, "last_offset": start + 1,
                      "delivery_state": 0, "delivery_count": 2}]}]}]})
        return resp.results[0].partitions[0].error_code

    def read() -> Any:
        resp = request(bootstrap, 84, 0, {"group_id": group, "topics": [
            {"topic_id": tid, "partitions": [{"partition": 0, "leader_epoch": 0}]}]})
        return resp.results[0].partitions[0]

    assert write(0, 7) == E.fenced_state_epoch
    assert write(1, 7) == E.none
    got = read()
    assert (got.error_code, got.state_epoch, got.start_offset) == (E.none, 1, 7)
    assert [(b.first_offset, b.last_offset, b.delivery_count) for b in got.state_batches] == [
        (7, 8, 2)]
    deleted = request(bootstrap, 86, 0, {"group_id": group, "topics": [
        {"topic_id": tid, "partitions": [{"partition": 0}]}]})
    assert deleted.results[0].partitions[0].error_code == E.none
    assert read().start_offset == -1


def test_expired_member_gives_back_its_records(broker_factory: Callable[..., Any]) -> None:
    b = broker_factory({**BROKER_OVERRIDES, "group.share.session.timeout.ms": "1000",
                        "group.share.record.lock.duration.ms": "60000"})
    topic, group = create_topic(b.bootstrap), f"sg-{uuid.uuid4().hex[:8]}"
    start_at_earliest(b.bootstrap, group, topic)
    produce(b.bootstrap, topic, 3)
    tid = topic_id(b.bootstrap, topic)
    assert heartbeat(b.bootstrap, group, "gone", 0, [topic]).error_code == E.none
    with WireClient(*host_port(b.bootstrap), timeout=15) as c:
        held = share_fetch(c, group, "gone", 0, tid, wait_ms=2000)
        assert [(a.first_offset, a.last_offset) for a in
                held.responses[0].partitions[0].acquired_records] == [(0, 2)]
        # "gone" stops heartbeating: after its session timeout its records are released,
        # long before their 60 s locks would expire
        started = time.monotonic()
        with WireClient(*host_port(b.bootstrap), timeout=15) as c2:
            def again() -> list[tuple[int, int, int]]:
                r = share_fetch(c2, group, "next", 0, tid, wait_ms=500)
                return [(a.first_offset, a.last_offset, a.delivery_count)
                        for t in r.responses for p in t.partitions for a in p.acquired_records]
            assert wait_until(again, 20, "records released by the expired member") == [
                (0, 2, 2)]
        assert time.monotonic() - started < 30


def test_consumer_group_heartbeat_refuses_a_share_groups_id(bootstrap: str) -> None:
    topic, group = create_topic(bootstrap), f"sg-{uuid.uuid4().hex[:8]}"
    assert heartbeat(bootstrap, group, "m", 0, [topic]).error_code == E.none
    resp = request(bootstrap, 68, 1, {"group_id": group, "member_id": "c1",
                                      "member_epoch": 0, "rebalance_timeout": 30000,
                                      "subscribed_topic_names": [topic],
                                      "topic_partitions": []})
    assert resp.error_code == E.group_id_not_found
    assert resp.error_message == f"Group {group} is not a consumer group."
