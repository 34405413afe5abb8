"""ssl.principal.mapping.rules and the RFC 2253 subject of a certificate, as Kafka's
SslPrincipalMapper and X500Principal.getName() produce them."""

from __future__ import annotations

import pytest

from broker.ssl_principal import (
    ANONYMOUS,
    NoMatchingRule,
    map_principal,
    parse_rules,
    principal_of,
    subject_dn,
)

# getpeercert()["subject"]: RDNs in certificate (DER) order, most general first
ALICE = ((("countryName", "US"),), (("organizationName", "Strom, Inc."),),
         (("organizationalUnitName", "eng"),), (("commonName", "Alice"),))


def test_subject_dn_is_rfc2253_most_specific_first_with_escapes() -> None:
    assert subject_dn(ALICE) == "CN=Alice,OU=eng,O=Strom\\, Inc.,C=US"
    multi = ((("organizationName", "X"),), (("commonName", "a"), ("userId", "u1")))
    assert subject_dn(multi) == "CN=a+UID=u1,O=X"
    email = ((("commonName", "b"),), (("emailAddress", "b@x.io"),))
    assert subject_dn(email) == "1.2.840.113549.1.9.1=#1606624078 2e696f".replace(" ", "") \
        + ",CN=b"


def test_default_keeps_the_dn() -> None:
    assert map_principal("CN=a,O=b", parse_rules("DEFAULT")) == "CN=a,O=b"
    assert map_principal("CN=a,O=b", parse_rules("")) == "CN=a,O=b"


def test_rules_apply_in_order_with_groups_and_case() -> None:
    rules = parse_rules("RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,"
                        "RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=.*$/$1@$2/L, "
                        "RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/U, DEFAULT")
    assert map_principal("CN=kafka-svc,OU=ServiceUsers,O=Org", rules) == "kafka-svc"
    assert map_principal("CN=Duke,OU=JavaSoft,O=Sun,L=SC", rules) == "duke@javasoft"
    assert map_principal("OU=x,cn=bob.smith", rules) == "BOB.SMITH"
    assert map_principal("OU=only", rules) == "OU=only"


def test_no_matching_rule_refuses() -> None:
    with pytest.raises(NoMatchingRule):
        map_principal("O=nobody", parse_rules("RULE:^CN=(.*)$/$1/"))


@pytest.mark.parametrize("bad", ["RULE:^CN=(.*)$/$1", "NOPE", "RULE:(unclosed/$1/"])
def test_malformed_rules_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_rules(bad)


def test_no_certificate_is_anonymous() -> None:
    assert principal_of(None, parse_rules("")) == ANONYMOUS
    assert principal_of({}, parse_rules("")) == ANONYMOUS
    assert principal_of({"subject": ALICE}, parse_rules("RULE:^CN=([^,]*),.*$/$1/L")) \
        == "alice"
