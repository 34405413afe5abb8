"""SASL/PLAIN (RFC 4616), as Kafka's PLAIN server: the JAAS users and the token check. Pure.
The exchange itself (PLAIN and SCRAM, handshake versions, re-authentication) is
``broker.security.authenticator``'s, framed by ``broker.server``.

Users come from the listener's JAAS entry, Kafka's broker-side form::

    listener.name.<listener, lower case>.plain.sasl.jaas.config=\\
      org.apache.kafka.common.security.plain.PlainLoginModule required \\
      username="admin" password="admin-secret" user_admin="admin-secret" user_alice="s3";

Each ``user_<name>="<password>"`` is one user (``username``/``password`` are what Kafka's
broker itself would log in with; Strom's brokers do not talk to each other on client
listeners, so they are accepted and not used).

On a SASL listener a connection must authenticate first (Kafka's order): it may send
ApiVersions, then SaslHandshake naming PLAIN, then the PLAIN token ``authzid NUL username
NUL password`` — in SaslAuthenticate after handshake v1, or as a bare size-prefixed frame
after v0 (answered by an empty frame; kafka-python and old librdkafka). Any other request
before that closes the connection; a failed authentication is answered
SASL_AUTHENTICATION_FAILED (v1) and the connection is closed. An authorization id, if
given, must equal the username.
"""

from __future__ import annotations

import hmac
import re

MECHANISM = "PLAIN"
LOGIN_MODULE = "org.apache.kafka.common.security.plain.PlainLoginModule"
_OPTION = re.compile(r'([A-Za-z0-9_.\-]+)\s*=\s*"((?:[^"\\]|\\.)*)"')


class JaasError(ValueError):
    """A JAAS entry Strom cannot use (the message says why)."""


def parse_jaas_users(text: str) -> dict[str, str]:
    """The ``user_<name>="<password>"`` options of a PlainLoginModule JAAS entry."""
    body = text.strip()
    if not body.startswith(LOGIN_MODULE):
        raise JaasError(f"expected '{LOGIN_MODULE} required <options>;'")
    rest = body[len(LOGIN_MODULE):].strip()
    if not rest.startswith("required") or not rest.endswith(";"):
        raise JaasError(f"expected '{LOGIN_MODULE} required <options>;'")
    options = rest[len("required"):-1]
    users = {name[len("user_"):]: value.replace('\\"', '"').replace("\\\\", "\\")
             for name, value in _OPTION.findall(options) if name.startswith("user_")}
    if not users or any(not name for name in users):
        raise JaasError("no user_<name>=\"<password>\" entry")
    return users


def authenticate_plain(token: bytes, users: dict[str, str]) -> str | None:
    """The authenticated username for a PLAIN ``token``, or None (wrong password, unknown
    user, malformed token, or an authorization id other than the username)."""
    parts = token.split(b"\0")
    if len(parts) != 3:
        return None
    try:
        authzid, username, password = (p.decode("utf-8") for p in parts)
    except UnicodeDecodeError:
        return None
    expected = users.get(username)
    if not username or expected is None or (authzid and authzid != username):
        return None
    if not hmac.compare_digest(password.encode(), expected.encode()):
        return None
    return username
