"""TopicRegistry: the topics of one node, their ids, partition counts and config overrides.

Usage (server, admin handlers, group coordinator)::

    from broker.topics import BrokerDefaults, TopicError, TopicRegistry

    broker = BrokerDefaults.from_properties(explicitly_set_broker_properties)  # Kafka names
    registry = TopicRegistry(log_dir, broker, log_manager=log_manager, node_id=0)
    registry.open(now_ms)        # after log_manager.startup(): load, adopt/reconcile logs

    info = registry.get("orders")            # TopicInfo | None (name, topic_id, partitions,
                                             #   replication_factor, configs = overrides)
    registry.get_by_id(topic_id)             # TopicInfo | None
    registry.list()                          # list[TopicInfo] sorted by name
    registry.create_topic("orders", partitions=3, configs={"retention.ms": "60000"},
                          now_ms=now_ms)     # -> TopicInfo; raises TopicError(error_code, msg)
    registry.create_topic("auto")            # num.partitions / default.replication.factor
    registry.delete_topic("orders")          # -> TopicInfo; TopicError if unknown
    registry.create_partitions("orders", 6)  # new total count
    registry.log_config("orders")            # storage LogConfig with the effective values
    registry.describe_configs("orders")      # list[DescribedConfig] (values + sources)
    registry.alter_configs("orders", {"retention.ms": "1000"})          # replace overrides
    registry.incremental_alter_configs("orders", [("cleanup.policy", 2, "compact")])

Every change is persisted (``__strom_topics.json``, atomic replace + fsync) *before* logs are
created or deleted, and applied to live logs through ``LogManager.update_config``; ``open``
then repairs whatever a crash interrupted: partitions of known topics that have no log are
created, logs of topics the table does not know are deleted (an interrupted delete). When no
table exists yet (first start on an existing data dir), the partitions on disk are adopted.

Errors are :class:`TopicError` with a kio ``ErrorCode``: INVALID_TOPIC_EXCEPTION,
TOPIC_ALREADY_EXISTS, INVALID_PARTITIONS, INVALID_REPLICATION_FACTOR, INVALID_CONFIG,
UNKNOWN_TOPIC_OR_PARTITION, KAFKA_STORAGE_ERROR. All methods are synchronous and meant for the
event-loop thread (admin changes are rare; a save is one small fsync'd file).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

from kio.schema.errors import ErrorCode

from broker.topics.store import TopicStore
from common.topics import rules
from common.topics.broker_defaults import apply_broker_ops
from common.topics.configs import (
    BrokerDefaults,
    DescribedConfig,
    InvalidConfig,
    NotDynamic,
    apply_incremental,
    describe_topic,
    effective_values,
    not_applied,
    to_log_config_kwargs,
    validate_effective,
)
from common.topics.model import TopicInfo, new_topic
from common.topics.rules import TopicError
from storage.errors import StorageError


@dataclass(frozen=True, slots=True)
class NewTopicRequest:
    """One topic of a CreateTopics request (-1: the broker's default)."""

    name: str
    partitions: int = -1
    replication_factor: int = -1
    configs: Mapping[str, object] = field(default_factory=dict)
    assignments: tuple[tuple[int, Sequence[int]], ...] = ()


class LogManagerLike(Protocol):
    """The part of ``storage.log_manager.LogManager`` the registry drives."""

    def get(self, topic: str, partition: int) -> Any: ...
    def create(self, topic: str, partition: int, config: Any) -> Any: ...
    def delete(self, topic: str, partition: int) -> None: ...
    def update_config(self, topic: str, config: Any) -> None: ...
    def partitions(self) -> Iterable[tuple[str, int]]: ...


def _default_log_config_type() -> Callable[..., Any]:
    from storage.log_config import LogConfig

    return LogConfig


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class TopicRegistry:
    """The topic table of one node, kept on disk and in step with the LogManager."""

    def __init__(
        self,
        log_dir: Path,
        broker: BrokerDefaults | None = None,
        *,
        log_manager: LogManagerLike | None = None,
        node_id: int = 0,
        log_config_type: Callable[..., Any] | None = None,
        clock_ms: Callable[[], int] = _wall_ms,
    ) -> None:
        self.broker = broker or BrokerDefaults()
        self._static_broker = self.broker
        #: broker properties changed at runtime: "" (cluster default) / node id → key → value
        self._dynamic: dict[str, dict[str, str]] = {}
        self.node_id = node_id
        self.store = TopicStore(Path(log_dir))
        self.log_manager = log_manager
        self._log_config_type = log_config_type
        self._clock_ms = clock_ms
        self._topics: dict[str, TopicInfo] = {}
        self._effective: dict[str, Mapping[str, Any]] = {}
        self._by_id: dict[uuid.UUID, TopicInfo] = {}
        #: Bumped on every change; lets caches (metadata, fetch sessions) notice.
        self.version = 0
        self._listeners: list[Callable[[str], None]] = []

    # ------------------------------------------------------------------ startup

    def open(self, now_ms: int | None = None) -> list[str]:
        """Load the table, adopt or reconcile the logs on disk; returns notes on repairs made."""
        table = self.store.load()
        notes: list[str] = []
        if table is None:
            loaded = self._adopt_from_disk(now_ms if now_ms is not None else self._clock_ms())
            if loaded:
                notes.append(f"adopted {len(loaded)} topic(s) found on disk")
            self.store.save(loaded)
            table = (loaded, {})
        loaded, broker_configs = table
        notes += self._load_dynamic(broker_configs)
        self._set(loaded)
        if self.log_manager is not None:
            notes += self._reconcile()
        return notes

    def _load_dynamic(self, broker_configs: Mapping[str, Mapping[str, str]]) -> list[str]:
        """Apply the saved runtime broker properties; notes when they were ignored."""
        self._dynamic = {entity: dict(values) for entity, values in broker_configs.items()}
        try:
            self.broker = self._static_broker.with_dynamic(
                self._dynamic.get(str(self.node_id), {}), self._dynamic.get("", {})
            )
        except (InvalidConfig, NotDynamic) as exc:  # a table from another version/config
            self._dynamic = {}
            return [f"ignored dynamic broker configs: {exc}"]
        return []

    def _adopt_from_disk(self, now_ms: int) -> dict[str, TopicInfo]:
        counts: dict[str, int] = {}
        if self.log_manager is not None:
            for topic, partition in self.log_manager.partitions():
                counts[topic] = max(counts.get(topic, 0), partition + 1)
        return {
            name: new_topic(name, uuid.uuid4(), count, 1, {}, now_ms)
            for name, count in counts.items()
        }

    def _reconcile(self) -> list[str]:
        assert self.log_manager is not None
        notes: list[str] = []
        on_disk = set(self.log_manager.partitions())
        for topic, partition in sorted(on_disk):
            info = self._topics.get(topic)
            if info is None or partition >= info.partitions:
                self.log_manager.delete(topic, partition)
                notes.append(f"deleted orphan log {topic}-{partition}")
        for info in self._topics.values():
            config = self.log_config(info.name)
            for partition in range(info.partitions):
                if (info.name, partition) not in on_disk:
                    self.log_manager.create(info.name, partition, config)
                    notes.append(f"created missing log {info.name}-{partition}")
            self.log_manager.update_config(info.name, config)
        return notes

    # ------------------------------------------------------------------ reads

    def get(self, name: str) -> TopicInfo | None:
        return self._topics.get(name)

    def get_by_id(self, topic_id: uuid.UUID) -> TopicInfo | None:
        return self._by_id.get(topic_id)

    def __contains__(self, name: object) -> bool:
        return name in self._topics

    def list(self) -> list[TopicInfo]:
        return [self._topics[n] for n in sorted(self._topics)]

    def names(self) -> list[str]:
        return sorted(self._topics)

    def partition_count(self, name: str) -> int | None:
        info = self._topics.get(name)
        return None if info is None else info.partitions

    def require(self, name: str) -> TopicInfo:
        info = self._topics.get(name)
        if info is None:
            raise rules.unknown_topic(name)
        return info

    def effective_configs(self, name: str) -> Mapping[str, Any]:
        """Parsed effective values of every topic config key for topic ``name`` (cached until
        the next change: cheap enough for the produce path; read-only)."""
        cached = self._effective.get(name)
        if cached is None:
            cached = MappingProxyType(effective_values(self.require(name).configs, self.broker))
            self._effective[name] = cached
        return cached

    def log_config(self, name: str) -> Any:
        """The storage ``LogConfig`` for topic ``name`` (overrides over broker defaults)."""
        return self.log_config_for(self.require(name).configs)

    def log_config_for(self, overrides: Mapping[str, str]) -> Any:
        cls = self._log_config_type or _default_log_config_type()
        names = [f.name for f in dataclasses.fields(cls)]
        return cls(**to_log_config_kwargs(effective_values(overrides, self.broker), names))

    def describe_configs(
        self, name: str, keys: Iterable[str] | None = None
    ) -> list[DescribedConfig]:
        return describe_topic(self.require(name).configs, self.broker, keys,
                              unapplied=self.unapplied_keys())

    def describe_configs_for(
        self, overrides: Mapping[str, str], keys: Iterable[str] | None = None
    ) -> list[DescribedConfig]:
        """Like describe_configs for a topic that would have these overrides."""
        return describe_topic(overrides, self.broker, keys, unapplied=self.unapplied_keys())

    def unapplied_keys(self) -> frozenset[str]:
        """Topic config keys this broker accepts and keeps but does not act on (yet)."""
        cls = self._log_config_type or _default_log_config_type()
        return not_applied(f.name for f in dataclasses.fields(cls))

    def on_change(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(topic_name)`` after every change to a topic (create/delete/alter)."""
        self._listeners.append(listener)

    # ------------------------------------------------------------------ changes

    def create_topic(
        self,
        name: str,
        partitions: int = -1,
        replication_factor: int = -1,
        configs: Mapping[str, object] | None = None,
        *,
        assignments: Sequence[tuple[int, Sequence[int]]] = (),
        validate_only: bool = False,
        now_ms: int | None = None,
    ) -> TopicInfo:
        """Create a topic (or only check that it could be, with ``validate_only``)."""
        [result] = self.create_topics(
            [NewTopicRequest(name, partitions, replication_factor, configs or {},
                             tuple(assignments))],
            validate_only=validate_only, now_ms=now_ms,
        )
        if isinstance(result, TopicError):
            raise result
        return result

    def create_topics(
        self,
        requests: Sequence[NewTopicRequest],
        *,
        validate_only: bool = False,
        now_ms: int | None = None,
    ) -> list[TopicInfo | TopicError]:
        """Create several topics with one save of the table (CreateTopics): per request, the
        new TopicInfo or the TopicError that refused it, in request order. Requests are
        checked against the topics created before them in the same call."""
        created = now_ms if now_ms is not None else self._clock_ms()
        staged = dict(self._topics)
        results: list[TopicInfo | TopicError] = []
        new: list[TopicInfo] = []
        for r in requests:
            try:
                count, factor, overrides = rules.check_create(
                    staged, r.name, r.partitions, r.replication_factor, r.configs, self.broker,
                    node_id=self.node_id, assignments=r.assignments,
                )
            except TopicError as exc:
                results.append(exc)
                continue
            info = new_topic(r.name, uuid.uuid4(), count, factor, overrides, created)
            results.append(info)
            if not validate_only:
                staged[r.name] = info
                new.append(info)
        if not new:
            return results
        try:
            self._commit(staged)
        except TopicError as exc:
            return [exc if isinstance(r, TopicInfo) else r for r in results]
        for info in new:
            try:
                self._create_logs(info, range(info.partitions))
            except (OSError, StorageError) as exc:
                error = TopicError(
                    ErrorCode.kafka_storage_error,
                    f"Could not create logs for '{info.name}': {exc}",
                )
                with contextlib.suppress(TopicError):
                    self._rollback_create(info)
                results = [error if r is info else r for r in results]
                continue
            self._notify(info.name)
        return results

    def delete_topic(self, name: str) -> TopicInfo:
        """Delete a topic and its logs."""
        [result] = self.delete_topics([name])
        if isinstance(result, TopicError):
            raise result
        return result

    def delete_topics(self, names: Sequence[str]) -> list[TopicInfo | TopicError]:
        """Delete several topics with one save of the table (DeleteTopics), then their logs:
        per name the deleted TopicInfo or a TopicError (unknown topic, or a failed save)."""
        staged = dict(self._topics)
        results: list[TopicInfo | TopicError] = []
        gone: list[TopicInfo] = []
        for name in names:
            info = staged.pop(name, None)
            if info is None:
                results.append(rules.unknown_topic(name))
                continue
            results.append(info)
            gone.append(info)
        if not gone:
            return results
        try:
            self._commit(staged)
        except TopicError as exc:
            return [exc if isinstance(r, TopicInfo) else r for r in results]
        for info in gone:
            if self.log_manager is not None:
                for partition in range(info.partitions):
                    with contextlib.suppress(OSError):  # the next open() removes the orphan
                        self.log_manager.delete(info.name, partition)
            self._notify(info.name)
        return results

    def delete_topic_by_id(self, topic_id: uuid.UUID) -> TopicInfo:
        info = self._by_id.get(topic_id)
        if info is None:
            raise TopicError(ErrorCode.unknown_topic_id, f"Topic id {topic_id} does not exist.")
        return self.delete_topic(info.name)

    def create_partitions(
        self, name: str, count: int, assignments: Sequence[Sequence[int]] | None = None,
        *, validate_only: bool = False,
    ) -> TopicInfo:
        """Grow topic ``name`` to ``count`` partitions in total."""
        info = self._topics.get(name)
        rules.check_create_partitions(info, name, count, assignments, node_id=self.node_id)
        assert info is not None
        rules.check_node_total(self._topics, count - info.partitions)
        grown = info.with_partitions(count)
        if validate_only:
            return grown
        self._commit({**self._topics, name: grown})
        try:
            self._create_logs(grown, range(info.partitions, count))
        except OSError as exc:
            raise TopicError(
                ErrorCode.kafka_storage_error, f"Could not create partitions of '{name}': {exc}"
            ) from None
        self._notify(name)
        return grown

    def alter_configs(
        self, name: str, configs: Mapping[str, object], *, validate_only: bool = False
    ) -> TopicInfo:
        """AlterConfigs: the topic's overrides become exactly ``configs``."""
        info = self.require(name)
        overrides = rules.check_configs(configs, self.broker)
        return self._set_configs(info, overrides, validate_only)

    def incremental_alter_configs(
        self, name: str, ops: Iterable[tuple[str, int, str | None]], *,
        validate_only: bool = False,
    ) -> TopicInfo:
        """IncrementalAlterConfigs: (key, op, value); op 0 SET 1 DELETE 2 APPEND 3 SUBTRACT."""
        info = self.require(name)
        try:
            overrides = apply_incremental(info.configs, ops, self.broker)
        except InvalidConfig as exc:
            raise TopicError(ErrorCode.invalid_config, str(exc)) from None
        return self._set_configs(info, overrides, validate_only)

    # ------------------------------------------------------------------ broker configs

    def dynamic_broker_configs(self, entity: str) -> dict[str, str]:
        """Runtime-set broker properties of ``entity`` ("" cluster default, or a node id)."""
        return dict(self._dynamic.get(entity, {}))

    def alter_broker_configs(
        self,
        entity: str,
        configs: Mapping[str, str | None] | None = None,
        ops: Iterable[tuple[str, int, str | None]] | None = None,
        *,
        validate_only: bool = False,
    ) -> None:
        """Change broker properties at runtime (the topic defaults only, as Kafka's dynamic
        cluster-wide log configs). ``entity``: "" for the cluster default, this node's id for
        this broker. Either ``configs`` (AlterConfigs: the entity's runtime set becomes exactly
        this) or ``ops`` (IncrementalAlterConfigs: 0 SET, 1 DELETE, 2 APPEND, 3 SUBTRACT).
        Raises TopicError: INVALID_REQUEST for keys that are not dynamic, INVALID_CONFIG for
        bad values. Every topic's log picks the new defaults up at once."""
        if entity not in ("", str(self.node_id)):
            raise TopicError(
                ErrorCode.invalid_request,
                f"Unexpected broker id, expected {self.node_id} or empty string, "
                f"but received {entity}",
            )
        try:
            if ops is None:
                layer = {k: v for k, v in (configs or {}).items()}
                if any(v is None for v in layer.values()):
                    raise InvalidConfig("Null value not supported for broker configs")
                new_layer: dict[str, str] = dict(layer)  # type: ignore[arg-type]
            else:
                new_layer = apply_broker_ops(self._dynamic.get(entity, {}), ops, self.broker)
            dynamic = {**self._dynamic, entity: new_layer}
            resolved = self._static_broker.with_dynamic(
                dynamic.get(str(self.node_id), {}), dynamic.get("", {})
            )
            if resolved.default_value("compression.type")[0] != "producer":
                raise InvalidConfig(
                    "Invalid value for configuration compression.type: Strom stores record "
                    "batches as the producer sent them; only 'producer' is supported"
                )
            for info in self._topics.values():
                validate_effective(info.configs, resolved)
        except NotDynamic as exc:
            raise TopicError(ErrorCode.invalid_request, str(exc)) from None
        except InvalidConfig as exc:
            raise TopicError(ErrorCode.invalid_config, str(exc)) from None
        if validate_only:
            return
        previous = self._dynamic
        self._dynamic = {k: v for k, v in dynamic.items() if v}
        try:
            self._commit(self._topics)
        except TopicError:
            self._dynamic = previous
            raise
        self.broker = resolved
        self._effective = {}
        if self.log_manager is not None:
            for info in self._topics.values():
                self.log_manager.update_config(info.name, self.log_config(info.name))
        for info in list(self._topics.values()):
            self._notify(info.name)

    # ------------------------------------------------------------------ internals

    def _set_configs(
        self, info: TopicInfo, overrides: Mapping[str, str], validate_only: bool
    ) -> TopicInfo:
        updated = info.with_configs(overrides)
        if validate_only:
            return updated
        self._commit({**self._topics, info.name: updated})
        if self.log_manager is not None:
            self.log_manager.update_config(info.name, self.log_config(info.name))
        self._notify(info.name)
        return updated

    def _create_logs(self, info: TopicInfo, partitions: Iterable[int]) -> None:
        if self.log_manager is None:
            return
        config = self.log_config(info.name)
        for partition in partitions:
            if self.log_manager.get(info.name, partition) is None:
                self.log_manager.create(info.name, partition, config)

    def _rollback_create(self, info: TopicInfo) -> None:
        self._commit({n: t for n, t in self._topics.items() if n != info.name})
        if self.log_manager is not None:
            for partition in range(info.partitions):
                with contextlib.suppress(OSError):
                    self.log_manager.delete(info.name, partition)

    def _commit(self, topics: dict[str, TopicInfo]) -> None:
        """Persist first, then publish in memory (a failed save changes nothing)."""
        try:
            self.store.save(topics, self._dynamic)
        except OSError as exc:
            raise TopicError(
                ErrorCode.kafka_storage_error, f"Could not save the topic table: {exc}"
            ) from None
        self._set(topics)

    def _set(self, topics: dict[str, TopicInfo]) -> None:
        self._effective = {}
        self._topics = dict(topics)
        self._by_id = {t.topic_id: t for t in topics.values()}
        self.version += 1

    def _notify(self, name: str) -> None:
        for listener in self._listeners:
            listener(name)
