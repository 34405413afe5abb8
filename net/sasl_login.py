"""SASL login of the outbound client (``net.client``) on a SASL_PLAINTEXT / SASL_SSL peer.

``SaslLogin(mechanism, username, password)`` is what a node logs in with on another
node's SASL listener (Kafka's ``sasl.mechanism.inter.broker.protocol`` or
``sasl.mechanism.controller.protocol`` and the ``username``/``password`` options of that
mechanism's JAAS entry). ``authenticate(send,
login, timeout)`` runs Kafka's exchange on a fresh connection, before any other request:

1. SaslHandshake v1 naming the mechanism (UNSUPPORTED_SASL_MECHANISM: the peer's list is in
   the error);
2. SaslAuthenticate v2 rounds: PLAIN sends the RFC 4616 token ``NUL username NUL
   password`` once; SCRAM-SHA-256/512 (RFC 5802/7677, computed by ``scramp``) sends the
   client-first and client-final messages and checks the server's final signature, so a
   peer that does not know the credential is not trusted either.

It returns the session lifetime the peer announced (KIP-368 ``session_lifetime_ms``; 0:
none), so the caller can replace the connection before the peer would close it.
``send(body)`` is the connection's request coroutine. Failures raise ``SaslLoginError`` (a
``ConnectionError``) naming the peer's error; the password never appears in a message.
"""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from protocol.build import build
from protocol.codec import request_type

SASL_HANDSHAKE = 17
SASL_AUTHENTICATE = 36
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


class SaslLoginError(ConnectionError):
    """The peer refused the login, or the exchange could not be completed."""


@dataclass(frozen=True, slots=True)
class SaslLogin:
    """Credentials for one mechanism (upper case, one of ``MECHANISMS``)."""

    mechanism: str
    username: str
    password: str = field(repr=False)

    def __post_init__(self) -> None:
        if self.mechanism not in MECHANISMS:
            raise ValueError(f"SASL mechanism {self.mechanism} is not supported "
                             f"(use one of {', '.join(MECHANISMS)})")


Send = Callable[[Any], Awaitable[Any]]


async def authenticate(send: Send, login: SaslLogin) -> int:
    """Log in on the connection ``send`` talks to; returns the session lifetime in ms."""
    shake = await send(build(request_type(SASL_HANDSHAKE, 1), {"mechanism": login.mechanism}))
    if int(shake.error_code) != 0:
        raise SaslLoginError(f"SASL handshake for {login.mechanism} refused "
                             f"({_name(shake.error_code)}); the peer offers "
                             f"{list(shake.mechanisms)}")
    if login.mechanism == "PLAIN":
        token = b"\0" + login.username.encode() + b"\0" + login.password.encode()
        _, lifetime = await _step(send, login, token)
        return lifetime
    import scramp  # only SCRAM logins pay for it

    client = scramp.ScramClient([login.mechanism], login.username, login.password)
    first, _ = await _step(send, login, client.get_client_first().encode())
    try:
        client.set_server_first(first.decode())
        final, lifetime = await _step(send, login, client.get_client_final().encode())
        client.set_server_final(final.decode())
    except (scramp.ScramException, UnicodeDecodeError) as exc:
        raise SaslLoginError(f"SCRAM exchange as {login.username!r} failed: {exc}") from None
    return lifetime


async def _step(send: Send, login: SaslLogin, token: bytes) -> tuple[bytes, int]:
    answer = await send(build(request_type(SASL_AUTHENTICATE, 2), {"auth_bytes": token}))
    if int(answer.error_code) != 0:
        raise SaslLoginError(f"SASL/{login.mechanism} login as {login.username!r} refused: "
                             f"{answer.error_message or _name(answer.error_code)}")
    return bytes(answer.auth_bytes or b""), _millis(answer.session_lifetime)


def _millis(value: Any) -> int:
    if isinstance(value, datetime.timedelta):
        return int(value.total_seconds() * 1000)
    return int(value or 0)


def _name(code: Any) -> str:
    return getattr(code, "name", str(code))
