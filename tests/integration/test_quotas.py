"""Client quotas (KIP-13/55/124/219/546) on a real broker: AlterClientQuotas /
DescribeClientQuotas with Kafka's entity, filter and error rules; a librdkafka producer
over its ``producer_byte_rate`` is slowed to within 20% of it and sees
``throttle_time_ms`` while another client keeps its latency; a consumer over
``consumer_byte_rate`` and a client over ``request_percentage`` are throttled and muted;
per-quota metrics; quotas survive a restart (metadata log).

No AdminClient of the installed clients sends these APIs (confluent-kafka 2.16 and
kafka-python 3.0 have none), so they go over the wire as kafka-configs.sh sends them."""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer
from kio.schema.errors import ErrorCode

from net.wire import WireClient
from protocol.build import build
from protocol.codec import request_type
from tests.support.broker import BrokerProcess
from tests.support.metered_broker import metered_broker, metrics_text

pytestmark = pytest.mark.timeout(120)
TIMEOUT = 20.0
QUOTA = 200_000  # bytes per second
VALUE = b"v" * 10_000
#: quota.window.num 2 x 1 s: a client waiting its throttle times moves in bursts with a
#: 2 s period (Kafka's sampled Rate), so a test measures whole periods in seconds
WINDOW_NUM = 2


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    yield from metered_broker(tmp_path_factory.mktemp("quotas"), {
        "num.partitions": "1", "quota.window.num": str(WINDOW_NUM),
        "quota.window.size.seconds": "1", "offsets.topic.num.partitions": "1",
        "group.initial.rebalance.delay.ms": "0"})


def req(api_key: int, version: int, **values: Any) -> Any:
    return build(request_type(api_key, version), values)


def client(node: BrokerProcess, client_id: str = "quota-admin") -> WireClient:
    host, _, port = node.bootstrap.rpartition(":")
    return WireClient(host, int(port), timeout=TIMEOUT, client_id=client_id)


def alter(node: BrokerProcess, entity: list[tuple[str, str | None]],
          ops: list[tuple[str, float, bool]], validate_only: bool = False,
          version: int = 1) -> Any:
    with client(node) as c:
        return c.request(req(49, version, entries=[{
            "entity": [{"entity_type": t, "entity_name": n} for t, n in entity],
            "ops": [{"key": k, "value": v, "remove": r} for k, v, r in ops]}],
            validate_only=validate_only))


def describe(node: BrokerProcess, components: list[tuple[str, int, str | None]],
             strict: bool = False, version: int = 1) -> Any:
    with client(node) as c:
        return c.request(req(48, version, components=[
            {"entity_type": t, "match_type": m, "match": n} for t, m, n in components],
            strict=strict))


def entries(response: Any) -> dict[tuple[tuple[str, str | None], ...], dict[str, float]]:
    assert response.error_code == ErrorCode.none, response
    return {tuple(sorted((e.entity_type, e.entity_name) for e in entry.entity)):
            {v.key: v.value for v in entry.values} for entry in response.entries}


def metrics(node: BrokerProcess) -> str:
    return metrics_text(node, TIMEOUT)


def test_alter_and_describe_client_quotas(node: BrokerProcess) -> None:
    """What ``kafka-configs.sh --entity-type users --entity-name alice --entity-type
    clients --entity-name app --alter --add-config ...`` and ``--describe`` send."""
    r = alter(node, [("user", "alice"), ("client-id", "app")],
              [("producer_byte_rate", 1024.0, False), ("request_percentage", 12.5, False)])
    assert r.entries[0].error_code == ErrorCode.none
    assert [(e.entity_type, e.entity_name) for e in r.entries[0].entity] == [
        ("user", "alice"), ("client-id", "app")]  # echoed as sent
    assert alter(node, [("user", None)], [("consumer_byte_rate", 4096.0, False)],
                 version=0).entries[0].error_code == ErrorCode.none
    both = (("client-id", "app"), ("user", "alice"))
    assert entries(describe(node, [("user", 0, "alice")])) == {
        both: {"producer_byte_rate": 1024.0, "request_percentage": 12.5}}
    assert entries(describe(node, [("user", 0, "alice")], strict=True)) == {}
    assert entries(describe(node, [("user", 1, None)], version=0)) == {
        (("user", None),): {"consumer_byte_rate": 4096.0}}
    assert set(entries(describe(node, [("user", 2, None)]))) >= {both, (("user", None),)}
    # Kafka's filter errors: top-level, entries null
    r = describe(node, [("user", 0, "a"), ("user", 1, None)])
    assert r.error_code == ErrorCode.invalid_request and r.entries is None
    assert r.error_message == "Entity type user cannot appear more than once in the filter."
    assert describe(node, [("group", 2, None)]).error_code == ErrorCode.unsupported_version
    # Kafka's entry errors, each entry on its own
    for entity, op, message in (
            ([("user", "x")], ("no_such_key", 1.0, False), "Invalid configuration key no_such_key"),
            ([("user", "x")], ("producer_byte_rate", -5.0, False),
             "Quota producer_byte_rate must be greater than 0"),
            ([("user", "x")], ("producer_byte_rate", 1.5, False),
             "producer_byte_rate cannot be a fractional value."),
            ([("user", "x"), ("user", "y")], ("producer_byte_rate", 1.0, False),
             "Invalid empty client quota entity, duplicate entity entry user")):
        got = alter(node, entity, [op]).entries[0]
        assert (got.error_code, got.error_message) == (ErrorCode.invalid_request, message)
    r = alter(node, [("user", "dry")], [("producer_byte_rate", 1.0, False)],
              validate_only=True)
    assert r.entries[0].error_code == ErrorCode.none
    assert entries(describe(node, [("user", 0, "dry")])) == {}
    alter(node, [("user", "alice"), ("client-id", "app")],
          [("producer_byte_rate", 0.0, True), ("request_percentage", 0.0, True)])
    alter(node, [("user", None)], [("consumer_byte_rate", 0.0, True)])
    assert entries(describe(node, [("user", 0, "alice")])) == {}
    assert entries(describe(node, [("user", 1, None)])) == {}


def _burst_starts(acks: list[tuple[float, int]], gap: float) -> list[int]:
    return [i for i in range(1, len(acks)) if acks[i][0] - acks[i - 1][0] >= gap]


def test_a_producer_over_its_quota_is_slowed_and_others_are_not(node: BrokerProcess
                                                                 ) -> None:
    topic = f"quota-{uuid.uuid4().hex[:8]}"
    warm = Producer({"bootstrap.servers": node.bootstrap})
    warm.produce(topic, b"create")
    assert warm.flush(TIMEOUT) == 0
    r = alter(node, [("client-id", "slow")], [("producer_byte_rate", float(QUOTA), False)])
    assert r.entries[0].error_code == ErrorCode.none
    throttles: list[int] = []
    slow = Producer({"bootstrap.servers": node.bootstrap, "client.id": "slow",
                     "linger.ms": 5, "queue.buffering.max.messages": 10,
                     "throttle_cb": lambda e: throttles.append(e.throttle_time)})
    acks: list[tuple[float, int]] = []
    stop = threading.Event()
    latencies: list[float] = []

    def healthy() -> None:
        fast = Producer({"bootstrap.servers": node.bootstrap, "client.id": "fast",
                         "linger.ms": 0})
        while not stop.is_set():
            sent = time.monotonic()
            fast.produce(topic, b"ping")
            fast.flush(TIMEOUT)
            latencies.append(time.monotonic() - sent)
            time.sleep(0.02)

    other = threading.Thread(target=healthy)
    other.start()
    start = time.monotonic()
    try:
        while time.monotonic() - start < 9.0:
            try:
                slow.produce(topic, VALUE, on_delivery=lambda e, m: acks.append(
                    (time.monotonic() - start, len(VALUE))) if e is None else None)
            except BufferError:
                slow.poll(0.02)
            slow.poll(0)
        slow.flush(TIMEOUT)
    finally:
        stop.set()
        other.join(TIMEOUT)
    # Waiting its throttle times the producer sends in bursts, one per quota period
    # (WINDOW_NUM windows); the bytes from one burst's start to a later one's are the
    # quota's worth of those whole periods. The first burst (up to a window's worth the
    # window padding lets through) is left out.
    starts = [i for i in _burst_starts(acks, 0.3) if acks[i][0] >= 1.0]
    assert len(starts) >= 2, acks
    first, last = starts[0], starts[-1]
    span = acks[last][0] - acks[first][0]
    rate = sum(n for _, n in acks[first:last]) / span
    assert 0.8 * QUOTA <= rate <= 1.2 * QUOTA, f"{rate:.0f} B/s against {QUOTA}"
    assert span >= 2 * WINDOW_NUM - 0.5  # at least two periods measured
    # overall, far below what the same producer does unthrottled
    assert sum(n for _, n in acks) <= QUOTA * (9.0 + 2 * WINDOW_NUM)
    assert throttles and max(throttles) > 0  # the client saw throttle_time_ms
    # the other client: a produce round trip stays well under a second on a loaded box
    assert len(latencies) >= 20
    assert statistics.median(latencies) < 0.25, latencies
    assert statistics.quantiles(latencies, n=20)[18] < 1.0, latencies
    text = metrics(node)
    assert 'strom_quota_limit{client_id="slow",quota_type="produce",user=""} 200000.0' in text
    assert 'strom_quota_rate{client_id="slow",quota_type="produce",user=""}' in text
    assert 'client_id="fast"' not in text  # no quota, no sensor
    alter(node, [("client-id", "slow")], [("producer_byte_rate", 0.0, True)])


def test_a_consumer_over_its_quota_is_throttled(node: BrokerProcess) -> None:
    topic = f"quota-c-{uuid.uuid4().hex[:8]}"
    # one record per batch: fetches of ~100 kB (a larger first batch is returned whole)
    producer = Producer({"bootstrap.servers": node.bootstrap, "linger.ms": 0,
                         "batch.num.messages": 1})
    for _ in range(60):
        producer.produce(topic, VALUE)
    assert producer.flush(TIMEOUT) == 0
    alter(node, [("user", None), ("client-id", "reader")],
          [("consumer_byte_rate", float(QUOTA), False)])
    throttles: list[int] = []
    consumer = Consumer({"bootstrap.servers": node.bootstrap, "client.id": "reader",
                         "group.id": f"g-{topic}", "auto.offset.reset": "earliest",
                         "fetch.max.bytes": 100_000, "max.partition.fetch.bytes": 100_000,
                         "message.max.bytes": 100_000,
                         "throttle_cb": lambda e: throttles.append(e.throttle_time)})
    consumer.subscribe([topic])
    got = 0
    start = time.monotonic()
    while got < 60 and time.monotonic() - start < TIMEOUT:
        msg = consumer.poll(0.2)
        if msg is not None and msg.error() is None:
            got += 1
    took = time.monotonic() - start
    consumer.close()
    alter(node, [("user", None), ("client-id", "reader")],
          [("consumer_byte_rate", 0.0, True)])
    assert got == 60
    assert throttles and max(throttles) > 0
    # 600 kB at 200 kB/s, less the window the padding lets through at once
    assert took >= (60 * len(VALUE) - WINDOW_NUM * QUOTA) / QUOTA * 0.8, took


def test_request_percentage_mutes_a_busy_client(node: BrokerProcess) -> None:
    """0.01% of a handler = 100 µs of handler time per second: a client sending Metadata
    requests back to back is throttled (at most one window) and held for that long."""
    alter(node, [("client-id", "busy")], [("request_percentage", 0.01, False)])
    try:
        with client(node, "busy") as c:
            throttle, deadline = 0, time.monotonic() + TIMEOUT
            while throttle == 0 and time.monotonic() < deadline:
                response = c.request(req(3, 12, topics=None, allow_auto_topic_creation=False,
                                         include_topic_authorized_operations=False))
                throttle = int(response.throttle_time.total_seconds() * 1000)
            assert 0 < throttle <= 1000  # bounded by one quota window
            sent = time.monotonic()
            c.request(req(18, 3, client_software_name="t", client_software_version="1"))
            assert time.monotonic() - sent >= throttle / 1000 * 0.8  # muted meanwhile
        # another client id is not affected
        with client(node, "idle") as c:
            r = c.request(req(3, 12, topics=None, allow_auto_topic_creation=False,
                              include_topic_authorized_operations=False))
            assert r.throttle_time.total_seconds() == 0
        assert 'strom_quota_rate{client_id="busy",quota_type="request",user=""}' in \
            metrics(node)
    finally:
        alter(node, [("client-id", "busy")], [("request_percentage", 0.0, True)])


def test_quotas_survive_a_restart(node: BrokerProcess) -> None:
    alter(node, [("user", "carol"), ("client-id", None)],
          [("producer_byte_rate", 5000.0, False)])
    alter(node, [("client-id", None)], [("consumer_byte_rate", 7000.0, False)])
    node.restart(clean=False)  # SIGKILL: what was answered is committed in the log
    deadline = time.monotonic() + TIMEOUT
    found: dict = {}
    while time.monotonic() < deadline:
        found = entries(describe(node, []))
        if len(found) >= 2:
            break
        time.sleep(0.1)
    assert found[(("client-id", None), ("user", "carol"))] == {"producer_byte_rate": 5000.0}
    assert found[(("client-id", None),)] == {"consumer_byte_rate": 7000.0}
    alter(node, [("user", "carol"), ("client-id", None)],
          [("producer_byte_rate", 0.0, True)])
    alter(node, [("client-id", None)], [("consumer_byte_rate", 0.0, True)])
