"""TopicRegistry: the read interface to a broker's topics, and its dynamic broker configs.

Topics come from the metadata image: ``broker.cluster.registry.ClusterTopicRegistry`` (the
one subclass) fills ``_topics`` from each image, keeps the local logs in step and sends
topic creation to the controller; topic changes are decided by the active controller
(``broker.cluster.staging``). This base holds what does not depend on where topics come
from::

    registry.get("orders")            # TopicInfo | None (name, topic_id, partitions,
                                      #   replication_factor, configs = overrides)
    registry.get_by_id(topic_id)      # TopicInfo | None
    registry.list()                   # list[TopicInfo] sorted by name
    registry.effective_configs("orders")   # parsed values (cached until the next change)
    registry.log_config("orders")     # storage LogConfig with the effective values
    registry.describe_configs("orders")    # list[DescribedConfig] (values + sources)
    registry.alter_broker_configs("", ops=[("log.retention.ms", 0, "60000")])

Dynamic broker configs (AlterConfigs on BROKER resources, per broker) are saved in
``<log.dirs>/__strom_topics.json`` (``broker_configs``; atomic replace + fsync, see
``store``) before they take effect, pushed to every live log through
``LogManager.update_config`` and reloaded by ``open``.

Errors are :class:`TopicError` with a kio ``ErrorCode`` (UNKNOWN_TOPIC_OR_PARTITION,
INVALID_REQUEST, INVALID_CONFIG, KAFKA_STORAGE_ERROR). All methods are synchronous and meant
for the event-loop thread (a save is one small fsync'd file).
"""

from __future__ import annotations

import dataclasses
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
    describe_topic,
    effective_values,
    not_applied,
    to_log_config_kwargs,
    validate_effective,
)
from common.topics.model import TopicInfo
from common.topics.rules import TopicError
from storage.log_config import LogConfig


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


class TopicRegistry:
    """A broker's topics (filled by the subclass) and its dynamic broker configs."""

    def __init__(
        self,
        log_dir: Path,
        broker: BrokerDefaults | None = None,
        *,
        log_manager: LogManagerLike | None = None,
        node_id: int = 0,
    ) -> None:
        self.broker = broker or BrokerDefaults()
        self._static_broker = self.broker
        #: broker properties changed at runtime: "" (cluster default) / node id → key → value
        self._dynamic: dict[str, dict[str, str]] = {}
        self.node_id = node_id
        self.store = TopicStore(Path(log_dir))
        self.log_manager = log_manager
        self._topics: dict[str, TopicInfo] = {}
        #: topics of the file from before the metadata log (see ``open``)
        self.legacy_topics: dict[str, TopicInfo] = {}
        self._effective: dict[str, Mapping[str, Any]] = {}
        self._by_id: dict[uuid.UUID, TopicInfo] = {}
        self._listeners: list[Callable[[str], None]] = []

    # ------------------------------------------------------------------ startup

    def open(self) -> list[str]:
        """Load this broker's dynamic broker configs, and in ``legacy_topics`` the topics an
        earlier version kept in the same file; returns notes (a damaged file is ignored,
        with a note naming it)."""
        try:
            table = self.store.load()
        except ValueError as exc:
            return [f"{exc}: ignored"]
        if table is None:
            return []
        self.legacy_topics = table[0]
        return self._load_dynamic(table[1])

    def forget_legacy_topics(self) -> None:
        """Rewrite the file without its topics (once they are in the metadata log)."""
        self.store.save({}, self._dynamic)
        self.legacy_topics = {}

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
        names = [f.name for f in dataclasses.fields(LogConfig)]
        return LogConfig(**to_log_config_kwargs(effective_values(overrides, self.broker), names))

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
        return not_applied(f.name for f in dataclasses.fields(LogConfig))

    def on_change(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(topic_name)`` after every change to a topic (create/delete/alter)."""
        self._listeners.append(listener)

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

    def _commit(self, topics: dict[str, TopicInfo]) -> None:
        """Persist the dynamic broker configs first (topics live in the metadata log), then
        publish ``topics`` in memory (a failed save changes nothing)."""
        try:
            self.store.save({}, self._dynamic)
        except OSError as exc:
            raise TopicError(ErrorCode.kafka_storage_error,
                             f"Could not save the dynamic broker configs: {exc}") from None
        self._set(topics)

    def _set(self, topics: dict[str, TopicInfo]) -> None:
        self._effective = {}
        self._topics = dict(topics)
        self._by_id = {t.topic_id: t for t in topics.values()}

    def _notify(self, name: str) -> None:
        for listener in self._listeners:
            listener(name)
