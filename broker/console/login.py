"""The console's login on a broker with an authorizer (``authorizer.class.name`` set).

Scheme: HTTP Basic. The console does not judge the password itself: it opens the user's
own Kafka connection to this node's SASL_PLAINTEXT listener with those credentials
(SASL/PLAIN when the listener's JAAS entry names the user, else the strongest SCRAM
mechanism the listener enables and the metadata log holds a credential of the user for),
so the broker authenticates the user exactly as it does any client, and every page is
built from that connection's answers (``broker.console.remote``): the authorizer filters
what ``User:<name>`` may describe (Metadata leaves out the topics it may not, groups it
may not describe are not listed) and decides every action. A failed login is a 401 asking
for Basic credentials again. Basic sends the password in clear on each request: serve the
console on 127.0.0.1 or behind TLS.

``strom console --login`` uses the same scheme against any cluster: the Basic
credentials go to its ``--bootstrap-server`` with ``--sasl-mechanism``.

Connections are kept per (user, password) — at most ``MAX_USERS``, the oldest closed
first — so a page costs no new SASL exchange.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from aiohttp import web

from broker.console.remote import ProtocolSource
from common.security.scram import MECHANISMS
from net.kafka_client import KafkaClient
from net.session import Credentials

REALM = 'Basic realm="Strom console", charset="UTF-8"'
MAX_USERS = 32


def unauthorized(message: str) -> web.HTTPUnauthorized:
    return web.HTTPUnauthorized(headers={"WWW-Authenticate": REALM}, text=message)


def parse_basic(header: str) -> tuple[str, str]:
    """(user, password) of an ``Authorization: Basic ...`` header; HTTPUnauthorized
    when there is none or it does not parse."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        raise unauthorized("Log in with a user of this cluster (SASL/PLAIN or SCRAM).")
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode(
            "utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise unauthorized("Malformed Basic credentials.") from None
    if not sep or not user:
        raise unauthorized("Malformed Basic credentials.")
    return user, password


def sasl_listener(node: Any) -> tuple[str, str, int] | None:
    """(listener name, host, port) of this node's first SASL_PLAINTEXT listener."""
    for name, host, port in getattr(node, "advertised", ()):
        if node.config.security_protocol(name) == "SASL_PLAINTEXT":
            return name, host, port
    return None


def mechanism_for(node: Any, listener: str, user: str) -> str | None:
    """The SASL mechanism to log ``user`` in with on ``listener`` (module doc)."""
    config = node.config
    enabled = config.sasl_mechanism_list
    if "PLAIN" in enabled and user in config.plain_users().get(listener, {}):
        return "PLAIN"
    scram = node.quorum.image.scram
    for name in sorted(MECHANISMS, reverse=True):  # SCRAM-SHA-512 first
        if name in enabled and (user, MECHANISMS[name]) in scram:
            return name
    return None


class BasicLogin:
    """Per-request ``ProtocolSource`` / ``KafkaClient`` as the Basic-authenticated user:
    ``bootstrap()`` is where to log in (``host:port[,...]``), ``mechanism(user)`` the SASL
    mechanism for the user (None: no such user, 401)."""

    def __init__(self, bootstrap: Callable[[], str],
                 mechanism: Callable[[str], str | None]) -> None:
        self.bootstrap = bootstrap
        self.mechanism = mechanism
        self._sources: OrderedDict[bytes, ProtocolSource] = OrderedDict()

    def credentials(self, request: web.Request) -> Credentials:
        user, password = parse_basic(request.headers.get("Authorization", ""))
        mechanism = self.mechanism(user)
        if mechanism is None:
            raise unauthorized(f"No user {user!r} on this cluster's SASL listener.")
        return Credentials(user, password, mechanism)

    def user_of(self, request: web.Request) -> str:
        return parse_basic(request.headers.get("Authorization", ""))[0]

    def client_for(self, request: web.Request) -> KafkaClient:
        return KafkaClient(self.bootstrap(), credentials=self.credentials(request),
                           client_id="strom-console")

    def source_for(self, request: web.Request) -> ProtocolSource:
        creds = self.credentials(request)
        key = hashlib.sha256(f"{creds.username}\0{creds.password}".encode()).digest()
        source = self._sources.get(key)
        if source is None:
            bootstrap = self.bootstrap()
            source = ProtocolSource(lambda: KafkaClient(
                bootstrap, credentials=creds, client_id="strom-console"))
            self._sources[key] = source
            while len(self._sources) > MAX_USERS:
                _, old = self._sources.popitem(last=False)
                old.close()
        self._sources.move_to_end(key)
        return source


def node_login(node: Any) -> BasicLogin:
    """The login of a broker's own console: its SASL_PLAINTEXT listener, the mechanism
    ``mechanism_for`` picks."""

    def listener() -> tuple[str, str, int]:
        found = sasl_listener(node)
        if found is None:  # known once the broker listens
            raise web.HTTPServiceUnavailable(text="The broker's SASL listener is not "
                                                  "serving yet.")
        return found

    def bootstrap() -> str:
        _, host, port = listener()
        return f"{host}:{port}"

    return BasicLogin(bootstrap, lambda user: mechanism_for(node, listener()[0], user))
