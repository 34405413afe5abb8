"""Idempotent / transactional producer state of one partition (Kafka's ProducerStateManager).

Per producer id: the current epoch, the last five appended batches (first/last sequence,
first/last offset, timestamp) for duplicate detection, the coordinator epoch and the
first offset of an ongoing transaction. Aborted transactions are not kept here: an
ABORT marker that completes a transaction yields an :class:`AbortedTxn` for the
segment's ``.txnindex`` (storage/txn_index.py), with the LSO Kafka records there.

All inputs are batch headers (protocol/records.py): no record is decoded, because
producer id, epoch, base sequence, offsets and the control bit are header fields. The
one exception is a marker's type (COMMIT/ABORT) and coordinator epoch, read from its one
tiny control record. A marker whose coordinator epoch is below the one the producer's
entry recorded is refused (Kafka's ``checkCoordinatorEpoch``); accepted markers record
theirs.

Snapshot file ``<offset:020d>.snapshot`` (state as of that log offset)::

    line 1: "strom-producer-snapshot 1 <crc32c of the JSON bytes>"
    line 2: JSON {"offset": n, "producers": [[pid, epoch, coordinator_epoch,
            txn_first_offset, last_timestamp, [[first_seq, last_seq, first_offset,
            last_offset, timestamp], ...]], ...]}

Snapshots written before the .txnindex files also hold ``"aborted": [[pid, first,
last], ...]``; it is read and ignored except for its length (``legacy_aborted``: the log
then rebuilds its transaction indexes from the batches).
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field

from crc32c import crc32c

from protocol.records import CONTROL_ABORT, BatchHeader
from storage.errors import (
    DuplicateSequenceError,
    InvalidProducerEpochError,
    OutOfOrderSequenceError,
    TransactionCoordinatorFencedError,
)
from storage.txn_index import AbortedTxn

NUM_BATCHES_TO_RETAIN = 5
INT32_MAX = 2**31 - 1
SNAPSHOT_MAGIC = "strom-producer-snapshot"


class SnapshotError(ValueError):
    """A producer snapshot file is damaged."""


@dataclass(slots=True)
class BatchMetadata:
    first_seq: int
    last_seq: int
    first_offset: int
    last_offset: int
    timestamp: int


@dataclass(slots=True)
class ProducerEntry:
    producer_id: int
    epoch: int = -1
    batches: deque[BatchMetadata] = field(
        default_factory=lambda: deque(maxlen=NUM_BATCHES_TO_RETAIN)
    )
    coordinator_epoch: int = -1
    current_txn_first_offset: int = -1
    last_timestamp: int = -1

    @property
    def last_sequence(self) -> int:
        return self.batches[-1].last_seq if self.batches else -1

    @property
    def last_offset(self) -> int:
        return self.batches[-1].last_offset if self.batches else -1

    def copy(self) -> ProducerEntry:
        return ProducerEntry(
            self.producer_id,
            self.epoch,
            deque(self.batches, maxlen=NUM_BATCHES_TO_RETAIN),
            self.coordinator_epoch,
            self.current_txn_first_offset,
            self.last_timestamp,
        )


def _in_sequence(last_seq: int, next_seq: int) -> bool:
    return next_seq == last_seq + 1 or (next_seq == 0 and last_seq == INT32_MAX)


class ProducerStateManager:
    """State machine over appended batch headers; see the module docstring."""

    def __init__(self) -> None:
        self.producers: dict[int, ProducerEntry] = {}
        self.map_end_offset = 0  # state reflects the log below this offset
        self.legacy_aborted = 0  # aborted entries of an old-format snapshot (see module)

    # -- validation (leader) -------------------------------------------------------------

    def check(
        self, h: BatchHeader, pending: dict[int, ProducerEntry],
        coordinator_epoch: int | None = None,
    ) -> ProducerEntry:
        """Validate a leader append of ``h`` against state + ``pending`` (this request).

        ``coordinator_epoch`` is a marker's (control batches). Returns the entry to
        update. Raises DuplicateSequenceError, OutOfOrderSequenceError,
        InvalidProducerEpochError or TransactionCoordinatorFencedError.
        """
        pid = h.producer_id
        entry = pending.get(pid)
        if entry is None:
            current = self.producers.get(pid)
            entry = current.copy() if current is not None else ProducerEntry(pid)
        epoch = h.producer_epoch
        if entry.epoch >= 0 and epoch < entry.epoch:
            raise InvalidProducerEpochError(
                f"producer {pid} epoch {epoch} is older than current epoch {entry.epoch}"
            )
        if h.is_control:
            if coordinator_epoch is not None and coordinator_epoch < entry.coordinator_epoch:
                raise TransactionCoordinatorFencedError(
                    f"producer {pid}: marker of coordinator epoch {coordinator_epoch} is "
                    f"older than the current {entry.coordinator_epoch}"
                )
            return entry
        if h.base_sequence < 0:
            return entry
        if epoch == entry.epoch:
            for b in entry.batches:
                if b.first_seq == h.base_sequence and b.last_seq == h.last_sequence:
                    raise DuplicateSequenceError(b.first_offset, b.last_offset, b.timestamp)
            last = entry.last_sequence
            if last >= 0 and not _in_sequence(last, h.base_sequence):
                raise OutOfOrderSequenceError(
                    f"producer {pid} epoch {epoch}: sequence {h.base_sequence} does not follow "
                    f"{last}"
                )
        elif entry.epoch >= 0 and h.base_sequence != 0:
            raise OutOfOrderSequenceError(
                f"producer {pid}: new epoch {epoch} must start at sequence 0, "
                f"got {h.base_sequence}"
            )
        return entry

    # -- updates (leader, follower, replay) ------------------------------------------------

    def apply(
        self,
        h: BatchHeader,
        first_offset: int,
        last_offset: int,
        timestamp: int,
        entry: ProducerEntry | None = None,
        *,
        control_type: int | None = None,
        coordinator_epoch: int = -1,
        aborted: list[AbortedTxn] | None = None,
        pending: dict[int, ProducerEntry] | None = None,
    ) -> ProducerEntry:
        """Record an appended batch (offsets as stored). Returns the updated entry.

        For a marker: ``control_type`` and ``coordinator_epoch`` come from its control
        record; an ABORT that completes a transaction appends its :class:`AbortedTxn`
        to ``aborted`` when given, the LSO computed over the state plus ``pending``
        (entries of the same request not yet committed).
        """
        pid = h.producer_id
        if entry is None:
            current = self.producers.get(pid)
            entry = current.copy() if current is not None else ProducerEntry(pid)
        if h.producer_epoch != entry.epoch:
            if h.producer_epoch > entry.epoch:
                entry.batches.clear()
            entry.epoch = h.producer_epoch
        entry.last_timestamp = timestamp
        if h.is_control:
            first = entry.current_txn_first_offset
            if first >= 0 and control_type == CONTROL_ABORT and aborted is not None:
                lso = self.stable_offset_after(pid, last_offset, pending)
                aborted.append(AbortedTxn(pid, first, last_offset, lso))
            entry.current_txn_first_offset = -1
            if coordinator_epoch >= 0:
                entry.coordinator_epoch = coordinator_epoch
        else:
            if h.base_sequence >= 0:
                entry.batches.append(
                    BatchMetadata(h.base_sequence, h.last_sequence, first_offset, last_offset,
                                  timestamp)
                )
            if h.is_transactional and entry.current_txn_first_offset < 0:
                entry.current_txn_first_offset = first_offset
        return entry

    def commit(self, entries: dict[int, ProducerEntry], end_offset: int) -> None:
        self.producers.update(entries)
        self.map_end_offset = end_offset

    # -- queries ---------------------------------------------------------------------------

    def first_unstable_offset(self) -> int | None:
        """Smallest first offset of an ongoing transaction (the LSO), None if none."""
        starts = [e.current_txn_first_offset for e in self.producers.values()
                  if e.current_txn_first_offset >= 0]
        return min(starts) if starts else None

    def stable_offset_after(self, producer_id: int, marker_offset: int,
                            pending: dict[int, ProducerEntry] | None = None) -> int:
        """The LSO once ``producer_id``'s transaction ends at ``marker_offset`` (Kafka's
        ``lastStableOffset(completedTxn)``): the first offset of the oldest transaction
        still open of another producer, else ``marker_offset + 1``."""
        best = marker_offset + 1
        for pid, e in self.producers.items():
            if pending is not None and pid in pending:
                continue
            if pid != producer_id and 0 <= e.current_txn_first_offset < best:
                best = e.current_txn_first_offset
        for pid, e in (pending or {}).items():
            if pid != producer_id and 0 <= e.current_txn_first_offset < best:
                best = e.current_txn_first_offset
        return best

    def expire(self, now_ms: int, expiration_ms: int) -> int:
        """Forget producers idle longer than ``expiration_ms`` (none with an open
        transaction); returns how many were removed (producer.id.expiration.ms)."""
        stale = [pid for pid, e in self.producers.items()
                 if e.current_txn_first_offset < 0 and e.last_timestamp >= 0
                 and now_ms - e.last_timestamp > expiration_ms]
        for pid in stale:
            del self.producers[pid]
        return len(stale)

    # -- snapshots ------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        body = json.dumps(
            {
                "offset": self.map_end_offset,
                "producers": [
                    [e.producer_id, e.epoch, e.coordinator_epoch, e.current_txn_first_offset,
                     e.last_timestamp,
                     [[b.first_seq, b.last_seq, b.first_offset, b.last_offset, b.timestamp]
                      for b in e.batches]]
                    for e in self.producers.values()
                ],
            },
            separators=(",", ":"),
        ).encode()
        return f"{SNAPSHOT_MAGIC} 1 {crc32c(body)}\n".encode() + body

    @classmethod
    def from_bytes(cls, data: bytes) -> ProducerStateManager:
        try:
            head, body = data.split(b"\n", 1)
            magic, version, crc = head.decode().split(" ")
            if magic != SNAPSHOT_MAGIC or version != "1" or int(crc) != crc32c(body):
                raise SnapshotError("bad snapshot header or checksum")
            doc = json.loads(body)
            psm = cls()
            psm.map_end_offset = int(doc["offset"])
            for pid, epoch, coord, txn, ts, batches in doc["producers"]:
                e = ProducerEntry(int(pid), int(epoch), coordinator_epoch=int(coord),
                                  current_txn_first_offset=int(txn), last_timestamp=int(ts))
                for b in batches:
                    e.batches.append(BatchMetadata(*(int(x) for x in b)))
                psm.producers[e.producer_id] = e
            legacy = doc.get("aborted") or []
            if not isinstance(legacy, list):
                raise SnapshotError("snapshot's aborted list is not a list")
            psm.legacy_aborted = len(legacy)
            return psm
        except SnapshotError:
            raise
        except (ValueError, TypeError, KeyError, UnicodeDecodeError) as exc:
            raise SnapshotError(f"snapshot is damaged: {exc}") from exc
