"""TLS contexts from Kafka's ``ssl.*`` properties (beside the server, not inside it).

``server_context(settings)`` builds the ``ssl.SSLContext`` of an SSL or SASL_SSL listener;
``client_context(settings)`` the one a broker uses towards other brokers' inter-broker
listener and the controllers' listener. ``settings`` maps Kafka property names to values
(``TlsSettings.of(config, listener)``: the broker's ``ssl.*`` with the listener's own
``listener.name.<l>.ssl.*`` over them, as in Kafka; a listener that sets any keystore
or truststore property replaces the broker's keystore or truststore as a whole).

Key material, as Kafka users have it:

- ``ssl.keystore.type=PEM``: ``ssl.keystore.location`` names a PEM file with the private
  key and its certificate chain, or ``ssl.keystore.key`` + ``ssl.keystore.certificate.chain``
  hold them inline (KIP-651; line breaks optional: the blocks are re-wrapped);
  ``ssl.key.password`` decrypts an encrypted key;
- ``ssl.keystore.type=PKCS12``: ``ssl.keystore.location`` + ``ssl.keystore.password``
  (``ssl.key.password`` for the key when it differs), read with the ``cryptography``
  package when installed, else with the ``openssl`` command;
- truststores likewise: ``ssl.truststore.type=PEM`` with ``ssl.truststore.location`` or
  inline ``ssl.truststore.certificates``, or ``PKCS12`` with ``ssl.truststore.password``;
  none: the system's default CAs (Kafka: the JVM's);
- JKS (Kafka's default type) cannot be read here: convert with ``keytool -importkeystore
  -deststoretype PKCS12``.

``ssl.enabled.protocols`` (TLSv1.2, TLSv1.3), ``ssl.cipher.suites`` (IANA names as in
Kafka, or OpenSSL's; they restrict TLS 1.2 suites: Python cannot restrict TLS 1.3's),
``ssl.client.auth`` (required, requested, none), ``ssl.endpoint.identification.algorithm``
(``https``: the client checks the server's host name; empty: it does not).

Every failure raises ``TlsConfigError`` whose message names the property and never
contains key material or passwords.
"""

from __future__ import annotations

import contextlib
import os
import re
import ssl
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    pkcs12,
)

from broker.config import parse_protocol_map
from broker.ssl_principal import Rule, parse_rules

TLS_PROTOCOLS = ("SSL", "SASL_SSL")
_VERSIONS = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}
_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.S)

#: the ssl.* properties this module reads, with Kafka's defaults
DEFAULTS: dict[str, str] = {
    "ssl.keystore.type": "JKS",
    "ssl.keystore.location": "",
    "ssl.keystore.password": "",
    "ssl.keystore.certificate.chain": "",
    "ssl.keystore.key": "",
    "ssl.key.password": "",
    "ssl.truststore.type": "JKS",
    "ssl.truststore.location": "",
    "ssl.truststore.password": "",
    "ssl.truststore.certificates": "",
    "ssl.enabled.protocols": "TLSv1.2,TLSv1.3",
    "ssl.protocol": "TLSv1.3",
    "ssl.cipher.suites": "",
    "ssl.client.auth": "none",
    "ssl.principal.mapping.rules": "DEFAULT",
    "ssl.endpoint.identification.algorithm": "https",
}


#: a listener that sets one of these sets them all (its keystore or truststore replaces
#: the broker's, rather than mixing a broker-wide file with a listener's inline key)
_GROUPS = (
    frozenset({"ssl.keystore.location", "ssl.keystore.key", "ssl.keystore.certificate.chain",
               "ssl.keystore.password", "ssl.key.password", "ssl.keystore.type"}),
    frozenset({"ssl.truststore.location", "ssl.truststore.certificates",
               "ssl.truststore.password", "ssl.truststore.type"}),
)


class TlsConfigError(ValueError):
    """Key material or a TLS setting is unusable; the message names the property."""


@dataclass(frozen=True)
class TlsSettings:
    """The ``ssl.*`` properties of one listener (Kafka names → values)."""

    values: Mapping[str, str]
    #: the listener these are for ("" for the broker's own) and the keys it set itself
    listener: str = ""
    listener_keys: frozenset[str] = frozenset()

    @classmethod
    def of(cls, config: object, listener: str | None = None) -> TlsSettings:
        """The broker's ``ssl.*`` (``BrokerConfig`` fields) with the listener's
        ``listener.name.<l>.ssl.*`` (``config.listener_ssl``) over them."""
        values = {key: str(getattr(config, key.replace(".", "_"), None) or "")
                  for key in DEFAULTS}
        name = (listener or "").upper()
        own = {k: v for k, v in
               ((getattr(config, "listener_ssl", None) or {}).get(name) or {}).items()
               if k in DEFAULTS}
        for group in _GROUPS:  # a listener's own keystore replaces the broker's whole
            if own.keys() & group:
                values.update(dict.fromkeys(group, ""))
        values.update(own)
        return cls(values, name, frozenset(own))

    def get(self, key: str) -> str:
        raw = self.values.get(key)
        if raw is None:
            return DEFAULTS[key]
        value = raw.strip()
        # an empty type, protocol list or client auth means Kafka's default; an empty
        # ssl.endpoint.identification.algorithm turns host name checks off
        return value or DEFAULTS[key] if key.endswith(".type") or key in (
            "ssl.enabled.protocols", "ssl.client.auth") else value

    def name(self, key: str) -> str:
        """The property as the operator wrote it (listener-prefixed when it was)."""
        return f"listener.name.{self.listener.lower()}.{key}" if key in self.listener_keys \
            else key

    @property
    def client_auth(self) -> str:
        value = self.get("ssl.client.auth").lower() or "none"
        if value not in ("required", "requested", "none"):
            raise TlsConfigError(f"invalid value {value!r} for configuration ssl.client.auth: "
                                 f"must be required, requested or none")
        return value

    @property
    def principal_rules(self) -> tuple[Rule, ...]:
        try:
            return parse_rules(self.get("ssl.principal.mapping.rules"))
        except ValueError as exc:
            raise TlsConfigError(f"invalid configuration ssl.principal.mapping.rules: {exc}"
                                 ) from None


# ---------------------------------------------------------------------------- contexts
def server_context(settings: TlsSettings) -> ssl.SSLContext:
    """The context of an SSL/SASL_SSL listener: its keystore is required."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _common(ctx, settings)
    if not _load_keystore(ctx, settings):
        raise TlsConfigError("an SSL listener needs a keystore: set ssl.keystore.location "
                             "(with ssl.keystore.type PEM or PKCS12) or ssl.keystore.key "
                             "and ssl.keystore.certificate.chain")
    auth = settings.client_auth
    ctx.verify_mode = {"required": ssl.CERT_REQUIRED, "requested": ssl.CERT_OPTIONAL,
                       "none": ssl.CERT_NONE}[auth]
    if auth != "none":
        _load_truststore(ctx, settings)
    settings.principal_rules  # noqa: B018 - validate at startup
    return ctx


def client_context(settings: TlsSettings) -> ssl.SSLContext:
    """The context a broker connects to an SSL listener of another node with: the
    truststore verifies the server; a keystore, when set, answers mTLS."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    _common(ctx, settings)
    ctx.check_hostname = settings.get("ssl.endpoint.identification.algorithm").lower() \
        == "https"
    ctx.verify_mode = ssl.CERT_REQUIRED
    _load_truststore(ctx, settings)
    _load_keystore(ctx, settings)
    return ctx


def _common(ctx: ssl.SSLContext, settings: TlsSettings) -> None:
    names = [p.strip() for p in settings.get("ssl.enabled.protocols").split(",") if p.strip()]
    unknown = [n for n in names if n not in _VERSIONS]
    if unknown or not names:
        raise TlsConfigError(f"invalid value {','.join(names)!r} for configuration "
                             f"ssl.enabled.protocols: Strom supports TLSv1.2 and TLSv1.3")
    versions = sorted(_VERSIONS[n] for n in names)
    ctx.minimum_version, ctx.maximum_version = versions[0], versions[-1]
    suites = [s.strip() for s in settings.get("ssl.cipher.suites").split(",") if s.strip()]
    if suites:
        _set_ciphers(ctx, suites)
    ctx.options |= ssl.OP_NO_COMPRESSION


def _openssl_name(iana: str) -> str:
    """``TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`` → ``ECDHE-RSA-AES128-GCM-SHA256``."""
    kx, sep, cipher = iana.removeprefix("TLS_").removeprefix("SSL_").partition("_WITH_")
    if not sep:
        return iana
    cipher = re.sub(r"AES_(\d+)", r"AES\1", cipher).replace("_", "-")
    cipher = cipher.replace("CHACHA20-POLY1305-SHA256", "CHACHA20-POLY1305")
    kx = "" if kx == "RSA" else kx.replace("_", "-") + "-"
    return kx + cipher


def _set_ciphers(ctx: ssl.SSLContext, suites: list[str]) -> None:
    available = {c["name"]: c["protocol"] for c in ctx.get_ciphers()}
    tls12: list[str] = []
    for suite in suites:
        name = suite if suite in available else _openssl_name(suite)
        if name not in available:
            raise TlsConfigError(f"invalid value for configuration ssl.cipher.suites: "
                                 f"{suite} is not a cipher suite this OpenSSL offers")
        if available[name] != "TLSv1.3":
            tls12.append(name)
    if tls12:
        ctx.set_ciphers(":".join(tls12))


# ---------------------------------------------------------------------------- key material
def _pem_blocks(text: str, what: str) -> list[tuple[str, str]]:
    """PEM blocks of ``text`` re-wrapped (a properties file may join lines) →
    [(label, normalised block)]."""
    out = []
    for label, body in _PEM_BLOCK.findall(text):
        headers, b64 = "", body
        if "Proc-Type:" in body:  # a legacy encrypted key keeps its header lines
            head, _, b64 = body.strip().partition("\n\n")
            headers = head.strip() + "\n\n"
        data = re.sub(r"\s+", "", b64)
        lines = "\n".join(data[i:i + 64] for i in range(0, len(data), 64))
        out.append((label, f"-----BEGIN {label}-----\n{headers}{lines}\n-----END {label}-----\n"))
    if not out:
        raise TlsConfigError(f"{what} holds no PEM block")
    return out


@contextlib.contextmanager
def _private_file(text: str) -> Iterator[str]:
    """A file only this process can read holding ``text``, removed afterwards
    (``load_cert_chain`` reads key material from files only)."""
    fd, path = tempfile.mkstemp(prefix="strom-tls-", suffix=".pem")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _read(settings: TlsSettings, key: str) -> bytes:
    path = Path(settings.get(key)).expanduser()
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TlsConfigError(f"cannot read {settings.name(key)} {path}: "
                             f"{exc.strerror or exc}") from None


def _load_keystore(ctx: ssl.SSLContext, settings: TlsSettings) -> bool:
    """Load the keystore named by the settings into ``ctx``; False when none is set."""
    location = settings.get("ssl.keystore.location")
    inline_key = settings.get("ssl.keystore.key")
    chain = settings.get("ssl.keystore.certificate.chain")
    kind = settings.get("ssl.keystore.type").upper()
    key_password = settings.get("ssl.key.password") or None
    if inline_key or chain:
        if location:
            raise TlsConfigError("set either ssl.keystore.location or ssl.keystore.key with "
                                 "ssl.keystore.certificate.chain, not both")
        if kind != "PEM":
            raise TlsConfigError("ssl.keystore.key and ssl.keystore.certificate.chain need "
                                 "ssl.keystore.type=PEM")
        if not (inline_key and chain):
            given, missing = ("ssl.keystore.key", "ssl.keystore.certificate.chain") \
                if inline_key else ("ssl.keystore.certificate.chain", "ssl.keystore.key")
            raise TlsConfigError(f"{missing} is required with {given}")
        keys = _pem_blocks(inline_key, "ssl.keystore.key")
        certs = _pem_blocks(chain, "ssl.keystore.certificate.chain")
        _load_pem_pair(ctx, "".join(b for _, b in certs), "".join(b for _, b in keys),
                       key_password, "ssl.keystore.key")
        return True
    if not location:
        return False
    data = _read(settings, "ssl.keystore.location")
    prop = settings.name("ssl.keystore.location")
    if kind == "PEM":
        blocks = _pem_blocks(data.decode("ascii", "replace"), prop)
        certs = "".join(b for label, b in blocks if "CERTIFICATE" in label)
        keys = "".join(b for label, b in blocks if "KEY" in label)
        if not certs or not keys:
            raise TlsConfigError(f"{prop} must hold a private key and its certificate "
                                 f"chain (PEM)")
        _load_pem_pair(ctx, certs, keys, key_password, prop)
    elif kind == "PKCS12":
        password = settings.get("ssl.keystore.password")
        key_pem, certs = _pkcs12(data, password, key_password, prop, "ssl.keystore.password")
        if key_pem is None or not certs:
            raise TlsConfigError(f"{prop} holds no private key with its certificate")
        _load_pem_pair(ctx, certs, key_pem, None, prop)
    else:
        raise TlsConfigError(_unsupported_type("ssl.keystore.type", kind, data))
    return True


def _unsupported_type(prop: str, kind: str, data: bytes) -> str:
    hint = " (the file is PEM: set it to PEM)" if b"-----BEGIN" in data[:4096] else ""
    return (f"invalid value {kind!r} for configuration {prop}: Strom reads PEM and PKCS12 "
            f"stores{hint}; convert a JKS store with keytool -importkeystore "
            f"-deststoretype PKCS12")


def _load_pem_pair(ctx: ssl.SSLContext, certs: str, key: str, password: str | None,
                   prop: str) -> None:
    encrypted = "ENCRYPTED" in key
    if encrypted and not password:
        raise TlsConfigError(f"the private key of {prop} is encrypted: set ssl.key.password")
    with _private_file(certs + key) as path:
        try:
            ctx.load_cert_chain(path, password=password if encrypted else None)
        except ssl.SSLError as exc:
            reason = exc.reason or "unreadable"
            if encrypted and reason != "KEY_VALUES_MISMATCH":
                raise TlsConfigError(f"ssl.key.password does not decrypt the private key "
                                     f"of {prop}") from None
            if reason == "KEY_VALUES_MISMATCH":
                reason = "the private key does not belong to the first certificate"
            raise TlsConfigError(f"the key and certificate chain of {prop} cannot be "
                                 f"used: {reason}") from None


def _load_truststore(ctx: ssl.SSLContext, settings: TlsSettings) -> None:
    location = settings.get("ssl.truststore.location")
    inline = settings.get("ssl.truststore.certificates")
    kind = settings.get("ssl.truststore.type").upper()
    if inline:
        if location:
            raise TlsConfigError("set either ssl.truststore.location or "
                                 "ssl.truststore.certificates, not both")
        if kind != "PEM":
            raise TlsConfigError("ssl.truststore.certificates needs ssl.truststore.type=PEM")
        pem = "".join(b for _, b in _pem_blocks(inline, "ssl.truststore.certificates"))
        _load_cas(ctx, pem, "ssl.truststore.certificates")
        return
    if not location:
        ctx.load_default_certs(ssl.Purpose.CLIENT_AUTH if _is_server(ctx)
                               else ssl.Purpose.SERVER_AUTH)
        return
    data = _read(settings, "ssl.truststore.location")
    prop = settings.name("ssl.truststore.location")
    if kind == "PEM":
        blocks = _pem_blocks(data.decode("ascii", "replace"), prop)
        pem = "".join(b for label, b in blocks if "CERTIFICATE" in label)
        if not pem:
            raise TlsConfigError(f"{prop} holds no certificate")
        _load_cas(ctx, pem, prop)
    elif kind == "PKCS12":
        _, certs = _pkcs12(data, settings.get("ssl.truststore.password"), None, prop,
                           "ssl.truststore.password")
        if not certs:
            raise TlsConfigError(f"{prop} holds no certificate")
        _load_cas(ctx, certs, prop)
    else:
        raise TlsConfigError(_unsupported_type("ssl.truststore.type", kind, data))


def _is_server(ctx: ssl.SSLContext) -> bool:
    return ctx.protocol == ssl.PROTOCOL_TLS_SERVER


def _load_cas(ctx: ssl.SSLContext, pem: str, prop: str) -> None:
    try:
        ctx.load_verify_locations(cadata=pem)
    except ssl.SSLError as exc:
        raise TlsConfigError(f"the certificates of {prop} cannot be read: "
                             f"{exc.reason or 'unreadable'}") from None


def _pkcs12(data: bytes, password: str, key_password: str | None, prop: str,
            password_prop: str) -> tuple[str | None, str]:
    """A PKCS12 store → (private key PEM or None, certificates PEM: leaf first)."""
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(
            data, password.encode() if password else None)
    except ValueError:
        if key_password and key_password != password:
            try:
                key, cert, extra = pkcs12.load_key_and_certificates(data, key_password.encode())
            except ValueError:
                key = None
            else:
                return _p12_pem(key, cert, extra)
        raise TlsConfigError(f"{password_prop} does not open {prop} (wrong password or "
                             f"not a PKCS12 store)") from None
    return _p12_pem(key, cert, extra)


def _p12_pem(key: object, cert: object, extra: object) -> tuple[str | None, str]:
    key_pem = key.private_bytes(  # type: ignore[attr-defined]
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode() if key is not None else None
    certs = ([cert] if cert is not None else []) + list(extra or [])  # type: ignore[call-overload]
    return key_pem, "".join(c.public_bytes(Encoding.PEM).decode() for c in certs)


# ---------------------------------------------------------------------------- per broker
@dataclass(frozen=True)
class ListenerTls:
    """What a TLS listener's server needs: its context and principal mapping rules."""

    context: ssl.SSLContext
    principal_rules: tuple[Rule, ...]


def listener_tls(config: object) -> dict[str, ListenerTls]:
    """{listener name: ListenerTls} for every SSL / SASL_SSL listener of ``config``
    (a ``BrokerConfig``); raises ``TlsConfigError`` naming the listener's property."""
    out: dict[str, ListenerTls] = {}
    for li in config.listener_list:  # type: ignore[attr-defined]
        if config.security_protocol(li.name) not in TLS_PROTOCOLS:  # type: ignore[attr-defined]
            continue
        settings = TlsSettings.of(config, li.name)
        try:
            out[li.name] = ListenerTls(server_context(settings), settings.principal_rules)
        except TlsConfigError as exc:
            raise TlsConfigError(f"listener {li.name}: {exc}") from None
    return out


def peer_context(config: object, listener: str | None) -> ssl.SSLContext | None:
    """The client context for connecting to other nodes' ``listener`` (the inter-broker
    or the controller listener), or None when that listener is not TLS."""
    if not listener:
        return None
    protocols = config.listener_security_protocol_map  # type: ignore[attr-defined]
    if parse_protocol_map(protocols).get(listener.upper()) not in TLS_PROTOCOLS:
        return None
    try:
        return client_context(TlsSettings.of(config, listener))
    except TlsConfigError as exc:
        raise TlsConfigError(f"listener {listener.upper()} (as a client): {exc}") from None
