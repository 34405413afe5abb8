"""Shared by the secured 3-node e2e tests (TLS, SASL between brokers and to the
controllers): a cluster whose brokers talk over a listener INTERNAL of their own while
clients use PLAINTEXT, the replication check they all run on it, and the checks of a
secured controller listener (a refused login, a quorum leader failover)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from broker.cluster.quorum_cli import describe
from tests.e2e.test_cluster import Cluster, free_ports, wait_until
from tests.support.strom_cli import strom


def internal_listener_cluster(workdir: Path, overrides: dict[str, str]) -> Cluster:
    """A 3-node cluster (not started) with listeners PLAINTEXT (clients), INTERNAL (a free
    port per node) and CONTROLLER; ``overrides`` map them to protocols. Startup may take
    60 s: TLS handshakes cost Python time on a loaded machine."""
    cluster = Cluster(workdir, overrides={"inter.broker.listener.name": "INTERNAL",
                                          **overrides})
    internal = dict(zip(cluster.nodes, free_ports(len(cluster.nodes)), strict=True))
    for i, node in cluster.nodes.items():
        node.startup_timeout = 60
        node.overrides["listeners"] = (
            f"PLAINTEXT://127.0.0.1:{cluster.client_ports[i]},"
            f"INTERNAL://127.0.0.1:{internal[i]},CONTROLLER://127.0.0.1:"
            f"{cluster.controller_ports[i]}")
    return cluster


def replicate_with_every_follower(cluster: Cluster, prefix: str) -> str:
    """Create a 3-partition RF 3 topic with ``min.insync.replicas=3`` and produce 20 acks=all
    records to each partition through node 1: each is acknowledged only once both
    followers fetched it over INTERNAL. Returns the topic; its records are ``b"<p>-<i>"``."""
    topic = f"{prefix}-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap(1), request_timeout_ms=20_000)
    try:
        admin.create_topics([NewTopic(topic, 3, 3, topic_configs={"min.insync.replicas": "3"})])
    finally:
        admin.close()
    wait_until(lambda: all(code == 0 and leader >= 0 for leader, code
                           in cluster.leaders(1, topic).values()), 30, "leaders")
    producer = Producer({"bootstrap.servers": cluster.bootstrap(1), "acks": "all",
                         "message.timeout.ms": 30_000})
    errors: list[object] = []
    for p in range(3):
        for i in range(20):
            producer.produce(topic, f"{p}-{i}".encode(), partition=p,
                             on_delivery=lambda err, _m: err and errors.append(err))
    assert producer.flush(40) == 0
    assert not errors, errors  # min.insync.replicas=3: every follower fetched them
    return topic


#: a TLS handshake or SASL login costs a few ms of Python per connection: on a loaded
#: machine the FAST quorum timeouts of ``Cluster`` would have voters time out while
#: connecting to a secured controller listener
SECURED_QUORUM_TIMEOUTS = {"controller.quorum.election.timeout.ms": "1500",
                           "controller.quorum.fetch.timeout.ms": "3000",
                           "controller.quorum.request.timeout.ms": "3000"}


#: the StandardAuthorizer on, the nodes' principal User:admin and the PLAINTEXT clients'
#: User:ANONYMOUS super users
ADMIN_AUTHORIZER = {
    "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "super.users": "User:admin;User:ANONYMOUS"}


def pem_stores(keystore: Path, truststore: Path) -> dict[str, str]:
    """The nodes' ``ssl.*`` overrides: a PEM keystore (key + chain) and a PEM truststore."""
    return {"ssl.keystore.type": "PEM", "ssl.keystore.location": str(keystore),
            "ssl.truststore.type": "PEM", "ssl.truststore.location": str(truststore)}


def read_back(cluster: Cluster, topic: str, via: int, count: int,
              **config: str) -> set[bytes]:
    """The values of ``topic``'s 3 partitions read from offset 0 by a confluent-kafka
    consumer (extra ``config``) bootstrapped through node ``via``, once ``count`` distinct
    ones arrived (bounded: 30 s)."""
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap(via), "group.id": f"g-{topic}",
                         "enable.auto.commit": False, **config})
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(3)])
        got: set[bytes] = set()
        wait_until(lambda: poll_into(consumer, got) >= count, 30, f"{count} records")
    finally:
        consumer.close()
    return got


def log_lines(node: Any) -> list[str]:
    """The lines of a node's log (its own JSON lines and the harness's)."""
    return node.log_path.read_text(errors="replace").splitlines()


def assert_sasl_logins_logged(cluster: Cluster, mechanism: str, listeners: tuple[str, ...],
                              password: str) -> None:
    """Every node logged a ``sasl_authenticated`` of its peers as User:admin with
    ``mechanism`` on each of ``listeners``, and never ``password`` in its own lines (the
    harness echoes its command line, which holds it)."""
    for node in cluster.nodes.values():
        lines = log_lines(node)
        for listener in listeners:
            assert any('"sasl_authenticated"' in line and "User:admin" in line
                       and f'"{mechanism}"' in line and f'"listener": "{listener}"' in line
                       for line in lines), (node, listener)
        assert not [ln for ln in lines if ln.startswith("{") and password in ln]


def poll_into(consumer: Consumer, got: set[bytes]) -> int:
    """One poll: add a record's value to ``got``; how many distinct values it holds."""
    msg = consumer.poll(0.5)
    if msg is not None and msg.error() is None:
        got.add(msg.value())
    return len(got)


def quorum_via(cluster: Cluster, node_id: int) -> Any:
    """DescribeQuorum sent to node ``node_id``'s client listener: its broker asks the quorum
    leader over the controller listener, logged in as that listener requires."""
    return describe(cluster.bootstrap(node_id), timeout=3)


def wait_quorum_in_step(cluster: Cluster, via: int, timeout: float = 30) -> Any:
    """Wait until the quorum (seen through ``via``) has a leader and every voter's log end
    offset equals the leader's; returns that DescribeQuorum partition."""
    def in_step() -> Any:
        q = quorum_via(cluster, via)
        ends = {r.replica_id: r.log_end_offset for r in q.current_voters}
        ok = int(q.error_code) == 0 and q.leader_id in ends and set(ends) == set(cluster.nodes)
        return q if ok and len(set(ends.values())) == 1 else None

    return wait_until(in_step, timeout, "every voter at the quorum leader's log end offset")


def quorum_cli(cluster: Cluster, node_id: int, workdir: Path,
               client: dict[str, str] | None) -> tuple[int, str]:
    """``strom quorum describe --bootstrap-controller`` node ``node_id``'s controller
    listener with ``client`` written as its ``--command-config`` file (None: no file);
    (exit code, stdout and stderr)."""
    args = ["quorum", "describe", "--bootstrap-controller", cluster.controller(node_id)]
    if client is not None:
        path = workdir / f"client-{uuid.uuid4().hex[:6]}.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in client.items()))
        args += ["--command-config", str(path)]
    done = strom(*args, timeout=60)
    return done.returncode, (done.stdout + done.stderr).decode()


def assert_quorum_cli(cluster: Cluster, node_id: int, workdir: Path,
                      client: dict[str, str]) -> None:
    """``quorum_cli`` with ``client`` prints the quorum's leader and its three voters
    (exit 0); without a command config it cannot (exit 1, with the hint)."""
    code, out = quorum_cli(cluster, node_id, workdir, client)
    assert code == 0, out
    assert "CurrentVoters:         [1, 2, 3]" in out, out
    leader = int(out.split("LeaderId:", 1)[1].split()[0])
    assert leader in cluster.nodes, out
    code, out = quorum_cli(cluster, node_id, workdir, None)
    assert code == 1 and "pass --command-config" in out, out


def refused_controller_login(cluster: Cluster, node_id: int, client: dict[str, str]) -> None:
    """confluent-kafka, configured with ``client`` (security settings and a wrong
    password), dials node ``node_id``'s controller listener: the login is refused, the
    node logs the refusal on that listener, and the quorum carries on in step."""
    errors: list[Any] = []
    producer = Producer({"bootstrap.servers": cluster.controller(node_id),
                         "error_cb": errors.append, "message.timeout.ms": 1500, **client})
    producer.produce("never", b"x")
    producer.flush(5)
    assert any("Authentication failed" in e.str() for e in errors), errors
    log = cluster.nodes[node_id].log_path.read_text(errors="replace")
    assert any('"sasl_authentication_failed"' in line and '"listener": "CONTROLLER"' in line
               for line in log.splitlines())
    wait_quorum_in_step(cluster, node_id)


def controller_failover(cluster: Cluster, prefix: str) -> None:
    """kill -9 of the quorum leader: the other two elect a new one (a higher epoch) over
    the controller listener and fence the dead broker; a topic created through a survivor
    (forwarded to the new controller) takes acks=all records from both survivors'
    replicas (``min.insync.replicas=2``) and they are read back; the killed node restarts,
    logs in again and catches up with the quorum."""
    first = wait_quorum_in_step(cluster, 1)
    old_leader, old_epoch = first.leader_id, first.leader_epoch
    cluster.nodes[old_leader].kill()
    survivors = [i for i in cluster.nodes if i != old_leader]

    def new_leader() -> Any:
        q = quorum_via(cluster, survivors[0])
        return q if int(q.error_code) == 0 and q.leader_id in survivors else None

    assert wait_until(new_leader, 30, "a new quorum leader").leader_epoch > old_epoch
    cluster.wait_brokers(set(survivors), via=survivors[0], timeout=30)
    topic = f"{prefix}-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap(survivors[0]),
                             request_timeout_ms=20_000)
    try:
        admin.create_topics([NewTopic(topic, 2, 2, topic_configs={"min.insync.replicas": "2"})])
    finally:
        admin.close()
    wait_until(lambda: all(code == 0 and leader in survivors for leader, code
                           in cluster.leaders(survivors[1], topic).values()), 30, "leaders")
    producer = Producer({"bootstrap.servers": cluster.bootstrap(survivors[1]), "acks": "all",
                         "message.timeout.ms": 30_000})
    errors: list[object] = []
    for i in range(20):
        producer.produce(topic, f"after-{i}".encode(), partition=i % 2,
                         on_delivery=lambda err, _m: err and errors.append(err))
    assert producer.flush(40) == 0
    assert not errors, errors
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap(survivors[0]),
                         "group.id": f"g-{topic}", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(2)])
    got: set[bytes] = set()
    wait_until(lambda: poll_into(consumer, got) >= 20, 30, "20 records after the failover")
    consumer.close()
    cluster.nodes[old_leader].start()
    wait_quorum_in_step(cluster, survivors[0])
    cluster.wait_brokers(set(cluster.nodes), via=old_leader, timeout=30)
