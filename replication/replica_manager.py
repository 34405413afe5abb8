"""The one door to the partitions of this broker: produce, fetch (consumers and
followers), leadership from the metadata image, ISR changes (DESIGN.md section 5).

- ``apply_assignments`` takes every partition of the image as an ``Assignment`` (the
  broker converts the image; replication does not read controller types) and turns each
  hosted partition's ``replication.partition.Partition`` into leader, follower or
  neither. While this broker is not registered-and-unfenced (``serving`` False) it leads
  and follows nothing: a restarted broker must not act on a stale image. Followers are
  handed to one ``ReplicaFetcher`` per leader broker.
- ``append_records`` (Produce): per partition, acks=-1 is refused up front when the ISR
  is below ``min.insync.replicas`` (NOT_ENOUGH_REPLICAS); the batches are appended as
  leader with the leader epoch stamped in (large ones on the append thread); acks=0/1
  answer after the local append; acks=-1 waits in the delayed-produce purgatory until the
  high watermark passes the last offset (or REQUEST_TIMED_OUT after ``timeout_ms``).
- ``fetch_records``: a consumer (``replica_id`` -1) reads a partition led here up to the
  high watermark (read_uncommitted) or last stable offset (read_committed); a follower
  reads up to the log end, after the leader-epoch checks and the divergence check
  (KIP-279: when its last fetched epoch ends before its fetch offset on this leader, or
  this leader does not have that epoch, it gets ``diverging_epoch`` and no records), and
  its fetch offset moves the high watermark.
- Follower fetching (KIP-392), for consumer fetches that carry client metadata (Fetch
  v11+, ``client_rack`` not None): a partition this broker *follows* is served from the
  local log up to the high watermark the leader last sent (or the LSO under
  read_committed), after the same leader-epoch checks, whether or not a selector is
  configured (Kafka's ``FetchParams.fetchOnlyLeader``); an offset between that high
  watermark and the local log end gets no records and no error, one past the local log
  end OFFSET_OUT_OF_RANGE with the follower's high watermark (clients then go back to
  the leader, as Kafka's and librdkafka's do). Below v11 only the leader serves. With
  ``replica.selector.class`` set to the rack-aware selector, the leader answers a
  consumer in another rack with ``preferred_read_replica`` (and no records) when an
  in-sync follower on an unfenced broker of the client's rack has the fetch offset
  (``replication.replica_selector``). ``log()`` (ListOffsets, OffsetForLeaderEpoch,
  coordinators) stays leader-only.
- The high watermark: ``Partition``'s rule; each move is written to the log, wakes long
  polls (``FetchPurgatory``) and completes delayed produces.
- ISR: the leader proposes shrinks (every ``replica_lag_time_max_ms / 2``) and expansions
  (after follower fetches) to the controller through ``alter_partition`` (set by the
  broker: AlterPartition to the active controller, returning each partition's error).
  As Kafka's ``handleAlterPartitionError``: a proposal without an answer (timeout,
  NOT_CONTROLLER) is sent again; after FENCED_LEADER_EPOCH or INVALID_UPDATE_VERSION it
  stays pending until a newer assignment arrives (an earlier copy may have been applied:
  forgetting an applied expansion would commit without a replica the controller may
  elect); only a certain refusal (INELIGIBLE_REPLICA, INVALID_REQUEST, ...) drops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from common.logging import get_logger
from protocol.errors import ErrorCode
from protocol.records import InvalidRecordBatch
from replication.append_thread import AppendThread
from replication.delayed_produce import DelayedProducePurgatory
from replication.fetch_purgatory import FetchPurgatory
from replication.partition import (
    NOT_LEADER_OR_FOLLOWER,
    Assignment,
    FollowerState,
    IsrProposal,
    Partition,
    Role,
    Transition,
)
from replication.replica_selector import ReplicaView, canonical_selector, rack_aware_select
from storage.errors import DuplicateSequenceError, OffsetOutOfRangeError, StorageError
from storage.log_manager import LogManager
from storage.partition_log import AppendResult, PartitionLog

log = get_logger("strom.replication")

TopicPartition = tuple[str, int]
#: Appends at least this large run on the append thread (the page-cache copy and CRC
#: release the GIL, so the loop keeps receiving meanwhile); smaller ones run inline:
#: handing off costs a GIL round trip (measured p99 produce latency 0.6 ms inline vs
#: 4-20 ms offloaded for ~100-250 KiB batches on the loaded box), which only pays off
#: for the large requests of a throughput-bound producer.
OFFLOAD_APPEND_BYTES = 512 * 1024
CONSUMER = -1
#: AlterPartition answers after which the proposal is sent again (it may or may not have
#: been applied); and those after which it stays pending until a newer assignment ends
#: it (an earlier copy may have been applied). Any other error: certainly not applied.
ALTER_RETRY = frozenset({int(ErrorCode.request_timed_out), int(ErrorCode.not_controller),
                         int(ErrorCode.unknown_server_error)})
ALTER_WAIT_FOR_METADATA = frozenset({int(ErrorCode.fenced_leader_epoch),
                                     int(ErrorCode.invalid_update_version)})
ALTER_RETRY_BACKOFF_S = 0.2


@dataclass(frozen=True, slots=True)
class ReplicationConfig:
    replica_lag_time_max_ms: int = 30_000
    replica_fetch_max_bytes: int = 1_048_576
    replica_fetch_response_max_bytes: int = 10_485_760
    replica_fetch_wait_max_ms: int = 500
    replica_fetch_min_bytes: int = 1
    replica_fetch_backoff_ms: int = 1000
    default_min_insync_replicas: int = 1
    #: ``replica.selector.class`` (``replica_selector.canonical_selector``): None, the
    #: leader always serves; the rack-aware selector names preferred read replicas
    replica_selector_class: str | None = None


@dataclass(frozen=True, slots=True)
class ProduceResult:
    """One partition's Produce answer (Kafka's PartitionProduceResponse fields)."""

    error_code: int
    base_offset: int = -1
    log_append_time: int = -1
    log_start_offset: int = -1
    #: the last offset appended (-1: nothing appended, e.g. a duplicate or an error)
    last_offset: int = -1
    error_message: str | None = None
    #: KIP-467: (index of the record in its batch, message) for each offending record
    record_errors: tuple[tuple[int, str | None], ...] = ()


@dataclass(slots=True)
class FetchPartition:
    """One partition of a Fetch request."""

    fetch_offset: int
    partition_max_bytes: int
    current_leader_epoch: int = -1
    last_fetched_epoch: int = -1
    #: a follower's log start offset (Fetch v5+; -1 unknown)
    log_start_offset: int = -1


@dataclass(slots=True)
class PartitionRead:
    """One partition of a Fetch answer."""

    error_code: int
    high_watermark: int = -1
    last_stable_offset: int = -1
    log_start_offset: int = -1
    records: bytes | memoryview = b""
    aborted_transactions: list[tuple[int, int]] | None = None
    #: (epoch, end offset) when the follower's log diverges (KIP-279)
    diverging_epoch: tuple[int, int] | None = None
    #: KIP-392: the broker the consumer should fetch this partition from (no records)
    preferred_read_replica: int = -1
    #: a replica fetch carrying a high watermark that replica was not told yet
    new_high_watermark: bool = False


@dataclass(slots=True)
class FetchResult:
    reads: list[tuple[TopicPartition, PartitionRead]] = field(default_factory=list)
    total_bytes: int = 0
    errors: bool = False


AlterPartitionFn = Callable[[Sequence[tuple[uuid.UUID, int, IsrProposal]]],
                            Awaitable[list[int]]]


class ReplicaManager:
    def __init__(self, log_manager: LogManager, node_id: int, purgatory: FetchPurgatory,
                 *, config: ReplicationConfig | None = None,
                 min_insync_replicas: Callable[[str], int | None] | None = None) -> None:
        self.log_manager = log_manager
        self.node_id = node_id
        self.purgatory = purgatory
        self.config = config or ReplicationConfig()
        self._min_insync = min_insync_replicas or (lambda _topic: None)
        self.delayed_produce = DelayedProducePurgatory()
        self.partitions: dict[TopicPartition, Partition] = {}
        self.assignments: Mapping[TopicPartition, Assignment] = {}
        self.topic_ids: dict[str, uuid.UUID] = {}
        self.broker_epochs: Mapping[int, int] = {}
        self.eligible: frozenset[int] = frozenset()
        #: broker id -> ``broker.rack`` (None: no rack) of every registered broker
        self.broker_racks: Mapping[int, str | None] = {}
        self.replica_selector = canonical_selector(self.config.replica_selector_class)
        self.serving = False
        #: AlterPartition to the active controller (set by the broker)
        self.alter_partition: AlterPartitionFn | None = None
        #: the fetchers by leader broker id (``replication.fetcher``; set by the broker)
        self.fetcher_factory: Callable[[int], ReplicaFetcherLike] | None = None
        self.fetchers: dict[int, ReplicaFetcherLike] = {}
        self._alter_queue: dict[TopicPartition, IsrProposal] = {}
        self._alter_wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        # one thread: appends keep their arrival order across connections
        self._append_thread = AppendThread()
        self._closed = False

    # ---- lookups (handlers, coordinators) ---------------------------------------------
    def partition(self, topic: str, index: int) -> Partition | None:
        return self.partitions.get((topic, index))

    def log(self, topic: str, index: int) -> PartitionLog | None:
        """The log of a partition this broker leads, or None."""
        part = self.partitions.get((topic, index))
        if part is None or part.role is not Role.LEADER:
            return None
        return self.log_manager.get(topic, index)

    def missing_error(self, topic: str, index: int) -> int:
        """The error for a partition ``log()`` does not return."""
        a = self.assignments.get((topic, index))
        if a is None:
            return int(ErrorCode.unknown_topic_or_partition)
        if a.leader < 0:
            return int(ErrorCode.leader_not_available)
        return int(ErrorCode.not_leader_or_follower)

    def leader_epoch(self, topic: str, index: int) -> int:
        part = self.partitions.get((topic, index))
        if part is not None and part.leader_epoch >= 0:
            return part.leader_epoch
        a = self.assignments.get((topic, index))
        return a.leader_epoch if a is not None else 0

    def min_insync_replicas(self, topic: str) -> int:
        value = self._min_insync(topic)
        return int(value) if value is not None else self.config.default_min_insync_replicas

    # ---- metadata ----------------------------------------------------------------------
    def apply_assignments(self, assignments: Mapping[TopicPartition, Assignment], *,
                          topic_ids: Mapping[str, uuid.UUID], broker_epochs: Mapping[int, int],
                          eligible: frozenset[int], serving: bool, now_ms: int,
                          broker_racks: Mapping[int, str | None] | None = None) -> None:
        """Adopt a new metadata image (every partition of it, see the module doc).
        ``broker_epochs``: every registered broker's epoch (a changed epoch is a new
        process: its follower state is forgotten); ``eligible``: the unfenced brokers
        (the only ones the ISR may gain, and the only followers named as preferred read
        replicas); ``broker_racks``: each registered broker's ``broker.rack`` (None when
        it has none; omitted: no racks known, so no follower is ever preferred)."""
        old_epochs = self.broker_epochs
        self.broker_racks = dict(broker_racks or {})
        self.assignments = assignments
        self.topic_ids = dict(topic_ids)
        self.broker_epochs = broker_epochs
        self.eligible = eligible
        self.serving = serving
        restarted = {b for b, e in broker_epochs.items() if old_epochs.get(b, e) != e}
        for key in [k for k in self.partitions if k not in assignments]:
            part = self.partitions.pop(key)
            if part.role is Role.FOLLOWER:
                self._unfollow(key, part.leader_id)
            self.delayed_produce.check(key, lambda _r: (True, NOT_LEADER_OR_FOLLOWER))
        for key, a in assignments.items():
            if self.node_id not in a.replicas and key not in self.partitions:
                continue
            plog = self.log_manager.get(*key)
            if plog is None:
                continue  # the registry creates hosted logs first; nothing to serve
            part = self.partitions.get(key)
            if part is None:
                part = self.partitions[key] = Partition(key[0], key[1], self.node_id)
            part.min_insync_replicas = self.min_insync_replicas(key[0])
            if part.role is Role.LEADER:
                for r in restarted & set(part.followers):
                    part.followers[r] = FollowerState()  # a new process: must fetch again
            seen = a if serving else Assignment(-1, a.leader_epoch, a.partition_epoch,
                                                a.replicas, a.isr)
            old_leader = part.leader_id
            change = part.apply_assignment(seen, log_end_offset=plog.log_end_offset,
                                           high_watermark=plog.high_watermark, now_ms=now_ms)
            if change is Transition.UNCHANGED:
                continue
            if change is Transition.BECAME_LEADER:
                log.info("partition_leader", topic=key[0], partition=key[1],
                         leader_epoch=part.leader_epoch, isr=list(part.isr),
                         log_end_offset=plog.log_end_offset,
                         high_watermark=plog.high_watermark)
            following = part.role is Role.FOLLOWER and part.leader_id == old_leader
            if 0 <= old_leader != self.node_id and not following:
                self._unfollow(key, old_leader)
            if part.role is Role.FOLLOWER:
                self._follow(key, part)
            self._high_watermark_moved(key, part, plog)
            self.delayed_produce.check(key, part.produce_status)
        self.purgatory.wake_all()  # long polls re-check leadership

    def _follow(self, key: TopicPartition, part: Partition) -> None:
        if self.fetcher_factory is None:
            return
        fetcher = self.fetchers.get(part.leader_id)
        if fetcher is None:
            fetcher = self.fetchers[part.leader_id] = self.fetcher_factory(part.leader_id)
        fetcher.add(key, part.leader_epoch)

    def _unfollow(self, key: TopicPartition, leader: int) -> None:
        fetcher = self.fetchers.get(leader)
        if fetcher is not None:
            fetcher.remove(key)
            if not fetcher.partitions:
                self.fetchers.pop(leader)
                fetcher.close()

    # ---- high watermark ---------------------------------------------------------------
    def _high_watermark_moved(self, key: TopicPartition, part: Partition,
                              plog: PartitionLog) -> None:
        if part.role is Role.NONE:
            return
        if plog.high_watermark != part.high_watermark:
            plog.high_watermark = part.high_watermark
            # followers waiting on this leader only care with a selector (they are then
            # answered at once with the new high watermark, see fetch_records)
            self.purgatory.notify(key, replicas=self.replica_selector is not None
                                  or part.role is not Role.LEADER)
        if part.role is Role.LEADER:
            self.delayed_produce.check(key, part.produce_status)

    # ---- produce -----------------------------------------------------------------------
    def append(self, plog: PartitionLog, records: bytes | bytearray | memoryview,
               now_ms: int, *, origin: str = "client") -> AppendResult:
        """Append as leader (acks=1 semantics; the coordinators' writes; ``origin``
        "coordinator" for transaction markers). Raises the storage errors of
        ``PartitionLog.append_as_leader``."""
        key = (plog.topic, plog.partition)
        result = plog.append_as_leader(records, leader_epoch=self.leader_epoch(*key),
                                       now_ms=now_ms, origin=origin)
        self._appended(key, plog)
        return result

    def _appended(self, key: TopicPartition, plog: PartitionLog) -> None:
        part = self.partitions.get(key)
        if part is not None and part.role is Role.LEADER:
            part.on_leader_append(plog.log_end_offset)
            if plog.high_watermark != part.high_watermark:
                plog.high_watermark = part.high_watermark
            self.delayed_produce.check(key, part.produce_status)
        self.purgatory.notify(key)  # followers read to the log end; consumers re-check

    async def _append_one(self, key: TopicPartition, records: bytes | bytearray | memoryview,
                          acks: int, now_ms: int) -> tuple[ProduceResult, int]:
        """(result, required offset for acks=-1 or -1)."""
        part = self.partitions.get(key)
        plog = self.log(*key)
        if part is None or plog is None:
            return ProduceResult(self.missing_error(*key)), -1
        code = part.check_produce(acks)
        if code:
            return ProduceResult(code), -1
        epoch = part.leader_epoch
        try:
            if len(records) < OFFLOAD_APPEND_BYTES:
                result = plog.append_as_leader(records, leader_epoch=epoch, now_ms=now_ms)
            else:
                result = await self._append_thread.submit(functools.partial(
                    plog.append_as_leader, records, leader_epoch=epoch, now_ms=now_ms))
        except DuplicateSequenceError as dup:
            # a retry of a batch already stored: answered with its offsets, and under
            # acks=-1 only once that batch is replicated (it may not be yet)
            return ProduceResult(0, dup.first_offset, dup.log_append_time,
                                 plog.log_start_offset), \
                (dup.last_offset + 1 if acks == -1 else -1)
        except StorageError as exc:
            code = exc.error_code if exc.error_code > 0 else int(ErrorCode.unknown_server_error)
            return ProduceResult(code, error_message=str(exc) or None,
                                 record_errors=tuple(getattr(exc, "record_errors", ()))), -1
        except InvalidRecordBatch as exc:
            return ProduceResult(int(ErrorCode.corrupt_message), error_message=str(exc)), -1
        except OSError as exc:  # disk full, I/O error: Kafka's KAFKA_STORAGE_ERROR
            log.error("append_failed", topic=key[0], partition=key[1], error=repr(exc))
            return ProduceResult(int(ErrorCode.kafka_storage_error),
                                 error_message=str(exc)), -1
        self._appended(key, plog)
        answer = ProduceResult(0, result.first_offset, result.log_append_time,
                               result.log_start_offset, result.last_offset)
        return answer, (result.last_offset + 1 if acks == -1 else -1)

    async def append_records(self, entries: Sequence[tuple[TopicPartition, bytes]], *,
                             acks: int, timeout_ms: int, now_ms: int | None = None
                             ) -> list[ProduceResult]:
        """Append each (partition, records) in order; with acks=-1 wait (at most
        ``timeout_ms`` for all together) until each appended partition's high watermark
        passes its batches. One result per entry, in order."""
        now = now_ms if now_ms is not None else time.time_ns() // 1_000_000
        out: list[ProduceResult] = []
        waits: list[tuple[int, TopicPartition, asyncio.Future[int]]] = []
        for i, (key, records) in enumerate(entries):
            result, required = await self._append_one(key, records, acks, now)
            out.append(result)
            if required >= 0:
                part = self.partitions[key]
                done, error = part.produce_status(required)
                if done:
                    out[i] = _with_error(result, error)
                else:
                    waits.append((i, key, self.delayed_produce.watch(key, required)))
        if waits:
            futures = [f for _, _, f in waits]
            await asyncio.wait(futures, timeout=max(timeout_ms, 0) / 1000)
            for i, _key, fut in waits:
                error = fut.result() if fut.done() else int(ErrorCode.request_timed_out)
                if not fut.done():
                    fut.cancel()
                out[i] = _with_error(out[i], error)
        return out

    async def wait_replicated(self, key: TopicPartition, offset: int, timeout_s: float) -> int:
        """Wait until the high watermark of a partition led here reaches ``offset``: NONE,
        or why not (``Partition.produce_status``; REQUEST_TIMED_OUT after ``timeout_s``)."""
        part = self.partitions.get(key)
        if part is None:
            return self.missing_error(*key)
        done, error = part.produce_status(offset)
        if done:
            return error
        fut = self.delayed_produce.watch(key, offset)
        try:
            return await asyncio.wait_for(fut, timeout_s)
        except TimeoutError:
            return int(ErrorCode.request_timed_out)

    # ---- fetch -------------------------------------------------------------------------
    def fetch_records(self, wanted: Iterable[tuple[TopicPartition, FetchPartition]], *,
                      replica_id: int, read_committed: bool, max_bytes: int,
                      now_ms: int, client_rack: str | None = None,
                      reachable: Collection[int] | None = None) -> FetchResult:
        """Read each partition once, in order (KIP-74 limits: the first partition with
        data may exceed its share by one batch so the reader always progresses).

        ``client_rack``: a consumer's client metadata (Fetch v11+: its ``rack_id``, ""
        when it has none); None for older consumers and for replicas. With it, partitions
        this broker follows are served too, and a leader may answer with a preferred read
        replica (see the module doc); ``reachable``: the brokers with an endpoint on the
        client's listener (None: all), the only ones it may be pointed to.
        ``FetchResult.errors`` is set when the answer must go out at once: an error, a
        diverging epoch, a preferred read replica, or (with a selector configured) a
        replica fetch whose high watermark that follower has not been sent yet: it bounds
        what the follower serves consumers, so it should not wait for new records or
        ``replica.fetch.wait.max.ms`` (the idea of KIP-1166, which Kafka does in the
        protocol; here the leader remembers what it sent). Callers must send the answer
        when it is set (the high watermark counts as sent)."""
        result = FetchResult()
        left = max_bytes
        min_one = True
        for key, p in wanted:
            read = self._read_one(key, p, replica_id, read_committed,
                                  min(p.partition_max_bytes, left), min_one, now_ms,
                                  client_rack, reachable)
            if read.error_code or read.diverging_epoch is not None \
                    or read.preferred_read_replica >= 0 or read.new_high_watermark:
                result.errors = True  # answer at once
            size = len(read.records)
            if size:
                min_one = False
                left -= size
                result.total_bytes += size
            result.reads.append((key, read))
        return result

    def _readable_log(self, key: TopicPartition, replica_id: int,
                      client_rack: str | None) -> PartitionLog | None:
        """The log a fetch may read: a partition led here; for a consumer fetch with
        client metadata also one followed here."""
        part = self.partitions.get(key)
        if part is None:
            return None
        if part.role is Role.LEADER or (part.role is Role.FOLLOWER and replica_id < 0
                                        and client_rack is not None):
            return self.log_manager.get(*key)
        return None

    def _read_one(self, key: TopicPartition, p: FetchPartition, replica_id: int,
                  read_committed: bool, limit: int, min_one: bool, now_ms: int,
                  client_rack: str | None = None,
                  reachable: Collection[int] | None = None) -> PartitionRead:
        part = self.partitions.get(key)
        plog = self._readable_log(key, replica_id, client_rack)
        if part is None or plog is None:
            return PartitionRead(self.missing_error(*key))
        follower = replica_id >= 0
        if follower:
            code = part.check_replica_fetch(replica_id, p.current_leader_epoch)
            if code:
                if code == NOT_LEADER_OR_FOLLOWER:
                    log.warning("replica_fetch_refused", topic=key[0], partition=key[1],
                                replica_id=replica_id, reason="not an assigned replica")
                return PartitionRead(code)
            diverging = self._divergence(plog, p)
            if diverging is not None:
                return PartitionRead(0, part.high_watermark, part.high_watermark,
                                     plog.log_start_offset, diverging_epoch=diverging)
            if p.fetch_offset > plog.log_end_offset:
                # past anything this leader wrote (a diverged follower is answered above):
                # refused before it counts as the follower's log end, which would move
                # the high watermark past records it lacks (Kafka reads first, too)
                return PartitionRead(int(ErrorCode.offset_out_of_range),
                                     high_watermark=plog.high_watermark,
                                     log_start_offset=plog.log_start_offset)
            if part.on_follower_fetch(replica_id, p.fetch_offset, now_ms,
                                      log_start_offset=p.log_start_offset):
                self._high_watermark_moved(key, part, plog)
            self._maybe_expand(key, part)
        elif p.current_leader_epoch > part.leader_epoch:
            return PartitionRead(int(ErrorCode.unknown_leader_epoch))
        elif 0 <= p.current_leader_epoch < part.leader_epoch:
            return PartitionRead(int(ErrorCode.fenced_leader_epoch))
        elif part.role is Role.LEADER:
            preferred = self.preferred_read_replica(key, client_rack, p.fetch_offset, now_ms,
                                                    reachable)
            if preferred is not None:
                hw = plog.high_watermark
                lso = plog.last_stable_offset if read_committed else hw
                return PartitionRead(0, hw, lso, plog.log_start_offset,
                                     preferred_read_replica=preferred)
        # a follower serving a consumer reads to the high watermark the leader sent it
        hw = plog.high_watermark
        news = follower and self.replica_selector is not None \
            and self._high_watermark_sent(part, replica_id, hw)
        # read_uncommitted skips the LSO computation (it may scan producer state): it is
        # reported as the high watermark, which it equals while no transaction is open
        lso = plog.last_stable_offset if read_committed else hw
        bound = plog.log_end_offset if follower else (lso if read_committed else hw)
        records: bytes | memoryview = b""
        upper = lso  # aborted transactions are listed up to the end of what is returned
        code = 0
        if limit > 0 or min_one:
            try:
                fetched = plog.read(p.fetch_offset, max(limit, 0), max_offset=bound,
                                    min_one_batch=min_one, share=follower)
                records, upper = fetched.records, fetched.next_offset
            except OffsetOutOfRangeError:
                code = int(ErrorCode.offset_out_of_range)
            except StorageError as exc:
                code = exc.error_code if exc.error_code > 0 else \
                    int(ErrorCode.unknown_server_error)
            except OSError:  # I/O error reading a segment
                code = int(ErrorCode.kafka_storage_error)
        if code:
            return PartitionRead(code, log_start_offset=plog.log_start_offset,
                                 high_watermark=hw)
        aborted = None
        if read_committed:
            aborted = plog.aborted_transactions(p.fetch_offset, upper) if records else []
        return PartitionRead(0, hw, lso, plog.log_start_offset, records, aborted,
                             new_high_watermark=news)

    @staticmethod
    def _high_watermark_sent(part: Partition, replica_id: int, hw: int) -> bool:
        """Whether ``hw`` is news to follower ``replica_id`` (then it counts as sent)."""
        state = part.followers.get(replica_id)
        if state is None or state.last_sent_high_watermark == hw:
            return False
        state.last_sent_high_watermark = hw
        return True

    def preferred_read_replica(self, key: TopicPartition, client_rack: str | None,
                               fetch_offset: int, now_ms: int,
                               reachable: Collection[int] | None = None) -> int | None:
        """KIP-392 on a leader: the follower a consumer in ``client_rack`` should fetch
        ``key`` from at ``fetch_offset``, or None (this leader serves it).

        None unless a selector is configured, this broker leads ``key`` and the client
        named a rack. Candidates: followers in the ISR, on unfenced brokers the client
        can reach (``reachable``, None: all), whose last fetch reached ``fetch_offset``
        and whose log start (when known) is at or below it; the choice is
        ``replica_selector.rack_aware_select``."""
        if self.replica_selector is None or not client_rack:
            return None
        part = self.partitions.get(key)
        plog = self.log_manager.get(*key)
        if part is None or plog is None or part.role is not Role.LEADER:
            return None
        leader = ReplicaView(self.node_id, self.broker_racks.get(self.node_id),
                             plog.log_end_offset, 0)
        candidates = [
            ReplicaView(r, self.broker_racks.get(r), s.log_end_offset,
                        max(0, now_ms - s.last_caught_up_ms))
            for r, s in part.followers.items()
            if r in part.isr and r in self.eligible and s.log_end_offset >= fetch_offset
            and s.log_start_offset <= fetch_offset
            and (reachable is None or r in reachable)]
        chosen = rack_aware_select(client_rack, leader, candidates)
        return None if chosen.broker_id == self.node_id else chosen.broker_id

    @staticmethod
    def _divergence(plog: PartitionLog, p: FetchPartition) -> tuple[int, int] | None:
        if p.last_fetched_epoch < 0:
            return None
        epoch, end = plog.end_offset_for_epoch(p.last_fetched_epoch)
        if epoch < 0:
            # this leader has no epoch at or below the follower's: nothing in common
            # above the log start
            return (-1, plog.log_start_offset) if p.fetch_offset > plog.log_start_offset \
                else None
        if epoch < p.last_fetched_epoch or end < p.fetch_offset:
            return epoch, end
        return None

    # ---- ISR changes ------------------------------------------------------------------
    def _maybe_expand(self, key: TopicPartition, part: Partition) -> None:
        proposal = part.isr_to_expand(self.eligible)
        if proposal is not None:
            self._enqueue_alter(key, proposal)

    def _enqueue_alter(self, key: TopicPartition, proposal: IsrProposal) -> None:
        log.info("isr_change_proposed", topic=key[0], partition=key[1],
                 isr=list(proposal.isr), leader_epoch=proposal.leader_epoch,
                 partition_epoch=proposal.partition_epoch)
        self._alter_queue[key] = proposal
        self._alter_wake.set()

    def check_isr_shrink(self, now_ms: int) -> None:
        for key, part in self.partitions.items():
            proposal = part.isr_to_shrink(now_ms, self.config.replica_lag_time_max_ms)
            if proposal is not None:
                self._enqueue_alter(key, proposal)

    async def _alter_loop(self) -> None:
        while not self._closed:
            await self._alter_wake.wait()
            self._alter_wake.clear()
            batch, self._alter_queue = self._alter_queue, {}
            items = [(tid, key, prop) for key, prop in batch.items()
                     if (tid := self.topic_ids.get(key[0])) is not None]
            if not items or self.alter_partition is None:
                for key, prop in batch.items():
                    self._alter_failed(key, prop)
                continue
            try:
                codes = await self.alter_partition([(tid, key[1], prop)
                                                    for tid, key, prop in items])
            except Exception as exc:  # no answer: it may have been applied; send again
                log.warning("alter_partition_failed", error=repr(exc))
                codes = [int(ErrorCode.request_timed_out)] * len(items)
            retry = False
            for (_tid, key, prop), code in zip(items, codes, strict=True):
                if code in ALTER_RETRY:
                    retry = self._alter_again(key, prop) or retry
                elif code:
                    log.info("isr_change_refused", topic=key[0], partition=key[1],
                             error=ErrorCode(code).name)
                    if code not in ALTER_WAIT_FOR_METADATA:
                        self._alter_failed(key, prop)
            if retry:
                await asyncio.sleep(ALTER_RETRY_BACKOFF_S)
                self._alter_wake.set()

    def _alter_again(self, key: TopicPartition, proposal: IsrProposal) -> bool:
        """Queue the same proposal again while it is still the pending one."""
        part = self.partitions.get(key)
        if part is None or part.pending_isr != proposal.isr \
                or part.partition_epoch != proposal.partition_epoch:
            return False
        self._alter_queue.setdefault(key, proposal)
        return True

    def _alter_failed(self, key: TopicPartition, proposal: IsrProposal) -> None:
        part = self.partitions.get(key)
        if part is not None and part.pending_isr == proposal.isr \
                and part.partition_epoch == proposal.partition_epoch:
            part.alter_failed()

    async def _shrink_loop(self) -> None:
        interval = max(self.config.replica_lag_time_max_ms / 2, 50) / 1000
        while not self._closed:
            await asyncio.sleep(interval)
            try:
                self.check_isr_shrink(time.time_ns() // 1_000_000)
            except Exception as exc:  # keep checking
                log.exception("isr_shrink_check_failed", error=repr(exc))

    def start(self) -> None:
        """Start the ISR tasks (inside the event loop)."""
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._alter_loop()), loop.create_task(self._shrink_loop())]

    # ---- follower (the fetcher) -------------------------------------------------------
    def follower_high_watermark(self, key: TopicPartition, leader_hw: int) -> None:
        part = self.partitions.get(key)
        plog = self.log_manager.get(*key)
        if part is None or plog is None or part.role is not Role.FOLLOWER:
            return
        part.on_leader_high_watermark(leader_hw, plog.log_end_offset)
        if plog.high_watermark != part.high_watermark:
            plog.high_watermark = part.high_watermark
            self.purgatory.notify(key)  # consumers long-polling this follower (KIP-392)

    async def close(self) -> None:
        self._closed = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for fetcher in list(self.fetchers.values()):
            await fetcher.stop()
        self.fetchers = {}
        self.delayed_produce.close()
        self._append_thread.close()


class ReplicaFetcherLike(Protocol):
    """What the replica manager needs of a fetcher (``replication.fetcher``)."""

    partitions: dict[TopicPartition, int]

    def add(self, key: TopicPartition, leader_epoch: int) -> None: ...

    def remove(self, key: TopicPartition) -> None: ...

    def close(self) -> None: ...

    async def stop(self) -> None: ...


def _with_error(result: ProduceResult, error: int) -> ProduceResult:
    if not error:
        return result
    return ProduceResult(error, log_start_offset=result.log_start_offset)
