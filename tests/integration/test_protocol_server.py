"""Server behaviour over the wire: long polls, fetch limits, list offsets, acks rules,
producer ids, idle close, back-pressure with a slow reader, shutdown during a long poll."""

from __future__ import annotations

import time
import uuid
from typing import Any

from kio.schema.errors import ErrorCode

from net.wire import ConnectionClosed, WireClient
from protocol.build import build
from protocol.codec import request_type
from protocol.records import Record, build_batch, iter_batches
from tests.support.broker import BrokerProcess

TIMEOUT = 10.0


def _addr(bootstrap: str) -> tuple[str, int]:
    host, _, port = bootstrap.rpartition(":")
    return host, int(port)


def req(api_key: int, version: int, **values: Any) -> Any:
    return build(request_type(api_key, version), values)


def create_topic(c: WireClient, name: str, partitions: int = 1, **configs: str) -> None:
    resp = c.request(req(19, 5, topics=[{
        "name": name, "num_partitions": partitions, "replication_factor": 1,
        "assignments": [], "configs": [{"name": k.replace("_", "."), "value": v}
                                       for k, v in configs.items()]}], timeout=10000))
    assert resp.topics[0].error_code == ErrorCode.none, resp


def batch(n: int = 1, size: int = 10, ts: int | None = None) -> bytes:
    now = int(time.time() * 1000) if ts is None else ts
    return build_batch([Record(offset=i, timestamp=now, key=b"k%d" % i, value=b"v" * size,
                               headers=[]) for i in range(n)])


def produce(c: WireClient, topic: str, records: bytes, partition: int = 0, acks: int = 1,
            version: int = 9) -> Any:
    resp = c.request(req(0, version, acks=acks, timeout=5000, transactional_id=None,
                         topic_data=[{"name": topic, "partition_data": [
                             {"index": partition, "records": records}]}]))
    return resp.responses[0].partition_responses[0]


def fetch_req(topic: str, offset: int, *, partitions: tuple[int, ...] = (0,),
              max_wait: int = 0, min_bytes: int = 0, max_bytes: int = 50 << 20,
              partition_max_bytes: int = 10 << 20, session_id: int = 0,
              session_epoch: int = -1, version: int = 12) -> Any:
    return req(1, version, replica_id=-1, max_wait=max_wait, min_bytes=min_bytes,
               max_bytes=max_bytes, isolation_level=0, session_id=session_id,
               session_epoch=session_epoch, forgotten_topics_data=[],
               topics=[{"topic": topic, "partitions": [
                   {"partition": p, "fetch_offset": offset, "partition_max_bytes":
                    partition_max_bytes, "current_leader_epoch": -1} for p in partitions]}])


def offsets_in(records: bytes | None) -> list[int]:
    if not records:
        return []
    return [h.base_offset for _, h in iter_batches(records)]


def test_long_poll_is_woken_by_an_append(bootstrap: str) -> None:
    topic = f"lp-{uuid.uuid4().hex[:8]}"
    with WireClient(*_addr(bootstrap), timeout=TIMEOUT) as a, \
            WireClient(*_addr(bootstrap), timeout=TIMEOUT) as b:
        create_topic(b, topic)
        start = time.monotonic()
        a.send(fetch_req(topic, 0, max_wait=8000, min_bytes=1))
        time.sleep(0.2)  # let the fetch park in the purgatory before producing
        assert produce(b, topic, batch()).error_code == ErrorCode.none
        resp = a.receive()
        elapsed = time.monotonic() - start
        part = resp.responses[0].partitions[0]
        assert part.error_code == ErrorCode.none
        assert offsets_in(part.records) == [0]
        assert part.high_watermark == 1
        assert elapsed < 4.0, f"long poll answered after {elapsed:.2f}s, not on append"


def test_max_wait_is_honoured_when_nothing_arrives(bootstrap: str) -> None:
    topic = f"mw-{uuid.uuid4().hex[:8]}"
    with WireClient(*_addr(bootstrap), timeout=TIMEOUT) as c:
        create_topic(c, topic)
        start = time.monotonic()
        resp = c.request(fetch_req(topic, 0, max_wait=400, min_bytes=1))
        elapsed = time.monotonic() - start
        assert resp.responses[0].partitions[0].records in (b"", None)
        assert 0.3 <= elapsed < 3.0


def test_fetch_byte_limits_return_whole_batches(bootstrap: str) -> None:
    topic = f"lim-{uuid.uuid4().hex[:8]}"
    with WireClient(*_addr(bootstrap), timeout=TIMEOUT) as c:
        create_topic(c, topic, partitions=2)
        for p in (0, 1):
            for _ in range(5):
                assert produce(c, topic, batch(size=10_000), partition=p).error_code == 0
        one = len(batch(size=10_000))
        # partition limit of 1.5 batches: one whole batch
        r = c.request(fetch_req(topic, 0, partition_max_bytes=one + one // 2))
        assert offsets_in(r.responses[0].partitions[0].records) == [0]
        # limit below one batch: the first partition still gets one batch (progress)
        r = c.request(fetch_req(topic, 0, partition_max_bytes=10))
        assert offsets_in(r.responses[0].partitions[0].records) == [0]
        # response limit used up by partition 0: partition 1 is empty
        r = c.request(fetch_req(topic, 0, partitions=(0, 1), max_bytes=one * 2 + 10))
        p0, p1 = r.responses[0].partitions
        assert offsets_in(p0.records) == [0, 1]
        assert offsets_in(p1.records) == []
        assert p1.high_watermark == 5
        # fetch from the middle returns the batch holding the offset
        r = c.request(fetch_req(topic, 3))
        assert offsets_in(r.responses[0].partitions[0].records) == [3, 4]


def test_fetch_errors_and_session_answers(bootstrap: str) -> None:
    topic = f"fe-{uuid.uuid4().hex[:8]}"
    with WireClient(*_addr(bootstrap), timeout=TIMEOUT) as c:
        create_topic(c, topic)
        produce(c, topic, batch())
        r = c.request(fetch_req(topic, 5))
        assert r.responses[0].partitions[0].error_code == ErrorCode.offset_out_of_range
        r = c.request(fetch_req(f"{topic}-missing", 0))
        assert r.responses[0].partitions[0].error_code == \
            ErrorCode.unknown_topic_or_partition
        # KIP-227: asking for a new session (epoch 0) gets a full answer and a session id
        # (test_fetch_sessions.py covers sessions); an incremental epoch needs a session
        r = c.request(fetch_req(topic, 0, session_epoch=0))
        assert r.session_id != 0 and r.error_code == ErrorCode.none
        assert offsets_in(r.responses[0].partitions[0].records) == [0]
        r = c.request(fetch_req(topic, 0, session_id=r.session_id + 1234, session_epoch=1))
        assert r.error_code == ErrorCode.fetch_session_id_not_found
        r = c.request(fetch_req(topic, 0, session_id=0, session_epoch=3))
        assert r.error_code == ErrorCode.fetch_session_id_not_found
        r = c.request(fetch_req(topic, 0))  # sessionless (0, -1): a full answer, no session
        assert r.session_id == 0
        assert offsets_in(r.responses[0].partitions[0].records) == [0]
        # old non-flexible version works too
        r = c.request(fetch_req(topic, 0, version=4))
        assert offsets_in(r.responses[0].partitions[0].records) == [0]


def test_list_offsets_special_timestamps_and_times(bootstrap: str) -> None:
    topic = f"lo-{uuid.uuid4().hex[:8]}"
    with WireClient(*_addr(bootstrap), timeout=TIMEOUT) as c:
        create_topic(c, topic)
        base = 1_700_000_000_000
        for i, ts in enumerate([base, base + 3000, base + 1000]):
            assert produce(c, topic, batch(ts=ts)).base_offset == i

        def lookup(ts: int, version: int = 8) -> tuple[int, int, int]:
            r = c.request(req(2, version, replica_id=-1, isolation_level=0, topics=[
                {"name": topic, "partitions": [{"partition_index": 0, "timestamp": ts,
                                                "current_leader_epoch": -1}]}]))
            p = r.topics[0].partitions[0]
            return int(p.error_code), int(p.offset), int(p.timestamp)

        assert lookup(-2)[:2] == (0, 0)
        assert lookup(-1)[:2] == (0, 3)
        assert lookup(-3) == (0, 1, base + 3000)
        assert lookup(base + 500)[:2] == (0, 1)
        assert lookup(base + 5000)[:2] == (0, -1)
        assert lookup(-1, version=1)[:2] == (0, 3)


def test_acks_all_and_log_append_time(bootstrap: str) -> None:
    with WireClient(*_addr(bootstrap), timeout=TIMEOUT) as c:
        strict = f"isr2-{uuid.uuid4().hex[:8]}"
        create_topic(c, strict, min_insync_replicas="2")
        assert produce(c, strict, batch(), acks=-1).error_code == \
            ErrorCode.not_enough_replicas
        assert produce(c, strict, batch(), acks=1).error_code == ErrorCode.none
        lat = f"lat-{uuid.uuid4().hex[:8]}"
        create_topic(c, lat, message_timestamp_type="LogAppendTime")
        before = time.time()
        part = produce(c, lat, batch(ts=1000), acks=-1)
        assert part.error_code == ErrorCode.none
        assert part.log_append_time is not None
        assert abs(part.log_append_time.timestamp() - before) < 60
        assert produce(c, lat, batch(), acks=2).error_code == ErrorCode.invalid_required_acks


def test_init_producer_id_idempotent_and_transactional(bootstrap: str) -> None:
    with WireClient(*_addr(bootstrap), timeout=TIMEOUT) as c:
        ids = set()
        for version in range(0, 6):
            r = c.request(req(22, version, transactional_id=None, transaction_timeout=60000,
                              producer_id=-1, producer_epoch=-1))
            assert r.error_code == ErrorCode.none and r.producer_epoch == 0
            ids.add(int(r.producer_id))
        assert len(ids) == 6
        # a transactional id goes to its coordinator (issue 10; tests/integration/test_txn_*)
        found = c.request(req(10, 4, key_type=1, coordinator_keys=["tx-1"]))
        assert found.coordinators[0].error_code == ErrorCode.none
        r = c.request(req(22, 4, transactional_id="tx-1", transaction_timeout=60000,
                          producer_id=-1, producer_epoch=-1))
        assert r.error_code == ErrorCode.none and r.producer_epoch == 0
        assert int(r.producer_id) not in ids


def test_describe_cluster(bootstrap: str) -> None:
    with WireClient(*_addr(bootstrap), timeout=TIMEOUT) as c:
        r = c.request(req(60, 1, include_cluster_authorized_operations=False,
                          endpoint_type=1))
        assert r.error_code == ErrorCode.none and r.cluster_id
        assert [b.port for b in r.brokers] == [_addr(bootstrap)[1]]
        assert r.controller_id == r.brokers[0].broker_id


def test_slow_reader_gets_every_response_in_order(bootstrap: str) -> None:
    """Pipeline many large fetches without reading: the broker applies back-pressure
    (bounded buffering) and keeps serving others; reading later yields all, in order."""
    topic = f"slow-{uuid.uuid4().hex[:8]}"
    with WireClient(*_addr(bootstrap), timeout=TIMEOUT) as c:
        create_topic(c, topic)
        for _ in range(4):
            assert produce(c, topic, batch(n=100, size=2000)).error_code == 0
    slow = WireClient(*_addr(bootstrap), timeout=30)
    try:
        n = 150
        for _ in range(n):
            slow.send(fetch_req(topic, 0))
        with WireClient(*_addr(bootstrap), timeout=TIMEOUT) as other:
            assert produce(other, topic, batch()).error_code == ErrorCode.none
        for _ in range(n):
            r = slow.receive()
            assert offsets_in(r.responses[0].partitions[0].records)[0] == 0
    finally:
        slow.close()


def test_idle_connections_are_closed(broker_factory: Any) -> None:
    b = broker_factory({"connections.max.idle.ms": "400"})
    with WireClient(*_addr(b.bootstrap), timeout=TIMEOUT) as c:
        from kio.schema.api_versions.v0.request import ApiVersionsRequest

        assert c.request(ApiVersionsRequest()).error_code == ErrorCode.none
        start = time.monotonic()
        assert c.is_closed_by_peer()
        assert time.monotonic() - start < 5.0


def test_sigterm_during_long_poll_shuts_down_cleanly(fresh_broker: BrokerProcess) -> None:
    topic = f"term-{uuid.uuid4().hex[:8]}"
    c = WireClient(*_addr(fresh_broker.bootstrap), timeout=TIMEOUT)
    try:
        create_topic(c, topic)
        assert produce(c, topic, batch()).error_code == 0
        c.send(fetch_req(topic, 1, max_wait=30_000, min_bytes=1))
        time.sleep(0.2)
        start = time.monotonic()
        fresh_broker.stop()  # SIGTERM; asserts exit code 0
        assert time.monotonic() - start < 10
        try:
            r = c.receive()  # the in-flight long poll was answered before closing
            assert r.responses[0].partitions[0].error_code == ErrorCode.none
        except ConnectionClosed:
            raise AssertionError("in-flight fetch was dropped instead of answered") from None
    finally:
        c.close()
    fresh_broker.start()
    with WireClient(*_addr(fresh_broker.bootstrap), timeout=TIMEOUT) as c2:
        r = c2.request(fetch_req(topic, 0))
        assert offsets_in(r.responses[0].partitions[0].records) == [0]


def test_idempotent_duplicate_returns_original_offset(bootstrap: str) -> None:
    topic = f"idem-{uuid.uuid4().hex[:8]}"
    with WireClient(*_addr(bootstrap), timeout=TIMEOUT) as c:
        create_topic(c, topic)
        r = c.request(req(22, 4, transactional_id=None, transaction_timeout=60000,
                          producer_id=-1, producer_epoch=-1))
        pid = int(r.producer_id)
        now = int(time.time() * 1000)

        def idem(seq: int, n: int = 2) -> bytes:
            return build_batch([Record(offset=i, timestamp=now, key=None, value=b"x",
                                       headers=[]) for i in range(n)],
                               producer_id=pid, producer_epoch=0, base_sequence=seq)

        assert produce(c, topic, batch()).base_offset == 0  # a non-idempotent batch first
        first = produce(c, topic, idem(0))
        assert (first.error_code, first.base_offset) == (ErrorCode.none, 1)
        retry = produce(c, topic, idem(0))  # the same batch again, e.g. a lost response
        assert (retry.error_code, retry.base_offset) == (ErrorCode.none, 1)
        nxt = produce(c, topic, idem(2))
        assert (nxt.error_code, nxt.base_offset) == (ErrorCode.none, 3)
        gap = produce(c, topic, idem(10))
        assert gap.error_code == ErrorCode.out_of_order_sequence_number
        r = c.request(fetch_req(topic, 0))
        assert offsets_in(r.responses[0].partitions[0].records) == [0, 1, 3]
        assert r.responses[0].partitions[0].high_watermark == 5


def test_producer_ids_are_not_reused_after_restart(fresh_broker: BrokerProcess) -> None:
    def allocate() -> int:
        with WireClient(*_addr(fresh_broker.bootstrap), timeout=TIMEOUT) as c:
            r = c.request(req(22, 4, transactional_id=None, transaction_timeout=60000,
                              producer_id=-1, producer_epoch=-1))
            assert r.error_code == ErrorCode.none
            return int(r.producer_id)

    before = {allocate() for _ in range(3)}
    fresh_broker.kill()  # even without a clean shutdown
    fresh_broker.start()
    after = allocate()
    assert after not in before and after > max(before)


def test_zstd_needs_produce_v7_and_fetch_v10(bootstrap: str) -> None:
    """KIP-110: zstd batches are refused in Produce < v7 and withheld from Fetch < v10."""
    topic = f"zstd-{uuid.uuid4().hex[:8]}"
    zstd = build_batch([Record(offset=0, timestamp=int(time.time() * 1000), key=b"k",
                               value=b"z" * 500, headers=[])], compression=4)
    with WireClient(*_addr(bootstrap), timeout=TIMEOUT) as c:
        create_topic(c, topic)
        assert produce(c, topic, zstd, version=6).error_code == \
            ErrorCode.unsupported_compression_type
        assert produce(c, topic, zstd, version=7).error_code == ErrorCode.none
        old = c.request(fetch_req(topic, 0, version=9)).responses[0].partitions[0]
        assert old.error_code == ErrorCode.unsupported_compression_type
        assert not old.records
        new = c.request(fetch_req(topic, 0, version=10)).responses[0].partitions[0]
        assert new.error_code == ErrorCode.none and offsets_in(new.records) == [0]


def test_authorized_operations_when_requested(bootstrap: str) -> None:
    """No authorizer: every operation is allowed (KIP-430 bitfields), INT_MIN if not asked."""
    topic = f"ops-{uuid.uuid4().hex[:8]}"
    with WireClient(*_addr(bootstrap), timeout=TIMEOUT) as c:
        create_topic(c, topic)
        md = c.request(req(3, 9, topics=[{"name": topic}], allow_auto_topic_creation=False,
                           include_cluster_authorized_operations=True,
                           include_topic_authorized_operations=True))
        ops = md.topics[0].topic_authorized_operations
        assert ops & (1 << 3) and ops & (1 << 4) and ops & (1 << 8)  # READ, WRITE, DESCRIBE
        assert md.cluster_authorized_operations & (1 << 12)  # IDEMPOTENT_WRITE
        plain = c.request(req(3, 9, topics=[{"name": topic}], allow_auto_topic_creation=False))
        assert plain.topics[0].topic_authorized_operations == -(2**31)
        dc = c.request(req(60, 0, include_cluster_authorized_operations=True))
        assert dc.cluster_authorized_operations & (1 << 8)


def test_describe_producers_shows_idempotent_state(bootstrap: str) -> None:
    topic = f"dp-{uuid.uuid4().hex[:8]}"
    with WireClient(*_addr(bootstrap), timeout=TIMEOUT) as c:
        create_topic(c, topic)
        pid = int(c.request(req(22, 4, transactional_id=None, transaction_timeout=60000,
                                producer_id=-1, producer_epoch=-1)).producer_id)
        records = build_batch([Record(offset=i, timestamp=1_700_000_000_000 + i, key=None,
                                      value=b"x", headers=[]) for i in range(3)],
                              producer_id=pid, producer_epoch=0, base_sequence=0)
        assert produce(c, topic, records).error_code == ErrorCode.none
        r = c.request(req(61, 0, topics=[{"name": topic, "partition_indexes": [0, 7]}]))
        p0, p7 = r.topics[0].partitions
        assert p7.error_code == ErrorCode.unknown_topic_or_partition
        (state,) = p0.active_producers
        assert (state.producer_id, state.producer_epoch, state.last_sequence) == (pid, 0, 2)
        assert state.current_txn_start_offset == -1


def test_large_appends_on_the_append_thread_keep_order_and_wake_fetches(
    bootstrap: str,
) -> None:
    """Batches >= 512 KiB are written on the append thread: offsets stay in request order,
    the high watermark covers them when the response arrives, long polls are woken."""
    topic = f"big-{uuid.uuid4().hex[:8]}"
    with WireClient(*_addr(bootstrap), timeout=TIMEOUT) as c, \
            WireClient(*_addr(bootstrap), timeout=TIMEOUT) as waiter:
        create_topic(c, topic)
        waiter.send(fetch_req(topic, 0, max_wait=8000, min_bytes=1))
        time.sleep(0.2)
        big = batch(n=6, size=100_000)  # ~600 KB
        assert len(big) >= 512 * 1024
        offsets = []
        for records in (big, batch(), big, batch()):
            part = produce(c, topic, records)
            assert part.error_code == ErrorCode.none
            offsets.append(part.base_offset)
        assert offsets == [0, 6, 7, 13]
        woken = waiter.receive().responses[0].partitions[0]
        assert offsets_in(woken.records)[:1] == [0]
        r = c.request(fetch_req(topic, 6))
        assert r.responses[0].partitions[0].high_watermark == 14


def test_concurrent_producers_get_distinct_contiguous_offsets(bootstrap: str) -> None:
    """Eight connections append small and >= 512 KiB batches to one partition at once:
    every acknowledged batch owns a distinct offset range, the ranges tile the log without
    gaps, and a fetch returns exactly those batches in offset order."""
    import concurrent.futures

    topic = f"conc-{uuid.uuid4().hex[:8]}"
    with WireClient(*_addr(bootstrap), timeout=TIMEOUT) as c:
        create_topic(c, topic)
    big = batch(n=6, size=100_000)
    small = batch(n=3, size=10)

    def run(worker: int) -> list[tuple[int, int]]:
        acked = []
        with WireClient(*_addr(bootstrap), timeout=30) as w:
            for i in range(12):
                records, count = (big, 6) if (worker + i) % 4 == 0 else (small, 3)
                part = produce(w, topic, records)
                assert part.error_code == ErrorCode.none
                acked.append((int(part.base_offset), count))
        return acked

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        ranges = sorted(r for acked in pool.map(run, range(8)) for r in acked)
    expected_next = 0
    for base, count in ranges:
        assert base == expected_next, f"gap or overlap at offset {base}"
        expected_next = base + count
    with WireClient(*_addr(bootstrap), timeout=TIMEOUT) as c:
        seen: list[int] = []
        offset = 0
        while offset < expected_next:
            r = c.request(fetch_req(topic, offset, partition_max_bytes=50 << 20))
            part = r.responses[0].partitions[0]
            assert part.high_watermark == expected_next
            bases = offsets_in(part.records)
            assert bases, "fetch returned nothing below the high watermark"
            seen += bases
            last = list(iter_batches(part.records))[-1][1]
            offset = last.base_offset + last.last_offset_delta + 1
        assert seen == [base for base, _ in ranges]


def test_broker_fetch_max_bytes_caps_the_response(broker_factory: Any) -> None:
    b = broker_factory({"fetch.max.bytes": "25000"})
    topic = "capped"
    with WireClient(*_addr(b.bootstrap), timeout=TIMEOUT) as c:
        create_topic(c, topic)
        for _ in range(5):
            assert produce(c, topic, batch(size=10_000)).error_code == ErrorCode.none
        r = c.request(fetch_req(topic, 0, max_bytes=50 << 20, partition_max_bytes=50 << 20))
        records = r.responses[0].partitions[0].records
        assert offsets_in(records) == [0, 1]  # two whole ~10 KB batches fit in 25,000 bytes
        assert len(records) <= 25_000


def test_metadata_topic_ids_need_v12(bootstrap: str) -> None:
    """Like Kafka: v10-11 refuse topic-id lookups and null names (INVALID_REQUEST); v12
    looks topics up by id (UNKNOWN_TOPIC_ID when absent)."""
    import uuid as _uuid

    topic = f"ids-{_uuid.uuid4().hex[:8]}"
    with WireClient(*_addr(bootstrap), timeout=TIMEOUT) as c:
        create_topic(c, topic)
        by_name = c.request(req(3, 12, topics=[{"name": topic, "topic_id": _uuid.UUID(int=0)}],
                                allow_auto_topic_creation=False))
        topic_id = by_name.topics[0].topic_id
        assert topic_id != _uuid.UUID(int=0)
        for version in (10, 11):
            r = c.request(req(3, version, topics=[{"name": None, "topic_id": topic_id}],
                              allow_auto_topic_creation=False))
            assert r.topics[0].error_code == ErrorCode.invalid_request
        r = c.request(req(3, 12, topics=[{"name": None, "topic_id": topic_id}],
                          allow_auto_topic_creation=False))
        assert (r.topics[0].error_code, r.topics[0].name) == (ErrorCode.none, topic)
        r = c.request(req(3, 12, topics=[{"name": None, "topic_id": _uuid.uuid4()}],
                          allow_auto_topic_creation=False))
        assert r.topics[0].error_code == ErrorCode.unknown_topic_id
