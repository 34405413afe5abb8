"""The broker's state and lifecycle, independent of sockets.

``Broker(config)`` owns the LogManager, the topic registry, the ReplicaManager, the fetch
purgatory, the producer id manager and the API registry. Topics, leadership and what
Metadata reports come from the metadata image: the one concrete broker is
``broker.cluster.node.ClusterBroker`` (every node, a lone one included, runs as a member
of a Raft quorum), which provides the ``make_*``, ``metadata_*`` and
``auto_create_topic`` hooks below (abstract here). Lifecycle, in order:
``open_storage()`` (logs, dynamic broker configs, high watermarks), ``run_startup_hooks()`` (inside
the loop), ``start_background()`` (retention, cleaner, flush of due logs — blocking file
work in a worker thread, never on the event loop), then serving; ``shutdown()`` stops the
tasks, runs shutdown hooks, drains the append thread and flushes and checkpoints storage
(``LogManager.shutdown``).

The cluster id is kept in ``<data_dir>/meta.properties`` (Kafka's file name):
``version=1``, ``cluster.id=...``, ``node.id=...``, ``directory.id=...``; it is generated
on first start. ``directory.id`` (KIP-858) is a random UUID in Kafka's text form (URL-safe
base64 without padding) made once per data directory, added to an existing file that
lacks it (other keys are kept): a wiped or replaced directory gets a new one, so the
controller can tell a broker that lost its log from one that restarted with it.
"""

from __future__ import annotations

import abc
import asyncio
import base64
import contextlib
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from broker.config import BrokerConfig
from broker.fetch_session import FetchSessionCache
from broker.handlers import HandlerFn, build_registry, collect_start_callbacks
from broker.metrics import BrokerMetrics
from broker.producer_ids import ProducerIdManager, legacy_floor
from broker.topics import BrokerDefaults
from common.logging import get_logger
from protocol.api_registry import ApiRegistry
from protocol.codec import warm_up
from replication.fetch_purgatory import FetchPurgatory
from replication.replica_manager import ReplicaManager

log = get_logger("strom.broker")

META_FILE = "meta.properties"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _read_meta(path: Path) -> dict[str, str]:
    existing: dict[str, str] = {}
    with contextlib.suppress(FileNotFoundError):
        for line in path.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and not key.startswith("#"):
                existing[key.strip()] = value.strip()
    return existing


def _uuid_text(value: uuid.UUID) -> str:
    """Kafka's ``Uuid.toString``: URL-safe base64 of the 16 bytes, no padding."""
    return base64.urlsafe_b64encode(value.bytes).decode().rstrip("=")


def parse_directory_id(text: str) -> uuid.UUID:
    """A ``directory.id`` in Kafka's base64 form (or the usual hex form) -> UUID; raises
    ValueError."""
    text = text.strip()
    if len(text) == 22:
        try:
            raw = base64.urlsafe_b64decode(text + "==")
        except ValueError:
            raw = b""
        if len(raw) == 16:
            return uuid.UUID(bytes=raw)
    return uuid.UUID(text)


def read_directory_id(data_dir: Path) -> uuid.UUID:
    """The ``directory.id`` of ``data_dir`` (``_read_or_create_cluster_id`` makes it);
    raises ValueError naming the file when it is missing or not a UUID."""
    path = data_dir / META_FILE
    text = _read_meta(path).get("directory.id")
    if not text:
        raise ValueError(f"{path} has no directory.id")
    try:
        return parse_directory_id(text)
    except ValueError:
        raise ValueError(f"directory.id {text!r} in {path} is not a UUID") from None


def _read_or_create_cluster_id(data_dir: Path, node_id: int, configured: str | None) -> str:
    """The cluster id of ``data_dir`` (see the module doc); writes ``meta.properties``
    when it is missing or lacks ``cluster.id`` or ``directory.id``."""
    path = data_dir / META_FILE
    existing = _read_meta(path)
    cluster_id = existing.get("cluster.id")
    if cluster_id and configured and configured != cluster_id:
        raise ValueError(
            f"cluster.id {configured} does not match {cluster_id} stored in {path}"
        )
    stored_node = existing.get("node.id")
    if stored_node is not None and stored_node != str(node_id):
        raise ValueError(
            f"node.id {node_id} does not match node.id {stored_node} stored in {path}: "
            f"this data directory belongs to node {stored_node}"
        )
    if existing.get("directory.id"):
        try:
            parse_directory_id(existing["directory.id"])
        except ValueError:
            raise ValueError(f"directory.id {existing['directory.id']!r} in {path} is not "
                             f"a UUID") from None
    if not cluster_id or not existing.get("directory.id"):
        cluster_id = cluster_id or configured or (
            base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        )
        values = {"version": "1", **existing, "cluster.id": cluster_id,
                  "node.id": stored_node or str(node_id),
                  "directory.id": existing.get("directory.id") or _uuid_text(uuid.uuid4())}
        tmp = path.with_name(META_FILE + ".tmp")
        tmp.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    return cluster_id


class Broker(abc.ABC):
    """Everything a handler reaches through ``ctx.broker``."""

    def __init__(self, config: BrokerConfig, *, extra_handler_modules: tuple[str, ...] = ()):
        self.config = config
        self.node_id = config.node_id
        self.data_dir = config.data_dir
        self.registry: ApiRegistry[HandlerFn] = build_registry(extra_handler_modules)
        self.purgatory = FetchPurgatory()
        self.metrics = BrokerMetrics()
        self.fetch_sessions = FetchSessionCache()
        self.log_manager: Any = None  # storage.log_manager.LogManager (also ``logs``)
        self.topics: Any = None
        self.replica_manager: ReplicaManager | None = None
        self.producer_ids: ProducerIdManager | None = None
        self.cluster_id = ""
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False
        #: Extensions (group/txn coordinators) can hang state here and register shutdown hooks.
        self.extensions: dict[str, Any] = {}
        self._shutdown_hooks: list[Callable[[], Any]] = []
        self._startup_hooks: list[Callable[[], Any]] = []
        for callback in collect_start_callbacks(extra_handler_modules):
            self._startup_hooks.append(lambda cb=callback: cb(self))

    # ------------------------------------------------------------------ lifecycle
    def open_storage(self) -> list[str]:
        """Open logs and the topic registry (synchronous; call before serving)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.cluster_id = _read_or_create_cluster_id(
            self.data_dir, self.node_id, self.config.cluster_id
        )
        from storage.log_manager import LogManager

        self.log_manager = LogManager(self.data_dir, self.config.log_config())
        notes = list(self.log_manager.startup(now_ms()))
        defaults = BrokerDefaults.from_broker_config(self.config)
        self.topics = self.make_topic_registry(defaults)
        notes += self.topics.open()
        self.replica_manager = self.make_replica_manager()
        self.topics.on_change(self._topic_changed)
        self.producer_ids = ProducerIdManager(self.fetch_producer_ids,
                                              floor=legacy_floor(self.data_dir))
        return notes

    @abc.abstractmethod
    async def fetch_producer_ids(self, timeout: float) -> tuple[int, int]:
        """A block of producer ids from the active controller as ``(start, length)``,
        retrying for at most ``timeout`` seconds; raises ProducerIdsUnavailable."""

    @abc.abstractmethod
    def make_topic_registry(self, defaults: BrokerDefaults) -> Any:
        """The topic registry (``ClusterTopicRegistry``: topics from the metadata image)."""

    @abc.abstractmethod
    def make_replica_manager(self) -> ReplicaManager:
        """The replica manager (``replication.ReplicaManager``, fed the image's
        leadership and ISR by the cluster node)."""

    @property
    def logs(self) -> Any:
        """The LogManager (name used by the admin handlers)."""
        return self.log_manager

    # ---- what Metadata/DescribeCluster report (from the metadata image) ----------------
    @abc.abstractmethod
    def metadata_brokers(self, listener: str) -> list[dict[str, Any]]:
        """Metadata/DescribeCluster broker entries with their ``listener`` endpoints."""

    @abc.abstractmethod
    def metadata_controller_id(self) -> int:
        """The controller id Metadata reports."""

    @abc.abstractmethod
    def metadata_partitions(self, info: Any) -> list[dict[str, Any]]:
        """Metadata partition entries (leader, epoch, replicas, ISR) of topic ``info``."""

    @abc.abstractmethod
    async def auto_create_topic(self, name: str, origin: Any = None) -> Any:
        """Create topic ``name`` with the defaults (Metadata auto-creation) → TopicInfo;
        raises TopicError. ``origin``: the client's Metadata ``RequestContext``, whose
        principal and client id the creation is charged to (KIP-599)."""

    def _topic_changed(self, topic: str) -> None:
        # fetches waiting on a deleted/changed topic re-evaluate (and see the error)
        self.purgatory.wake_all()

    def add_startup_hook(self, hook: Callable[[], Any]) -> None:
        """Run ``hook()`` (sync or async) inside the event loop after storage is open and
        before the listener accepts connections (e.g. to load coordinator state)."""
        self._startup_hooks.append(hook)

    async def run_startup_hooks(self) -> None:
        for hook in self._startup_hooks:
            result = hook()
            if asyncio.iscoroutine(result):
                await result

    def add_shutdown_hook(self, hook: Callable[[], Any]) -> None:
        """Run ``hook()`` (sync or async) at shutdown, before storage closes."""
        self._shutdown_hooks.append(hook)

    def start_background(self) -> None:
        cfg = self.config
        self._tasks = [
            asyncio.create_task(
                self._periodic("retention", cfg.log_retention_check_interval_ms,
                               lambda: self.log_manager.run_retention(now_ms()),
                               in_thread=True)
            ),
            asyncio.create_task(
                self._periodic("flush", cfg.log_flush_scheduler_interval_ms,
                               lambda: self.log_manager.flush_due(now_ms()),
                               in_thread=True)
            ),
        ]
        self._tasks.append(asyncio.create_task(self._warm_up_schemas()))
        if cfg.log_cleaner_enable:
            self._tasks.append(
                asyncio.create_task(
                    self._periodic("cleaner", cfg.log_cleaner_backoff_ms,
                                   lambda: self.log_manager.run_cleaner(now_ms()),
                                   in_thread=True)
                )
            )
        self._started = True

    async def _warm_up_schemas(self) -> None:
        """Load the kio schemas of the versions clients use most (every Produce/Fetch/
        Metadata/ListOffsets version, the newest version of everything else) one at a time
        between requests, so first requests do not stall on imports (tens of ms each)."""
        hot = {0, 1, 2, 3, 18}
        for spec in self.registry.specs():
            low = spec.min_version if spec.api_key in hot else spec.max_version
            for version in range(spec.max_version, low - 1, -1):
                await asyncio.sleep(0)
                try:
                    warm_up(spec.api_key, version)
                except Exception as exc:  # a broken schema shows up on use; just log
                    log.warning("schema_warm_up_failed", api_key=spec.api_key,
                                version=version, error=repr(exc))

    async def _periodic(
        self, name: str, interval_ms: int, work: Callable[[], Any], *, in_thread: bool
    ) -> None:
        """Run ``work`` every ``interval_ms``. Blocking file work (fsync, retention deletes,
        compaction) runs in a worker thread; storage locks make that safe next to the
        loop thread's appends and reads."""
        loop = asyncio.get_running_loop()
        interval = max(interval_ms, 10) / 1000
        while True:
            await asyncio.sleep(interval)
            try:
                if in_thread:
                    await loop.run_in_executor(None, work)
                else:
                    work()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep the task alive; storage reports, we log
                log.error("periodic_task_failed", task=name, error=repr(exc))

    async def shutdown(self) -> None:
        """Stop periodic tasks and hooks, wake fetches, flush and checkpoint storage."""
        self.purgatory.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        for hook in self._shutdown_hooks:
            try:
                result = hook()
                if asyncio.iscoroutine(result):
                    await result
            except Exception as exc:
                log.error("shutdown_hook_failed", error=repr(exc))
        if self.replica_manager is not None:
            await self.replica_manager.close()  # appends in flight finish first
        if self.log_manager is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.log_manager.shutdown)
            self.log_manager = None
