"""Describing the broker's own (static) configuration. Pure.

Strom has no dynamic broker configs: every broker property comes from defaults,
server.properties, STROM_* variables or ``--override`` and is read-only at runtime. A property
set by the operator has source STATIC_BROKER_CONFIG (4), the rest DEFAULT_CONFIG (5).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from broker.topics.configs import (
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
    if isinstance(value, bool):
        return ConfigType.BOOLEAN
    if isinstance(value, int):
        long_like = name.endswith((".ms", ".bytes", ".messages")) or not -(2**31) <= value < 2**31
        return ConfigType.LONG if long_like else ConfigType.INT
    if isinstance(value, float):
        return ConfigType.DOUBLE
    return ConfigType.STRING


def describe_broker(
    properties: Mapping[str, Any], explicit: Iterable[str], keys: Iterable[str] | None = None,
) -> list[DescribedConfig]:
    """Broker properties (Kafka names → values) as DescribeConfigs entries, sorted by name.

    ``explicit`` names the properties the operator set; ``keys`` None means all, unknown
    keys are left out.
    """
    set_by_operator = set(explicit)
    names = sorted(properties) if keys is None else [k for k in keys if k in properties]
    out = []
    for name in names:
        value = properties[name]
        text = None if value is None else render_broker_value(value)
        source = (
            ConfigSource.STATIC_BROKER_CONFIG if name in set_by_operator
            else ConfigSource.DEFAULT_CONFIG
        )
        out.append(
            DescribedConfig(
                name=name, value=text, source=source, type=config_type_of(name, value),
                read_only=True, documentation=None,
                synonyms=(ConfigSynonym(name, text, source),),
            )
        )
    return out
