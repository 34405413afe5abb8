"""KIP-599 ``controller_mutation_rate`` on a real broker with PLAIN users: set per user
(``kafka-configs.sh --entity-type users --entity-name alice --alter --add-config
controller_mutation_rate=2``), charged per topic with the partitions created or deleted,
as a token bucket of ``controller.quota.window.num`` x ``controller.quota.window.size.seconds``
x rate tokens (here 2 x 1 s x 2 = 4). A strict request (CreateTopics v6+, CreatePartitions
v3+, DeleteTopics v5+) gets THROTTLING_QUOTA_EXCEEDED with throttle_time_ms for every
topic asked while the bucket is in debt and succeeds after waiting; an old version is
permissive: everything is created, the response is throttled. With kafka-python's admin
client (CreateTopics v7: strict), confluent-kafka's (librdkafka sends v4: permissive) and
raw requests; per-bucket metrics."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic
from kafka.admin import KafkaAdminClient
from kio.schema.errors import ErrorCode

from net.client import ClientPool
from net.sasl_login import SaslLogin
from protocol.build import build
from protocol.codec import request_type
from tests.support.broker import BrokerProcess
from tests.support.metered_broker import metered_broker, metrics_text

pytestmark = pytest.mark.timeout(120)
CMR = "controller_mutation_rate"
JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
        'username="admin" password="admin-secret" user_admin="admin-secret" '
        'user_alice="alice-secret" user_bob="bob-secret" user_carol="carol-secret";')
RATE = 2.0
BURST = 4  # controller.quota.window.num 2 x 1 s x 2 per second
TIMEOUT = 20.0


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    yield from metered_broker(tmp_path_factory.mktemp("mutation-quotas"), {
        "listeners": "SASL_PLAINTEXT://127.0.0.1:0",
        "sasl.enabled.mechanisms": "PLAIN",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS,
        "num.partitions": "1", "controller.quota.window.num": "2",
        "controller.quota.window.size.seconds": "1"})


def req(api_key: int, version: int, **values: Any) -> Any:
    return build(request_type(api_key, version), values)


def raw(node: BrokerProcess, user: str, body: Any, client_id: str = "raw") -> Any:
    """One request as ``user`` (PLAIN) over the wire."""
    host, _, port = node.bootstrap.rpartition(":")

    async def go() -> Any:
        pool = ClientPool(client_id=client_id, connect_timeout=10,
                          sasl=SaslLogin("PLAIN", user, f"{user}-secret"))
        try:
            return await pool.request(host, int(port), body, timeout=TIMEOUT)
        finally:
            pool.close()

    return asyncio.run(go())


def set_rate(node: BrokerProcess, entity: list[tuple[str, str | None]],
             rate: float | None) -> None:
    r = raw(node, "admin", req(49, 1, validate_only=False, entries=[{
        "entity": [{"entity_type": t, "entity_name": n} for t, n in entity],
        "ops": [{"key": CMR, "value": rate or 0.0, "remove": rate is None}]}]))
    assert r.entries[0].error_code == ErrorCode.none, r


def create_raw(node: BrokerProcess, user: str, version: int, names: list[str],
               partitions: int = 1) -> Any:
    return raw(node, user, req(19, version, timeout_ms=10_000, validate_only=False,
                               topics=[{"name": n, "num_partitions": partitions,
                                        "replication_factor": 1, "assignments": [],
                                        "configs": []} for n in names]))


def ms(throttle: Any) -> int:
    return int(throttle.total_seconds() * 1000)


def names(prefix: str, count: int) -> list[str]:
    tag = uuid.uuid4().hex[:6]
    return [f"{prefix}-{tag}-{i}" for i in range(count)]


def sasl(user: str) -> dict[str, str]:
    return {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
            "sasl.username": user, "sasl.password": f"{user}-secret"}


def test_strict_create_topics_refuses_the_excess_then_succeeds(node: BrokerProcess) -> None:
    """Raw CreateTopics v7 of 6 one-partition topics as alice at 2/s (4 tokens): the first
    5 are created (the fifth takes the bucket into debt, strict admits it whole), the sixth
    is THROTTLING_QUOTA_EXCEEDED with Kafka's message and ~500 ms throttle time; after
    waiting it, the topic is created (a bucket not in debt admits a topic whole); bob (no
    quota) is not held back; DeleteTopics v6 and CreatePartitions v3 are refused while in
    debt and pass once it is paid."""
    set_rate(node, [("user", "alice")], RATE)
    try:
        wanted = names("strict", 6)
        r = create_raw(node, "alice", 7, wanted)
        codes = [t.error_code for t in r.topics]
        assert codes == [ErrorCode.none] * 5 + [ErrorCode.throttling_quota_exceeded], r
        assert r.topics[5].error_message == "The throttling quota has been exceeded."
        # (1 token of debt) / 2 per second = 500 ms, less the time since it was recorded
        assert 0 < ms(r.throttle_time) <= 500, r.throttle_time
        assert create_raw(node, "bob", 7, names("free", 8)).topics[7].error_code == \
            ErrorCode.none
        time.sleep(ms(r.throttle_time) / 1000 + 0.05)
        # not in debt: admitted whole, even 4 partitions, and not throttled
        again = create_raw(node, "alice", 7, [wanted[5]], partitions=4)
        assert again.topics[0].error_code == ErrorCode.none, again
        assert ms(again.throttle_time) == 0
        # DeleteTopics v6 and CreatePartitions v3 are charged too: the bucket is about 4
        # tokens (2 s) in debt, so both are refused until it refills
        d = raw(node, "alice", req(20, 6, timeout_ms=10_000, topics=[
            {"name": wanted[0], "topic_id": uuid.UUID(int=0)}]))
        assert d.responses[0].error_code == ErrorCode.throttling_quota_exceeded, d
        p = raw(node, "alice", req(37, 3, timeout_ms=10_000, validate_only=False, topics=[
            {"name": wanted[1], "count": 3, "assignments": None}]))
        assert p.results[0].error_code == ErrorCode.throttling_quota_exceeded, p
        assert ms(p.throttle_time) > 0
        time.sleep(ms(p.throttle_time) / 1000 + 0.05)
        p = raw(node, "alice", req(37, 3, timeout_ms=10_000, validate_only=False, topics=[
            {"name": wanted[1], "count": 3, "assignments": None}]))
        assert p.results[0].error_code == ErrorCode.none, p
    finally:
        set_rate(node, [("user", "alice")], None)


def test_old_create_topics_is_permissive(node: BrokerProcess) -> None:
    """CreateTopics v5 (before KIP-599's strict v6): 6 topics of 2 partitions at 4 tokens
    are all created; the response is throttled by the debt, (12 - 4) / 2 = 4 s less the
    time since it was recorded; the next strict request is then refused."""
    set_rate(node, [("user", "carol")], RATE)
    try:
        r = create_raw(node, "carol", 5, names("permissive", 6), partitions=2)
        assert [t.error_code for t in r.topics] == [ErrorCode.none] * 6, r
        assert 2000 < ms(r.throttle_time) <= 4000, r.throttle_time
        s = create_raw(node, "carol", 7, names("after", 1))
        assert s.topics[0].error_code == ErrorCode.throttling_quota_exceeded, s
    finally:
        set_rate(node, [("user", "carol")], None)


def test_confluent_admin_client_is_throttled_permissively(node: BrokerProcess) -> None:
    """librdkafka's AdminClient sends CreateTopics v4, before KIP-599's strict v6: a burst
    beyond the bucket is created whole and the response throttled (``throttle_cb`` reports
    it); partitions added then are charged too."""
    set_rate(node, [("user", "alice")], RATE)
    try:
        throttles: list[int] = []
        admin = AdminClient({"bootstrap.servers": node.bootstrap, **sasl("alice"),
                             "throttle_cb": lambda e: throttles.append(e.throttle_time)})
        wanted = names("rdkafka", BURST + 3)
        futures = admin.create_topics([NewTopic(n, 1, 1) for n in wanted],
                                      operation_timeout=10, request_timeout=TIMEOUT)
        for future in futures.values():
            assert future.result(timeout=TIMEOUT) is None
        end = time.monotonic() + 5
        while not throttles and time.monotonic() < end:
            admin.poll(0.1)
        # 7 tokens taken from 4: (7 - 4) / 2 s, less the time to commit and answer
        assert throttles and 0 < max(throttles) <= 1500, throttles
        more = admin.create_partitions([NewPartitions(wanted[0], 5)],
                                       operation_timeout=10, request_timeout=TIMEOUT)
        for future in more.values():
            assert future.result(timeout=TIMEOUT) is None
        # 4 more partitions: about 2 s of debt whatever librdkafka waited before sending;
        # CreatePartitions v3 is strict, so it is refused meanwhile
        p = raw(node, "alice", req(37, 3, timeout_ms=10_000, validate_only=False, topics=[
            {"name": wanted[1], "count": 2, "assignments": None}]))
        assert p.results[0].error_code == ErrorCode.throttling_quota_exceeded, p
    finally:
        set_rate(node, [("user", "alice")], None)


def test_kafka_python_admin_client_sees_throttling_quota_exceeded(node: BrokerProcess) -> None:
    """kafka-python's KafkaAdminClient (raise_errors=False): the excess topics answer
    THROTTLING_QUOTA_EXCEEDED; a client-id default quota applies to its client id."""
    set_rate(node, [("client-id", None)], RATE)
    admin = KafkaAdminClient(bootstrap_servers=node.bootstrap, client_id="kp-admin",
                             security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN",
                             sasl_plain_username="bob", sasl_plain_password="bob-secret",
                             request_timeout_ms=int(TIMEOUT * 1000))
    try:
        wanted = names("kpython", BURST + 3)
        result = admin.create_topics({n: {"num_partitions": 1, "replication_factor": 1}
                                      for n in wanted}, raise_errors=False)
        codes = {t["name"]: t["error_code"] for t in result["topics"]}
        assert [codes[n] for n in wanted] == [0] * (BURST + 1) + \
            [int(ErrorCode.throttling_quota_exceeded)] * 2, codes
        time.sleep(1.6)  # kafka-python also pauses the node for the throttle time
        again = admin.create_topics({wanted[-1]: {"num_partitions": 1,
                                                  "replication_factor": 1}})
        assert again["topics"][0]["error_code"] == 0
    finally:
        admin.close()
        set_rate(node, [("client-id", None)], None)


def test_mutation_metrics_and_refusals(node: BrokerProcess) -> None:
    """Per-bucket gauges after a throttled request; a fractional or negative rate and an ip
    entity are refused with Kafka's messages."""
    set_rate(node, [("user", "alice"), ("client-id", "metrics")], 1.0)
    try:
        r = raw(node, "alice", req(19, 7, timeout_ms=10_000, validate_only=False, topics=[
            {"name": n, "num_partitions": 2, "replication_factor": 1, "assignments": [],
             "configs": []} for n in names("metric", 3)]), client_id="metrics")
        assert [t.error_code for t in r.topics][-1] == ErrorCode.throttling_quota_exceeded
        text = metrics_text(node)
        labels = '{client_id="metrics",user="alice"}'
        assert f"strom_controller_mutation_limit{labels} 1.0" in text
        tokens = [ln for ln in text.splitlines()
                  if ln.startswith(f"strom_controller_mutation_tokens{labels}")]
        assert tokens and float(tokens[0].split()[-1]) < 0, tokens
        assert f"strom_controller_mutation_throttle_time_ms{labels}" in text
    finally:
        set_rate(node, [("user", "alice"), ("client-id", "metrics")], None)
    for entity, value, message in (
            ([("user", "x")], -1.0, f"Quota {CMR} must be greater than 0"),
            ([("ip", "127.0.0.1")], 2.0, f"Invalid configuration key {CMR}")):
        r = raw(node, "admin", req(49, 1, validate_only=False, entries=[{
            "entity": [{"entity_type": t, "entity_name": n} for t, n in entity],
            "ops": [{"key": CMR, "value": value, "remove": False}]}]))
        assert (r.entries[0].error_code, r.entries[0].error_message) == \
            (ErrorCode.invalid_request, message)


def metadata_auto(node: BrokerProcess, user: str, client_id: str, topics: list[str]) -> Any:
    """Metadata v12 asking for ``topics`` with allow_auto_topic_creation, as ``user``."""
    return raw(node, user, req(3, 12, topics=[
        {"name": n, "topic_id": uuid.UUID(int=0)} for n in topics],
        allow_auto_topic_creation=True, include_topic_authorized_operations=False),
        client_id=client_id)


def test_auto_created_topics_are_charged_to_the_client(node: BrokerProcess) -> None:
    """Metadata auto-creation is charged to the asking client's bucket as a strict
    CreateTopics (Kafka's broker sends it to the controller in an Envelope with the
    Metadata request's principal and client id, at CreateTopics v7): bob/"auto" at 0.5/s
    holds 1 token, so of 3 one-partition topics in one Metadata request the first takes
    the last token, the second is admitted into debt, the third is refused
    (LEADER_NOT_AVAILABLE, no partitions, not created); the Metadata response is not
    throttled; another client id creates that topic; a strict CreateTopics of bob/"auto"
    is refused from the same bucket; once the debt is paid, auto-creation works again."""
    set_rate(node, [("user", "bob"), ("client-id", "auto")], 0.5)
    try:
        wanted = names("auto", 4)
        first = metadata_auto(node, "bob", "auto", wanted[:3])
        codes = {t.name: (t.error_code, len(t.partitions)) for t in first.topics}
        assert codes == {wanted[0]: (ErrorCode.none, 1), wanted[1]: (ErrorCode.none, 1),
                         wanted[2]: (ErrorCode.leader_not_available, 0)}, first
        assert ms(first.throttle_time) == 0
        s = create_raw(node, "bob", 7, [wanted[3]])
        assert s.topics[0].error_code == ErrorCode.none, s  # bob alone has no quota
        c = raw(node, "bob", req(19, 7, timeout_ms=10_000, validate_only=False, topics=[
            {"name": f"{wanted[3]}-x", "num_partitions": 1, "replication_factor": 1,
             "assignments": [], "configs": []}]), client_id="auto")
        assert c.topics[0].error_code == ErrorCode.throttling_quota_exceeded, c
        # (1 token of debt) / 0.5 per second = 2 s, less the time since it was recorded
        assert 0 < ms(c.throttle_time) <= 2000, c.throttle_time
        other = metadata_auto(node, "bob", "other", [wanted[2]])
        assert other.topics[0].error_code == ErrorCode.none, other
        time.sleep(ms(c.throttle_time) / 1000 + 0.05)
        again = metadata_auto(node, "bob", "auto", [f"{wanted[3]}-x"])
        assert again.topics[0].error_code == ErrorCode.none, again
    finally:
        set_rate(node, [("user", "bob"), ("client-id", "auto")], None)
    refused = [ln for ln in node.log_path.read_text(errors="replace").splitlines()
               if '"auto_create_refused"' in ln and wanted[2] in ln]
    assert refused and "THROTTLING_QUOTA_EXCEEDED" in refused[0].upper(), refused
