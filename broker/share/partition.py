"""One share-partition's delivery state (KIP-932's ``SharePartition``). Pure.

A share group consumes a topic-partition through a *share-partition*: a window of
in-flight records ``[start_offset, end_offset)`` over the log.

- ``start_offset`` (SPSO): every record below it is done (acknowledged or archived) and
  never delivered again. ``end_offset`` (Kafka's next fetch offset): records from here
  on were never acquired; they are implicitly AVAILABLE with delivery count 0.
- Each in-flight record has a state and a delivery count:

  ========== ==== ==========================================================
  state      code meaning
  ========== ==== ==========================================================
  AVAILABLE  0    may be acquired (again)
  ACQUIRED   1    locked for one member until its deadline
  ACKNOWLEDGED 2  accepted by a member: done
  ARCHIVED   4    rejected, a gap, or its delivery count reached the limit: done
  ========== ==== ==========================================================

  (Kafka's ``RecordState`` ids; 3 is unused there too.)
- ``acquire`` locks records for one member for ``lock_duration_ms`` and adds one to their
  delivery count: first AVAILABLE in-flight records (redeliveries), then whole new
  batches from the log (batch-aligned as Kafka's batch-optimized mode: ``max_records``
  may be exceeded to finish a batch), never more than ``max_in_flight`` records in the
  window (``group.share.partition.max.record.locks``) except one batch when it is empty.
- ``acknowledge`` (member, first, last, types): every record of the range must be
  ACQUIRED by that member, else nothing changes and the answer is INVALID_RECORD_STATE.
  Types (Kafka's ``AcknowledgeType``): GAP 0 (no record at that offset: archived),
  ACCEPT 1, RELEASE 2 (available again), REJECT 3 (archived), RENEW 4 (lock extended).
- A released or timed-out record whose delivery count reached ``delivery_count_limit``
  is ARCHIVED instead of AVAILABLE (a poison record stops being redelivered).
- When the head of the window is ACKNOWLEDGED or ARCHIVED the SPSO moves past it.

Invariants (tests/unit/share): a record is ACQUIRED by at most one member; an
ACKNOWLEDGED or ARCHIVED record is never acquired again; ``start_offset <= end_offset``.
Time is ``now_ms`` passed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

AVAILABLE, ACQUIRED, ACKNOWLEDGED, ARCHIVED = 0, 1, 2, 4
STATE_NAMES = {AVAILABLE: "AVAILABLE", ACQUIRED: "ACQUIRED", ACKNOWLEDGED: "ACKNOWLEDGED",
               ARCHIVED: "ARCHIVED"}
GAP, ACCEPT, RELEASE, REJECT, RENEW = 0, 1, 2, 3, 4

#: Kafka error codes answered by this module
NONE, INVALID_REQUEST, INVALID_RECORD_STATE = 0, 42, 121


@dataclass(frozen=True, slots=True)
class AcquiredRange:
    """Consecutive offsets acquired in one call with the same delivery count."""

    first_offset: int
    last_offset: int
    delivery_count: int


@dataclass(frozen=True, slots=True)
class StateBatch:
    """Kafka's ``PersisterStateBatch``: consecutive offsets sharing state and count."""

    first_offset: int
    last_offset: int
    state: int
    delivery_count: int


@dataclass(frozen=True, slots=True)
class LogBatch:
    """A stored record batch as the handler sees it: offsets and whether it is control."""

    base_offset: int
    last_offset: int
    is_control: bool = False


class _Record:
    __slots__ = ("state", "count", "member", "deadline")

    def __init__(self, state: int = AVAILABLE, count: int = 0) -> None:
        self.state = state
        self.count = count
        self.member: str | None = None
        self.deadline = 0


class SharePartition:
    """See the module doc. ``records[i]`` is offset ``start_offset + i``."""

    def __init__(self, start_offset: int, *, lock_duration_ms: int = 30_000,
                 delivery_count_limit: int = 5, max_in_flight: int = 2000) -> None:
        self.start_offset = start_offset
        self.lock_duration_ms = lock_duration_ms
        self.delivery_count_limit = delivery_count_limit
        self.max_in_flight = max_in_flight
        self.records: list[_Record] = []
        #: bumped on every change worth persisting (acknowledgements, releases, SPSO)
        self.state_epoch = 0
        self.dirty = False

    # ------------------------------------------------------------------ views
    @property
    def end_offset(self) -> int:
        return self.start_offset + len(self.records)

    def state_of(self, offset: int) -> tuple[int, int, str | None]:
        """(state, delivery count, holder) of ``offset``; below SPSO = ARCHIVED-or-done."""
        if offset < self.start_offset:
            return ACKNOWLEDGED, 0, None
        if offset >= self.end_offset:
            return AVAILABLE, 0, None
        r = self.records[offset - self.start_offset]
        return r.state, r.count, r.member

    def acquired_by(self, member: str) -> list[int]:
        return [self.start_offset + i for i, r in enumerate(self.records)
                if r.state == ACQUIRED and r.member == member]

    def next_deadline(self) -> int | None:
        deadlines = [r.deadline for r in self.records if r.state == ACQUIRED]
        return min(deadlines) if deadlines else None

    def has_available(self) -> bool:
        return any(r.state == AVAILABLE for r in self.records)

    # ------------------------------------------------------------------ acquisition
    def acquire(self, member: str, now_ms: int, max_records: int,
                batches: Sequence[LogBatch] = (), *, strict: bool = False) -> list[AcquiredRange]:
        """Lock up to ``max_records`` records for ``member`` (see module doc). ``batches``
        are the log's batches from ``end_offset`` on, below the high watermark, in order.
        ``strict`` (ShareFetch v2's record-limit mode): never more than ``max_records``,
        the last batch is then acquired in part."""
        self.expire(now_ms)
        taken: list[tuple[int, int]] = []  # (offset, delivery count)
        deadline = now_ms + self.lock_duration_ms
        for i, r in enumerate(self.records):
            if len(taken) >= max_records:
                break
            if r.state == AVAILABLE:
                self._lock(r, member, deadline)
                taken.append((self.start_offset + i, r.count))
        for batch in batches:
            if len(taken) >= max_records:
                break
            end = self.end_offset
            if batch.last_offset < end:
                continue
            size = batch.last_offset + 1 - end
            if self.records and len(self.records) + size > self.max_in_flight:
                break
            if batch.base_offset > end:  # offsets missing from the log: nothing to deliver
                self.records.extend(_Record(ARCHIVED) for _ in range(batch.base_offset - end))
                self.dirty = True
                end = batch.base_offset
            if batch.is_control:  # transaction markers are never delivered
                self.records.extend(_Record(ARCHIVED) for _ in range(end, batch.last_offset + 1))
                self.dirty = True
                continue
            last = batch.last_offset
            if strict:
                last = min(last, end + max_records - len(taken) - 1)
            for offset in range(end, last + 1):
                r = _Record()
                self._lock(r, member, deadline)
                self.records.append(r)
                taken.append((offset, r.count))
        self._advance()
        return _ranges(taken)

    @staticmethod
    def _lock(r: _Record, member: str, deadline: int) -> None:
        r.state = ACQUIRED
        r.count += 1
        r.member = member
        r.deadline = deadline

    def _release(self, r: _Record) -> None:
        r.state = ARCHIVED if r.count >= self.delivery_count_limit else AVAILABLE
        r.member = None
        r.deadline = 0
        self.dirty = True

    def expire(self, now_ms: int) -> int:
        """Release every lock whose deadline has passed; returns how many."""
        n = 0
        for r in self.records:
            if r.state == ACQUIRED and r.deadline <= now_ms:
                self._release(r)
                n += 1
        if n:
            self._advance()
        return n

    def release_member(self, member: str) -> int:
        """Release every record ``member`` holds (its share session closed)."""
        n = 0
        for r in self.records:
            if r.state == ACQUIRED and r.member == member:
                self._release(r)
                n += 1
        if n:
            self._advance()
        return n

    # ------------------------------------------------------------------ acknowledgement
    def acknowledge(self, member: str, first: int, last: int, types: Sequence[int],
                    now_ms: int) -> int:
        """Apply one acknowledgement batch; NONE, INVALID_REQUEST or INVALID_RECORD_STATE.
        ``types`` has one entry (for the whole range) or one per offset."""
        if last < first or not types or len(types) not in (1, last - first + 1):
            return INVALID_REQUEST
        if any(t not in (GAP, ACCEPT, RELEASE, REJECT, RENEW) for t in types):
            return INVALID_REQUEST
        if first < self.start_offset or last >= self.end_offset:
            return INVALID_RECORD_STATE
        base = self.start_offset
        for offset in range(first, last + 1):
            r = self.records[offset - base]
            if r.state != ACQUIRED or r.member != member:
                return INVALID_RECORD_STATE
        for offset in range(first, last + 1):
            r = self.records[offset - base]
            kind = types[0] if len(types) == 1 else types[offset - first]
            if kind == ACCEPT:
                r.state, r.member, r.deadline = ACKNOWLEDGED, None, 0
            elif kind in (REJECT, GAP):
                r.state, r.member, r.deadline = ARCHIVED, None, 0
            elif kind == RELEASE:
                self._release(r)
            else:  # RENEW: the member keeps the record for another lock duration
                r.deadline = now_ms + self.lock_duration_ms
                continue
            self.dirty = True
        self._advance()
        return NONE

    # ------------------------------------------------------------------ SPSO
    def _advance(self) -> None:
        n = 0
        for r in self.records:
            if r.state not in (ACKNOWLEDGED, ARCHIVED):
                break
            n += 1
        if n:
            del self.records[:n]
            self.start_offset += n
            self.dirty = True

    def move_start(self, offset: int) -> None:
        """The log's start offset passed the SPSO (retention, DeleteRecords): what was
        below it is gone and is never delivered."""
        if offset <= self.start_offset:
            return
        drop = min(offset - self.start_offset, len(self.records))
        del self.records[:drop]
        self.start_offset = offset
        self.dirty = True

    def reset(self, offset: int) -> None:
        """AlterShareGroupOffsets: start afresh at ``offset`` (the group is empty)."""
        self.records = []
        self.start_offset = offset
        self.dirty = True

    # ------------------------------------------------------------------ persistence
    def state_batches(self) -> list[StateBatch]:
        """The window as runs of (state, count); ACQUIRED is written as AVAILABLE (locks do
        not survive a restart; the delivery count does), as Kafka's persister does."""
        out: list[StateBatch] = []
        for i, r in enumerate(self.records):
            state = AVAILABLE if r.state == ACQUIRED else r.state
            offset = self.start_offset + i
            if out and out[-1].state == state and out[-1].delivery_count == r.count \
                    and out[-1].last_offset == offset - 1:
                prev = out[-1]
                out[-1] = StateBatch(prev.first_offset, offset, state, r.count)
            else:
                out.append(StateBatch(offset, offset, state, r.count))
        return out

    def load(self, start_offset: int, batches: Iterable[StateBatch]) -> None:
        """Restore a persisted window (``state_batches`` of a previous incarnation)."""
        self.start_offset = start_offset
        self.records = []
        for b in sorted(batches, key=lambda b: b.first_offset):
            if b.last_offset < self.end_offset:
                continue
            while self.end_offset < b.first_offset:
                self.records.append(_Record())
            state = AVAILABLE if b.state == ACQUIRED else b.state
            for _ in range(max(b.first_offset, self.end_offset), b.last_offset + 1):
                self.records.append(_Record(state, b.delivery_count))
        self._advance()
        self.dirty = False


def _ranges(taken: list[tuple[int, int]]) -> list[AcquiredRange]:
    out: list[AcquiredRange] = []
    for offset, count in sorted(taken):
        if out and out[-1].last_offset == offset - 1 and out[-1].delivery_count == count:
            out[-1] = AcquiredRange(out[-1].first_offset, offset, count)
        else:
            out.append(AcquiredRange(offset, offset, count))
    return out
