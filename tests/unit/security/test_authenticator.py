"""The per-connection SASL sessions (``broker.security.authenticator``) without sockets:
PLAIN, SCRAM-SHA-256/512 against scramp's client, librdkafka's repeated client nonce
(accepted as Kafka does: the final nonce must end with the server's), and refusals."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

import pytest
import scramp

from broker.security.authenticator import SaslAuthenticator
from common.security.scram import MECHANISMS, credential, salted_password
from protocol.errors import ErrorCode

SALT = os.urandom(16)
CREDS = {(user, mech): credential(mech, SALT, salted_password(mech, pw, SALT, 4096), 4096)
         for user, pw in (("alice", "alice-secret"),) for mech in (1, 2)}


def authenticator() -> SaslAuthenticator:
    return SaslAuthenticator(["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"],
                             {"carol": "carol-secret"}, lambda u, m: CREDS.get((u, m)))


@pytest.mark.parametrize("mech", sorted(MECHANISMS))
def test_scram_exchange(mech: str) -> None:
    session = authenticator().session()
    assert session.handshake(mech) == 0
    client = scramp.ScramClient([mech], "alice", "alice-secret")
    first = session.step(client.get_client_first().encode())
    assert not first.done
    client.set_server_first(first.response.decode())
    final = session.step(client.get_client_final().encode())
    assert final.done and final.principal == "User:alice"
    client.set_server_final(final.response.decode())  # the server proved its key


def test_librdkafka_nonce_in_front_of_the_server_nonce() -> None:
    session = authenticator().session()
    session.handshake("SCRAM-SHA-256")
    client = scramp.ScramClient(["SCRAM-SHA-256"], "alice", "alice-secret")
    first = client.get_client_first()
    c_nonce = first.split("r=", 1)[1]
    server_first = session.step(first.encode()).response.decode()
    # build the final message librdkafka sends: r = client nonce + the server's nonce
    client.set_server_first(server_first)
    final = client.get_client_final()
    assert final.startswith(f"c=biws,r={c_nonce}")
    attrs = dict(part.split("=", 1) for part in final.split(","))
    doubled = f"c=biws,r={c_nonce}{attrs['r']}"
    # the proof covers the message as sent, so compute it for the doubled nonce (RFC 5802:
    # ClientProof = ClientKey XOR HMAC(StoredKey, AuthMessage))
    salted = salted_password(1, "alice-secret", SALT, 4096)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    auth = f"{first[3:]},{server_first},{doubled}".encode()
    signature = hmac.new(stored_key, auth, "sha256").digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
    message = f"{doubled},p={base64.b64encode(proof).decode()}"
    step = session.step(message.encode())
    assert step.done and step.principal == "User:alice", step


def test_refusals() -> None:
    auth = authenticator()
    s = auth.session()
    assert s.handshake("GSSAPI") == int(ErrorCode.unsupported_sasl_mechanism.value)
    s = auth.session()
    s.handshake("SCRAM-SHA-256")
    step = s.step(b"n,,n=nobody,r=abcdef")
    assert step.done and step.principal is None and "SCRAM-SHA-256" in (step.error or "")
    s = auth.session()
    s.handshake("SCRAM-SHA-512")
    client = scramp.ScramClient(["SCRAM-SHA-512"], "alice", "wrong")
    client.set_server_first(s.step(client.get_client_first().encode()).response.decode())
    step = s.step(client.get_client_final().encode())
    assert step.done and step.principal is None
    s = auth.session()
    s.handshake("SCRAM-SHA-256")
    assert s.step(b"\xff\xfe").principal is None  # not UTF-8
    s = auth.session()
    s.handshake("PLAIN")
    assert s.step(b"\0carol\0carol-secret").principal == "User:carol"
    s = auth.session()
    s.handshake("PLAIN")
    assert s.step(b"\0carol\0nope").principal is None
