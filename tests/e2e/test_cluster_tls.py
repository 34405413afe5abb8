"""A 3-node cluster whose inter-broker and controller listeners are SSL with mutual TLS
(``inter.broker.listener.name=INTERNAL``, ``controller.listener.names=CONTROLLER``, both
mapped to SSL, ``ssl.client.auth=required``): the quorum forms over TLS, followers
replicate over TLS (a topic with ``min.insync.replicas=3`` takes acks=all records only
when both followers fetched them), and the brokers' own connections are authenticated by
their certificates (``tls_connected`` with the broker principal on INTERNAL and
CONTROLLER). Clients use the PLAINTEXT listener."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.internal_listener import (
    SECURED_QUORUM_TIMEOUTS,
    internal_listener_cluster,
    pem_stores,
    read_back,
    replicate_with_every_follower,
)
from tests.support.tls_ca import TestCA

pytestmark = pytest.mark.timeout(150)


def test_replication_and_quorum_over_mutual_tls(tmp_path: Path) -> None:
    ca = TestCA(tmp_path / "ca")
    node_cert = ca.issue("broker", "/O=Strom/CN=broker", server=True)
    cluster = internal_listener_cluster(tmp_path / "nodes", {
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,INTERNAL:SSL,CONTROLLER:SSL",
        **pem_stores(node_cert.bundle, ca.pem), "ssl.client.auth": "required",
        **SECURED_QUORUM_TIMEOUTS,
    })
    try:
        cluster.start()
        topic = replicate_with_every_follower(cluster, "tls-rep")
        read_back(cluster, topic, 2, 60)
        for node in cluster.nodes.values():
            log = node.log_path.read_text(errors="replace")
            assert '"listener": "INTERNAL"' in log and '"listener": "CONTROLLER"' in log
            assert '"principal": "User:CN=broker,O=Strom"' in log
            assert "tls_handshake_failed" not in log
    finally:
        cluster.close()

