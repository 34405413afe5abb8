"""``broker.security.inter_broker``: a node's own SASL login on the inter-broker and the
controller listeners from Kafka's properties, and the startup errors (naming the property,
never the password) when it cannot log in."""

from __future__ import annotations

from typing import Any

import pytest

from broker.admin.broker_configs import is_sensitive
from broker.config import load_config
from broker.security.inter_broker import controller_login, inter_broker_login
from net.sasl_login import SaslLogin

SCRAM_JAAS = ('org.apache.kafka.common.security.scram.ScramLoginModule required '
              'username="admin" password="s3cr\\"et";')
PLAIN_JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
              'username="broker" password="pw" user_broker="pw" user_alice="a";')
BASE = {"listeners": "PLAINTEXT://127.0.0.1:9192,INTERNAL://127.0.0.1:9193",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,INTERNAL:SASL_SSL,"
                                          "CONTROLLER:PLAINTEXT",
        "sasl.enabled.mechanisms": "SCRAM-SHA-512,PLAIN",
        "listener.name.internal.plain.sasl.jaas.config": PLAIN_JAAS}


def config(**props: str) -> Any:
    return load_config(overrides={**BASE, **{k.replace("_", "."): v for k, v in props.items()}},
                       environ={})[0]


def test_scram_login_from_the_listener_entry() -> None:
    cfg = load_config(overrides={
        **BASE, "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
        "listener.name.internal.scram-sha-512.sasl.jaas.config": SCRAM_JAAS}, environ={})[0]
    assert inter_broker_login(cfg, "INTERNAL", required=True) == SaslLogin(
        "SCRAM-SHA-512", "admin", 's3cr"et')
    assert inter_broker_login(cfg, "PLAINTEXT", required=True) is None  # not SASL
    assert is_sensitive("listener.sasl.jaas.config") and is_sensitive("sasl.jaas.config")


def test_plain_login_from_the_listener_users_entry_and_the_global_fallback() -> None:
    cfg = config(sasl_mechanism_inter_broker_protocol="PLAIN")
    assert inter_broker_login(cfg, "INTERNAL", required=True) == SaslLogin(
        "PLAIN", "broker", "pw")
    cfg = load_config(overrides={**BASE, "sasl.mechanism.inter.broker.protocol":
                                 "SCRAM-SHA-512", "sasl.jaas.config": SCRAM_JAAS},
                      environ={})[0]
    assert inter_broker_login(cfg, "INTERNAL", required=True).username == "admin"


@pytest.mark.parametrize(("props", "message"), [
    ({}, "sasl.mechanism.inter.broker.protocol: the inter-broker listener INTERNAL"),
    ({"sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-256"},
     "SCRAM-SHA-256 must be one of sasl.enabled.mechanisms"),
    ({"sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512"},
     "listener.name.internal.scram-sha-512.sasl.jaas.config (or sasl.jaas.config) is "
     "required"),
    ({"sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
      "listener.name.internal.scram-sha-512.sasl.jaas.config": PLAIN_JAAS},
     "listener.name.internal.scram-sha-512.sasl.jaas.config: expected "
     "'org.apache.kafka.common.security.scram.ScramLoginModule required"),
    ({"sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
      "sasl.jaas.config": 'org.apache.kafka.common.security.scram.ScramLoginModule '
                          'required password="hidden-pw";'},
     "sasl.jaas.config: the broker logs in with its username and password options"),
])
def test_an_unusable_login_names_the_property(props: dict[str, str], message: str) -> None:
    cfg = load_config(overrides={**BASE, **props}, environ={})[0]
    with pytest.raises(ValueError) as info:
        inter_broker_login(cfg, "INTERNAL", required=True)
    assert message in str(info.value)
    assert "hidden-pw" not in str(info.value) and "pw\"" not in str(info.value)
    # without inter.broker.listener.name (a single node's client listener): no login
    assert inter_broker_login(cfg, "INTERNAL", required=False) is None


CONTROLLER = {"listeners": "PLAINTEXT://127.0.0.1:9192,CONTROLLER://127.0.0.1:9193",
              "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:SASL_SSL",
              "sasl.enabled.mechanisms": "SCRAM-SHA-256"}


def test_controller_login_from_sasl_mechanism_controller_protocol() -> None:
    cfg = load_config(overrides={
        **CONTROLLER, "sasl.mechanism.controller.protocol": "scram-sha-256",
        "listener.name.controller.scram-sha-256.sasl.jaas.config":
            'org.apache.kafka.common.security.scram.ScramLoginModule required '
            'username="admin" password="pw";'}, environ={})[0]
    assert controller_login(cfg) == SaslLogin("SCRAM-SHA-256", "admin", "pw")
    plaintext = load_config(overrides={**CONTROLLER, "listener.security.protocol.map":
                                       "PLAINTEXT:PLAINTEXT,CONTROLLER:SSL"}, environ={})[0]
    assert controller_login(plaintext) is None  # TLS only: no login


@pytest.mark.parametrize(("props", "message"), [
    ({}, "sasl.mechanism.controller.protocol: the controller listener CONTROLLER is "
         "SASL_SSL; Strom logs in with PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, not GSSAPI"),
    ({"sasl.mechanism.controller.protocol": "OAUTHBEARER"}, "not OAUTHBEARER"),
    ({"sasl.mechanism.controller.protocol": "SCRAM-SHA-512"},
     "sasl.mechanism.controller.protocol: SCRAM-SHA-512 must be one of "
     "sasl.enabled.mechanisms (SCRAM-SHA-256) to be used on the controller listener"),
    ({"sasl.mechanism.controller.protocol": "SCRAM-SHA-256",
      "sasl.jaas.config": 'org.apache.kafka.common.security.scram.ScramLoginModule '
                          'required username="admin";'},
     "sasl.jaas.config: the broker logs in with its username and password options"),
    ({"sasl.mechanism.controller.protocol": "SCRAM-SHA-256"},
     "listener.name.controller.scram-sha-256.sasl.jaas.config (or sasl.jaas.config) is "
     "required: the node logs in to the controller listener CONTROLLER"),
])
def test_an_unusable_controller_login_names_the_property(props: dict[str, str],
                                                         message: str) -> None:
    cfg = load_config(overrides={**CONTROLLER, **props}, environ={})[0]
    with pytest.raises(ValueError) as info:
        controller_login(cfg)
    assert message in str(info.value)


def test_a_broker_only_node_needs_no_enabled_mechanism_to_log_in_to_controllers() -> None:
    """It does not serve the controller listener, so sasl.enabled.mechanisms (what its own
    SASL listeners accept) does not constrain how it logs in to the controllers."""
    cfg = load_config(overrides={
        **CONTROLLER, "process.roles": "broker", "listeners": "PLAINTEXT://127.0.0.1:9192",
        "sasl.mechanism.controller.protocol": "SCRAM-SHA-512",
        "sasl.jaas.config": SCRAM_JAAS}, environ={})[0]
    assert controller_login(cfg) == SaslLogin("SCRAM-SHA-512", "admin", 's3cr"et')
