"""One authenticated, version-negotiated blocking connection to one broker (for tools).

``BrokerSession(host, port, timeout=..., credentials=..., ssl_context=...)`` connects (over
TLS with an ``ssl_context``), asks ApiVersions,
runs SASL when ``credentials`` are given (SaslHandshake v1, then SaslAuthenticate: PLAIN
sends the RFC 4616 token ``NUL username NUL password``; SCRAM-SHA-256/512 the RFC 5802
client-first and client-final messages, computed by ``scramp``, and checks the server's
final signature), and then serves
``call(api_key, values, highest=N)``: the request is built from the plain mapping
``values`` (``protocol.build``: fields a version lacks are dropped) at the highest version
both this client (``highest``) and the broker support.

Errors are ``ClientError`` subclasses whose message is meant for a person:
``BrokerUnreachable`` (connect refused, timeout, connection closed), ``AuthenticationFailed``
and ``UnsupportedVersion``. Kafka error codes inside responses are the caller's business
(``KafkaApiError`` is provided for them).
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from net.wire import ConnectionClosed, WireClient
from protocol.build import build
from protocol.codec import DecodeError, encode_request, request_type

API_VERSIONS = 18
SASL_HANDSHAKE = 17
SASL_AUTHENTICATE = 36
CLIENT_API_VERSIONS = 3  # ApiVersions v3: flexible, with client software name/version
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


class ClientError(Exception):
    """A failure with a message a person can act on."""


class BrokerUnreachable(ClientError):
    """No answer from a broker (refused, timed out, closed)."""


class AuthenticationFailed(ClientError):
    """SASL authentication was refused."""


class UnsupportedVersion(ClientError):
    """The broker does not serve an API in a version this client speaks."""


class KafkaApiError(ClientError):
    """A Kafka error code in a response; ``code`` is the numeric code, ``name`` its name."""

    def __init__(self, code: int, name: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.name = name


@dataclass(frozen=True, slots=True)
class Credentials:
    """SASL credentials: ``mechanism`` PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512."""

    username: str
    password: str
    mechanism: str = "PLAIN"


def parse_address(text: str) -> tuple[str, int]:
    """``host:port`` (IPv6 as ``[::1]:9092``) → (host, port); ValueError when malformed."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"bad broker address {text!r}: expected HOST:PORT")
    return host.strip("[]"), int(port)


def parse_bootstrap(text: str) -> list[tuple[str, int]]:
    """A comma-separated ``host:port`` list → addresses; ValueError when empty/malformed."""
    items = [part for part in (p.strip() for p in text.split(",")) if part]
    if not items:
        raise ValueError("no broker address given")
    return [parse_address(item) for item in items]


class BrokerSession:
    """A connection to one broker; see the module doc."""

    def __init__(self, host: str, port: int, *, timeout: float = 10.0,
                 credentials: Credentials | None = None, client_id: str = "strom-cli",
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.address = f"{host}:{port}"
        self.timeout = timeout
        self.authenticated = False  # True once SASL succeeded
        self._sasl = credentials is not None
        try:
            self._wire = WireClient(host, port, timeout=timeout, client_id=client_id,
                                    ssl_context=ssl_context)
        except ssl.SSLError as exc:
            raise BrokerUnreachable(f"TLS handshake with {self.address} failed "
                                    f"({exc.reason or exc})") from None
        except OSError as exc:
            raise BrokerUnreachable(f"no broker at {self.address} ({_reason(exc)})") from None
        try:
            self.versions = self._api_versions()
            if credentials is not None:
                self._authenticate(credentials)

        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self._wire.close()

    def __enter__(self) -> BrokerSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def version_for(self, api_key: int, highest: int, lowest: int = 0) -> int:
        """The version to use for ``api_key``: the highest both sides support."""
        served = self.versions.get(api_key)
        if served is None or min(highest, served[1]) < max(lowest, served[0]):
            have = "not at all" if served is None else f"v{served[0]}-{served[1]}"
            raise UnsupportedVersion(
                f"broker {self.address} serves api {api_key} {have}; "
                f"this client needs v{lowest}-{highest}")
        return min(highest, served[1])

    def call(self, api_key: int, values: Mapping[str, Any], *, highest: int,
             lowest: int = 0) -> Any:
        """Build the request from ``values`` at the negotiated version and return the
        response entity."""
        version = self.version_for(api_key, highest, lowest)
        return self.request(build(request_type(api_key, version), values))

    def send_only(self, api_key: int, values: Mapping[str, Any], *, highest: int,
                  lowest: int = 0) -> None:
        """Send a request that gets no response (Produce with acks=0)."""
        version = self.version_for(api_key, highest, lowest)
        try:
            self._wire.send_raw(encode_request(api_key, version, 0, self._wire.client_id,
                                               build(request_type(api_key, version), values)))
        except OSError as exc:
            raise BrokerUnreachable(f"broker {self.address} did not answer ({_reason(exc)})"
                                    ) from None

    def request(self, body: Any) -> Any:
        try:
            return self._wire.request(body)
        except (ConnectionClosed, OSError) as exc:
            hint = "" if self._sasl else (
                " (if its listener needs SASL, give a username and password)")
            raise BrokerUnreachable(
                f"broker {self.address} did not answer ({_reason(exc)}){hint}") from None
        except DecodeError as exc:
            raise ClientError(f"broker {self.address} sent an undecodable response: {exc}"
                              ) from None

    def _api_versions(self) -> dict[int, tuple[int, int]]:
        body = build(request_type(API_VERSIONS, CLIENT_API_VERSIONS), {
            "client_software_name": "strom-cli", "client_software_version": "1"})
        response = self.request(body)
        if int(response.error_code) != 0:  # KIP-511: retry at the version it names (v0)
            response = self.request(build(request_type(API_VERSIONS, 0), {}))
        return {int(k.api_key): (int(k.min_version), int(k.max_version))
                for k in response.api_keys}

    def _authenticate(self, credentials: Credentials) -> None:
        mechanism = credentials.mechanism.upper()
        if mechanism not in MECHANISMS:
            raise AuthenticationFailed(f"SASL mechanism {credentials.mechanism!r} is not "
                                       f"supported (use one of {', '.join(MECHANISMS)})")
        if SASL_HANDSHAKE not in self.versions:
            raise AuthenticationFailed(f"broker {self.address} does not speak SASL")
        shake = self.call(SASL_HANDSHAKE, {"mechanism": mechanism}, highest=1, lowest=1)
        if int(shake.error_code) != 0:
            raise AuthenticationFailed(
                f"broker {self.address} refused SASL/{mechanism} ({shake.error_code.name}); "
                f"it offers {list(shake.mechanisms) or 'no mechanism'}: is the listener "
                "SASL_PLAINTEXT?")
        if mechanism == "PLAIN":
            token = (b"\0" + credentials.username.encode() + b"\0"
                     + credentials.password.encode())
            self._sasl_step(credentials, token)
        else:
            import scramp  # only SCRAM users pay for it

            client = scramp.ScramClient([mechanism], credentials.username,
                                        credentials.password)
            first = self._sasl_step(credentials, client.get_client_first().encode())
            try:
                client.set_server_first(first.decode())
                final = self._sasl_step(credentials, client.get_client_final().encode())
                client.set_server_final(final.decode())
            except (scramp.ScramException, UnicodeDecodeError) as exc:
                raise AuthenticationFailed(
                    f"SCRAM exchange with {self.address} failed: {exc}") from None
        self.authenticated = True

    def _sasl_step(self, credentials: Credentials, token: bytes) -> bytes:
        """One SaslAuthenticate round: the server's bytes, or AuthenticationFailed."""
        try:
            answer = self.call(SASL_AUTHENTICATE, {"auth_bytes": token}, highest=2)
        except BrokerUnreachable:
            raise AuthenticationFailed(
                f"broker {self.address} closed the connection during SASL authentication"
            ) from None
        if int(answer.error_code) != 0:
            raise AuthenticationFailed(
                f"authentication as {credentials.username!r} failed at {self.address}: "
                f"{answer.error_message or answer.error_code.name}")
        return bytes(answer.auth_bytes or b"")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionClosed):
        return "connection closed"
    return exc.strerror or str(exc) if isinstance(exc, OSError) else str(exc)
