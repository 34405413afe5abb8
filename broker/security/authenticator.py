"""SASL authentication of one connection, as Kafka's SaslServerAuthenticator (sans I/O).

``SaslAuthenticator`` (one per SASL listener) knows the enabled mechanisms, the PLAIN users
of the listener's JAAS entry (``broker.sasl``) and how to look up a SCRAM credential (the
metadata image's ``scram``, read at each login, so a user created at run time logs in at
once). ``session()`` gives a ``SaslSession`` per connection:

- ``handshake(mechanism)`` → error code: NONE, or UNSUPPORTED_SASL_MECHANISM for a
  mechanism not enabled (``mechanisms`` is what SaslHandshake lists);
- ``step(token)`` → ``SaslStep``: the bytes to answer with, and when done the principal
  (``User:<name>``) or the failure message. PLAIN takes one step (RFC 4616 token);
  SCRAM-SHA-256/512 two (client-first → server-first; client-final → server-final),
  verified by the ``scramp`` library; as Kafka, the client-final nonce need only *end
  with* the server-first one (librdkafka repeats its own nonce in front). A SCRAM
  failure (unknown user, wrong proof, malformed message) is reported as Kafka does:
  "Authentication failed during authentication due to invalid credentials with SASL
  mechanism <m>".

The server (``broker.server``) frames these tokens in SaslAuthenticate (handshake v1) or
as bare frames (handshake v0), and closes the connection after a failure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import scramp

from broker.sasl import authenticate_plain
from common.security.scram import MECHANISMS, ScramCredential
from protocol.errors import ErrorCode

PLAIN = "PLAIN"
SUPPORTED = (PLAIN, *MECHANISMS)
#: (user, mechanism id) -> credential, or None
ScramLookup = Callable[[str, int], ScramCredential | None]


@dataclass(frozen=True, slots=True)
class SaslStep:
    """``response``: bytes for the client; ``done``: the exchange is over; then
    ``principal`` on success, ``error`` (a message for the client) on failure."""

    response: bytes
    done: bool = False
    principal: str | None = None
    error: str | None = None


def _attribute(message: str, name: str) -> str | None:
    """The value of attribute ``name`` in a SCRAM message (``a=..,b=..``)."""
    for part in message.split(","):
        if part.startswith(f"{name}="):
            return part[2:]
    return None


class SaslAuthenticator:
    def __init__(self, mechanisms: list[str], plain_users: dict[str, str] | None,
                 scram_lookup: ScramLookup | None) -> None:
        self.mechanisms = [m for m in mechanisms if m in SUPPORTED]
        self.plain_users = plain_users or {}
        self.scram_lookup = scram_lookup or (lambda user, mechanism: None)

    def session(self) -> SaslSession:
        return SaslSession(self)


class SaslSession:
    def __init__(self, auth: SaslAuthenticator) -> None:
        self.auth = auth
        self.mechanism: str | None = None
        self._scram: object | None = None
        self._user = ""

    def handshake(self, mechanism: str) -> int:
        if mechanism not in self.auth.mechanisms:
            return int(ErrorCode.unsupported_sasl_mechanism.value)
        self.mechanism = mechanism
        self._scram = None
        return 0

    def step(self, token: bytes) -> SaslStep:
        if self.mechanism == PLAIN:
            user = authenticate_plain(token, self.auth.plain_users)
            if user is None:
                return SaslStep(b"", True, error="Authentication failed: Invalid username "
                                                 "or password")
            return SaslStep(b"", True, principal=f"User:{user}")
        if self.mechanism in MECHANISMS:
            return self._scram_step(token)
        return SaslStep(b"", True, error="No SASL mechanism chosen")

    def _scram_failed(self) -> SaslStep:
        return SaslStep(b"", True, error=(
            f"Authentication failed during authentication due to invalid credentials "
            f"with SASL mechanism {self.mechanism}"))

    def _scram_step(self, token: bytes) -> SaslStep:
        assert self.mechanism is not None
        mech_id = MECHANISMS[self.mechanism]
        try:
            message = token.decode("utf-8")
        except UnicodeDecodeError:
            return self._scram_failed()
        try:
            if self._scram is None:
                def auth_fn(user: str) -> tuple[bytes, bytes, bytes, int]:
                    cred = self.auth.scram_lookup(user, mech_id)
                    if cred is None:
                        raise scramp.ScramException("unknown user")
                    self._user = user
                    return cred.salt, cred.stored_key, cred.server_key, cred.iterations

                server = scramp.ScramMechanism(self.mechanism).make_server(auth_fn)
                server.set_client_first(message)
                self._scram = server
                return SaslStep(server.get_server_first().encode())
            server: Any = self._scram
            nonce = _attribute(message, "r")
            expected = str(server.nonce)
            if nonce is not None and nonce != expected and nonce.endswith(expected):
                # Kafka accepts a final nonce that *ends with* the server's (librdkafka
                # sends its own nonce before the server's whole one); scramp wants equality
                server.nonce = type(server.nonce)(nonce)
            server.set_client_final(message)
            final = server.get_server_final()
            return SaslStep(final.encode(), True, principal=f"User:{self._user}")
        except scramp.ScramException:
            return self._scram_failed()
