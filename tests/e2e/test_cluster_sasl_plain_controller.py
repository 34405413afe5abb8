"""A 3-node cluster whose controller listener is SASL_PLAINTEXT with PLAIN
(``sasl.mechanism.controller.protocol=PLAIN``; the listener's PlainLoginModule entry both
lists its users and holds the node's own login), the StandardAuthorizer on and the node
principal ``User:admin`` a super user. Followers use INTERNAL (PLAINTEXT), clients the
PLAINTEXT listener (User:ANONYMOUS, also a super user).

- the quorum forms and the brokers register over SASL: every node logs its peers' logins
  on CONTROLLER as User:admin; acks=all records of a ``min.insync.replicas=3`` topic are
  acknowledged and read back;
- ``User:alice`` logs in on the controller listener with the right password, but her
  BrokerHeartbeat and DescribeQuorum are answered CLUSTER_AUTHORIZATION_FAILED (controller
  RPCs need CLUSTER_ACTION);
- a wrong password is refused with a log line and the quorum stays in step;
- kill -9 of the quorum leader: a new one is elected over SASL_PLAINTEXT, acks=all
  produce and consume work through the survivors, the killed node rejoins and catches up.
A node whose controller listener is SASL with the default GSSAPI refuses to start, naming
``sasl.mechanism.controller.protocol``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from kio.schema.broker_heartbeat.v1.request import BrokerHeartbeatRequest
from kio.schema.describe_quorum.v2.request import (
    DescribeQuorumRequest,
    PartitionData,
    TopicData,
)
from kio.schema.errors import ErrorCode

from net.client import ClientPool
from net.sasl_login import SaslLogin
from tests.e2e.internal_listener import (
    ADMIN_AUTHORIZER,
    assert_quorum_cli,
    assert_sasl_logins_logged,
    controller_failover,
    internal_listener_cluster,
    quorum_cli,
    read_back,
    refused_controller_login,
    replicate_with_every_follower,
)
from tests.e2e.test_cluster import free_ports
from tests.support.broker import BrokerProcess, BrokerStartError

pytestmark = pytest.mark.timeout(300)
JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
        'username="admin" password="admin-secret" user_admin="admin-secret" '
        'user_alice="alice-secret";')
SASL_CONTROLLER = {
    "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT,"
                                      "CONTROLLER:SASL_PLAINTEXT",
    "sasl.enabled.mechanisms": "PLAIN",
    "listener.name.controller.plain.sasl.jaas.config": JAAS,
}


async def as_alice(address: str) -> tuple[ErrorCode, ErrorCode]:
    """(BrokerHeartbeat error, DescribeQuorum error) for requests User:alice sends to a
    controller listener after a successful PLAIN login."""
    host, _, port = address.rpartition(":")
    pool = ClientPool(client_id="alice", sasl=SaslLogin("PLAIN", "alice", "alice-secret"))
    try:
        heartbeat = await pool.request(host, int(port), BrokerHeartbeatRequest(
            broker_id=1, broker_epoch=0, current_metadata_offset=0,  # type: ignore[arg-type]
            want_fence=False, want_shut_down=True), timeout=5)
        quorum = await pool.request(host, int(port), DescribeQuorumRequest(topics=(TopicData(
            topic_name="__cluster_metadata",
            partitions=(PartitionData(partition_index=0),)),)), timeout=5)
    finally:
        pool.close()
    return heartbeat.error_code, quorum.error_code


def test_cluster_over_a_sasl_plaintext_controller_listener(tmp_path: Path) -> None:
    cluster = internal_listener_cluster(tmp_path / "nodes", {
        **SASL_CONTROLLER,
        "sasl.mechanism.controller.protocol": "PLAIN",
        **ADMIN_AUTHORIZER,
    })
    try:
        cluster.start()
        topic = replicate_with_every_follower(cluster, "plain-ctl")
        read_back(cluster, topic, 3, 60)
        assert_sasl_logins_logged(cluster, "PLAIN", ("CONTROLLER",), "admin-secret")
        assert asyncio.run(as_alice(cluster.controller(1))) == (
            ErrorCode.cluster_authorization_failed, ErrorCode.cluster_authorization_failed)
        cluster.wait_brokers({1, 2, 3})  # alice's want_shut_down changed nothing
        refused_controller_login(cluster, 3, {
            "security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "PLAIN",
            "sasl.username": "admin", "sasl.password": "wrong"})
        # the operator CLI logs in on the controller listener with a Kafka client config
        assert_quorum_cli(cluster, 2, tmp_path, {
            "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
            "sasl.jaas.config": 'org.apache.kafka.common.security.plain.PlainLoginModule '
                                'required username="admin" password="admin-secret";'})
        code, out = quorum_cli(cluster, 2, tmp_path, {
            "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
            "sasl.username": "alice", "sasl.password": "alice-secret"})
        assert (code, out.strip()) == (1, f"strom: {cluster.controller(2)} answered "
                                          "CLUSTER_AUTHORIZATION_FAILED"), out
        code, out = quorum_cli(cluster, 2, tmp_path, {
            "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
            "sasl.username": "admin", "sasl.password": "wrong"})
        assert code == 1 and "authentication as 'admin' failed" in out, out
        assert "wrong" not in out.replace("'admin' failed", ""), out
        controller_failover(cluster, "plain-failover")
    finally:
        cluster.close()


def test_a_sasl_controller_listener_without_a_usable_mechanism_stops_startup(
        tmp_path: Path) -> None:
    client, controller = free_ports(2)
    node = BrokerProcess(tmp_path / "node", {
        "node.id": 1, "process.roles": "broker,controller",
        "controller.quorum.voters": f"1@127.0.0.1:{controller}",
        "listeners": f"PLAINTEXT://127.0.0.1:{client},CONTROLLER://127.0.0.1:{controller}",
        **SASL_CONTROLLER,  # sasl.mechanism.controller.protocol left at Kafka's GSSAPI
    }, startup_timeout=30)
    try:
        with pytest.raises(BrokerStartError) as info:
            node.start()
        assert "exited with code 1" in str(info.value)
        assert ("sasl.mechanism.controller.protocol: the controller listener CONTROLLER is "
                "SASL_PLAINTEXT; Strom logs in with PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, "
                "not GSSAPI") in str(info.value)
    finally:
        node.close()
