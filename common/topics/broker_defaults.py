"""What the broker's own configuration says about topic defaults, in layers.

Pure. Highest priority first: this broker's runtime changes (DYNAMIC_BROKER_CONFIG), the
cluster-wide runtime changes (DYNAMIC_DEFAULT_BROKER_CONFIG), the properties the operator set
(STATIC_BROKER_CONFIG), Kafka's defaults (DEFAULT_CONFIG).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from common.topics.config_defs import BROKER_SYNONYM_OF, TOPIC_CONFIGS, config_def
from common.topics.config_types import (
    ConfigSource,
    ConfigType,
    InvalidConfig,
    Value,
    parse_typed,
)


@dataclass(frozen=True, slots=True)
class BrokerSetting:
    """The broker property that decides a topic default, in topic units, and its source."""

    broker_key: str
    raw: str
    value: Value
    source: ConfigSource = ConfigSource.STATIC_BROKER_CONFIG


class NotDynamic(ValueError):
    """A broker config that cannot be changed at runtime (→ INVALID_REQUEST, 42)."""


#: Broker properties that may be changed at runtime (AlterConfigs on a BROKER resource):
#: the topic defaults, as in Kafka's cluster-wide dynamic log configs.
DYNAMIC_BROKER_KEYS = frozenset(BROKER_SYNONYM_OF)


def parse_broker_value(broker_key: str, raw: object) -> Value:
    """A topic-default broker property → its value in topic units (validated)."""
    topic_key = BROKER_SYNONYM_OF[broker_key]
    d = TOPIC_CONFIGS[topic_key]
    factor = dict(d.synonyms)[broker_key]
    value = parse_typed(broker_key, d.type, raw)
    if factor != 1 and value >= 0:
        value = value * factor
    if d.validator is not None:
        try:
            d.validator(topic_key, value)
        except InvalidConfig as exc:
            raise InvalidConfig(f"{exc} (set through {broker_key}={raw})") from None
    return value


@dataclass(frozen=True)
class BrokerDefaults:
    """What the broker's own configuration says about topics.

    Layers, highest priority first (as Kafka resolves them): ``dynamic_broker`` (this node's
    runtime changes, DYNAMIC_BROKER_CONFIG), ``dynamic_default`` (cluster-wide runtime
    changes, DYNAMIC_DEFAULT_BROKER_CONFIG), ``explicit`` (properties the operator set in
    server.properties / STROM_* / ``--override``, STATIC_BROKER_CONFIG); Kafka's defaults
    come last. Values are Kafka property name → string. Build with :meth:`from_properties`;
    an invalid value raises InvalidConfig naming the key.
    """

    num_partitions: int = 1
    default_replication_factor: int = 1
    explicit: Mapping[str, str] = field(default_factory=dict)
    settings: Mapping[str, BrokerSetting] = field(default_factory=dict)
    dynamic_broker: Mapping[str, str] = field(default_factory=dict)
    dynamic_default: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_properties(
        cls,
        properties: Mapping[str, object],
        *,
        dynamic_broker: Mapping[str, str] | None = None,
        dynamic_default: Mapping[str, str] | None = None,
    ) -> BrokerDefaults:
        """Interpret explicitly set broker properties (Kafka names; other keys are ignored)."""
        explicit = {
            k: render_broker_value(v) for k, v in properties.items() if v is not None
        }
        layers = (
            (ConfigSource.DYNAMIC_BROKER_CONFIG, dict(dynamic_broker or {})),
            (ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG, dict(dynamic_default or {})),
            (ConfigSource.STATIC_BROKER_CONFIG, explicit),
        )
        settings: dict[str, BrokerSetting] = {}
        for topic_key, d in TOPIC_CONFIGS.items():
            chosen: BrokerSetting | None = None
            for source, layer in layers:
                for broker_key, _ in d.synonyms:
                    if broker_key in layer:
                        raw = layer[broker_key]
                        value = parse_broker_value(broker_key, raw)
                        chosen = chosen or BrokerSetting(broker_key, raw, value, source)
            if chosen is not None:
                settings[topic_key] = chosen
        num_partitions = _int_property(explicit, "num.partitions", 1)
        replication = _int_property(explicit, "default.replication.factor", 1)
        return cls(num_partitions, replication, explicit, settings, layers[0][1], layers[1][1])

    @classmethod
    def from_broker_config(cls, config: Any) -> BrokerDefaults:
        """From the server's pydantic ``BrokerConfig``: only explicitly set fields count.

        Uses ``config.model_fields_set`` (fields given by file, env or ``--override``) and
        ``config.as_properties()`` (values by Kafka property name).
        """
        props = config.as_properties()
        explicit = {k.replace("_", "."): None for k in config.model_fields_set}
        return cls.from_properties({k: props.get(k) for k in explicit})

    def with_dynamic(
        self, dynamic_broker: Mapping[str, str], dynamic_default: Mapping[str, str]
    ) -> BrokerDefaults:
        """The same static settings under new runtime layers (InvalidConfig if a value is bad,
        NotDynamic for a key that cannot change at runtime)."""
        for layer in (dynamic_broker, dynamic_default):
            fixed = sorted(k for k in layer if k not in DYNAMIC_BROKER_KEYS)
            if fixed:
                raise NotDynamic(
                    f"Cannot update these configs dynamically: {', '.join(fixed)}. Set them "
                    "in server.properties (or with --override) and restart the broker."
                )
        return BrokerDefaults.from_properties(
            self.explicit, dynamic_broker=dynamic_broker, dynamic_default=dynamic_default
        )

    def layers(self) -> list[tuple[ConfigSource, Mapping[str, str]]]:
        """(source, properties) from highest to lowest priority."""
        return [
            (ConfigSource.DYNAMIC_BROKER_CONFIG, self.dynamic_broker),
            (ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG, self.dynamic_default),
            (ConfigSource.STATIC_BROKER_CONFIG, self.explicit),
        ]

    def default_value(self, name: str) -> tuple[Value, ConfigSource]:
        """The value topic config ``name`` takes when a topic does not override it."""
        setting = self.settings.get(name)
        if setting is not None:
            return setting.value, setting.source
        return config_def(name).default, ConfigSource.DEFAULT_CONFIG


def render_broker_value(value: object) -> str:
    """A broker property value as Kafka would print it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple | set | frozenset):
        return ",".join(str(v) for v in value)
    return str(value)


def _int_property(props: Mapping[str, str], key: str, default: int) -> int:
    if key not in props:
        return default
    try:
        value = int(props[key].strip())
    except ValueError:
        raise InvalidConfig(f"Invalid value {props[key]} for configuration {key}") from None
    if value < 1:
        raise InvalidConfig(f"Invalid value {value} for configuration {key}: must be at least 1")
    return value


def apply_broker_ops(
    layer: Mapping[str, str], ops: Iterable[tuple[str, int, str | None]],
    current: BrokerDefaults,
) -> dict[str, str]:
    """IncrementalAlterConfigs on a broker entity's runtime layer → the new layer.

    op: 0 SET, 1 DELETE, 2 APPEND, 3 SUBTRACT (list keys; they start from the layer's value,
    else the currently effective default). NotDynamic for keys that cannot change at runtime,
    InvalidConfig for repeated keys, list ops on other keys or unknown ops. Values are checked
    when the layer is resolved (:meth:`BrokerDefaults.with_dynamic`).
    """
    new = dict(layer)
    seen: set[str] = set()
    for key, op, raw in ops:
        if key in seen:
            raise InvalidConfig(f"Error due to duplicate config keys: {key}")
        seen.add(key)
        if key not in DYNAMIC_BROKER_KEYS:
            raise NotDynamic(
                f"Cannot update these configs dynamically: {key}. Set it in "
                "server.properties (or with --override) and restart the broker."
            )
        if op == 0:
            if raw is None:
                raise InvalidConfig(f"Null value not supported for broker config {key}")
            new[key] = raw
        elif op == 1:
            new.pop(key, None)
        elif op in (2, 3):
            d = TOPIC_CONFIGS[BROKER_SYNONYM_OF[key]]
            if d.type is not ConfigType.LIST:
                raise InvalidConfig(
                    f"Config value append/subtract is not allowed for config key: {key}"
                )
            items = list(d.parse(new[key]) if key in new else current.default_value(d.name)[0])
            change = list(d.parse(raw or ""))
            if op == 2:
                items += [i for i in change if i not in items]
            else:
                items = [i for i in items if i not in change]
            new[key] = d.render(tuple(items))
        else:
            raise InvalidConfig(f"Unknown config operation {op} for config key {key}")
    return new
