"""Incremental fetch sessions (KIP-227) over the wire: a session opens with a full answer
and an id; incremental requests carry only changed partitions and are answered with only
the partitions that have news; forgotten partitions leave the session; wrong epochs and
unknown ids get their errors; epoch -1 closes the session; an incremental long poll
wakes on an append to any partition of the session."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from kio.schema.errors import ErrorCode

from net.wire import WireClient
from protocol.build import build
from protocol.codec import request_type
from protocol.records import iter_batches

TIMEOUT = 20.0


@pytest.fixture
def topic(bootstrap: str) -> str:
    name = f"fs-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(name, 3, 1)])
    admin.close()
    return name


def produce(bootstrap: str, topic: str, partition: int, n: int = 1) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for i in range(n):
        producer.send(topic, b"v%d" % i, partition=partition)
    producer.flush(TIMEOUT)
    producer.close()


def fetch(c: WireClient, session_id: int, epoch: int, parts: dict[int, int], topic: str,
          forgotten: list[int] = (), max_wait_ms: int = 0) -> Any:  # type: ignore[assignment]
    return c.request(build(request_type(1, 12), dict(
        replica_id=-1, max_wait=max_wait_ms, min_bytes=1, max_bytes=1 << 20,
        isolation_level=0, session_id=session_id, session_epoch=epoch, rack_id="",
        forgotten_topics_data=[{"topic": topic, "partitions": list(forgotten)}]
        if forgotten else [],
        topics=[{"topic": topic, "partitions": [
            {"partition": p, "fetch_offset": offset, "partition_max_bytes": 1 << 20,
             "current_leader_epoch": -1, "last_fetched_epoch": -1, "log_start_offset": -1}
            for p, offset in parts.items()]}] if parts else [])))


def shown(resp: Any) -> dict[int, int]:
    """partition -> records in it, for every partition the response lists."""
    assert resp.error_code == ErrorCode.none, resp.error_code
    return {p.partition_index: sum(h.records_count
                                   for _, h in iter_batches(bytes(p.records or b"")))
            for t in resp.responses for p in t.partitions}


def test_a_session_answers_only_what_changed(bootstrap: str, topic: str) -> None:
    produce(bootstrap, topic, 0, 2)
    host, _, port = bootstrap.rpartition(":")
    with WireClient(host, int(port), timeout=TIMEOUT) as c:
        opened = fetch(c, 0, 0, {0: 0, 1: 0, 2: 0}, topic)
        sid = opened.session_id
        assert sid != 0
        assert shown(opened) == {0: 2, 1: 0, 2: 0}  # the full answer

        assert shown(fetch(c, sid, 1, {0: 2}, topic)) == {}  # nothing new anywhere
        produce(bootstrap, topic, 2)
        assert shown(fetch(c, sid, 2, {}, topic)) == {2: 1}  # news on partition 2 only

        # partition 2 is forgotten: new records there are no longer reported
        produce(bootstrap, topic, 2)
        produce(bootstrap, topic, 1)
        assert shown(fetch(c, sid, 3, {}, topic, forgotten=[2])) == {1: 1}

        for bad_epoch in (3, 5, -2):
            resp = fetch(c, sid, bad_epoch, {}, topic)
            assert resp.error_code == ErrorCode.invalid_fetch_session_epoch
            assert resp.responses == ()
        unknown = fetch(c, sid + 1000, 1, {}, topic)
        assert unknown.error_code == ErrorCode.fetch_session_id_not_found

        closed = fetch(c, sid, -1, {0: 0}, topic)
        assert closed.session_id == 0 and shown(closed) == {0: 2}
        assert fetch(c, sid, 4, {}, topic).error_code == ErrorCode.fetch_session_id_not_found


def test_an_incremental_long_poll_wakes_on_any_session_partition(
        bootstrap: str, topic: str) -> None:
    host, _, port = bootstrap.rpartition(":")
    with WireClient(host, int(port), timeout=TIMEOUT) as c:
        sid = fetch(c, 0, 0, {0: 0, 1: 0, 2: 0}, topic).session_id
        assert sid != 0
        later = threading.Timer(0.3, produce, (bootstrap, topic, 1))
        later.start()
        try:
            started = time.monotonic()
            resp = fetch(c, sid, 1, {}, topic, max_wait_ms=10_000)
            waited = time.monotonic() - started
        finally:
            later.join()
        assert shown(resp) == {1: 1}
        assert 0.2 < waited < 8.0
