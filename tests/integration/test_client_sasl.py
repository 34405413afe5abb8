"""The broker's outbound client (``net.client.ClientPool`` with ``net.sasl_login``) logs in
on a real SASL_PLAINTEXT listener: PLAIN and SCRAM-SHA-256/512 sessions answer requests; a
wrong password or an unknown user is a ``RequestError`` (and the pool backs off); with
``connections.max.reauth.ms`` the pool replaces its connection before the session ends,
so requests spread over several session lifetimes all succeed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from net.client import ClientPool, RequestError
from net.sasl_login import SaslLogin
from protocol.build import build
from protocol.codec import request_type
from tests.support.broker import BrokerProcess

pytestmark = pytest.mark.timeout(90)
JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
        'username="admin" password="admin-secret" user_carol="carol-secret";')
REAUTH_MS = 1500


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    proc = BrokerProcess(tmp_path_factory.mktemp("client-sasl"), {
        "listeners": "SASL_PLAINTEXT://127.0.0.1:0",
        "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS,
        "strom.add.scram": "SCRAM-SHA-256=[name=alice,password=alice-secret];"
                           "SCRAM-SHA-512=[name=bob,password=bob-secret]",
        "connections.max.reauth.ms": str(REAUTH_MS),
    })
    proc.start()
    try:
        yield proc
    finally:
        proc.close()


def metadata() -> object:
    return build(request_type(3, 12), {"topics": None, "allow_auto_topic_creation": False,
                                        "include_topic_authorized_operations": False})


async def ask(node: BrokerProcess, login: SaslLogin, times: int = 1, gap: float = 0.0
              ) -> list[int]:
    host, _, port = node.bootstrap.rpartition(":")
    pool = ClientPool(client_id="k-test", sasl=login, connect_timeout=10)
    try:
        out = []
        for _ in range(times):
            response = await pool.request(host, int(port), metadata(), timeout=10)
            out.append(len(response.brokers))
            await asyncio.sleep(gap)
        return out
    finally:
        pool.close()


async def wait_credentials(node: BrokerProcess) -> None:
    """The bootstrap SCRAM users are written just after the controller starts."""
    end = time.monotonic() + 20
    while True:
        try:
            await ask(node, SaslLogin("SCRAM-SHA-512", "bob", "bob-secret"))
            return
        except RequestError:
            if time.monotonic() > end:
                raise
            await asyncio.sleep(0.2)


@pytest.mark.parametrize("login", [SaslLogin("PLAIN", "carol", "carol-secret"),
                                   SaslLogin("SCRAM-SHA-256", "alice", "alice-secret"),
                                   SaslLogin("SCRAM-SHA-512", "bob", "bob-secret")],
                         ids=lambda login: login.mechanism)
async def test_each_mechanism_logs_in(node: BrokerProcess, login: SaslLogin) -> None:
    await wait_credentials(node)
    assert await ask(node, login) == [1]
    user = f"User:{login.username}"
    assert any("sasl_authenticated" in ln and user in ln and login.mechanism in ln
               for ln in node.log_path.read_text().splitlines())


@pytest.mark.parametrize("login", [SaslLogin("PLAIN", "carol", "wrong"),
                                   SaslLogin("SCRAM-SHA-256", "alice", "wrong"),
                                   SaslLogin("SCRAM-SHA-512", "nobody", "bob-secret")],
                         ids=["plain-wrong-password", "scram-wrong-password",
                              "scram-unknown-user"])
async def test_refused_logins_are_request_errors(node: BrokerProcess, login: SaslLogin
                                                 ) -> None:
    await wait_credentials(node)
    with pytest.raises(RequestError, match="refused"):
        await ask(node, login)
    assert "wrong" not in str(login)  # the password is not part of its repr


async def test_the_pool_replaces_a_connection_before_its_session_ends(node: BrokerProcess
                                                                     ) -> None:
    """Requests every 0.3 s over ~2.5 session lifetimes: none meets an expired session
    (the broker would close the connection: a RequestError), and the pool logged in
    again at least twice."""
    await wait_credentials(node)
    before = node.log_path.read_text().count('"principal": "User:carol"')
    answers = await ask(node, SaslLogin("PLAIN", "carol", "carol-secret"),
                        times=int(2.5 * REAUTH_MS / 300), gap=0.3)
    assert set(answers) == {1}
    logins = node.log_path.read_text().count('"principal": "User:carol"') - before
    assert logins >= 3, logins
    assert "SASL session expired" not in node.log_path.read_text()
