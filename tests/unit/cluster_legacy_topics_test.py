"""A lone node's topics from before the metadata log are adopted with their own ids,
partition counts and configs, this node leading every partition; what cannot be adopted is
named, and nothing is adopted twice."""

from __future__ import annotations

import uuid
from types import MappingProxyType

from broker.cluster.legacy_topics import adopt
from common.topics.model import TopicInfo
from controller.metadata import MetadataImage, apply_all
from controller.metadata.records import TopicRecord

ORDERS = TopicInfo("orders", uuid.UUID(int=11), 3,
                   configs=MappingProxyType({"retention.ms": "60000"}))
OFFSETS = TopicInfo("__consumer_offsets", uuid.UUID(int=12), 2,
                    configs=MappingProxyType({"cleanup.policy": "compact"}))


def test_topics_are_adopted_with_their_ids_partitions_and_configs() -> None:
    legacy = {t.name: t for t in (ORDERS, OFFSETS)}
    records, (adopted, skipped) = adopt(legacy, node_id=4)(MetadataImage(), 0)
    image = apply_all(MetadataImage(), records)
    assert adopted == ["__consumer_offsets", "orders"] and skipped == []
    for info in legacy.values():
        topic = image.topic(info.name)
        assert topic is not None and topic.topic_id == info.topic_id
        assert sorted(topic.partitions) == list(range(info.partitions))
        for part in topic.partitions.values():
            assert (part.replicas, part.isr, part.leader) == ((4,), (4,), 4)
        assert dict(image.topic_config(info.name)) == dict(info.configs)


def test_adopted_topics_are_not_adopted_again_and_clashes_are_named() -> None:
    records, _ = adopt({"orders": ORDERS}, node_id=1)(MetadataImage(), 0)
    image = apply_all(MetadataImage(), [*records, TopicRecord("other", uuid.UUID(int=99))])
    clash = TopicInfo("other", uuid.UUID(int=13), 1)
    id_clash = TopicInfo("renamed", ORDERS.topic_id, 1)
    bad_name = TopicInfo("bad name!", uuid.UUID(int=14), 1)
    again, (adopted, skipped) = adopt(
        {t.name: t for t in (ORDERS, clash, id_clash, bad_name)}, node_id=1)(image, 0)
    assert again == [] and adopted == []
    assert sorted(name for name, _ in skipped) == ["bad name!", "other", "renamed"]
    assert all(why for _, why in skipped)
