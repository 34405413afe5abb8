"""SCRAM users on a 3-node cluster: credentials live in the metadata log, so a user created
at run time with AlterUserScramCredentials (through any broker) logs in on every broker
at once, and a deleted one is refused everywhere. Each node has a SASL_PLAINTEXT listener
beside its PLAINTEXT one (the inter-broker listener) and its controller listener."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import scramp
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import (
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)
from kio.schema.errors import ErrorCode

from net.wire import ConnectionClosed, WireClient
from protocol.build import build
from protocol.codec import request_type
from tests.e2e.test_cluster import Cluster, free_ports

pytestmark = pytest.mark.timeout(150)
TIMEOUT = 20.0
STARTUP_TIMEOUT = 60.0


def login(port: int, mech: str, user: str, password: str) -> bool:
    def req(key: int, version: int, **values: object) -> object:
        return build(request_type(key, version), values)

    with WireClient("127.0.0.1", port, timeout=5) as c:
        try:
            c.request(req(17, 1, mechanism=mech))
            client = scramp.ScramClient([mech], user, password)
            r = c.request(req(36, 2, auth_bytes=client.get_client_first().encode()))
            if r.error_code != ErrorCode.none:  # type: ignore[attr-defined]
                return False
            client.set_server_first(r.auth_bytes.decode())  # type: ignore[attr-defined]
            r = c.request(req(36, 2, auth_bytes=client.get_client_final().encode()))
            return r.error_code == ErrorCode.none  # type: ignore[attr-defined]
        except ConnectionClosed:
            return False


def wait_acls_everywhere(cluster: Cluster, principal: str, count: int) -> None:
    """Until every broker's DescribeAcls shows ``count`` ACLs of ``principal``."""
    request = build(request_type(29, 1), {
        "resource_type_filter": 1, "resource_name_filter": None, "pattern_type_filter": 1,
        "principal_filter": principal, "host_filter": None, "operation": 1,
        "permission_type": 1})
    end = time.monotonic() + 5
    pending = set(cluster.nodes)
    while pending and time.monotonic() < end:
        for i in list(pending):
            with WireClient("127.0.0.1", cluster.client_ports[i], timeout=5) as c:
                r = c.request(request)
            if sum(len(res.acls) for res in r.resources) == count:
                pending.discard(i)
        time.sleep(0.05)
    assert not pending, f"brokers {sorted(pending)} lack the ACLs of {principal}"


def logs_in_everywhere(ports: dict[int, int], mech: str, user: str, password: str,
                       expect: bool = True, within: float = 3.0) -> float:
    """Seconds until every broker gave ``expect`` (fails after ``within``)."""
    start = time.monotonic()
    pending = set(ports)
    while pending and time.monotonic() - start < within:
        pending = {i for i in pending if login(ports[i], mech, user, password) != expect}
        if pending:
            time.sleep(0.05)
    assert not pending, f"brokers {sorted(pending)} never answered login={expect} for {user}"
    return time.monotonic() - start


def test_a_user_created_at_run_time_logs_in_on_every_broker(
        authz_cluster: tuple[Cluster, dict[int, int]]) -> None:
    from confluent_kafka.admin import (
        AclBinding,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    cluster, ports = authz_cluster
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap(2)})
    futures = admin.alter_user_scram_credentials([
        UserScramCredentialUpsertion("carol", ScramCredentialInfo(
            ScramMechanism.SCRAM_SHA_256, 4096), b"carol-secret"),
        UserScramCredentialUpsertion("carol", ScramCredentialInfo(
            ScramMechanism.SCRAM_SHA_512, 4096), b"carol-512")])
    for f in futures.values():
        f.result(TIMEOUT)
    # the broker that answered waited for its own image; the others apply the same
    # record a moment later (bounded: 3 s)
    logs_in_everywhere(ports, "SCRAM-SHA-256", "carol", "carol-secret", within=3.0)
    logs_in_everywhere(ports, "SCRAM-SHA-512", "carol", "carol-512")
    assert not login(ports[3], "SCRAM-SHA-256", "carol", "wrong")
    topic = f"scram-{uuid.uuid4().hex[:8]}"
    for f in admin.create_acls([
            AclBinding(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, "User:carol",
                       "*", AclOperation.ALL, AclPermissionType.ALLOW),
            AclBinding(ResourceType.GROUP, f"g-{topic}", ResourcePatternType.LITERAL,
                       "User:carol", "*", AclOperation.READ, AclPermissionType.ALLOW),
    ]).values():
        f.result(TIMEOUT)
    wait_acls_everywhere(cluster, "User:carol", 2)
    sasl = {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "SCRAM-SHA-512",
            "sasl.username": "carol", "sasl.password": "carol-512"}
    producer = Producer({"bootstrap.servers": f"127.0.0.1:{ports[3]}", **sasl})
    producer.produce(topic, b"through-sasl")
    assert producer.flush(TIMEOUT) == 0
    consumer = Consumer({"bootstrap.servers": f"127.0.0.1:{ports[1]}", **sasl,
                         "group.id": f"g-{topic}", "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    got = None
    end = time.monotonic() + TIMEOUT
    while got is None and time.monotonic() < end:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            got = msg.value()
    consumer.close()
    assert got == b"through-sasl"
    gone = admin.alter_user_scram_credentials([
        UserScramCredentialDeletion("carol", ScramMechanism.SCRAM_SHA_256)])
    gone["carol"].result(TIMEOUT)
    logs_in_everywhere(ports, "SCRAM-SHA-256", "carol", "carol-secret", expect=False)
    logs_in_everywhere(ports, "SCRAM-SHA-512", "carol", "carol-512")


ADMIN = {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "SCRAM-SHA-256",
         "sasl.username": "admin", "sasl.password": "admin-secret"}
ALICE = {**ADMIN, "sasl.username": "alice", "sasl.password": "alice-secret"}


@pytest.fixture(scope="module")
def authz_cluster(tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[tuple[Cluster, dict[int, int]]]:
    """One cluster for the module. Authorizer on: brokers and controllers talk PLAINTEXT as
    User:ANONYMOUS, which is a super user (CLUSTER_ACTION for follower fetches and
    controller RPCs; the tests' admin clients use the PLAINTEXT listeners too); clients
    log in with SCRAM on the SASL_PLAINTEXT listeners."""
    c = Cluster(tmp_path_factory.mktemp("scram-cluster"), overrides={
        "sasl.enabled.mechanisms": "SCRAM-SHA-256,SCRAM-SHA-512", "num.partitions": "1",
        "default.replication.factor": "3", "offsets.topic.num.partitions": "1",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": "User:ANONYMOUS;User:admin",
        "strom.add.scram": "SCRAM-SHA-256=[name=admin,password=admin-secret];"
                           "SCRAM-SHA-256=[name=alice,password=alice-secret]"})
    sasl_ports = dict(zip(c.nodes, free_ports(len(c.nodes)), strict=True))
    for i, node in c.nodes.items():
        node.overrides["listeners"] = (
            f"PLAINTEXT://127.0.0.1:{c.client_ports[i]},"
            f"SASL_PLAINTEXT://127.0.0.1:{sasl_ports[i]},"
            f"CONTROLLER://127.0.0.1:{c.controller_ports[i]}")
        node.startup_timeout = STARTUP_TIMEOUT  # three nodes electing on a loaded machine
    try:
        yield c.start(), sasl_ports
    finally:
        c.close()


def test_acls_created_through_one_broker_are_enforced_by_every_broker(
        authz_cluster: tuple[Cluster, dict[int, int]]) -> None:
    from confluent_kafka import KafkaError
    from confluent_kafka.admin import (
        AclBinding,
        AclOperation,
        AclPermissionType,
        NewTopic,
        ResourcePatternType,
        ResourceType,
    )

    cluster, ports = authz_cluster
    logs_in_everywhere(ports, "SCRAM-SHA-256", "alice", "alice-secret", within=10)
    topic = f"guarded-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{ports[1]}", **ADMIN})
    admin.create_topics([NewTopic(topic, 1, 3)])[topic].result(TIMEOUT)

    def produce(node: int, conf: dict[str, str]) -> object:
        results: list[object] = []
        p = Producer({"bootstrap.servers": f"127.0.0.1:{ports[node]}", **conf, "acks": "all",
                      "message.timeout.ms": 8000})
        p.produce(topic, b"x", on_delivery=lambda err, msg: results.append(err))
        p.flush(TIMEOUT)
        return results[0] if results else "no delivery report"

    assert produce(1, ADMIN) is None  # acks=all: the followers fetched (CLUSTER_ACTION)
    for node in ports:
        err = produce(node, ALICE)
        assert getattr(err, "code", lambda: None)() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    grant = AclBinding(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, "User:alice",
                       "*", AclOperation.WRITE, AclPermissionType.ALLOW)
    for f in admin.create_acls([grant]).values():
        f.result(TIMEOUT)
    end = time.monotonic() + 5
    pending = set(ports)
    while pending and time.monotonic() < end:
        pending = {n for n in pending if produce(n, ALICE) is not None}
    assert not pending, f"brokers {sorted(pending)} did not apply the ACL"
