"""broker.tls: SSL contexts from Kafka's ssl.* properties (PEM files, inline PEM, PKCS12,
truststores, protocols, cipher suites, client auth), and the startup errors for bad key
material: each names its property and never carries a password or key."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import pytest

from broker.config import load_config
from broker.tls import (
    TlsConfigError,
    TlsSettings,
    client_context,
    listener_tls,
    peer_context,
    server_context,
)
from tests.support.tls_ca import Issued, TestCA

PASSWORD = "p12-secret-77"
KEY_PASSWORD = "key-secret-99"


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def server(ca: TestCA) -> Issued:
    return ca.issue("server", "/CN=localhost", server=True)


def settings(**values: str) -> TlsSettings:
    return TlsSettings({k.replace("_", "."): v for k, v in values.items()})


def error(**values: str) -> str:
    with pytest.raises(TlsConfigError) as info:
        server_context(settings(**values))
    return str(info.value)


def test_pem_file_inline_pem_and_pkcs12_keystores(ca: TestCA, server: Issued) -> None:
    assert server_context(settings(ssl_keystore_type="PEM",
                                   ssl_keystore_location=str(server.bundle)))
    key = server.encrypted_key(KEY_PASSWORD).read_text()
    chain = server.cert.read_text() + ca.pem.read_text()
    # a properties file may join the lines: the blocks are re-wrapped
    assert server_context(settings(ssl_keystore_type="PEM",
                                   ssl_keystore_key=key.replace("\n", " "),
                                   ssl_keystore_certificate_chain=chain.replace("\n", ""),
                                   ssl_key_password=KEY_PASSWORD))
    assert server_context(settings(ssl_keystore_type="PKCS12",
                                   ssl_keystore_location=str(server.pkcs12(PASSWORD)),
                                   ssl_keystore_password=PASSWORD))


def test_bad_key_material_names_the_property_and_no_secret(ca: TestCA, server: Issued,
                                                           tmp_path: Path) -> None:
    p12 = server.pkcs12(PASSWORD)
    key = server.encrypted_key(KEY_PASSWORD).read_text()
    cases = {
        "ssl.keystore.password does not open ssl.keystore.location":
            {"ssl_keystore_type": "PKCS12", "ssl_keystore_location": str(p12),
             "ssl_keystore_password": "wrong-77"},
        "cannot read ssl.keystore.location": {"ssl_keystore_type": "PEM",
                                              "ssl_keystore_location": str(tmp_path / "no")},
        "ssl.key.password does not decrypt": {
            "ssl_keystore_type": "PEM", "ssl_keystore_key": key,
            "ssl_keystore_certificate_chain": server.cert.read_text(),
            "ssl_key_password": "wrong-99"},
        "is encrypted: set ssl.key.password": {
            "ssl_keystore_type": "PEM", "ssl_keystore_key": key,
            "ssl_keystore_certificate_chain": server.cert.read_text()},
        "ssl.keystore.type: Strom reads PEM and PKCS12 stores (the file is PEM":
            {"ssl_keystore_location": str(server.bundle)},
        "must hold a private key and its certificate chain":
            {"ssl_keystore_type": "PEM", "ssl_keystore_location": str(server.cert)},
        "ssl.keystore.certificate.chain is required with ssl.keystore.key":
            {"ssl_keystore_type": "PEM", "ssl_keystore_key": key},
        "an SSL listener needs a keystore": {},
        "ssl.client.auth": {"ssl_keystore_type": "PEM",
                            "ssl_keystore_location": str(server.bundle),
                            "ssl_client_auth": "sometimes"},
        "ssl.enabled.protocols": {"ssl_keystore_type": "PEM",
                                  "ssl_keystore_location": str(server.bundle),
                                  "ssl_enabled_protocols": "TLSv1.1"},
        "ssl.cipher.suites": {"ssl_keystore_type": "PEM",
                              "ssl_keystore_location": str(server.bundle),
                              "ssl_cipher_suites": "TLS_NOT_A_SUITE"},
        "ssl.principal.mapping.rules": {"ssl_keystore_type": "PEM",
                                        "ssl_keystore_location": str(server.bundle),
                                        "ssl_principal_mapping_rules": "RULE:broken"},
    }
    secret_line = server.key.read_text().splitlines()[1]
    for expected, values in cases.items():
        message = error(**values)
        assert expected in message, (expected, message)
        for secret in ("wrong-77", "wrong-99", KEY_PASSWORD, PASSWORD, secret_line):
            assert secret not in message


def test_client_auth_protocols_and_iana_cipher_names(ca: TestCA, server: Issued) -> None:
    base = {"ssl_keystore_type": "PEM", "ssl_keystore_location": str(server.bundle),
            "ssl_truststore_type": "PEM", "ssl_truststore_location": str(ca.pem)}
    assert server_context(settings(**base, ssl_client_auth="required")).verify_mode \
        == ssl.CERT_REQUIRED
    assert server_context(settings(**base, ssl_client_auth="requested")).verify_mode \
        == ssl.CERT_OPTIONAL
    assert server_context(settings(**base)).verify_mode == ssl.CERT_NONE
    ctx = server_context(settings(**base, ssl_enabled_protocols="TLSv1.2"))
    assert ctx.minimum_version == ctx.maximum_version == ssl.TLSVersion.TLSv1_2
    ctx = server_context(settings(**base, ssl_enabled_protocols="TLSv1.2",
                                  ssl_cipher_suites="TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"))
    names = {c["name"] for c in ctx.get_ciphers() if c["protocol"] == "TLSv1.2"}
    assert names == {"ECDHE-ECDSA-AES128-GCM-SHA256"}


def test_pkcs12_truststore_and_client_context(ca: TestCA, tmp_path: Path) -> None:
    trust = tmp_path / "trust.p12"
    subprocess.run(["openssl", "pkcs12", "-export", "-nokeys", "-in", str(ca.pem), "-out",
                    str(trust), "-passout", f"pass:{PASSWORD}"], check=True,
                   capture_output=True, timeout=30)
    ctx = client_context(settings(ssl_truststore_type="PKCS12",
                                  ssl_truststore_location=str(trust),
                                  ssl_truststore_password=PASSWORD))
    assert ctx.check_hostname and ctx.verify_mode == ssl.CERT_REQUIRED
    assert len(ctx.get_ca_certs()) == 1
    off = client_context(settings(ssl_truststore_type="PEM", ssl_truststore_location=str(ca.pem),
                                  ssl_endpoint_identification_algorithm=""))
    assert not off.check_hostname


def test_listener_prefixed_properties_and_per_listener_contexts(ca: TestCA,
                                                                server: Issued) -> None:
    config, unknown = load_config(None, [
        "listeners=PLAINTEXT://:0,SECURE://:0,CONTROLLER://:0",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SECURE:SSL,CONTROLLER:SSL",
        "controller.listener.names=CONTROLLER",
        "ssl.keystore.type=PEM", f"ssl.keystore.location={server.bundle}",
        "listener.name.secure.ssl.client.auth=required",
        "listener.name.secure.ssl.truststore.type=PEM",
        f"listener.name.secure.ssl.truststore.location={ca.pem}",
        "listener.name.controller.ssl.keystore.type=PKCS12",
        "listener.name.controller.ssl.keystore.location=/nonexistent.p12",
    ], environ={})
    assert not unknown
    assert TlsSettings.of(config, "SECURE").get("ssl.client.auth") == "required"
    assert TlsSettings.of(config, "PLAINTEXT").get("ssl.client.auth") == "none"
    with pytest.raises(TlsConfigError, match="listener CONTROLLER: cannot read "
                                             "listener.name.controller.ssl.keystore.location"):
        listener_tls(config)
    assert peer_context(config, "PLAINTEXT") is None
    assert isinstance(peer_context(config, "SECURE"), ssl.SSLContext)


def test_describe_configs_never_returns_listener_secrets() -> None:
    from broker.admin.broker_configs import describe_broker
    from broker.config import explicit_properties

    config, _ = load_config(None, [
        "listeners=SSL://:0", "listener.name.ssl.ssl.key.password=TOPSECRET",
        "ssl.keystore.password=KSSECRET",
        "listener.name.plaintext.plain.sasl.jaas.config=JAASSECRET"], environ={})
    described = describe_broker(config.as_properties(), explicit_properties(config))
    text = repr([(d.name, d.value, [s.value for s in d.synonyms]) for d in described])
    for secret in ("TOPSECRET", "KSSECRET", "JAASSECRET"):
        assert secret not in text


def test_pkcs12_store_gives_key_and_chain(ca: TestCA, server: Issued) -> None:
    """A PKCS12 store (read with the cryptography package) gives the key and the chain,
    leaf first, and a wrong password is refused naming it."""
    from broker import tls

    read = tls._pkcs12
    data = server.pkcs12(PASSWORD).read_bytes()
    key, certs = read(data, PASSWORD, None, "ssl.keystore.location", "ssl.keystore.password")
    assert key is not None and "PRIVATE KEY" in key
    assert certs.startswith(server.cert.read_text().strip().splitlines()[0])
    assert certs.count("BEGIN CERTIFICATE") == 2
    leaf = "".join(server.cert.read_text().split())
    assert leaf in "".join(certs.split())[: len(leaf) + 10]  # the leaf comes first
    with pytest.raises(TlsConfigError, match="ssl.keystore.password does not open"):
        read(data, "nope", None, "ssl.keystore.location", "ssl.keystore.password")
