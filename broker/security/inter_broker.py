"""What a node logs in with on another node's SASL listener (pure): the inter-broker
listener (follower fetches, broker-to-broker RPCs) and the controller listener (Raft
votes and fetches, broker registration and heartbeats, forwarded admin requests).

Kafka's configuration, unchanged:

- the mechanism: ``sasl.mechanism.inter.broker.protocol`` for the inter-broker listener,
  ``sasl.mechanism.controller.protocol`` for the controller listener (each defaults to
  GSSAPI, which Strom lacks): PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; on a node that
  serves that listener it must be one of ``sasl.enabled.mechanisms``;
- the login comes from the ``username`` and ``password`` options of that mechanism's JAAS
  entry: ``listener.name.<listener>.<mechanism, lower case>.sasl.jaas.config``, else
  ``sasl.jaas.config``. PLAIN's entry is the one that also lists the listener's users
  (``PlainLoginModule required username="admin" password="..." user_admin="...";``);
  SCRAM's is ``org.apache.kafka.common.security.scram.ScramLoginModule required
  username="admin" password="...";`` (the credential itself lives in the metadata log,
  e.g. from ``strom.add.scram``).

``inter_broker_login(config, listener, required=...)`` → ``SaslLogin`` for a SASL
listener, None for PLAINTEXT/SSL. With ``required`` (``inter.broker.listener.name`` was set)
a missing or unusable entry is a ``ValueError`` naming the property (startup stops);
without it (the inter-broker listener defaulted to the first client listener, as on a
single node) the answer is None and nothing changes. ``controller_login(config)`` is the
same for the first of ``controller.listener.names``, always required (a SASL controller
listener accepts nobody who does not log in). Passwords never appear in messages.
"""

from __future__ import annotations

import re
from typing import Any

from broker.config import parse_protocol_map
from net.sasl_login import MECHANISMS, SaslLogin

KEY = "sasl.mechanism.inter.broker.protocol"
CONTROLLER_KEY = "sasl.mechanism.controller.protocol"
LOGIN_MODULES = {"PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
                 "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
                 "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule"}
_OPTION = re.compile(r'([A-Za-z0-9_.\-]+)\s*=\s*"((?:[^"\\]|\\.)*)"')


def jaas_login(text: str, module: str, key: str) -> tuple[str, str]:
    """(username, password) of a ``<module> required username="..." password="...";``
    entry; ValueError naming ``key`` when it is another module or lacks either option."""
    body = text.strip()
    rest = body[len(module):].strip() if body.startswith(module) else ""
    if not rest.startswith("required") or not rest.endswith(";"):
        raise ValueError(f"{key}: expected '{module} required username=\"...\" "
                         f"password=\"...\";'")
    options = {name: value.replace('\\"', '"').replace("\\\\", "\\")
               for name, value in _OPTION.findall(rest[len("required"):-1])}
    if not options.get("username") or "password" not in options:
        raise ValueError(f"{key}: the broker logs in with its username and password "
                         "options, and one is missing")
    return options["username"], options["password"]


def inter_broker_login(config: Any, listener: str | None, *, required: bool
                       ) -> SaslLogin | None:
    """The login for the inter-broker ``listener`` (see the module doc)."""
    return listener_login(config, listener, KEY, config.sasl_mechanism_inter_broker_protocol,
                          role="the inter-broker listener", required=required,
                          served=True)


def controller_login(config: Any) -> SaslLogin | None:
    """The login for the controller listener (the first of ``controller.listener.names``);
    None when it is not SASL. ValueError naming the property when the node cannot log in."""
    names = [n.strip().upper() for n in config.controller_listener_names.split(",")
             if n.strip()]
    if not names:
        return None
    served = names[0] in {li.name for li in config.listener_list}
    return listener_login(config, names[0], CONTROLLER_KEY,
                          config.sasl_mechanism_controller_protocol,
                          role="the controller listener", required=True, served=served)


def listener_login(config: Any, listener: str | None, key_name: str, mechanism: str,
                   *, role: str, required: bool, served: bool) -> SaslLogin | None:
    """The login with ``mechanism`` (the value of property ``key_name``) on ``listener``;
    ``served``: this node serves the listener too, so the mechanism must be enabled."""
    if not listener:
        return None
    name = listener.upper()
    protocol = parse_protocol_map(config.listener_security_protocol_map).get(name)
    if protocol not in ("SASL_PLAINTEXT", "SASL_SSL"):
        return None
    mechanism = (mechanism or "").strip().upper()
    if mechanism not in MECHANISMS:
        if not required:
            return None
        raise ValueError(f"{key_name}: {role} {name} is {protocol}; Strom logs in with "
                         f"{', '.join(MECHANISMS)}, not {mechanism or '(none)'}")
    if served and mechanism not in config.sasl_mechanism_list:
        if not required:
            return None
        raise ValueError(f"{key_name}: {mechanism} must be one of sasl.enabled.mechanisms "
                         f"({config.sasl_enabled_mechanisms}) to be used on {role} {name}")
    key = f"listener.name.{name.lower()}.{mechanism.lower()}.sasl.jaas.config"
    if mechanism == "PLAIN":
        text = config.listener_plain_jaas.get(name)
    else:
        text = config.listener_sasl_jaas_config.get(f"{name}:{mechanism}")
    if text is None and config.sasl_jaas_config:
        text, key = config.sasl_jaas_config, "sasl.jaas.config"
    if text is None:
        if not required:
            return None
        raise ValueError(f"{key} (or sasl.jaas.config) is required: the node logs in to "
                         f"{role} {name} with {mechanism}")
    try:
        username, password = jaas_login(text, LOGIN_MODULES[mechanism], key)
    except ValueError:
        if not required:
            return None
        raise
    return SaslLogin(mechanism, username, password)
