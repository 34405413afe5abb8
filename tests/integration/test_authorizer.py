"""The StandardAuthorizer on one broker (SASL_PLAINTEXT, SCRAM users; ``super.users`` =
User:admin): ACL management with confluent-kafka's AdminClient and kafka-python's admin
client (create, describe with filters, delete; prefixed; deny beats allow; super users);
produce / consume / join group / create topic / describe configs without the ACL get
Kafka's code and nothing is appended or joined; Metadata omits undescribable topics and
auto-creation needs CREATE; and the bypass sweep: every API ApiVersions advertises, sent
as a principal with no ACLs, is refused with an authorization error (or shows nothing)
and leaves an ``authorization_denied`` line naming its API key, and sent unauthenticated
on the SASL listener closes the connection (ApiVersions and the SASL exchange aside)."""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import scramp
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ConfigResource,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)
from kafka.admin import ACL, ACLFilter, KafkaAdminClient, ResourcePattern, ResourcePatternFilter
from kafka.admin import ACLOperation as KpOp
from kafka.admin import ACLPermissionType as KpPerm
from kafka.admin import ACLResourcePatternType as KpPattern
from kafka.admin import ResourceType as KpResource
from kio.schema.errors import ErrorCode

from net.wire import ConnectionClosed, WireClient
from protocol.build import build
from protocol.codec import request_type
from protocol.records import Record, build_batch
from tests.support.broker import BrokerProcess

pytestmark = pytest.mark.timeout(150)
TIMEOUT = 20.0
AUTHZ_CODES = {int(ErrorCode.topic_authorization_failed),
               int(ErrorCode.group_authorization_failed),
               int(ErrorCode.cluster_authorization_failed),
               int(ErrorCode.transactional_id_authorization_failed)}
USERS = {"admin": "admin-secret", "alice": "alice-secret", "bob": "bob-secret"}
SECRET = "secret-topic"
GROUP = "secret-group"
TXN = "secret-txn"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    proc = BrokerProcess(tmp_path_factory.mktemp("authz"), {
        "listeners": "SASL_PLAINTEXT://127.0.0.1:0",
        "sasl.enabled.mechanisms": "SCRAM-SHA-256",
        "strom.add.scram": ";".join(f"SCRAM-SHA-256=[name={u},password={p}]"
                                    for u, p in USERS.items()),
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": "User:admin",
        "num.partitions": "1",
        "offsets.topic.num.partitions": "1",
        "group.initial.rebalance.delay.ms": "0",
    })
    proc.start()
    try:
        end = time.monotonic() + TIMEOUT
        while True:  # the bootstrap users are written just after the controller starts
            try:
                sasl_client(proc.bootstrap, "admin").close()
                break
            except AssertionError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.1)
        admin = AdminClient(cfl(proc.bootstrap, "admin"))
        for f in admin.create_topics([NewTopic(SECRET, 1, 1)]).values():
            f.result(TIMEOUT)
        producer = Producer(cfl(proc.bootstrap, "admin"))
        producer.produce(SECRET, b"classified")
        assert producer.flush(TIMEOUT) == 0
        consumer = Consumer({**cfl(proc.bootstrap, "admin"), "group.id": GROUP,
                             "enable.auto.commit": False, "auto.offset.reset": "earliest"})
        consumer.subscribe([SECRET])
        while consumer.poll(0.5) is None and time.monotonic() < end + TIMEOUT:
            pass
        consumer.commit(asynchronous=False)
        consumer.close()
        yield proc
    finally:
        proc.close()


def cfl(bootstrap: str, user: str, password: str | None = None) -> dict[str, Any]:
    return {"bootstrap.servers": bootstrap, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": "SCRAM-SHA-256", "sasl.username": user,
            "sasl.password": password or USERS[user]}


def req(api_key: int, version: int, values: dict[str, Any]) -> Any:
    return build(request_type(api_key, version), values)


def sasl_client(bootstrap: str, user: str) -> WireClient:
    """A raw connection authenticated as ``user`` (SCRAM-SHA-256)."""
    host, _, port = bootstrap.rpartition(":")
    c = WireClient(host, int(port), timeout=TIMEOUT)
    try:
        assert c.request(req(17, 1, {"mechanism": "SCRAM-SHA-256"})).error_code == 0
        client = scramp.ScramClient(["SCRAM-SHA-256"], user, USERS[user])
        r = c.request(req(36, 2, {"auth_bytes": client.get_client_first().encode()}))
        assert r.error_code == ErrorCode.none, r
        client.set_server_first(r.auth_bytes.decode())
        r = c.request(req(36, 2, {"auth_bytes": client.get_client_final().encode()}))
        assert r.error_code == ErrorCode.none, r
    except ConnectionClosed as exc:
        c.close()
        raise AssertionError(f"{user} could not log in") from exc
    except AssertionError:
        c.close()
        raise
    return c


def error_codes(entity: Any) -> list[int]:
    """Every ``*error_code`` field of a kio entity, recursively."""
    found: list[int] = []
    if dataclasses.is_dataclass(entity):
        for f in dataclasses.fields(entity):
            value = getattr(entity, f.name)
            if f.name.endswith("error_code"):
                found.append(int(value))
            else:
                found += error_codes(value)
    elif isinstance(entity, tuple):
        for item in entity:
            found += error_codes(item)
    return found


def denials(proc: BrokerProcess) -> list[dict[str, Any]]:
    out = []
    for line in proc.log_path.read_text().splitlines():
        if line.startswith("{") and '"authorization_denied"' in line:
            out.append(json.loads(line))
    return out


def end_offset(bootstrap: str, topic: str) -> int:
    c = Consumer({**cfl(bootstrap, "admin"), "group.id": "probe"})
    try:
        from confluent_kafka import TopicPartition
        return c.get_watermark_offsets(TopicPartition(topic, 0), timeout=TIMEOUT)[1]
    finally:
        c.close()


# ---- ACL management ----------------------------------------------------------------------
def test_acl_management_with_confluent_admin(node: BrokerProcess) -> None:
    admin = AdminClient(cfl(node.bootstrap, "admin"))
    topic = f"cfl-acl-{uuid.uuid4().hex[:6]}"
    acls = [
        AclBinding(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, "User:alice",
                   "*", AclOperation.READ, AclPermissionType.ALLOW),
        AclBinding(ResourceType.TOPIC, f"{topic}-pre", ResourcePatternType.PREFIXED,
                   "User:alice", "*", AclOperation.WRITE, AclPermissionType.ALLOW),
        AclBinding(ResourceType.GROUP, f"{topic}-g", ResourcePatternType.LITERAL,
                   "User:bob", "*", AclOperation.ALL, AclPermissionType.DENY),
    ]
    for f in admin.create_acls(acls).values():
        f.result(TIMEOUT)
    mine = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, "User:alice",
                            None, AclOperation.ANY, AclPermissionType.ANY)
    found = admin.describe_acls(mine).result(TIMEOUT)
    assert {(b.name, b.resource_pattern_type) for b in found} >= {
        (topic, ResourcePatternType.LITERAL), (f"{topic}-pre", ResourcePatternType.PREFIXED)}
    assert all(b.principal == "User:alice" for b in found)
    match = AclBindingFilter(ResourceType.TOPIC, f"{topic}-pre-x", ResourcePatternType.MATCH,
                             None, None, AclOperation.ANY, AclPermissionType.ANY)
    assert [b.name for b in admin.describe_acls(match).result(TIMEOUT)] == [f"{topic}-pre"]
    deny = AclBindingFilter(ResourceType.GROUP, None, ResourcePatternType.ANY, None, None,
                            AclOperation.ANY, AclPermissionType.DENY)
    assert f"{topic}-g" in [b.name for b in admin.describe_acls(deny).result(TIMEOUT)]
    bad = AclBinding(ResourceType.BROKER, "not-the-cluster", ResourcePatternType.LITERAL,
                     "User:alice", "*", AclOperation.ALTER, AclPermissionType.ALLOW)
    with pytest.raises(KafkaException) as info:
        list(admin.create_acls([bad]).values())[0].result(TIMEOUT)
    assert info.value.args[0].code() == ErrorCode.invalid_request
    everything_of_topic = AclBindingFilter(
        ResourceType.TOPIC, None, ResourcePatternType.ANY, "User:alice", None,
        AclOperation.ANY, AclPermissionType.ANY)
    deleted = list(admin.delete_acls([everything_of_topic]).values())[0].result(TIMEOUT)
    assert {b.name for b in deleted} >= {topic, f"{topic}-pre"}
    assert not [b for b in admin.describe_acls(mine).result(TIMEOUT)
                if b.name.startswith(topic)]
    with sasl_client(node.bootstrap, "bob") as c:  # DESCRIBE on the cluster is needed
        r = c.request(req(29, 3, {"resource_type_filter": 1, "resource_name_filter": None,
                                  "pattern_type_filter": 1, "operation": 1,
                                  "permission_type": 1}))
        assert r.error_code == ErrorCode.cluster_authorization_failed and not r.resources


def test_acl_management_with_kafka_python_admin(node: BrokerProcess) -> None:
    admin = KafkaAdminClient(bootstrap_servers=node.bootstrap,
                             security_protocol="SASL_PLAINTEXT",
                             sasl_mechanism="SCRAM-SHA-256", sasl_plain_username="admin",
                             sasl_plain_password=USERS["admin"])
    try:
        topic = f"kp-acl-{uuid.uuid4().hex[:6]}"
        acl = ACL(principal="User:bob", host="*", operation=KpOp.DESCRIBE,
                  permission_type=KpPerm.ALLOW,
                  resource_pattern=ResourcePattern(KpResource.TOPIC, topic,
                                                   KpPattern.PREFIXED))
        result = admin.create_acls([acl])
        assert not result["failed"], result
        flt = ACLFilter(principal="User:bob", host="*", operation=KpOp.ANY,
                        permission_type=KpPerm.ANY,
                        resource_pattern=ResourcePatternFilter(KpResource.TOPIC, topic,
                                                               KpPattern.PREFIXED))
        acls, error = admin.describe_acls(flt)
        assert error.errno == 0 and [a.resource_pattern.resource_name for a in acls] == [topic]
        [(_, affected, err)] = admin.delete_acls([flt])
        assert err.errno == 0
        assert [a.resource_pattern.resource_name for a in affected] == [topic]
        acls, _ = admin.describe_acls(flt)
        assert acls == []
    finally:
        admin.close()


# ---- enforcement --------------------------------------------------------------------------
def grant(bootstrap: str, *bindings: AclBinding) -> None:
    admin = AdminClient(cfl(bootstrap, "admin"))
    for f in admin.create_acls(list(bindings)).values():
        f.result(TIMEOUT)


def allow(rtype: ResourceType, name: str, op: AclOperation, user: str = "alice",
          pattern: ResourcePatternType = ResourcePatternType.LITERAL,
          perm: AclPermissionType = AclPermissionType.ALLOW) -> AclBinding:
    return AclBinding(rtype, name, pattern, f"User:{user}", "*", op, perm)


def test_without_acls_nothing_is_written_read_joined_created_or_described(
        node: BrokerProcess) -> None:
    before = end_offset(node.bootstrap, SECRET)
    with sasl_client(node.bootstrap, "alice") as c:
        batch = bytes(build_batch([Record(value=b"sneaky")]))
        r = c.request(req(0, 9, {"acks": -1, "timeout": 5000, "topic_data": [
            {"name": SECRET, "partition_data": [{"index": 0, "records": batch}]}]}))
        assert r.responses[0].partition_responses[0].error_code == \
            ErrorCode.topic_authorization_failed
        r = c.request(req(1, 12, {"replica_id": -1, "max_wait": 0, "min_bytes": 1,
                                  "max_bytes": 1 << 20, "session_epoch": -1, "topics": [
            {"topic": SECRET, "partitions": [{"partition": 0, "fetch_offset": 0,
                                             "partition_max_bytes": 1 << 20,
                                             "current_leader_epoch": -1,
                                             "last_fetched_epoch": -1,
                                             "log_start_offset": -1}]}]}))
        part = r.responses[0].partitions[0]
        assert part.error_code == ErrorCode.topic_authorization_failed and not part.records
        r = c.request(req(11, 5, {"group_id": "alice-group", "session_timeout": 10000,
                                  "rebalance_timeout": 10000, "member_id": "",
                                  "protocol_type": "consumer",
                                  "protocols": [{"name": "range", "metadata": b""}]}))
        assert r.error_code == ErrorCode.group_authorization_failed
        r = c.request(req(19, 5, {"topics": [{"name": "alice-new", "num_partitions": 1,
                                              "replication_factor": 1}],
                                  "timeout": 5000}))
        assert r.topics[0].error_code == ErrorCode.topic_authorization_failed
        r = c.request(req(32, 4, {"resources": [
            {"resource_type": 2, "resource_name": SECRET, "configuration_keys": None}]}))
        assert r.results[0].error_code == ErrorCode.topic_authorization_failed
        assert r.results[0].configs == ()
        meta = c.request(req(3, 12, {"topics": None, "allow_auto_topic_creation": True}))
        assert [t.name for t in meta.topics] == []  # nothing it may describe
        meta = c.request(req(3, 12, {"topics": [{"name": SECRET}],
                                     "allow_auto_topic_creation": True}))
        assert meta.topics[0].error_code == ErrorCode.topic_authorization_failed
    assert end_offset(node.bootstrap, SECRET) == before  # nothing appended
    admin = AdminClient(cfl(node.bootstrap, "admin"))
    groups = admin.describe_consumer_groups(["alice-group"])["alice-group"].result(TIMEOUT)
    assert not groups.members  # not joined
    assert admin.list_topics(timeout=TIMEOUT).topics.get("alice-new") is None
    seen = {(d["api_key"], d["operation"], d["resource_type"]) for d in denials(node)
            if d["principal"] == "User:alice"}
    assert {(0, "WRITE", "TOPIC"), (1, "READ", "TOPIC"), (11, "READ", "GROUP"),
            (32, "DESCRIBE_CONFIGS", "TOPIC")} <= seen


def test_acls_grant_prefixed_deny_wins_and_super_users(node: BrokerProcess) -> None:
    prefix = f"team-{uuid.uuid4().hex[:6]}"
    topic, group = f"{prefix}-orders", f"{prefix}-g"
    grant(node.bootstrap,
          allow(ResourceType.TOPIC, prefix, AclOperation.ALL,
                pattern=ResourcePatternType.PREFIXED),
          allow(ResourceType.GROUP, prefix, AclOperation.READ,
                pattern=ResourcePatternType.PREFIXED),
          allow(ResourceType.TOPIC, f"{prefix}-blocked", AclOperation.WRITE,
                perm=AclPermissionType.DENY))
    producer = Producer(cfl(node.bootstrap, "alice"))
    producer.produce(topic, b"v1")  # auto-created: CREATE via the prefixed ALL
    assert producer.flush(TIMEOUT) == 0
    errors: list[Any] = []
    blocked = Producer({**cfl(node.bootstrap, "alice"), "message.timeout.ms": 5000})
    blocked.produce(f"{prefix}-blocked", b"no", on_delivery=lambda e, m: errors.append(e))
    blocked.flush(TIMEOUT)
    assert errors and errors[0] is not None
    assert errors[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED  # deny beats ALL
    consumer = Consumer({**cfl(node.bootstrap, "alice"), "group.id": group,
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    got = None
    end = time.monotonic() + TIMEOUT
    while got is None and time.monotonic() < end:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            got = msg.value()
    consumer.commit(asynchronous=False)
    consumer.close()
    assert got == b"v1"
    admin = AdminClient(cfl(node.bootstrap, "alice"))
    visible = set(admin.list_topics(timeout=TIMEOUT).topics)
    assert topic in visible and SECRET not in visible  # Metadata omits the others
    with sasl_client(node.bootstrap, "admin") as c:  # super user: everything
        r = c.request(req(32, 4, {"resources": [
            {"resource_type": 2, "resource_name": SECRET, "configuration_keys": None}]}))
        assert r.results[0].error_code == ErrorCode.none


def test_authorized_operations_and_fetch_sessions_follow_the_acls(node: BrokerProcess
                                                                  ) -> None:
    topic = f"ops-{uuid.uuid4().hex[:6]}"
    admin = AdminClient(cfl(node.bootstrap, "admin"))
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(TIMEOUT)
    producer = Producer(cfl(node.bootstrap, "admin"))
    producer.produce(topic, b"one")
    assert producer.flush(TIMEOUT) == 0
    read = allow(ResourceType.TOPIC, topic, AclOperation.READ, user="bob")
    grant(node.bootstrap, read)
    with sasl_client(node.bootstrap, "bob") as c:
        meta = c.request(req(3, 12, {"topics": [{"name": topic}],
                                     "include_topic_authorized_operations": True}))
        ops = meta.topics[0].topic_authorized_operations
        assert ops == (1 << 3) | (1 << 8)  # READ, and DESCRIBE which READ implies
        fetch = {"replica_id": -1, "max_wait": 0, "min_bytes": 1, "max_bytes": 1 << 20,
                 "session_id": 0, "session_epoch": 0, "topics": [
                     {"topic": topic, "partitions": [
                         {"partition": 0, "fetch_offset": 0, "partition_max_bytes": 1 << 20,
                          "current_leader_epoch": -1, "last_fetched_epoch": -1,
                          "log_start_offset": -1}]}]}
        r = c.request(req(1, 12, fetch))
        assert r.responses[0].partitions[0].records, r  # a session with the partition
        revoke = AclBindingFilter(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL,
                                  "User:bob", "*", AclOperation.READ,
                                  AclPermissionType.ALLOW)
        admin.delete_acls([revoke])[revoke].result(TIMEOUT)
        producer.produce(topic, b"two")  # news the session would otherwise hand over
        assert producer.flush(TIMEOUT) == 0
        incremental = {**fetch, "session_id": r.session_id, "session_epoch": 1,
                       "topics": []}  # the session still holds the partition
        r = c.request(req(1, 12, incremental))
        parts = [p for t in r.responses for p in t.partitions]
        assert parts and all(p.error_code == ErrorCode.topic_authorization_failed
                             and not p.records for p in parts), r


def test_admin_apis_need_their_acl(node: BrokerProcess) -> None:
    admin = AdminClient(cfl(node.bootstrap, "bob"))
    with pytest.raises(KafkaException) as info:
        admin.create_topics([NewTopic("bob-topic", 1, 1)])["bob-topic"].result(TIMEOUT)
    assert info.value.args[0].code() == ErrorCode.topic_authorization_failed
    resource = ConfigResource(ConfigResource.Type.TOPIC, SECRET)
    with pytest.raises(KafkaException) as info:
        admin.describe_configs([resource])[resource].result(TIMEOUT)
    assert info.value.args[0].code() == ErrorCode.topic_authorization_failed
    grant(node.bootstrap, allow(ResourceType.TOPIC, "bob-", AclOperation.CREATE, user="bob",
                                pattern=ResourcePatternType.PREFIXED))
    admin.create_topics([NewTopic("bob-topic", 1, 1)])["bob-topic"].result(TIMEOUT)


# ---- the bypass sweep ---------------------------------------------------------------------
def templates(topic_id: uuid.UUID) -> dict[int, dict[str, Any]]:
    """A well-formed request per API key, naming the resources bob has no ACL for."""
    batch = bytes(build_batch([Record(value=b"sweep")]))
    tp_fetch = [{"partition": 0, "fetch_offset": 0, "partition_max_bytes": 1 << 20,
                 "current_leader_epoch": -1, "last_fetched_epoch": -1,
                 "log_start_offset": -1}]
    commit_parts = [{"partition_index": 0, "committed_offset": 1,
                     "committed_leader_epoch": -1, "committed_metadata": ""}]
    any_acl = {"resource_type_filter": 1, "resource_name_filter": None,
               "pattern_type_filter": 1, "principal_filter": None, "host_filter": None,
               "operation": 1, "permission_type": 1}
    return {
        0: {"acks": -1, "timeout": 5000, "topic_data": [
            {"name": SECRET, "partition_data": [{"index": 0, "records": batch}]}]},
        1: {"replica_id": -1, "max_wait": 0, "min_bytes": 1, "max_bytes": 1 << 20,
            "session_epoch": -1, "topics": [{"topic": SECRET, "topic_id": topic_id,
                                             "partitions": tp_fetch}]},
        2: {"replica_id": -1, "topics": [{"name": SECRET, "partitions": [
            {"partition_index": 0, "timestamp": -1, "current_leader_epoch": -1}]}]},
        3: {"topics": [{"name": SECRET}], "allow_auto_topic_creation": False},
        8: {"group_id": GROUP, "generation_id_or_member_epoch": -1, "member_id": "",
            "retention_time": -1, "topics": [{"name": SECRET, "partitions": commit_parts}]},
        9: {"group_id": GROUP, "topics": [{"name": SECRET, "partition_indexes": [0]}],
            "groups": [{"group_id": GROUP, "member_epoch": -1, "member_id": None,
                        "topics": [{"name": SECRET, "partition_indexes": [0]}]}]},
        10: {"key": GROUP, "key_type": 0, "coordinator_keys": [GROUP]},
        11: {"group_id": GROUP, "session_timeout": 10000, "rebalance_timeout": 10000,
             "member_id": "", "protocol_type": "consumer",
             "protocols": [{"name": "range", "metadata": b""}]},
        12: {"group_id": GROUP, "generation_id": 1, "member_id": "m"},
        13: {"group_id": GROUP, "member_id": "m", "members": [{"member_id": "m"}]},
        14: {"group_id": GROUP, "generation_id": 1, "member_id": "m",
             "protocol_type": "consumer", "protocol_name": "range", "assignments": []},
        15: {"groups": [GROUP]},
        19: {"topics": [{"name": "sweep-new", "num_partitions": 1, "replication_factor": 1}],
             "timeout": 5000},
        20: {"topic_names": [SECRET], "topics": [{"name": SECRET, "topic_id": uuid.UUID(
            int=0)}], "timeout": 5000},
        21: {"topics": [{"name": SECRET, "partitions": [{"partition_index": 0,
                                                         "offset": 0}]}], "timeout": 5000},
        22: {"transactional_id": None, "transaction_timeout": 60000, "producer_id": -1,
             "producer_epoch": -1},
        23: {"replica_id": -1, "topics": [{"topic": SECRET, "partitions": [
            {"partition": 0, "current_leader_epoch": -1, "leader_epoch": 0}]}]},
        24: {"v3_and_below_transactional_id": TXN, "v3_and_below_producer_id": 1,
             "v3_and_below_producer_epoch": 0,
             "v3_and_below_topics": [{"name": SECRET, "partitions": [0]}]},
        25: {"transactional_id": TXN, "producer_id": 1, "producer_epoch": 0,
             "group_id": GROUP},
        26: {"transactional_id": TXN, "producer_id": 1, "producer_epoch": 0,
             "committed": True},
        27: {"markers": [{"producer_id": 1, "producer_epoch": 0, "transaction_result": True,
                          "topics": [{"name": SECRET, "partition_indexes": [0]}],
                          "coordinator_epoch": 0}]},
        28: {"transactional_id": TXN, "group_id": GROUP, "producer_id": 1,
             "producer_epoch": 0, "generation_id": -1, "member_id": "",
             "topics": [{"name": SECRET, "partitions": commit_parts}]},
        29: any_acl,
        30: {"creations": [{"resource_type": 2, "resource_name": SECRET,
                            "resource_pattern_type": 3, "principal": "User:bob",
                            "host": "*", "operation": 2, "permission_type": 3}]},
        31: {"filters": [any_acl]},
        32: {"resources": [{"resource_type": 2, "resource_name": SECRET,
                            "configuration_keys": None},
                           {"resource_type": 4, "resource_name": "1",
                            "configuration_keys": None}]},
        33: {"resources": [{"resource_type": 2, "resource_name": SECRET,
                            "configs": [{"name": "retention.ms", "value": "1000"}]}]},
        35: {"topics": None},
        37: {"topics": [{"name": SECRET, "count": 5, "assignments": None}],
             "timeout": 5000},
        42: {"groups_names": [GROUP]},
        43: {"election_type": 0, "topic_partitions": [{"topic": SECRET, "partitions": [0]}],
             "timeout": 5000},
        44: {"resources": [{"resource_type": 2, "resource_name": SECRET, "configs": [
            {"name": "retention.ms", "config_operation": 0, "value": "1000"}]}]},
        45: {"timeout": 5000, "topics": [{"name": SECRET, "partitions": [
            {"partition_index": 0, "replicas": [1]}]}]},
        46: {"timeout": 5000, "topics": None},
        47: {"group_id": GROUP, "topics": [{"name": SECRET, "partitions": [
            {"partition_index": 0}]}]},
        48: {"components": [{"entity_type": "user", "match_type": 2, "match": None}]},
        49: {"entries": [{"entity": [{"entity_type": "user", "entity_name": "bob"}],
                          "ops": [{"key": "producer_byte_rate", "value": 1.0,
                                   "remove": False}]}]},
        50: {"users": None},
        51: {"deletions": [], "upsertions": [
            {"name": "bob", "mechanism": 1, "iterations": 4096, "salt": b"s" * 16,
             "salted_password": b"p" * 32}]},
        55: {"topics": [{"topic_name": "__cluster_metadata",
                         "partitions": [{"partition_index": 0}]}]},
        60: {"include_cluster_authorized_operations": False, "endpoint_type": 1},
        61: {"topics": [{"name": SECRET, "partition_indexes": [0]}]},
        65: {"transactional_ids": [TXN]},
        68: {"group_id": GROUP, "member_id": "m", "member_epoch": 0,
             "rebalance_timeout": 10000, "subscribed_topic_names": [SECRET],
             "topic_partitions": []},
        69: {"group_ids": [GROUP]},
        76: {"group_id": GROUP, "member_id": "m", "member_epoch": 0,
             "subscribed_topic_names": [SECRET]},
        77: {"group_ids": [GROUP]},
        78: {"group_id": GROUP, "member_id": "m", "share_session_epoch": 0, "max_wait": 0,
             "min_bytes": 1, "max_bytes": 1 << 20, "max_records": 10, "batch_size": 10,
             "topics": [{"topic_id": topic_id, "partitions": [{"partition_index": 0}]}]},
        79: {"group_id": GROUP, "member_id": "m", "share_session_epoch": 1,
             "topics": [{"topic_id": topic_id, "partitions": [
                 {"partition_index": 0, "acknowledgement_batches": [
                     {"first_offset": 0, "last_offset": 0, "acknowledge_types": [1]}]}]}]},
        90: {"groups": [{"group_id": GROUP, "topics": None}]},
        91: {"group_id": GROUP, "topics": [{"topic_name": SECRET, "partitions": [
            {"partition_index": 0, "start_offset": 0}]}]},
        92: {"group_id": GROUP, "topics": [{"topic_name": SECRET}]},
        84: {"group_id": GROUP, "topics": [{"topic_id": topic_id, "partitions": [
            {"partition": 0, "leader_epoch": -1}]}]},
        85: {"group_id": GROUP, "topics": [{"topic_id": topic_id, "partitions": [
            {"partition": 0, "state_epoch": 99, "leader_epoch": -1, "start_offset": 0,
             "state_batches": []}]}]},
        86: {"group_id": GROUP, "topics": [{"topic_id": topic_id, "partitions": [
            {"partition": 0}]}]},
    }


#: APIs that only *filter* what a principal sees: the answer must show none of the
#: resources it may not describe (checked separately from the denial codes)
FILTERING = {16, 66}
EXEMPT = {17, 18, 36}
#: APIs Kafka serves to every authenticated principal (they reveal only the brokers)
OPEN = {60}


def test_bypass_sweep_unauthorized_principal(node: BrokerProcess) -> None:
    with sasl_client(node.bootstrap, "admin") as c:
        meta = c.request(req(3, 12, {"topics": [{"name": SECRET}]}))
        topic_id = meta.topics[0].topic_id
    before = end_offset(node.bootstrap, SECRET)
    with sasl_client(node.bootstrap, "bob") as c:
        apis = c.request(req(18, 3, {"client_software_name": "sweep",
                                     "client_software_version": "1"})).api_keys
    swept = []
    for api in apis:
        key, version = int(api.api_key), int(api.max_version)
        if key in EXEMPT:
            continue
        with sasl_client(node.bootstrap, "bob") as c:
            if key == 16:
                r = c.request(req(key, version, {}))
                assert GROUP not in [g.group_id for g in r.groups], r
                continue
            if key == 66:
                r = c.request(req(key, version, {"duration_filter": -1}))
                assert TXN not in [s.transactional_id for s in r.transaction_states], r
                continue
            if key in OPEN:
                r = c.request(req(key, version, {"include_cluster_authorized_operations":
                                                 True, "endpoint_type": 1}))
                assert r.error_code == 0 and r.cluster_authorized_operations == 0, r
                continue
            values = templates(topic_id).get(key)
            assert values is not None, f"no sweep request for advertised api {key}: add one"
            try:
                r = c.request(req(key, version, values))
            except ConnectionClosed:
                pytest.fail(f"api {key} v{version} closed the connection instead of "
                            f"answering an authorization error")
            codes = [code for code in error_codes(r) if code != 0]
            assert codes, f"api {key} v{version} answered without an error: {r}"
            allowed = AUTHZ_CODES | ({int(ErrorCode.operation_not_attempted)}
                                     if key == 24 else set())
            assert set(codes) <= allowed, f"api {key} v{version}: {r}"
            swept.append(key)
    assert end_offset(node.bootstrap, SECRET) == before
    logged = {d["api_key"] for d in denials(node) if d["principal"] == "User:bob"}
    missing = sorted(set(swept) - logged)
    assert not missing, f"no authorization_denied line for api keys {missing}"


def test_bypass_sweep_unauthenticated(node: BrokerProcess) -> None:
    host, _, port = node.bootstrap.rpartition(":")
    with WireClient(host, int(port), timeout=TIMEOUT) as c:
        apis = c.request(req(18, 3, {"client_software_name": "sweep",
                                     "client_software_version": "1"})).api_keys
    for api in apis:
        key, version = int(api.api_key), int(api.max_version)
        if key in (17, 18):
            continue
        values = templates(uuid.UUID(int=0)).get(key, {})
        with WireClient(host, int(port), timeout=TIMEOUT) as c:
            c.send(req(key, version, values))
            assert c.is_closed_by_peer(), f"api {key} was served before authentication"


def test_client_quotas_of_a_sasl_user(node: BrokerProcess) -> None:
    """A quota of user alice (principal User:alice) throttles her connections, not bob's;
    reading or changing quotas needs DESCRIBE_CONFIGS / ALTER_CONFIGS on the cluster."""
    def alter(ops: list[dict[str, Any]]) -> Any:
        return req(49, 1, {"validate_only": False, "entries": [{
            "entity": [{"entity_type": "user", "entity_name": "alice"}], "ops": ops}]})

    def metadata_throttles(user: str, count: int) -> list[int]:
        out = []
        with sasl_client(node.bootstrap, user) as c:
            for _ in range(count):
                r = c.request(req(3, 12, {"topics": None, "allow_auto_topic_creation": False,
                                          "include_topic_authorized_operations": False}))
                out.append(int(r.throttle_time.total_seconds() * 1000))
                if out[-1] > 0:
                    break
        return out

    set_quota = alter([{"key": "request_percentage", "value": 0.01, "remove": False}])
    with sasl_client(node.bootstrap, "bob") as c:
        r = c.request(set_quota)
        assert r.entries[0].error_code == ErrorCode.cluster_authorization_failed, r
        r = c.request(req(48, 1, {"components": [], "strict": False}))
        assert r.error_code == ErrorCode.cluster_authorization_failed, r
    with sasl_client(node.bootstrap, "admin") as c:
        assert c.request(set_quota).entries[0].error_code == ErrorCode.none
    try:
        assert max(metadata_throttles("alice", 500)) > 0  # 100 µs of handler time a second
        assert metadata_throttles("bob", 30) == [0] * 30
    finally:
        with sasl_client(node.bootstrap, "admin") as c:
            c.request(alter([{"key": "request_percentage", "value": 0.0, "remove": True}]))
