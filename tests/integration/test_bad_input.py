"""Bad input against a running broker; after each case another client must still produce
and consume normally (the broker neither crashes nor wedges).

Cases: unknown API key, truncated frames, frame sizes of 2 GiB and negative, random
garbage, a Produce with a corrupted CRC (CORRUPT_MESSAGE), a batch over max.message.bytes
(MESSAGE_TOO_LARGE), illegal topic names (INVALID_TOPIC_EXCEPTION), an undecodable body,
1,000 concurrent connections opened and closed.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import random
import resource
import socket
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from kio.schema.errors import ErrorCode
from kio.schema.metadata.v9.request import MetadataRequest, MetadataRequestTopic
from kio.schema.produce.v9.request import PartitionProduceData, ProduceRequest, TopicProduceData

from net.wire import WireClient
from protocol.codec import encode_request
from protocol.records import Record, build_batch
from tests.support.broker import BrokerProcess

MAX_MESSAGE_BYTES = 64 * 1024
BROKER_OVERRIDES = {"message.max.bytes": str(MAX_MESSAGE_BYTES)}
TIMEOUT = 10.0


def _addr(bootstrap: str) -> tuple[str, int]:
    host, _, port = bootstrap.rpartition(":")
    return host, int(port)


def assert_healthy(bootstrap: str) -> None:
    """A fresh confluent-kafka producer and consumer round-trip one message."""
    topic = f"healthy-{uuid.uuid4().hex[:10]}"
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "message.timeout.ms": 10000})
    errors: list = []
    p.produce(topic, b"ping", key=b"k", on_delivery=lambda e, m: errors.append(e))
    assert p.flush(TIMEOUT) == 0
    assert errors == [None]
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bad-input-check",
                  "enable.auto.commit": False, "fetch.wait.max.ms": 50})
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        deadline = time.monotonic() + TIMEOUT
        while True:
            assert time.monotonic() < deadline, "message not consumed back"
            msg = c.poll(0.5)
            if msg is not None and msg.error() is None:
                assert msg.value() == b"ping"
                return
    finally:
        c.close()


def assert_closed(sock: socket.socket) -> None:
    sock.settimeout(TIMEOUT)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return
    except (ConnectionResetError, BrokenPipeError):
        return


def _produce_request(topic: str, records: bytes, acks: int = 1) -> ProduceRequest:
    return ProduceRequest(
        transactional_id=None, acks=acks, timeout=datetime.timedelta(seconds=5),
        topic_data=(TopicProduceData(name=topic, partition_data=(
            PartitionProduceData(index=0, records=records),)),),
    )


def _create_topic(bootstrap: str, name: str) -> None:
    with WireClient(*_addr(bootstrap), timeout=TIMEOUT) as c:
        resp = c.request(MetadataRequest(topics=(MetadataRequestTopic(name=name),),
                                         allow_auto_topic_creation=True,
                                         include_cluster_authorized_operations=False,
                                         include_topic_authorized_operations=False))
        assert resp.topics[0].error_code == ErrorCode.none


def _batch(value: bytes = b"v") -> bytes:
    return build_batch([Record(offset=0, timestamp=int(time.time() * 1000), key=b"k",
                               value=value, headers=[])])


def test_unknown_api_key_closes_only_that_connection(bootstrap: str,
                                                      broker: BrokerProcess) -> None:
    with socket.create_connection(_addr(bootstrap), timeout=TIMEOUT) as s:
        body = (1999).to_bytes(2, "big") + (0).to_bytes(2, "big") + (7).to_bytes(4, "big") \
            + (-1).to_bytes(2, "big", signed=True)
        s.sendall(len(body).to_bytes(4, "big") + body)
        assert_closed(s)
    assert_healthy(bootstrap)
    # the whole log: librdkafka's coordinator lookup in assert_healthy may create
    # __consumer_offsets, whose 50 partitions log more than a default tail holds
    assert "unsupported api key" in broker.log_tail(max_bytes=1 << 26)


def test_truncated_frame_then_disconnect(bootstrap: str) -> None:
    with socket.create_connection(_addr(bootstrap), timeout=TIMEOUT) as s:
        s.sendall((1000).to_bytes(4, "big") + b"\x00\x03\x00\x09" + b"x" * 20)
    assert_healthy(bootstrap)


def test_truncated_request_body_closes_connection(bootstrap: str) -> None:
    req = MetadataRequest(topics=(MetadataRequestTopic(name="some-topic"),),
                          allow_auto_topic_creation=False,
                          include_cluster_authorized_operations=False,
                          include_topic_authorized_operations=False)
    raw = encode_request(3, 9, 1, "trunc", req)
    payload = raw[4:-6]  # consistent frame size, but the body stops early
    with socket.create_connection(_addr(bootstrap), timeout=TIMEOUT) as s:
        s.sendall(len(payload).to_bytes(4, "big") + payload)
        assert_closed(s)
    assert_healthy(bootstrap)


@pytest.mark.parametrize("size", [2**31 - 1, 2**31 - 2**20, -1, -(2**31)])
def test_huge_or_negative_frame_size_closes_connection(bootstrap: str, size: int) -> None:
    with socket.create_connection(_addr(bootstrap), timeout=TIMEOUT) as s:
        s.sendall(size.to_bytes(4, "big", signed=True) + b"\x00" * 16)
        assert_closed(s)
    assert_healthy(bootstrap)


def test_random_garbage(bootstrap: str) -> None:
    rng = random.Random(1234)
    for _ in range(20):
        with socket.create_connection(_addr(bootstrap), timeout=TIMEOUT) as s:
            s.sendall(bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 4096))))
    # garbage shaped like a plausible frame: small size, random content
    for _ in range(20):
        junk = os.urandom(rng.randint(4, 200))
        with socket.create_connection(_addr(bootstrap), timeout=TIMEOUT) as s:
            s.sendall(len(junk).to_bytes(4, "big") + junk)
            assert_closed(s)
    assert_healthy(bootstrap)


def test_corrupted_crc_is_corrupt_message(bootstrap: str) -> None:
    topic = f"crc-{uuid.uuid4().hex[:8]}"
    _create_topic(bootstrap, topic)
    batch = bytearray(_batch(b"hello world"))
    batch[-1] ^= 0xFF  # last byte of the last record: covered by the CRC
    with WireClient(*_addr(bootstrap), timeout=TIMEOUT) as c:
        resp = c.request(_produce_request(topic, bytes(batch)))
        part = resp.responses[0].partition_responses[0]
        assert part.error_code == ErrorCode.corrupt_message
        # the same connection keeps working
        ok = c.request(_produce_request(topic, _batch()))
        assert ok.responses[0].partition_responses[0].error_code == ErrorCode.none
        assert ok.responses[0].partition_responses[0].base_offset == 0
    assert_healthy(bootstrap)


def test_batch_over_max_message_bytes_is_message_too_large(bootstrap: str) -> None:
    topic = f"big-{uuid.uuid4().hex[:8]}"
    _create_topic(bootstrap, topic)
    big = _batch(os.urandom(MAX_MESSAGE_BYTES + 1000))
    with WireClient(*_addr(bootstrap), timeout=TIMEOUT) as c:
        resp = c.request(_produce_request(topic, big))
        assert resp.responses[0].partition_responses[0].error_code == \
            ErrorCode.message_too_large
    assert_healthy(bootstrap)


@pytest.mark.parametrize("name", ["bad topic", "bad/topic", "..", "x" * 250, "ünïcode"])
def test_illegal_topic_name_is_invalid_topic_exception(bootstrap: str, name: str) -> None:
    with WireClient(*_addr(bootstrap), timeout=TIMEOUT) as c:
        resp = c.request(_produce_request(name, _batch()))
        assert resp.responses[0].partition_responses[0].error_code == \
            ErrorCode.invalid_topic_exception
        md = c.request(MetadataRequest(topics=(MetadataRequestTopic(name=name),),
                                       allow_auto_topic_creation=True,
                                       include_cluster_authorized_operations=False,
                                       include_topic_authorized_operations=False))
        assert md.topics[0].error_code == ErrorCode.invalid_topic_exception
    assert_healthy(bootstrap)


def test_unknown_topic_produce_is_unknown_topic_or_partition(bootstrap: str) -> None:
    with WireClient(*_addr(bootstrap), timeout=TIMEOUT) as c:
        resp = c.request(_produce_request(f"nope-{uuid.uuid4().hex[:8]}", _batch()))
        assert resp.responses[0].partition_responses[0].error_code == \
            ErrorCode.unknown_topic_or_partition


def test_thousand_concurrent_connections(bootstrap: str) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    socks = []
    try:
        for _ in range(1000):
            s = socket.create_connection(_addr(bootstrap), timeout=TIMEOUT)
            socks.append(s)
        # every connection is served: an ApiVersions v0 on a sample of them answers
        from kio.schema.api_versions.v0.request import ApiVersionsRequest

        frame = encode_request(18, 0, 42, "many", ApiVersionsRequest())
        for s in socks[::50]:
            s.sendall(frame)
        for s in socks[::50]:
            s.settimeout(TIMEOUT)
            head = b""
            while len(head) < 8:
                chunk = s.recv(8 - len(head))
                assert chunk, "connection closed instead of answering"
                head += chunk
            assert head[4:8] == (42).to_bytes(4, "big")
    finally:
        for s in socks:
            s.close()
    assert_healthy(bootstrap)


def test_failed_acks_zero_produce_closes_the_connection(bootstrap: str) -> None:
    """acks=0 has no response to carry an error: like Kafka, the broker closes the
    connection so the producer notices and refreshes its metadata."""
    with WireClient(*_addr(bootstrap), timeout=TIMEOUT) as c:
        c.send_raw(encode_request(0, 9, 5, "acks0",
                                  _produce_request(f"nope-{uuid.uuid4().hex[:8]}", _batch(),
                                                   acks=0)))
        assert c.is_closed_by_peer()
    assert_healthy(bootstrap)


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_announced_but_unsent_frames_do_not_reserve_memory(
    bootstrap: str, broker: BrokerProcess
) -> None:
    """50 peers each announce a 100 MiB request and send 1 KiB: memory follows the bytes
    received (a few MiB per peer), not the 5 GiB announced."""
    assert broker.pid is not None
    before = _rss_mib(broker.pid)
    socks = []
    try:
        for _ in range(50):
            s = socket.create_connection(_addr(bootstrap), timeout=TIMEOUT)
            s.sendall((100 * 1024 * 1024 - 1).to_bytes(4, "big") + b"\x00\x03" + b"x" * 1024)
            socks.append(s)
        assert_healthy(bootstrap)
        grown = _rss_mib(broker.pid) - before
        assert grown < 400, f"broker RSS grew by {grown:.0f} MiB"
    finally:
        for s in socks:
            s.close()
    assert_healthy(bootstrap)


@pytest.mark.parametrize("body_hex", [
    "88d1f98d3469473d8b68ae40242fd404a76d6b23b888c4d954f9e4313e75",  # OffsetFetch v8
    "ffffffff0f" + "00" * 20,  # compact array count near 2**32
])
def test_absurd_array_count_closes_connection_not_broker(bootstrap: str, body_hex: str,
                                                         broker: BrokerProcess) -> None:
    """kio pre-allocates from wire counts; the broker must refuse such a body (closing the
    connection, like Kafka's parser) instead of aborting on a 100 GiB allocation."""
    header = (9).to_bytes(2, "big") + (8).to_bytes(2, "big") + (1).to_bytes(4, "big") \
        + (3).to_bytes(2, "big") + b"fuz" + b"\x00"
    payload = header + bytes.fromhex(body_hex)
    with socket.create_connection(_addr(bootstrap), timeout=TIMEOUT) as s:
        s.sendall(len(payload).to_bytes(4, "big") + payload)
        assert_closed(s)
    assert broker.running
    assert_healthy(bootstrap)


def test_random_requests_for_every_advertised_api(bootstrap: str,
                                                  broker: BrokerProcess) -> None:
    """Valid headers for every advertised (api, version) followed by random bodies: each
    gets an answer or a closed connection, and the broker keeps serving."""
    from kio.schema.api_versions.v0.request import ApiVersionsRequest

    from protocol.headers import request_header_version

    with WireClient(*_addr(bootstrap), timeout=TIMEOUT) as c:
        advertised = [(int(k.api_key), int(k.min_version), int(k.max_version))
                      for k in c.request(ApiVersionsRequest()).api_keys]
    rng = random.Random(20261122)
    for i in range(300):
        key, low, high = rng.choice(advertised)
        version = rng.randint(3 if key == 0 else low, high)
        header = key.to_bytes(2, "big") + version.to_bytes(2, "big") + i.to_bytes(4, "big") \
            + (3).to_bytes(2, "big") + b"fuz" \
            + (b"\x00" if request_header_version(key, version) == 2 else b"")
        body = bytes(rng.getrandbits(8) if rng.random() < 0.3 else 0
                     for _ in range(rng.randint(0, 60)))
        payload = header + body
        with socket.create_connection(_addr(bootstrap), timeout=TIMEOUT) as s:
            s.sendall(len(payload).to_bytes(4, "big") + payload)
            s.settimeout(3.0)  # e.g. a JoinGroup may legitimately wait; not asserted here
            with contextlib.suppress(ConnectionResetError, TimeoutError):
                s.recv(65536)  # a response, or b"" when the broker closed the connection
        assert broker.running, f"broker died on api {key} v{version} body {body.hex()}"
    assert_healthy(bootstrap)


def test_schema_valid_random_requests_never_fail_a_handler(bootstrap: str,
                                                           broker: BrokerProcess) -> None:
    """Requests that are well-formed for their schema but carry random values (hypothesis
    strategies from kio's types), for every advertised API and version: each is answered
    or refused without a handler error, response encoding error or broker crash."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from kio.schema.api_versions.v0.request import ApiVersionsRequest
    from kio.static.primitive import Records

    from protocol.codec import request_type

    st.register_type_strategy(Records, st.binary(max_size=200).map(Records))
    with WireClient(*_addr(bootstrap), timeout=TIMEOUT) as c:
        pairs = [(int(k.api_key), v) for k in c.request(ApiVersionsRequest()).api_keys
                 for v in range(3 if int(k.api_key) == 0 else int(k.min_version),
                                int(k.max_version) + 1)]
    host, port = _addr(bootstrap)

    @settings(max_examples=150, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(pairs).flatmap(
        lambda kv: st.tuples(st.just(kv), st.from_type(request_type(*kv)))))
    def one(item: tuple[tuple[int, int], object]) -> None:
        (key, version), body = item
        try:
            data = encode_request(key, version, 7, "fuzz", body)
        except Exception:  # noqa: BLE001 - the strategy built a value kio cannot encode
            return
        with socket.create_connection((host, port), timeout=TIMEOUT) as s:
            s.sendall(data)
            s.settimeout(2.0)
            with contextlib.suppress(ConnectionResetError, TimeoutError):
                s.recv(1 << 20)

    one()
    assert broker.running
    tail = broker.log_tail()
    for marker in ("handler_failed", "response_encode_failed", "connection_failed"):
        assert marker not in tail, f"{marker} in broker log:\n{tail[-3000:]}"
    assert_healthy(bootstrap)
