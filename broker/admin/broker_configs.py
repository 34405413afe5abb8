"""Describing the broker's own configuration. Pure.

Most broker properties come from defaults, server.properties, STROM_* variables or
``--override`` and are read-only at runtime: source STATIC_BROKER_CONFIG (4) when the operator
set them, DEFAULT_CONFIG (5) otherwise. The topic-default properties (``log.retention.ms``,
``message.max.bytes``, ``log.cleanup.policy``, ... — ``DYNAMIC_BROKER_KEYS``) can also be
changed at runtime, for this broker (DYNAMIC_BROKER_CONFIG, 2) or cluster-wide
(DYNAMIC_DEFAULT_BROKER_CONFIG, 3); those layers win, in that order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from common.topics.configs import (
    BROKER_SYNONYM_OF,
    DYNAMIC_BROKER_KEYS,
    TOPIC_CONFIGS,
    BrokerDefaults,
    ConfigSource,
    ConfigSynonym,
    ConfigType,
    DescribedConfig,
    render_broker_value,
)

_LIST_KEYS = frozenset({"listeners", "advertised.listeners", "log.dirs", "process.roles",
                        "controller.quorum.voters", "log.cleanup.policy",
                        "controller.listener.names"})


def config_type_of(name: str, value: Any) -> ConfigType:
    """The Kafka type of a broker property, inferred from its Python value and name."""
    if name in _LIST_KEYS:
        return ConfigType.LIST
    if name in BROKER_SYNONYM_OF:
        return TOPIC_CONFIGS[BROKER_SYNONYM_OF[name]].type
    if isinstance(value, bool):
        return ConfigType.BOOLEAN
    if isinstance(value, int):
        long_like = name.endswith((".ms", ".bytes", ".messages")) or not -(2**31) <= value < 2**31
        return ConfigType.LONG if long_like else ConfigType.INT
    if isinstance(value, float):
        return ConfigType.DOUBLE
    return ConfigType.STRING


def _siblings(name: str) -> list[str]:
    """Broker keys that set the same topic default, in priority order (or just ``name``)."""
    topic_key = BROKER_SYNONYM_OF.get(name)
    if topic_key is None:
        return [name]
    return [key for key, _ in TOPIC_CONFIGS[topic_key].synonyms]


def _default_text(name: str, properties: Mapping[str, Any]) -> str | None:
    if name in properties:
        value = properties[name]
        return None if value is None else render_broker_value(value)
    topic_key = BROKER_SYNONYM_OF.get(name)
    if topic_key is not None:
        d = TOPIC_CONFIGS[topic_key]
        if dict(d.synonyms)[name] == 1:
            return d.render(d.default)
    return None


def describe_broker(
    properties: Mapping[str, Any],
    explicit: Iterable[str],
    defaults: BrokerDefaults | None = None,
    keys: Iterable[str] | None = None,
    *,
    entity_default: bool = False,
) -> list[DescribedConfig]:
    """Broker properties as DescribeConfigs entries, sorted by name.

    ``properties``: every static property (Kafka name → value, None when unset);
    ``explicit``: those the operator set; ``defaults``: the runtime layers; ``keys`` None
    means all, unknown keys are left out. ``entity_default`` (resource name ""): only the
    cluster-wide runtime settings, as Kafka answers for the default broker entity.
    """
    defaults = defaults or BrokerDefaults()
    set_by_operator = set(explicit)
    layers: list[tuple[ConfigSource, Mapping[str, Any]]] = [
        (ConfigSource.DYNAMIC_BROKER_CONFIG, defaults.dynamic_broker),
        (ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG, defaults.dynamic_default),
        (ConfigSource.STATIC_BROKER_CONFIG,
         {k: v for k, v in properties.items() if k in set_by_operator and v is not None}),
    ]
    if entity_default:
        layers = [layers[1]]
        known = set(defaults.dynamic_default)
    else:
        known = set(properties) | set(defaults.dynamic_broker) | set(defaults.dynamic_default)
        known |= {k for k in DYNAMIC_BROKER_KEYS if _default_text(k, properties) is not None}
    names = sorted(known) if keys is None else [k for k in keys if k in known]
    out = []
    for name in names:
        value: str | None = None
        source = ConfigSource.DEFAULT_CONFIG
        for layer_source, layer in layers:
            if name in layer:
                value, source = render_broker_value(layer[name]), layer_source
                break
        else:
            value = None if entity_default else _default_text(name, properties)
        synonyms = [
            ConfigSynonym(key, render_broker_value(layer[key]), layer_source)
            for layer_source, layer in layers
            for key in _siblings(name)
            if key in layer
        ]
        if not entity_default:
            synonyms.append(ConfigSynonym(name, _default_text(name, properties),
                                          ConfigSource.DEFAULT_CONFIG))
        sensitive = is_sensitive(name)
        if sensitive:  # as Kafka: never send a secret back, not even to an admin
            value = None
            synonyms = [ConfigSynonym(s.name, None, s.source) for s in synonyms]
        out.append(
            DescribedConfig(
                name=name, value=value, source=source,
                type=ConfigType.PASSWORD if sensitive else config_type_of(
                    name, properties.get(name)),
                read_only=name not in DYNAMIC_BROKER_KEYS,
                is_sensitive=sensitive,
                documentation=_documentation(name),
                synonyms=tuple(synonyms),
            )
        )
    return out


def is_sensitive(name: str) -> bool:
    """Broker properties that hold secrets (Kafka's PASSWORD type): described without value."""
    # listener.ssl / listener.plain.jaas: the listener.name.<l>.* maps (keys, passwords)
    return any(word in name for word in ("password", "secret", "sasl.jaas.config", ".key",
                                         "listener.ssl", "listener.plain.jaas"))


def _documentation(name: str) -> str | None:
    topic_key = BROKER_SYNONYM_OF.get(name)
    if topic_key is None:
        return None
    return f"The default for topic config {topic_key}: {TOPIC_CONFIGS[topic_key].doc}"
