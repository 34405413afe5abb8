"""``--command-config`` client properties (``broker.tools.command_config``): what each
security.protocol needs, Kafka's and librdkafka's spellings of the login and the CA, and
one-line refusals naming the property, never the password."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from broker.tools.command_config import ClientSecurity, load, parse
from broker.tools.context import UsageError
from net.session import Credentials
from tests.support.tls_ca import TestCA

PLAIN_JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
              'username="admin" password="s3cret";')


def test_plaintext_by_default_and_ignores_other_client_settings() -> None:
    assert parse({}) == ClientSecurity("PLAINTEXT", None, None)
    assert parse({"acks": "all", "sasl.jaas.config": PLAIN_JAAS}) == ClientSecurity()


def test_sasl_plaintext_from_the_jaas_entry_or_librdkafka_names() -> None:
    got = parse({"security.protocol": "sasl_plaintext", "sasl.mechanism": "PLAIN",
                 "sasl.jaas.config": PLAIN_JAAS})
    assert got == ClientSecurity("SASL_PLAINTEXT", Credentials("admin", "s3cret", "PLAIN"))
    scram = parse({"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-512",
                   "sasl.jaas.config": 'org.apache.kafka.common.security.scram.ScramLoginModule'
                                       ' required username="bob" password="p\\"w";'})
    assert scram.credentials == Credentials("bob", 'p"w', "SCRAM-SHA-512")
    rd = parse({"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-256",
                "sasl.username": "carol", "sasl.password": "pw"})
    assert rd.credentials == Credentials("carol", "pw", "SCRAM-SHA-256")


@pytest.mark.parametrize(("props", "message"), [
    ({"security.protocol": "SASL_PLAIN"}, "security.protocol: 'SASL_PLAIN' is not one of"),
    ({"security.protocol": "SASL_PLAINTEXT", "sasl.jaas.config": PLAIN_JAAS},
     "sasl.mechanism: Strom logs in with PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, not GSSAPI "
     "(Kafka's default)"),
    ({"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "OAUTHBEARER"},
     "not OAUTHBEARER"),
    ({"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN"},
     "needs sasl.jaas.config (or sasl.username and sasl.password)"),
    ({"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-256",
      "sasl.jaas.config": PLAIN_JAAS},
     "sasl.jaas.config: expected 'org.apache.kafka.common.security.scram.ScramLoginModule"),
    ({"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
      "sasl.jaas.config": 'org.apache.kafka.common.security.plain.PlainLoginModule required '
                          'password="s3cret";'},
     "the tool logs in with its username and password options"),
])
def test_unusable_settings_name_the_property(props: dict[str, str], message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse(props)
    assert message in str(info.value)
    assert "s3cret" not in str(info.value)


def test_tls_trusts_the_given_ca_kafka_or_librdkafka_style(tmp_path: Path) -> None:
    ca = TestCA(tmp_path / "ca")
    for props in ({"ssl.truststore.type": "PEM", "ssl.truststore.location": str(ca.pem)},
                  {"ssl.ca.location": str(ca.pem)}):
        got = parse({"security.protocol": "SSL", **props})
        assert got.credentials is None and isinstance(got.tls, ssl.SSLContext)
        assert got.tls.verify_mode == ssl.CERT_REQUIRED and got.tls.check_hostname
        assert [c["subject"] for c in got.tls.get_ca_certs()] == \
            [c["subject"] for c in ssl.create_default_context(
                cafile=str(ca.pem)).get_ca_certs()]
    off = parse({"security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN",
                 "sasl.jaas.config": PLAIN_JAAS, "ssl.ca.location": str(ca.pem),
                 "ssl.endpoint.identification.algorithm": ""})
    assert off.tls is not None and not off.tls.check_hostname and off.credentials
    with pytest.raises(UsageError) as info:
        parse({"security.protocol": "SSL", "ssl.truststore.location": str(ca.pem)})
    assert "JKS" in str(info.value)


def test_load_reads_a_properties_file(tmp_path: Path) -> None:
    path = tmp_path / "admin.properties"
    path.write_text("# admin\nsecurity.protocol=SASL_PLAINTEXT\nsasl.mechanism = PLAIN\n"
                    f"sasl.jaas.config={PLAIN_JAAS}\n")
    assert load(str(path)).credentials == Credentials("admin", "s3cret", "PLAIN")
    with pytest.raises(UsageError) as info:
        load(str(tmp_path / "missing.properties"))
    assert "cannot read --command-config" in str(info.value)
