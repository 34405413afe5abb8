"""The asyncio shell around the pure TransactionCoordinator.

One ``TransactionService`` per broker, made at broker start (``service_for``; Kafka
loads its coordinator state eagerly, so a transaction left in PrepareCommit by a kill -9
completes after a restart without any client asking). Every call runs on the event-loop
thread, so the coordinator needs no locks.

- Loading: which ``__transaction_state`` partitions this node leads comes from the
  metadata image (a listener on the quorum, as the group coordinator's); a partition
  gained is replayed from its log, one lost is unloaded (its ids answer NOT_COORDINATOR).
  While a partition is replayed its ids answer COORDINATOR_LOAD_IN_PROGRESS.
- Markers: after every event the coordinator's ``MarkerJob``s are started as tasks that
  wait until the Prepare state is replicated, write the markers
  (``markers.send_markers``), retrying partitions that fail every ``MARKER_RETRY_S`` for
  as long as this node coordinates the id, then append the Complete state (its
  replication is awaited by the id's next answer, not by the job).
- Timers: every ``transaction.abort.timed.out.transaction.cleanup.interval.ms`` Ongoing
  transactions older than their timeout are aborted (epoch bump); every
  ``transaction.remove.expired.transaction.cleanup.interval.ms`` ids idle longer than
  ``transactional.id.expiration.ms`` are removed.
- Answers wait (bounded) until the coordinator's writes are replicated, as Kafka
  appends to ``__transaction_state`` with acks=all.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from kio.schema.errors import ErrorCode

from broker.txn.coordinator import TransactionCoordinator, TxnConfig
from broker.txn.markers import Marker, send_markers
from broker.txn.metadata import MarkerJob
from broker.txn.persistence import TOPIC, TxnStateStore
from common.logging import get_logger

log = get_logger("strom.txn")

EXTENSION_KEY = "transactions"
MARKER_RETRY_S = 0.2
MARKER_TIMEOUT_S = 10.0
STATE_REPLICATION_WAIT_S = 5.0


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def txn_config_from(config: Any) -> TxnConfig:
    return TxnConfig(num_partitions=config.transaction_state_log_num_partitions,
                     max_timeout_ms=config.transaction_max_timeout_ms,
                     expiration_ms=config.transactional_id_expiration_ms)


class TransactionService:
    def __init__(self, broker: Any) -> None:
        self.broker = broker
        self.store = TxnStateStore(broker, wall_ms)
        self.coordinator = TransactionCoordinator(txn_config_from(broker.config), self.store)
        self._led: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        #: transactional id -> its marker job under way
        self._jobs: dict[str, asyncio.Task[None]] = {}
        self._timers: list[asyncio.Task[None]] = []
        self._closed = False

    # ---- lifecycle ----------------------------------------------------------------------
    def start(self) -> None:
        existing = self.store.partition_count()
        if existing and existing != self.coordinator.config.num_partitions:
            # as Kafka: an existing topic keeps its partition count (and every id's
            # coordinator), whatever the configuration says now
            log.warning("txn_state_partition_count_kept", existing=existing,
                        configured=self.coordinator.config.num_partitions)
            c = self.coordinator.config
            self.coordinator.config = TxnConfig(existing, c.max_timeout_ms, c.expiration_ms)
        cfg = self.broker.config
        self._timers = [
            asyncio.get_running_loop().create_task(self._every(
                cfg.transaction_abort_timed_out_transaction_cleanup_interval_ms,
                self._abort_timed_out)),
            asyncio.get_running_loop().create_task(self._every(
                cfg.transaction_remove_expired_transaction_cleanup_interval_ms,
                lambda: self.coordinator.expire_transactional_ids(wall_ms()))),
        ]
        cluster = getattr(self.broker, "cluster", None)
        if cluster is not None:
            cluster.quorum.on_image(self.on_image)
            self.on_image(cluster.quorum.image)

    def on_image(self, image: Any) -> None:
        """Load the ``__transaction_state`` partitions this node now leads, unload the
        ones it stopped leading."""
        if self._closed:
            return
        topic = image.topic(TOPIC)
        led = set() if topic is None else {
            i for i, p in topic.partitions.items() if p.leader == self.broker.node_id}
        if led == self._led:
            return
        if topic is not None and len(topic.partitions) != self.coordinator.config.num_partitions:
            c = self.coordinator.config
            self.coordinator.config = TxnConfig(len(topic.partitions), c.max_timeout_ms,
                                                c.expiration_ms)
        gained, lost = led - self._led, self._led - led
        self._led = led
        for partition in sorted(lost):
            self.coordinator.unload_partition(partition)
        for partition in sorted(gained):
            self.coordinator.begin_load(partition)
            count = self.store.replay_partition(self.coordinator, partition)
            self.coordinator.complete_load(partition)
            if count:
                log.info("txn_partition_loaded", partition=partition, records=count)
        self._after()

    async def shutdown(self) -> None:
        self._closed = True
        for task in [*self._timers, *self._tasks]:
            task.cancel()
        for task in [*self._timers, *self._tasks]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # ---- plumbing -----------------------------------------------------------------------
    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Run a coordinator event, then start the marker jobs it produced."""
        try:
            return getattr(self.coordinator, method)(*args, **kwargs)
        finally:
            self._after()

    async def replicated(self) -> int:
        """Wait (bounded) for the coordinator's writes so far to be replicated."""
        return await self.store.wait_replicated(STATE_REPLICATION_WAIT_S)

    def _after(self) -> None:
        for job in self.coordinator.drain_jobs():
            if self._closed:
                self.coordinator.abandon_job(job)
                continue
            task = asyncio.get_running_loop().create_task(self._run_job(job))
            self._tasks.add(task)
            self._jobs[job.transactional_id] = task
            task.add_done_callback(self._tasks.discard)
            task.add_done_callback(
                lambda t, tid=job.transactional_id: self._jobs.get(tid) is t
                and self._jobs.pop(tid))

    async def wait_markers(self, transactional_id: str, timeout_s: float) -> None:
        """Wait (bounded) until the marker job of ``transactional_id``, if one is under
        way, is done. A request for an id whose markers are in flight would be answered
        CONCURRENT_TRANSACTIONS, which clients retry after a backoff (librdkafka 20 ms,
        the Java client ``retry.backoff.ms``); waiting here first gives the answer the
        retry would get, without the backoff. EndTxn itself does not wait: as Kafka, it
        answers once PrepareCommit/PrepareAbort is replicated."""
        task = self._jobs.get(transactional_id)
        if task is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(task), timeout_s)

    async def _run_job(self, job: MarkerJob) -> None:
        """Write every marker of ``job`` (retrying failed partitions while this node
        coordinates the id), then its Complete state."""
        coordinator = self.coordinator
        remaining = set(job.partitions)
        partition = coordinator.partition_for(job.transactional_id)
        try:
            while True:
                await self.store.wait_replicated(STATE_REPLICATION_WAIT_S)  # Prepare first
                if remaining:
                    marker = Marker(job.producer_id, job.producer_epoch, job.commit,
                                    job.coordinator_epoch, tuple(sorted(remaining)))
                    remaining, errors = await send_markers(self.broker, marker,
                                                           MARKER_TIMEOUT_S)
                    if remaining:
                        log.info("txn_markers_retry", transactional_id=job.transactional_id,
                                 errors={f"{t}-{p}": ErrorCode(errors[(t, p)]).name
                                         for t, p in sorted(remaining)})
                if not remaining:
                    code = self.call("complete_transaction", wall_ms(), job)
                    if code == ErrorCode.none:
                        # the Complete record's replication is not awaited here: this
                        # id's next write (AddPartitionsToTxn, InitProducerId) follows it
                        # in the same partition and is answered only once replicated,
                        # which covers both; lost to a leader change, it leaves
                        # PrepareCommit/PrepareAbort, which the next coordinator finishes
                        log.debug("txn_completed", transactional_id=job.transactional_id,
                                  commit=job.commit)
                        return
                if self._closed or partition not in self._led:
                    # the image moved the partition's leadership away: the new leader's
                    # coordinator finds the Prepare state in the log and finishes it
                    coordinator.abandon_job(job)
                    return
                await asyncio.sleep(MARKER_RETRY_S)
        except asyncio.CancelledError:
            coordinator.abandon_job(job)
            raise
        except Exception as exc:  # never leave the id stuck in flight
            log.exception("txn_marker_job_failed", transactional_id=job.transactional_id,
                          error=repr(exc))
            coordinator.abandon_job(job)

    def _abort_timed_out(self) -> None:
        aborted = self.call("abort_timed_out", wall_ms())
        if aborted:
            log.info("txn_timed_out_aborted", transactional_ids=aborted)

    async def _every(self, interval_ms: int, work: Any) -> None:
        while True:
            await asyncio.sleep(max(interval_ms, 10) / 1000)
            try:
                work()
                self._after()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep the timer alive
                log.exception("txn_timer_failed", error=repr(exc))


def service_for(broker: Any) -> TransactionService:
    """The broker's TransactionService, created and started on first use."""
    service = broker.extensions.get(EXTENSION_KEY)
    if service is None:
        service = TransactionService(broker)
        broker.extensions[EXTENSION_KEY] = service
        service.start()
        broker.add_shutdown_hook(service.shutdown)
    return service
