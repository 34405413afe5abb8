"""Settings of KIP-848 consumer groups, named and defaulted as Kafka 4.0's broker properties.

=========================================== =================================== =========
property                                    field                               default
=========================================== =================================== =========
group.coordinator.rebalance.protocols       rebalance_protocols                 classic,consumer
group.consumer.assignors                    assignors (first = default)         uniform,range
group.consumer.session.timeout.ms           session_timeout_ms                  45000
group.consumer.min.session.timeout.ms       min_session_timeout_ms              45000
group.consumer.max.session.timeout.ms       max_session_timeout_ms              60000
group.consumer.heartbeat.interval.ms        heartbeat_interval_ms               5000
group.consumer.min.heartbeat.interval.ms    min_heartbeat_interval_ms           5000
group.consumer.max.heartbeat.interval.ms    max_heartbeat_interval_ms           15000
group.consumer.max.size                     max_size                            2^31-1
=========================================== =================================== =========

Assignors are given by short name (``uniform``, ``range``) or Kafka's class names. The
session timeout and heartbeat interval are the broker's (KIP-848 members do not send
them); the bounds are checked as Kafka checks them at startup. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from broker.group.consumer_assignors import assignor_name

PROTOCOLS = ("classic", "consumer")

#: Kafka property name -> field
PROPERTY_NAMES: dict[str, str] = {
    "group.coordinator.rebalance.protocols": "rebalance_protocols",
    "group.consumer.assignors": "assignors",
    "group.consumer.session.timeout.ms": "session_timeout_ms",
    "group.consumer.min.session.timeout.ms": "min_session_timeout_ms",
    "group.consumer.max.session.timeout.ms": "max_session_timeout_ms",
    "group.consumer.heartbeat.interval.ms": "heartbeat_interval_ms",
    "group.consumer.min.heartbeat.interval.ms": "min_heartbeat_interval_ms",
    "group.consumer.max.heartbeat.interval.ms": "max_heartbeat_interval_ms",
    "group.consumer.max.size": "max_size",
}


def _list(raw: Any) -> tuple[str, ...]:
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    return tuple(str(i).strip() for i in items if str(i).strip())


@dataclass(frozen=True, slots=True)
class ConsumerGroupConfig:
    rebalance_protocols: tuple[str, ...] = PROTOCOLS
    assignors: tuple[str, ...] = ("uniform", "range")
    session_timeout_ms: int = 45_000
    min_session_timeout_ms: int = 45_000
    max_session_timeout_ms: int = 60_000
    heartbeat_interval_ms: int = 5_000
    min_heartbeat_interval_ms: int = 5_000
    max_heartbeat_interval_ms: int = 15_000
    max_size: int = 2**31 - 1

    @property
    def consumer_enabled(self) -> bool:
        return "consumer" in self.rebalance_protocols

    @property
    def default_assignor(self) -> str:
        return self.assignors[0]

    @classmethod
    def from_properties(cls, props: Mapping[str, Any]) -> ConsumerGroupConfig:
        """From Kafka property names or field names; None values and unknown keys are
        ignored; a bad value raises ValueError naming the property."""
        values: dict[str, Any] = {}
        fields_ = set(cls.__dataclass_fields__)
        for key, raw in props.items():
            name = PROPERTY_NAMES.get(key, key if key in fields_ else None)
            if name is None or raw is None:
                continue
            prop = next((k for k, v in PROPERTY_NAMES.items() if v == name), name)
            if name == "rebalance_protocols":
                protocols = tuple(p.lower() for p in _list(raw))
                bad = [p for p in protocols if p not in PROTOCOLS]
                if bad or "classic" not in protocols:
                    raise ValueError(f"{prop}: {raw!r} (allowed: classic, consumer; classic "
                                     f"is required)")
                values[name] = protocols
            elif name == "assignors":
                names = [assignor_name(a) for a in _list(raw)]
                if not names or None in names:
                    raise ValueError(f"{prop}: {raw!r} (known: uniform, range)")
                values[name] = tuple(n for n in names if n is not None)
            else:
                try:
                    values[name] = int(raw)
                except (TypeError, ValueError):
                    raise ValueError(f"{prop}: expected an integer, got {raw!r}") from None
        cfg = cls(**values)
        if not cfg.min_session_timeout_ms <= cfg.session_timeout_ms <= cfg.max_session_timeout_ms:
            raise ValueError("group.consumer.session.timeout.ms must be within "
                             "group.consumer.min/max.session.timeout.ms")
        if not (cfg.min_heartbeat_interval_ms <= cfg.heartbeat_interval_ms
                <= cfg.max_heartbeat_interval_ms):
            raise ValueError("group.consumer.heartbeat.interval.ms must be within "
                             "group.consumer.min/max.heartbeat.interval.ms")
        if cfg.heartbeat_interval_ms >= cfg.session_timeout_ms:
            raise ValueError("group.consumer.heartbeat.interval.ms must be below "
                             "group.consumer.session.timeout.ms")
        if cfg.max_size < 1:
            raise ValueError("group.consumer.max.size must be >= 1")
        return cfg


def consumer_config_from(broker_config: Any) -> ConsumerGroupConfig:
    """From the broker's settings: fields named like the properties (dots → underscores),
    or, for keys the settings model does not declare, its ``unknown`` properties."""
    props: dict[str, Any] = {}
    unknown = getattr(broker_config, "unknown", None) or {}
    for prop in PROPERTY_NAMES:
        attr = prop.replace(".", "_")
        value = getattr(broker_config, attr, None)
        if value is None and isinstance(unknown, Mapping):
            value = unknown.get(prop)
        if value is not None:
            props[prop] = value
    return ConsumerGroupConfig.from_properties(props)
