"""``--command-config FILE``: a Kafka client properties file, as Kafka's tools take it
(``kafka-metadata-quorum.sh --command-config``), for the security of a tool's connections.

Properties read (anything else is ignored, as Kafka's tools ignore producer/consumer
settings they do not use):

- ``security.protocol``: PLAINTEXT (default), SSL, SASL_PLAINTEXT or SASL_SSL;
- ``sasl.mechanism``: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (Kafka's default GSSAPI is
  refused: Strom has no Kerberos);
- the login: ``sasl.jaas.config`` (``org.apache.kafka.common.security.plain.PlainLoginModule
  required username="..." password="...";``, ``...scram.ScramLoginModule`` for SCRAM), or
  librdkafka's ``sasl.username`` + ``sasl.password``;
- TLS (SSL, SASL_SSL): ``ssl.truststore.location`` with ``ssl.truststore.type`` PEM or
  PKCS12 (+ ``ssl.truststore.password``), or librdkafka's ``ssl.ca.location`` (a PEM
  file); none: the system's CAs. A keystore (``ssl.keystore.*``, PEM or PKCS12) answers a
  listener with ``ssl.client.auth=required``. ``ssl.endpoint.identification.algorithm``
  (``https``, the default: the server's certificate must name the host dialled; empty:
  no host name check), ``ssl.enabled.protocols``, ``ssl.cipher.suites``: as in
  ``broker.tls``.

``load(path)`` → ``ClientSecurity``; ``UsageError`` (exit code 2) with a message naming the
property for a file that cannot be read or a value that cannot be used. Messages never
contain passwords.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from broker.tools.context import UsageError
from net.session import MECHANISMS, Credentials

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
LOGIN_MODULES = {"PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
                 "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
                 "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule"}


@dataclass(frozen=True, slots=True)
class ClientSecurity:
    """How to connect: ``credentials`` for SASL_*, ``tls`` for SSL/SASL_SSL."""

    protocol: str = "PLAINTEXT"
    credentials: Credentials | None = None
    tls: ssl.SSLContext | None = None


def load(path: str) -> ClientSecurity:
    """The security settings of the properties file at ``path`` (see the module doc)."""
    from broker.config import parse_properties  # pydantic: only --command-config pays

    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read --command-config {path}: "
                         f"{getattr(exc, 'strerror', None) or exc}") from None
    return parse(parse_properties(text))


def parse(props: dict[str, str]) -> ClientSecurity:
    """``ClientSecurity`` from client properties (Kafka names → values)."""
    protocol = (props.get("security.protocol") or "PLAINTEXT").strip().upper()
    if protocol not in PROTOCOLS:
        raise UsageError(f"security.protocol: {protocol!r} is not one of {', '.join(PROTOCOLS)}")
    credentials = _credentials(props) if protocol.startswith("SASL_") else None
    tls = _tls(props) if protocol in ("SSL", "SASL_SSL") else None
    return ClientSecurity(protocol, credentials, tls)


def _credentials(props: dict[str, str]) -> Credentials:
    mechanism = (props.get("sasl.mechanism") or "GSSAPI").strip().upper()
    if mechanism not in MECHANISMS:
        raise UsageError(f"sasl.mechanism: Strom logs in with {', '.join(MECHANISMS)}, "
                         f"not {mechanism}" + (" (Kafka's default)" if mechanism == "GSSAPI"
                                               and not props.get("sasl.mechanism") else ""))
    jaas = props.get("sasl.jaas.config")
    if jaas:
        from broker.security.inter_broker import jaas_login

        try:
            username, password = jaas_login(jaas, LOGIN_MODULES[mechanism], "sasl.jaas.config")
        except ValueError as exc:
            raise UsageError(str(exc).replace("the broker logs in", "the tool logs in")
                             ) from None
        return Credentials(username, password, mechanism)
    username, password = props.get("sasl.username"), props.get("sasl.password")
    if not username or password is None:
        raise UsageError("a SASL security.protocol needs sasl.jaas.config (or sasl.username "
                         "and sasl.password)")
    return Credentials(username, password, mechanism)


def _tls(props: dict[str, str]) -> ssl.SSLContext:
    from broker.tls import DEFAULTS, TlsConfigError, TlsSettings, client_context

    values = {k: v for k, v in props.items() if k in DEFAULTS}
    ca = props.get("ssl.ca.location")
    if ca and not values.get("ssl.truststore.location"):
        values.update({"ssl.truststore.location": ca, "ssl.truststore.type": "PEM"})
    try:
        return client_context(TlsSettings(values))
    except TlsConfigError as exc:
        raise UsageError(str(exc)) from None
