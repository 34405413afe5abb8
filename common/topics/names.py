"""Topic name rules, as Apache Kafka enforces them (``org.apache.kafka.common.internals.Topic``).

A legal topic name is 1..249 characters from ``[a-zA-Z0-9._-]`` and is not ``.`` or ``..``.
Because Kafka's metric names replace ``.`` with ``_``, two topics whose names differ only in
those two characters *collide*: creating the second one is refused. Pure functions only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MAX_NAME_LENGTH = 249
_LEGAL = re.compile(r"[a-zA-Z0-9._-]+")

#: Topics the broker itself owns (groups and transactions coordinators).
INTERNAL_TOPICS = frozenset({"__consumer_offsets", "__transaction_state"})


class InvalidTopicName(ValueError):
    """The name breaks Kafka's topic naming rules (→ INVALID_TOPIC_EXCEPTION, 17)."""


def validate_topic_name(name: str | None) -> None:
    """Raise InvalidTopicName with Kafka's wording when ``name`` is not a legal topic name."""
    if not name:
        raise InvalidTopicName("Topic name is illegal, it can't be empty")
    if name in (".", ".."):
        raise InvalidTopicName('Topic name cannot be "." or ".."')
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidTopicName(
            f"Topic name is illegal, it can't be longer than {MAX_NAME_LENGTH} characters, "
            f"topic name: {name[:60]}..."
        )
    if not _LEGAL.fullmatch(name):
        raise InvalidTopicName(
            f'Topic name "{name}" is illegal, it contains a character other than '
            "ASCII alphanumerics, '.', '_' and '-'"
        )


#: Prefixes the storage layout reserves: such directories in the log dir are not partitions.
RESERVED_PREFIXES = (".", "__strom")


def reserved_prefix_error(name: str) -> str | None:
    """Why Strom cannot host a topic of this (Kafka-legal) name, or None."""
    for prefix in RESERVED_PREFIXES:
        if name.startswith(prefix):
            return (
                f"Topic name \"{name}\" is reserved: names starting with '{prefix}' are used "
                "by Strom's data directory layout"
            )
    return None


def has_collision_chars(name: str) -> bool:
    """True when the name holds '.' or '_' (may collide with another topic's metric names)."""
    return "." in name or "_" in name


def unify_collision_chars(name: str) -> str:
    """The form under which '.'/'_' variants of a name are the same ('.' → '_')."""
    return name.replace(".", "_")


def find_collision(name: str, existing: Iterable[str]) -> str | None:
    """An existing topic (other than ``name`` itself) that collides with ``name``, or None."""
    if not has_collision_chars(name):
        return None
    unified = unify_collision_chars(name)
    for other in existing:
        if other != name and unify_collision_chars(other) == unified:
            return other
    return None


def is_internal(name: str) -> bool:
    """True for the broker's own topics (``__consumer_offsets``, ``__transaction_state``)."""
    return name in INTERNAL_TOPICS
