"""Kafka's config machinery for topic configs: types, sources, validators, one key's definition.

Pure. :meth:`ConfigDef.parse` turns a wire/file string (or an already typed value) into a
Python value — int, float, bool, str, or tuple[str, ...] for lists — parsing as Java's
``ConfigDef`` does (integers as ``Long.parseLong``: no '_' separators or non-ASCII digits) and
validating; :func:`render_value` prints a value back the way Kafka does. Failures raise
:class:`InvalidConfig` with Kafka's wording (→ INVALID_CONFIG, 40).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
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


def between_or(low: int, high: int, *also: int) -> Validator:
    """[low, high] or one of ``also`` (Kafka's gzip level: 1..9 or -1)."""

    def check(name: str, value: Value) -> None:
        if not (low <= value <= high or value in also):
            extra = "".join(f" or {v}" for v in also)
            raise InvalidConfig(
                f"Invalid value {value} for configuration {name}: "
                f"Value must be between {low} and {high}{extra}"
            )

    check.__doc__ = f"[{low},...,{high}]" + "".join(f" or {v}" for v in also)
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


def not_enabled(name: str, value: Value) -> None:
    if value:
        raise InvalidConfig(
            f"Invalid value true for configuration {name}: Strom has no tiered storage"
        )


not_enabled.__doc__ = "[false]"


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
        value = parse_typed(self.name, self.type, raw)
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


def parse_typed(name: str, ctype: ConfigType, raw: object) -> Value:
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
