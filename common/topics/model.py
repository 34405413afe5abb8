"""Topics as values, and the ``__strom_topics.json`` file format. Pure: no I/O.

Brokers now write only its ``broker_configs`` (``"topics"`` is empty: topics live in the
metadata log); files with topics from earlier versions still load, and a lone node
adopts those topics into its metadata log (``broker.cluster.legacy_topics``).

``__strom_topics.json`` (UTF-8 JSON, written atomically by :mod:`broker.topics.store`)::

    {
      "format": 1,
      "topics": {
        "<name>": {
          "topic_id": "<UUID, canonical hex form>",
          "partitions": <int ≥ 1>,
          "replication_factor": <int ≥ 1>,
          "configs": {"<topic config key>": "<canonical string value>", ...},
          "created_ms": <int, wall clock at creation>
        }, ...
      }
    }

``configs`` holds only the topic's *overrides*; broker defaults are applied when reading.
An optional ``"broker_configs": {"": {...}, "<node id>": {...}}`` holds broker properties
changed at runtime (AlterConfigs on BROKER resources): ``""`` is the cluster-wide default,
a node id that broker's own; each maps Kafka property names to strings.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

FORMAT_VERSION = 1


class TopicFileError(ValueError):
    """The topic table file is not in the format above (message says where)."""


@dataclass(frozen=True, slots=True)
class TopicInfo:
    """One topic: name, id, partition count, replication factor and config overrides."""

    name: str
    topic_id: uuid.UUID
    partitions: int
    replication_factor: int = 1
    configs: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    created_ms: int = 0


def new_topic(
    name: str, topic_id: uuid.UUID, partitions: int, replication_factor: int,
    configs: Mapping[str, str], created_ms: int,
) -> TopicInfo:
    return TopicInfo(
        name, topic_id, partitions, replication_factor,
        MappingProxyType(dict(sorted(configs.items()))), created_ms,
    )


BrokerConfigs = dict[str, dict[str, str]]


def encode_topics(
    topics: Mapping[str, TopicInfo], broker_configs: Mapping[str, Mapping[str, str]] | None = None
) -> bytes:
    """Serialize the topic table (deterministic: names and keys sorted)."""
    doc: dict[str, object] = {
        "format": FORMAT_VERSION,
        "topics": {
            t.name: {
                "topic_id": str(t.topic_id),
                "partitions": t.partitions,
                "replication_factor": t.replication_factor,
                "configs": dict(sorted(t.configs.items())),
                "created_ms": t.created_ms,
            }
            for t in sorted(topics.values(), key=lambda t: t.name)
        },
    }
    if broker_configs:
        doc["broker_configs"] = {
            entity: dict(sorted(values.items()))
            for entity, values in sorted(broker_configs.items()) if values
        }
    return (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode()


def decode_topics(data: bytes) -> dict[str, TopicInfo]:
    """Parse the topics of the table; TopicFileError on any deviation from the format."""
    return decode_table(data)[0]


def decode_table(data: bytes) -> tuple[dict[str, TopicInfo], BrokerConfigs]:
    """Parse the whole table → (topics, broker_configs); TopicFileError on deviations."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TopicFileError(f"not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_VERSION:
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise TopicFileError(f"unknown format {found!r}")
    raw_topics = doc.get("topics")
    if not isinstance(raw_topics, dict):
        raise TopicFileError("'topics' must be an object")
    topics: dict[str, TopicInfo] = {}
    for name, entry in raw_topics.items():
        try:
            configs = entry["configs"]
            if not isinstance(configs, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in configs.items()
            ):
                raise TypeError("configs must map strings to strings")
            partitions = entry["partitions"]
            replication = entry["replication_factor"]
            created = entry.get("created_ms", 0)
            if not all(isinstance(x, int) and not isinstance(x, bool)
                       for x in (partitions, replication, created)):
                raise TypeError("partitions, replication_factor, created_ms must be integers")
            if partitions < 1 or replication < 1:
                raise ValueError("partitions and replication_factor must be ≥ 1")
            topics[name] = new_topic(
                name, uuid.UUID(entry["topic_id"]), partitions, replication, configs, created,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise TopicFileError(f"topic {name!r}: {exc}") from None
    raw_brokers = doc.get("broker_configs", {})
    if not isinstance(raw_brokers, dict) or not all(
        isinstance(values, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in values.items())
        for values in raw_brokers.values()
    ):
        raise TopicFileError("'broker_configs' must map entities to string→string objects")
    return topics, {str(entity): dict(values) for entity, values in raw_brokers.items()}
