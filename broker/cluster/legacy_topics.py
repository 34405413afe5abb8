"""Topics of a lone node from before the metadata log (pure).

Strom versions before the one-voter quorum kept a single node's topics in
``<log.dirs>/__strom_topics.json`` (``"topics"``: name → id, partition count, config
overrides; see ``common.topics.model``). The metadata image is now the only source of
topics, and a broker deletes local logs of topics the image lacks. So on a lone node's
start the active controller first adopts every such topic into the metadata log with its
own id, its partition count and its configs, this node the one replica and leader of each
partition; the file is then rewritten without topics. Topics already in the image (by name
or id) are left as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from common.topics.model import TopicInfo
from controller.metadata import topic_control
from controller.metadata.image import MetadataImage, apply_all
from controller.metadata.records import MetadataRecord

#: (topic names adopted, (topic name, why not) for each one left out)
Adoption = tuple[list[str], list[tuple[str, str]]]


def adopt(legacy: Mapping[str, TopicInfo], node_id: int
          ) -> Callable[[MetadataImage, int], tuple[list[MetadataRecord], Adoption]]:
    """A controller decision (``QuorumController.decide``) that adopts ``legacy``."""

    def decide(image: MetadataImage, _next_offset: int) -> tuple[list[MetadataRecord], Any]:
        records: list[MetadataRecord] = []
        adopted: list[str] = []
        skipped: list[tuple[str, str]] = []
        for name in sorted(legacy):
            info = legacy[name]
            existing = image.topic(name)
            if existing is not None and existing.topic_id == info.topic_id:
                continue  # adopted by an earlier start that stopped before the rewrite
            decision = topic_control.adopt_topic(image, name, info.topic_id, info.partitions,
                                                 info.configs, node_id)
            if not decision.ok:
                skipped.append((name, decision.message or f"error {decision.error_code}"))
                continue
            records += decision.records
            image = apply_all(image, list(decision.records))
            adopted.append(name)
        return records, (adopted, skipped)

    return decide
