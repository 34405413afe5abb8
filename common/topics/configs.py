"""Topic configuration operations: validate overrides, resolve effective values, apply
IncrementalAlterConfigs operations, describe with sources, map to storage's LogConfig.

Pure logic (no file or network I/O). The pieces live in :mod:`common.topics.config_types`
(types, parsing, validators), :mod:`common.topics.config_defs` (the table of keys) and
:mod:`common.topics.broker_defaults` (broker layers); this module re-exports them. A topic's
*effective* configuration is, per key:

1. the topic's own override (source TOPIC_CONFIG, 1), else
2. the broker property that sets its default — ``retention.ms`` ← ``log.retention.ms`` /
   ``log.retention.minutes`` / ``log.retention.hours``, ``max.message.bytes`` ←
   ``message.max.bytes``, ... — changed at runtime for this broker (DYNAMIC_BROKER_CONFIG, 2)
   or cluster-wide (DYNAMIC_DEFAULT_BROKER_CONFIG, 3), or set by the operator
   (STATIC_BROKER_CONFIG, 4), else
3. Kafka's default (source DEFAULT_CONFIG, 5).

Values travel as strings on the wire and in ``__strom_topics.json``; :meth:`ConfigDef.parse`
turns them into Python values (int, float, bool, str, tuple[str, ...] for lists) and
:meth:`ConfigDef.render` turns them back the way Kafka prints them (lists joined with ',',
booleans lower-case). Bad names or values raise :class:`InvalidConfig`, which handlers answer
with INVALID_CONFIG (40) and the message.

:func:`to_log_config_kwargs` maps effective values to ``storage.log_config.LogConfig`` fields
(field name = key with '.' → '_', lists → frozenset); keys the storage engine has no field for
are kept out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from common.topics.broker_defaults import (
    DYNAMIC_BROKER_KEYS,
    BrokerDefaults,
    BrokerSetting,
    NotDynamic,
    parse_broker_value,
    render_broker_value,
)
from common.topics.config_defs import BROKER_SYNONYM_OF, TOPIC_CONFIGS, config_def
from common.topics.config_types import (
    INT_MAX,
    INT_MIN,
    LONG_MAX,
    LONG_MIN,
    ConfigDef,
    ConfigSource,
    ConfigType,
    InvalidConfig,
    Validator,
    Value,
    at_least,
    between,
    list_of,
    one_of,
    render_value,
)

__all__ = [
    "BROKER_SYNONYM_OF", "DYNAMIC_BROKER_KEYS", "INT_MAX", "INT_MIN", "LONG_MAX", "LONG_MIN",
    "NOT_APPLIED_NOTE", "TOPIC_CONFIGS", "APPLIED_ELSEWHERE", "BrokerDefaults", "BrokerSetting",
    "ConfigDef", "ConfigSource", "ConfigSynonym", "ConfigType", "DescribedConfig",
    "InvalidConfig", "NotDynamic", "Validator", "Value", "apply_incremental", "at_least",
    "between", "config_def", "describe_topic", "effective_values", "list_of",
    "normalize_overrides", "not_applied", "one_of", "parse_broker_value",
    "render_broker_value", "render_value", "to_log_config_kwargs", "validate_effective",
]

def normalize_overrides(overrides: Mapping[str, object]) -> dict[str, str]:
    """Validate topic config overrides and return them in Kafka's canonical string form.

    Raises InvalidConfig for an unknown name, a null, unparsable or out-of-range value.
    Cross-key rules are checked by :func:`validate_effective`.
    """
    out: dict[str, str] = {}
    for name, raw in overrides.items():
        d = config_def(name)
        out[name] = d.render(d.parse(raw))
    return out


def effective_values(overrides: Mapping[str, str], broker: BrokerDefaults) -> dict[str, Value]:
    """Every topic config key → its parsed effective value (override, broker, default)."""
    values: dict[str, Value] = {}
    for name, d in TOPIC_CONFIGS.items():
        if name in overrides:
            values[name] = d.parse(overrides[name])
        else:
            values[name] = broker.default_value(name)[0]
    return values


def validate_effective(overrides: Mapping[str, str], broker: BrokerDefaults) -> dict[str, Value]:
    """Check the rules that span keys; returns the effective values. InvalidConfig if broken."""
    values = effective_values(overrides, broker)
    if values["min.compaction.lag.ms"] > values["max.compaction.lag.ms"]:
        raise InvalidConfig(
            "conflict topic config setting min.compaction.lag.ms "
            f"({values['min.compaction.lag.ms']}) > max.compaction.lag.ms "
            f"({values['max.compaction.lag.ms']})"
        )
    return values


def apply_incremental(
    overrides: Mapping[str, str], ops: Iterable[tuple[str, int, str | None]],
    broker: BrokerDefaults,
) -> dict[str, str]:
    """IncrementalAlterConfigs: apply (name, op, value) to a topic's overrides.

    op: 0 SET, 1 DELETE, 2 APPEND, 3 SUBTRACT (APPEND/SUBTRACT only for LIST keys; they start
    from the effective value). Returns the new overrides (validated, canonical). InvalidConfig
    on an unknown key, a bad value, a repeated key or a list op on a non-list key.
    """
    new = dict(overrides)
    seen: set[str] = set()
    for name, op, raw in ops:
        d = config_def(name)
        if name in seen:
            raise InvalidConfig(f"Error due to duplicate config keys: {name}")
        seen.add(name)
        if op == 0:
            new[name] = d.render(d.parse(raw))
        elif op == 1:
            new.pop(name, None)
        elif op in (2, 3):
            if d.type is not ConfigType.LIST:
                raise InvalidConfig(
                    f"Config value append/subtract is not allowed for config key: {name}"
                )
            current = list(
                d.parse(new[name]) if name in new else broker.default_value(name)[0]
            )
            items = list(d.parse(raw if raw is not None else ""))
            if op == 2:
                current += [i for i in items if i not in current]
            else:
                current = [i for i in current if i not in items]
            new[name] = d.render(d.parse(",".join(current)))
        else:
            raise InvalidConfig(f"Unknown config operation {op} for config key {name}")
    validate_effective(new, broker)
    return new


@dataclass(frozen=True, slots=True)
class ConfigSynonym:
    name: str
    value: str | None
    source: ConfigSource


@dataclass(frozen=True, slots=True)
class DescribedConfig:
    """One entry of a DescribeConfigs result (wire-neutral)."""

    name: str
    value: str | None
    source: ConfigSource
    type: ConfigType
    read_only: bool = False
    is_sensitive: bool = False
    documentation: str | None = None
    synonyms: tuple[ConfigSynonym, ...] = ()

    @property
    def is_default(self) -> bool:
        return self.source is ConfigSource.DEFAULT_CONFIG


#: Keys that take effect outside the storage engine's LogConfig (the replica manager reads
#: min.insync.replicas) or that only exist for compatibility (their docs say so).
APPLIED_ELSEWHERE = frozenset({
    "min.insync.replicas", "remote.storage.enable",
    "leader.replication.throttled.replicas", "follower.replication.throttled.replicas",
    "unclean.leader.election.enable", "local.retention.bytes", "local.retention.ms",
    "kinesis.stream",
})
NOT_APPLIED_NOTE = " (Strom accepts and keeps this setting but does not apply it yet.)"


def not_applied(storage_fields: Iterable[str]) -> frozenset[str]:
    """Topic keys neither mapped to a storage LogConfig field nor applied elsewhere."""
    fields = set(storage_fields)
    return frozenset(
        name for name in TOPIC_CONFIGS
        if name.replace(".", "_") not in fields and name not in APPLIED_ELSEWHERE
    )


def describe_topic(
    overrides: Mapping[str, str], broker: BrokerDefaults, keys: Iterable[str] | None = None,
    *, unapplied: frozenset[str] = frozenset(),
) -> list[DescribedConfig]:
    """Effective topic configs with sources and synonyms (most to least specific).

    ``keys`` None means all, sorted by name. Unknown keys in ``keys`` are left out (as Kafka).
    Documentation of the keys in ``unapplied`` says that they are kept but not applied.
    """
    names = sorted(TOPIC_CONFIGS) if keys is None else [k for k in keys if k in TOPIC_CONFIGS]
    out: list[DescribedConfig] = []
    for name in names:
        d = TOPIC_CONFIGS[name]
        synonyms: list[ConfigSynonym] = []
        if name in overrides:
            synonyms.append(ConfigSynonym(name, overrides[name], ConfigSource.TOPIC_CONFIG))
        for source, layer in broker.layers():
            for broker_key, _ in d.synonyms:
                if broker_key in layer:
                    synonyms.append(ConfigSynonym(broker_key, layer[broker_key], source))
        if d.synonyms:
            synonyms.append(
                ConfigSynonym(d.synonyms[0][0], d.render(d.default),
                              ConfigSource.DEFAULT_CONFIG)
            )
        else:
            synonyms.append(ConfigSynonym(name, d.render(d.default), ConfigSource.DEFAULT_CONFIG))
        if name in overrides:
            value, source = overrides[name], ConfigSource.TOPIC_CONFIG
        else:
            parsed, source = broker.default_value(name)
            value = d.render(parsed)
        out.append(
            DescribedConfig(
                name=name, value=value, source=source, type=d.type,
                is_sensitive=d.sensitive, synonyms=tuple(synonyms),
                documentation=d.doc + (NOT_APPLIED_NOTE if name in unapplied else ""),
            )
        )
    return out


def to_log_config_kwargs(values: Mapping[str, Value], fields: Iterable[str]) -> dict[str, Any]:
    """Effective values → keyword arguments for ``LogConfig`` restricted to its ``fields``.

    A topic key maps to the field named like it with '.' → '_'; LIST values become frozensets.
    """
    wanted = set(fields)
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        attr = name.replace(".", "_")
        if attr in wanted:
            kwargs[attr] = frozenset(value) if isinstance(value, tuple) else value
    return kwargs
