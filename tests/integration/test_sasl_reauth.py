"""KIP-368 ``connections.max.reauth.ms``: SaslAuthenticate v1+ tells the client its session
lifetime; a connection whose session ended is closed at its next request unless the
client re-authenticated (SaslHandshake + SaslAuthenticate on the same connection, same
principal) before; re-authenticating as someone else closes it; librdkafka re-
authenticates on its own and keeps producing."""

from __future__ import annotations

import collections
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import scramp
from confluent_kafka import Producer
from kio.schema.errors import ErrorCode

from net.wire import WireClient
from protocol.build import build
from protocol.codec import request_type
from tests.support.broker import BrokerProcess

pytestmark = pytest.mark.timeout(90)
TIMEOUT = 20.0
REAUTH_MS = 1500
USERS = {"alice": "alice-secret", "bob": "bob-secret"}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    proc = BrokerProcess(tmp_path_factory.mktemp("reauth"), {
        "listeners": "SASL_PLAINTEXT://127.0.0.1:0",
        "sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "connections.max.reauth.ms": str(REAUTH_MS),
        "strom.add.scram": ";".join(f"SCRAM-SHA-512=[name={u},password={p}]"
                                    for u, p in USERS.items()),
        "num.partitions": "1",
    })
    proc.start()
    try:
        end = time.monotonic() + TIMEOUT
        while True:
            try:
                connect(proc).close()
                break
            except AssertionError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.1)
        yield proc
    finally:
        proc.close()


def req(api_key: int, version: int, **values: Any) -> Any:
    return build(request_type(api_key, version), values)


def authenticate(c: WireClient, user: str) -> int:
    """One SCRAM-SHA-512 exchange on ``c``; returns the session lifetime (ms)."""
    assert c.request(req(17, 1, mechanism="SCRAM-SHA-512")).error_code == ErrorCode.none
    client = scramp.ScramClient(["SCRAM-SHA-512"], user, USERS[user])
    r = c.request(req(36, 2, auth_bytes=client.get_client_first().encode()))
    assert r.error_code == ErrorCode.none, r
    client.set_server_first(r.auth_bytes.decode())
    r = c.request(req(36, 2, auth_bytes=client.get_client_final().encode()))
    assert r.error_code == ErrorCode.none, r
    client.set_server_final(r.auth_bytes.decode())
    return int(r.session_lifetime.total_seconds() * 1000)


def connect(proc: BrokerProcess, user: str = "alice") -> WireClient:
    host, _, port = proc.bootstrap.rpartition(":")
    c = WireClient(host, int(port), timeout=TIMEOUT)
    try:
        authenticate(c, user)
    except Exception:
        c.close()
        raise
    return c


def metadata(c: WireClient) -> Any:
    return c.request(req(3, 12, topics=None, allow_auto_topic_creation=False,
                         include_topic_authorized_operations=False))


def test_an_expired_session_is_closed(node: BrokerProcess) -> None:
    with connect(node) as c:
        assert metadata(c).brokers
        time.sleep(REAUTH_MS / 1000 + 0.3)
        c.send(req(3, 12, topics=None, allow_auto_topic_creation=False,
                   include_topic_authorized_operations=False))
        assert c.is_closed_by_peer()
    assert "SASL session expired" in node.log_path.read_text()


def test_re_authentication_extends_the_session(node: BrokerProcess) -> None:
    host, _, port = node.bootstrap.rpartition(":")
    with WireClient(host, int(port), timeout=TIMEOUT) as c:
        assert authenticate(c, "alice") == REAUTH_MS
        for _ in range(3):  # three sessions back to back, well past the first one's end
            time.sleep(REAUTH_MS / 1000 * 0.6)
            assert authenticate(c, "alice") == REAUTH_MS
            assert metadata(c).brokers


def test_re_authenticating_as_someone_else_closes(node: BrokerProcess) -> None:
    with connect(node, "alice") as c:
        c.request(req(17, 1, mechanism="SCRAM-SHA-512"))
        client = scramp.ScramClient(["SCRAM-SHA-512"], "bob", USERS["bob"])
        r = c.request(req(36, 2, auth_bytes=client.get_client_first().encode()))
        client.set_server_first(r.auth_bytes.decode())
        c.send(req(36, 2, auth_bytes=client.get_client_final().encode()))
        assert c.is_closed_by_peer()


def test_librdkafka_re_authenticates_and_keeps_producing(node: BrokerProcess) -> None:
    topic = f"reauth-{uuid.uuid4().hex[:8]}"
    start = len(node.log_path.read_bytes())
    errors: list[Any] = []
    producer = Producer({"bootstrap.servers": node.bootstrap,
                         "security.protocol": "SASL_PLAINTEXT",
                         "sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": "alice",
                         "sasl.password": USERS["alice"], "error_cb": errors.append})
    delivered: list[Any] = []
    end = time.monotonic() + 3 * REAUTH_MS / 1000
    while time.monotonic() < end:
        producer.produce(topic, b"x", on_delivery=lambda e, m: delivered.append(e))
        producer.flush(TIMEOUT)
        time.sleep(0.1)
    assert delivered and all(e is None for e in delivered), delivered
    producer.flush(TIMEOUT)
    producer.flush(TIMEOUT)
    logins = [json.loads(line) for line in node.log_path.read_bytes()[start:].decode()
              .splitlines() if '"sasl_authenticated"' in line]
    per_connection = collections.Counter(entry["connection"] for entry in logins)
    # librdkafka re-authenticated on its open connection (KIP-368) rather than dropping it
    assert max(per_connection.values()) >= 2, logins
    assert not [line for line in node.log_path.read_bytes()[start:].decode().splitlines()
                if "SASL session expired" in line]
