"""The active controller's view of topics for the admin request code (pure).

``StagingRegistry`` offers the part of ``TopicRegistry``'s interface that the admin
``answer_*`` functions (``broker.admin.handlers_topics`` / ``handlers_configs``) call, but
decides against the controller's ``MetadataImage`` with ``controller.metadata.topic_control``
(placement across unfenced brokers, assignments, partition growth) and the broker's config
rules (``common.topics.rules``), and — instead of changing anything — collects the
metadata records to propose (``records``). The controller proposes them as one entry and
answers once it is committed, so every broker's image agrees. Requests are checked against
the records staged before them in the same request (two topics of one CreateTopics see
each other).

A new partition starts with every assigned replica in its ISR, as in Kafka: all of them
hold the same (empty) log. Followers that fall behind leave the ISR through the leader's
AlterPartition (``replication``).

``charge`` (None: no quota) is the request's KIP-599 controller mutation quota: called
with the partitions a topic creates or deletes once it has passed every other check (also
under ``validate_only``, as Kafka's controller), it raises the topic's TopicError
(THROTTLING_QUOTA_EXCEEDED) to refuse it.
"""

from __future__ import annotations

import dataclasses
import random
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from kio.schema.errors import ErrorCode

from broker.topics import BrokerDefaults, NewTopicRequest, TopicError, TopicInfo
from common.topics import rules
from common.topics.configs import (
    DescribedConfig,
    InvalidConfig,
    apply_incremental,
    describe_topic,
    not_applied,
)
from controller.metadata import topic_control
from controller.metadata.image import MetadataImage, apply_all
from controller.metadata.records import MetadataRecord
from storage.log_config import LogConfig


def topic_info(image: MetadataImage, name: str) -> TopicInfo | None:
    topic = image.topic(name)
    if topic is None:
        return None
    parts = topic.partitions
    rf = len(next(iter(parts.values())).replicas) if parts else 1
    return TopicInfo(name=name, topic_id=topic.topic_id, partitions=len(parts),
                     replication_factor=rf, configs=dict(image.topic_config(name)))


class StagingRegistry:
    def __init__(self, image: MetadataImage, defaults: BrokerDefaults, *,
                 default_partitions: int, default_replication_factor: int,
                 rng: random.Random, node_id: int = -1) -> None:
        self.image = image
        self.node_id = node_id
        self.defaults = defaults
        self.default_partitions = default_partitions
        self.default_replication_factor = default_replication_factor
        self.rng = rng
        self.records: list[MetadataRecord] = []
        self.charge: Callable[[int], None] | None = None

    def _charge(self, partitions: int) -> None:
        if self.charge is not None:
            self.charge(partitions)

    def _stage(self, records: Sequence[MetadataRecord]) -> None:
        self.records.extend(records)
        self.image = apply_all(self.image, list(records))

    @staticmethod
    def _error(decision: topic_control.Decision) -> TopicError:
        return TopicError(ErrorCode(decision.error_code), decision.message or "")

    # ---- reads -------------------------------------------------------------------------
    def get(self, name: str) -> TopicInfo | None:
        return topic_info(self.image, name)

    def get_by_id(self, topic_id: uuid.UUID) -> TopicInfo | None:
        topic = self.image.topics.get(topic_id)
        return topic_info(self.image, topic.name) if topic is not None else None

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.image.topic(name) is not None

    def unapplied_keys(self) -> frozenset[str]:
        return not_applied(f.name for f in dataclasses.fields(LogConfig))

    def describe_configs_for(self, overrides: Mapping[str, str],
                             keys: Iterable[str] | None = None) -> list[DescribedConfig]:
        return describe_topic(overrides, self.defaults, keys, unapplied=self.unapplied_keys())

    def describe_configs(self, name: str, keys: Iterable[str] | None = None
                         ) -> list[DescribedConfig]:
        return self.describe_configs_for(self._require(name).configs, keys)

    def _require(self, name: str) -> TopicInfo:
        info = self.get(name)
        if info is None:
            raise rules.unknown_topic(name)
        return info

    # ---- changes -----------------------------------------------------------------------
    def _topics(self) -> dict[str, TopicInfo]:
        return {t.name: info for t in self.image.topics.values()
                if (info := topic_info(self.image, t.name)) is not None}

    def create_topics(self, requests: Sequence[NewTopicRequest], *,
                      validate_only: bool = False, now_ms: int | None = None
                      ) -> list[TopicInfo | TopicError]:
        """The broker's admission rules (``common.topics.rules.check_create``: names,
        reserved prefixes, collisions, counts, replication factor against the unfenced
        brokers, assignments against the registered ones, configs), then placement."""
        results: list[TopicInfo | TopicError] = []
        for r in requests:
            try:
                count, factor, overrides = rules.check_create(
                    self._topics(), r.name, r.partitions, r.replication_factor, r.configs,
                    self.defaults, node_id=self.node_id, assignments=r.assignments,
                    live_brokers=len(self.image.unfenced_brokers()),
                    registered=self.image.brokers)
            except TopicError as exc:
                results.append(exc)
                continue
            manual = {i: tuple(b) for i, b in r.assignments} or None
            decision = topic_control.create_topic(
                self.image, r.name, num_partitions=-1 if manual else count,
                replication_factor=-1 if manual else factor, assignments=manual,
                configs=overrides, default_partitions=self.default_partitions,
                default_replication_factor=self.default_replication_factor, rng=self.rng)
            if not decision.ok:
                results.append(self._error(decision))
                continue
            try:
                self._charge(len(decision.assignments))
            except TopicError as exc:
                results.append(exc)
                continue
            info = TopicInfo(name=r.name, topic_id=decision.topic_id or uuid.UUID(int=0),
                             partitions=len(decision.assignments),
                             replication_factor=len(decision.assignments[0]),
                             configs=overrides)
            if not validate_only:
                self._stage(decision.records)
            results.append(info)
        return results

    def delete_topics(self, names: Sequence[str]) -> list[TopicInfo | TopicError]:
        results: list[TopicInfo | TopicError] = []
        for name in names:
            info = self.get(name)
            decision = topic_control.delete_topic(self.image, name)
            if info is None or not decision.ok:
                results.append(rules.unknown_topic(name) if info is None
                               else self._error(decision))
                continue
            try:
                self._charge(info.partitions)
            except TopicError as exc:
                results.append(exc)
                continue
            self._stage(decision.records)
            results.append(info)
        return results

    def create_partitions(self, name: str, count: int,
                          assignments: Sequence[Sequence[int]] | None = None, *,
                          validate_only: bool = False) -> TopicInfo:
        info = self.get(name)
        rules.check_create_partitions(info, name, count, assignments, node_id=self.node_id,
                                      registered=self.image.brokers)
        assert info is not None
        rules.check_node_total(self._topics(), count - info.partitions)
        decision = topic_control.create_partitions(self.image, name, count,
                                                   assignments=assignments, rng=self.rng)
        if not decision.ok:
            raise self._error(decision)
        self._charge(count - info.partitions)
        if not validate_only:
            self._stage(decision.records)
        return dataclasses.replace(info, partitions=count)

    def _set_configs(self, info: TopicInfo, overrides: Mapping[str, str],
                     validate_only: bool) -> TopicInfo:
        changes: dict[str, str | None] = {k: v for k, v in overrides.items()
                                          if info.configs.get(k) != v}
        changes.update({k: None for k in info.configs if k not in overrides})
        if changes and not validate_only:
            decision = topic_control.alter_topic_configs(self.image, info.name, changes)
            if not decision.ok:
                raise self._error(decision)
            self._stage(decision.records)
        return dataclasses.replace(info, configs=dict(overrides))

    def alter_configs(self, name: str, configs: Mapping[str, object], *,
                      validate_only: bool = False) -> TopicInfo:
        info = self._require(name)
        return self._set_configs(info, rules.check_configs(configs, self.defaults),
                                 validate_only)

    def incremental_alter_configs(self, name: str, ops: Iterable[tuple[str, int, str | None]],
                                  *, validate_only: bool = False) -> TopicInfo:
        info = self._require(name)
        try:
            overrides = apply_incremental(info.configs, ops, self.defaults)
        except InvalidConfig as exc:
            raise TopicError(ErrorCode.invalid_config, str(exc)) from None
        return self._set_configs(info, overrides, validate_only)

    def alter_broker_configs(self, entity: str, configs: Any = None, ops: Any = None, *,
                             validate_only: bool = False) -> None:
        raise TopicError(ErrorCode.invalid_request,
                         "In a cluster, broker configs are changed on each broker: send "
                         "BROKER resources in a request of their own to that broker")


class UnavailableRegistry(StagingRegistry):
    """Answers every topic of a request with one error (e.g. NOT_CONTROLLER)."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(MetadataImage(), BrokerDefaults(), default_partitions=1,
                         default_replication_factor=1, rng=random.Random(0))
        self.code, self.message = code, message

    def _fail(self, *args: Any, **kwargs: Any) -> Any:
        raise TopicError(self.code, self.message)

    def create_topics(self, requests: Sequence[NewTopicRequest], **kwargs: Any
                      ) -> list[TopicInfo | TopicError]:
        return [TopicError(self.code, self.message) for _ in requests]

    def delete_topics(self, names: Sequence[str]) -> list[TopicInfo | TopicError]:
        return [TopicError(self.code, self.message) for _ in names]

    create_partitions = _fail
    alter_configs = _fail
    incremental_alter_configs = _fail
    alter_broker_configs = _fail
