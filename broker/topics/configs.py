"""Topic configuration: every per-topic key Kafka users set, typed and validated.

Pure logic (no file or network I/O). A topic's *effective* configuration is, per key:

1. the topic's own override (source TOPIC_CONFIG, 1), else
2. the broker property the operator set for it — ``retention.ms`` ← ``log.retention.ms`` /
   ``log.retention.minutes`` / ``log.retention.hours``, ``max.message.bytes`` ←
   ``message.max.bytes``, ... (source STATIC_BROKER_CONFIG, 4), else
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

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

LONG_MAX = 2**63 - 1
INT_MAX = 2**31 - 1
INT_MIN = -(2**31)
LONG_MIN = -(2**63)


class ConfigType(IntEnum):
    """DescribeConfigs (v3+) ``config_type`` values."""

    UNKNOWN = 0
    BOOLEAN = 1
    STRING = 2
    INT = 3
    SHORT = 4
    LONG = 5
    DOUBLE = 6
    LIST = 7
    CLASS = 8
    PASSWORD = 9


class ConfigSource(IntEnum):
    """DescribeConfigs (v1+) ``config_source`` values."""

    UNKNOWN = 0
    TOPIC_CONFIG = 1
    DYNAMIC_BROKER_CONFIG = 2
    DYNAMIC_DEFAULT_BROKER_CONFIG = 3
    STATIC_BROKER_CONFIG = 4
    DEFAULT_CONFIG = 5
    DYNAMIC_BROKER_LOGGER_CONFIG = 6


class InvalidConfig(ValueError):
    """A config name or value Kafka would refuse (→ INVALID_CONFIG, 40); message says why."""


Value = Any  # int | float | bool | str | tuple[str, ...]
Validator = Callable[[str, Value], None]


# --------------------------------------------------------------------------- validators


def at_least(minimum: float) -> Validator:
    def check(name: str, value: Value) -> None:
        if value < minimum:
            raise InvalidConfig(
                f"Invalid value {value} for configuration {name}: Value must be at least {minimum}"
            )

    check.__doc__ = f"[{minimum},...]"
    return check


def between(low: float, high: float) -> Validator:
    def check(name: str, value: Value) -> None:
        if not low <= value <= high:
            raise InvalidConfig(
                f"Invalid value {value} for configuration {name}: "
                f"Value must be between {low} and {high}"
            )

    check.__doc__ = f"[{low},...,{high}]"
    return check


def one_of(*choices: str, case_insensitive: bool = False) -> Validator:
    def check(name: str, value: Value) -> None:
        ok = (
            value.lower() in {c.lower() for c in choices} if case_insensitive else value in choices
        )
        if not ok:
            raise InvalidConfig(
                f"Invalid value {value} for configuration {name}: "
                f"String must be one of: {', '.join(choices)}"
            )

    check.__doc__ = "[" + ", ".join(choices) + "]"
    return check


def list_of(*choices: str, allow_empty: bool = True) -> Validator:
    def check(name: str, value: Value) -> None:
        if not value and not allow_empty:
            raise InvalidConfig(
                f"Invalid value for configuration {name}: "
                f"the list must hold at least one of [{', '.join(choices)}]"
            )
        for item in value:
            if item not in choices:
                raise InvalidConfig(
                    f"Invalid value {item} for configuration {name}: "
                    f"String must be one of: {', '.join(choices)}"
                )

    check.__doc__ = "[" + ", ".join(choices) + "]"
    return check


def throttled_replicas(name: str, value: Value) -> None:
    """Kafka's ThrottledReplicaListValidator: '*' or '<partition>:<broker>' items."""
    if list(value) == ["*"]:
        return
    for item in value:
        parts = item.split(":")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise InvalidConfig(
                f"Invalid value {','.join(value)} for configuration {name}: "
                "must be the literal '*' or a list of replicas in the following format: "
                "[partitionId]:[brokerId],[partitionId]:[brokerId],..."
            )


throttled_replicas.__doc__ = "[partitionId]:[brokerId],[partitionId]:[brokerId],..."


def _not_enabled(name: str, value: Value) -> None:
    if value:
        raise InvalidConfig(
            f"Invalid value true for configuration {name}: Strom has no tiered storage"
        )


_not_enabled.__doc__ = "[false]"


# --------------------------------------------------------------------------- definitions


@dataclass(frozen=True, slots=True)
class ConfigDef:
    """One topic config key: its type, Kafka default, validator and broker synonyms.

    ``synonyms`` are broker property names in priority order, each with the factor that turns
    the broker unit into the topic unit (``log.retention.hours`` → ms is 3,600,000).
    """

    name: str
    type: ConfigType
    default: Value
    doc: str
    synonyms: tuple[tuple[str, int], ...] = ()
    validator: Validator | None = None
    sensitive: bool = False

    def parse(self, raw: object) -> Value:
        """Parse a wire/file value (a string, or an already-typed Python value) and validate."""
        if raw is None:
            raise InvalidConfig(f"Null value not supported for topic config {self.name}")
        value = _parse_typed(self.name, self.type, raw)
        if self.validator is not None:
            self.validator(self.name, value)
        return value

    def render(self, value: Value) -> str:
        """Kafka's string form of a parsed value."""
        return render_value(self.type, value)

    @property
    def valid_values(self) -> str:
        """Human-readable range of legal values (for documentation)."""
        return (self.validator.__doc__ or "") if self.validator else ""


_DECIMAL = re.compile(r"[+-]?[0-9]+")


def _parse_typed(name: str, ctype: ConfigType, raw: object) -> Value:
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    try:
        if ctype is ConfigType.BOOLEAN:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text not in ("true", "false"):
                raise ValueError
            return text == "true"
        if ctype in (ConfigType.INT, ConfigType.SHORT, ConfigType.LONG):
            if isinstance(raw, bool):
                raise ValueError
            if isinstance(raw, int):
                number = raw
            else:
                text = str(raw).strip()
                if not _DECIMAL.fullmatch(text):  # Java's parseLong: no "1_000", no "٣"
                    raise ValueError
                number = int(text, 10)
            low, high = (INT_MIN, INT_MAX) if ctype is ConfigType.INT else (LONG_MIN, LONG_MAX)
            if ctype is ConfigType.SHORT:
                low, high = -(2**15), 2**15 - 1
            if not low <= number <= high:
                raise ValueError
            return number
        if ctype is ConfigType.DOUBLE:
            number = float(str(raw).strip()) if not isinstance(raw, int | float) else float(raw)
            if math.isnan(number) or math.isinf(number):
                raise ValueError
            return number
        if ctype is ConfigType.LIST:
            if isinstance(raw, list | tuple | set | frozenset):
                return tuple(str(x).strip() for x in raw)
            text = str(raw).strip()
            return tuple(item.strip() for item in text.split(",")) if text else ()
        return str(raw).strip()
    except ValueError:
        expected = {
            ConfigType.BOOLEAN: "Expected value to be either true or false",
            ConfigType.INT: "Not a number of type INT",
            ConfigType.SHORT: "Not a number of type SHORT",
            ConfigType.LONG: "Not a number of type LONG",
            ConfigType.DOUBLE: "Not a number of type DOUBLE",
        }.get(ctype, "Invalid value")
        raise InvalidConfig(f"Invalid value {raw} for configuration {name}: {expected}") from None


def render_value(ctype: ConfigType, value: Value) -> str:
    """Kafka's ``ConfigDef.convertToString``: lists joined by ',', booleans lower-case."""
    if ctype is ConfigType.LIST:
        return ",".join(value)
    if ctype is ConfigType.BOOLEAN:
        return "true" if value else "false"
    if ctype is ConfigType.DOUBLE:
        return repr(float(value))
    return str(value)


_MS_PER_MIN = 60_000
_MS_PER_HOUR = 3_600_000
_D = ConfigDef
_T = ConfigType

#: Every topic config key Strom knows, in Kafka's names, with Kafka's defaults.
TOPIC_CONFIGS: dict[str, ConfigDef] = {
    d.name: d
    for d in (
        _D("cleanup.policy", _T.LIST, ("delete",),
           "A string that is either \"delete\" or \"compact\" or both: \"delete\" discards old "
           "segments by time or size; \"compact\" keeps the latest value for each key.",
           (("log.cleanup.policy", 1),), list_of("compact", "delete", allow_empty=False)),
        _D("compression.type", _T.STRING, "producer",
           "Final compression of the topic's data. Strom stores batches exactly as the producer "
           "sent them, so only \"producer\" is accepted as a topic override.",
           (("compression.type", 1),),
           one_of("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer")),
        _D("delete.retention.ms", _T.LONG, 86_400_000,
           "How long delete tombstones are kept for compacted topics.",
           (("log.cleaner.delete.retention.ms", 1),), at_least(0)),
        _D("file.delete.delay.ms", _T.LONG, 60_000,
           "How long to wait before deleting a file from the filesystem.",
           (("log.segment.delete.delay.ms", 1),), at_least(0)),
        _D("flush.messages", _T.LONG, LONG_MAX,
           "Force an fsync of the log after this many messages (default: leave it to the OS; "
           "durability comes from replication).",
           (("log.flush.interval.messages", 1),), at_least(1)),
        _D("flush.ms", _T.LONG, LONG_MAX,
           "Force an fsync of the log when data is older than this many milliseconds.",
           (("log.flush.interval.ms", 1),), at_least(0)),
        _D("follower.replication.throttled.replicas", _T.LIST, (),
           "Replicas whose replication is throttled on the follower side (accepted, not used "
           "on one node).", (), throttled_replicas),
        _D("index.interval.bytes", _T.INT, 4096,
           "How many log bytes between entries of the sparse offset index.",
           (("log.index.interval.bytes", 1),), at_least(0)),
        _D("leader.replication.throttled.replicas", _T.LIST, (),
           "Replicas whose replication is throttled on the leader side (accepted, not used "
           "on one node).", (), throttled_replicas),
        _D("local.retention.bytes", _T.LONG, -2,
           "Tiered storage local retention in bytes (-2: use retention.bytes). Strom has no "
           "tiered storage; accepted for compatibility.",
           (("log.local.retention.bytes", 1),), at_least(-2)),
        _D("local.retention.ms", _T.LONG, -2,
           "Tiered storage local retention in ms (-2: use retention.ms). Strom has no tiered "
           "storage; accepted for compatibility.",
           (("log.local.retention.ms", 1),), at_least(-2)),
        _D("max.compaction.lag.ms", _T.LONG, LONG_MAX,
           "The longest time a message stays ineligible for compaction.",
           (("log.cleaner.max.compaction.lag.ms", 1),), at_least(1)),
        _D("max.message.bytes", _T.INT, 1_048_588,
           "The largest record batch size allowed (after compression).",
           (("message.max.bytes", 1),), at_least(0)),
        _D("message.timestamp.after.max.ms", _T.LONG, LONG_MAX,
           "How far in the future a record's timestamp may be (CreateTime only).",
           (("log.message.timestamp.after.max.ms", 1),), at_least(0)),
        _D("message.timestamp.before.max.ms", _T.LONG, LONG_MAX,
           "How far in the past a record's timestamp may be (CreateTime only).",
           (("log.message.timestamp.before.max.ms", 1),), at_least(0)),
        _D("message.timestamp.difference.max.ms", _T.LONG, LONG_MAX,
           "Deprecated (Kafka 3.6): largest allowed difference between a record's CreateTime "
           "and the broker's clock; see message.timestamp.before/after.max.ms.",
           (("log.message.timestamp.difference.max.ms", 1),), at_least(0)),
        _D("message.timestamp.type", _T.STRING, "CreateTime",
           "Whether a record's timestamp is the producer's (CreateTime) or the broker's "
           "append time (LogAppendTime).",
           (("log.message.timestamp.type", 1),), one_of("CreateTime", "LogAppendTime")),
        _D("min.cleanable.dirty.ratio", _T.DOUBLE, 0.5,
           "Minimum ratio of dirty log to total log for the log to be compacted.",
           (("log.cleaner.min.cleanable.ratio", 1),), between(0, 1)),
        _D("min.compaction.lag.ms", _T.LONG, 0,
           "The minimum time a message stays uncompacted in the log.",
           (("log.cleaner.min.compaction.lag.ms", 1),), at_least(0)),
        _D("min.insync.replicas", _T.INT, 1,
           "With acks=all, the minimum number of in-sync replicas that must acknowledge a "
           "write (NOT_ENOUGH_REPLICAS otherwise).",
           (("min.insync.replicas", 1),), at_least(1)),
        _D("preallocate", _T.BOOLEAN, False,
           "Preallocate the file on disk when creating a new log segment.",
           (("log.preallocate", 1),)),
        _D("remote.storage.enable", _T.BOOLEAN, False,
           "Tiered storage; Strom has none, so only false is accepted.", (), _not_enabled),
        _D("retention.bytes", _T.LONG, -1,
           "The maximum size a partition's log may grow to before old segments are discarded "
           "(-1: no limit).",
           (("log.retention.bytes", 1),)),
        _D("retention.ms", _T.LONG, 604_800_000,
           "How long a log segment is kept before it is discarded (-1: no time limit).",
           (("log.retention.ms", 1), ("log.retention.minutes", _MS_PER_MIN),
            ("log.retention.hours", _MS_PER_HOUR)), at_least(-1)),
        _D("segment.bytes", _T.INT, 1_073_741_824,
           "The segment file size for the log.",
           (("log.segment.bytes", 1),), at_least(14)),
        _D("segment.index.bytes", _T.INT, 10_485_760,
           "The size of the index that maps offsets to file positions.",
           (("log.index.size.max.bytes", 1),), at_least(4)),
        _D("segment.jitter.ms", _T.LONG, 0,
           "The maximum random jitter subtracted from segment.ms.",
           (("log.roll.jitter.ms", 1), ("log.roll.jitter.hours", _MS_PER_HOUR)), at_least(0)),
        _D("segment.ms", _T.LONG, 604_800_000,
           "Roll a new segment after this time even if the current one is not full.",
           (("log.roll.ms", 1), ("log.roll.hours", _MS_PER_HOUR)), at_least(1)),
        _D("unclean.leader.election.enable", _T.BOOLEAN, False,
           "Whether replicas outside the ISR may be elected leader as a last resort.",
           (("unclean.leader.election.enable", 1),)),
    )
}

#: Broker property → the topic key it is the default for (every synonym).
BROKER_SYNONYM_OF: dict[str, str] = {
    broker_key: d.name for d in TOPIC_CONFIGS.values() for broker_key, _ in d.synonyms
}


def config_def(name: str) -> ConfigDef:
    """The definition of topic config ``name``; InvalidConfig for unknown names."""
    try:
        return TOPIC_CONFIGS[name]
    except KeyError:
        raise InvalidConfig(f"Unknown topic config name: {name}") from None


# --------------------------------------------------------------------------- broker defaults


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
    value = _parse_typed(broker_key, d.type, raw)
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


# --------------------------------------------------------------------------- topic configs


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
    if values["compression.type"] != "producer" and "compression.type" in overrides:
        raise InvalidConfig(
            f"Invalid value {values['compression.type']} for configuration compression.type: "
            "Strom stores record batches as the producer sent them; only 'producer' is supported"
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
    "min.insync.replicas", "compression.type", "remote.storage.enable",
    "leader.replication.throttled.replicas", "follower.replication.throttled.replicas",
    "unclean.leader.election.enable", "local.retention.bytes", "local.retention.ms",
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
