"""Log compaction for ``cleanup.policy=compact`` (Kafka's log cleaner, one pass).

Rules:

* Only closed segments are cleaned, and only a prefix of them: a segment is cleanable if
  its newest record is older than ``min.compaction.lag.ms`` and it ends below the first
  offset of any ongoing transaction. The active segment is never touched.
* The offset map (key -> offset of its latest record) is built over the cleanable
  segments from committed and non-transactional data records. A record survives iff it
  is the latest for its key. Offsets never change: batches keep their base offset and
  ``last_offset_delta`` (so gaps appear, as in Kafka).
* Tombstones (null value) that are the latest for their key are kept for
  ``delete.retention.ms`` after the cleaner first sees them (KIP-534): that pass
  rewrites the batch with a delete horizon (attribute bit 6, base timestamp = now +
  delete.retention.ms); a later pass past the horizon removes them.
* Transactions: records of aborted transactions are removed; records whose transaction
  outcome is not visible in the log are kept untouched. A control batch (marker) stays
  while any batch of its transaction is left in the cleaned log (as Kafka's
  CleanedTransactionMetadata, which waits one pass longer: it keeps the marker in the
  pass that removes the last batch); once none is, it is treated as a tombstone: the pass
  stamps it with a delete horizon (now + delete.retention.ms) and a pass past the
  horizon removes it, so a consumer that read the transaction's records before they were
  cleaned still gets its marker. A marker is kept regardless when it is its producer's
  last batch in the log (it carries the producer's latest epoch, needed for fencing) or
  its segment's final batch. The cleaned segment's
  ``.txnindex`` keeps the entries of its source segments whose ABORT marker it holds and
  of which this pass still read a data batch (Kafka's CleanedTransactionMetadata: once
  an earlier pass removed every batch of an aborted transaction, its entry goes). A
  batch of an idempotent
  producer that loses all its records is kept as an empty batch if it is the producer's
  last batch in the log (its sequence numbers must survive for duplicate detection),
  and each segment keeps its final batch (empty if need be) so that a segment still ends
  where the next one starts; crash recovery relies on that contiguity.
* Batches with nothing removed are copied byte for byte; rewritten batches keep their
  codec, producer fields, epochs, timestamp type and max timestamp.
* When a pass runs (Kafka's LogCleanerManager): offsets below the first dirty offset
  (``cleaner-offset-checkpoint``) were cleaned by an earlier pass. The dirty ratio is
  dirty bytes / (clean + dirty bytes) over the closed, cleanable segments; a pass runs
  when it exceeds ``min.cleanable.dirty.ratio``, or when some dirty segment's first
  batch is older than ``max.compaction.lag.ms`` (and there are dirty bytes), or when a
  tombstone's delete horizon stamped by an earlier pass has come (so it can go). A pass
  cleans every cleanable segment (the offset map covers all of them) and moves the
  first dirty offset to the end of what it cleaned.
* Crash safety: the cleaned copy is written to ``<segment>.log.cleaned`` and fsynced, the
  segment's indexes are removed, then ``os.replace`` swaps the log atomically and the
  indexes are rebuilt. A crash at any point leaves the old or the new segment (stray
  ``.cleaned`` files are deleted at open; missing indexes are rebuilt). The .txnindex is
  replaced after the log (until then the old one, a superset, stays right); for a merge,
  a crash while the ``.swap`` file exists makes the open rebuild it from the log.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING

from protocol.records import (
    CONTROL_ABORT,
    CONTROL_COMMIT,
    BatchHeader,
    InvalidRecordBatch,
    Record,
    build_batch,
    control_batch_type,
    decode_batch_records,
)
from storage.checkpoint import fsync_dir
from storage.errors import LogDirectoryError
from storage.log_config import LONG_MAX
from storage.txn_index import AbortedTxn

if TYPE_CHECKING:
    from storage.partition_log import PartitionLog
    from storage.segment import LogSegment

_COMMITTED, _ABORTED, _UNKNOWN = 0, 1, 2


def _cleanable(log: PartitionLog, now_ms: int) -> list[LogSegment]:
    lag = log.config.min_compaction_lag_ms
    fuo = log._producers().first_unstable_offset()
    out = []
    for seg in log.segments[:-1]:
        if seg.size == 0:
            continue
        if lag > 0 and seg.max_timestamp > now_ms - lag:
            break
        if fuo is not None and seg.next_offset > fuo:
            break
        out.append(seg)
    return out


def _first_batch_timestamp(seg: LogSegment) -> int:
    for _pos, h in seg.scan(0, verify=False):
        return h.max_timestamp
    return -1


def should_clean(log: PartitionLog, segments: list[LogSegment], now_ms: int) -> bool:
    """Kafka's choice of a log to clean (see the module docstring); ``segments`` are the
    cleanable ones, oldest first. The caller holds the log's lock."""
    cfg = log.config
    first_dirty, horizon = log.cleaner_checkpoint()
    if 0 <= horizon <= now_ms:
        return True
    end = segments[-1].next_offset
    clean_bytes = sum(s.size for s in log.segments if s.next_offset <= first_dirty)
    dirty = [s for s in segments if s.next_offset > first_dirty and first_dirty < end]
    dirty_bytes = sum(s.size for s in dirty)
    if dirty_bytes == 0:
        return False
    if dirty_bytes / (clean_bytes + dirty_bytes) > cfg.min_cleanable_dirty_ratio:
        return True
    if cfg.max_compaction_lag_ms < LONG_MAX:
        clean_until = now_ms - max(cfg.max_compaction_lag_ms, 0)
        stamps = [t for t in (_first_batch_timestamp(s) for s in dirty) if t > 0]
        if stamps and min(stamps) < clean_until:
            return True
    return False


def _transaction_outcomes(
    segments: list[tuple[LogSegment, int]],
) -> tuple[dict[int, int], dict[int, int]]:
    """Outcome per transactional batch base offset, and last batch offset per producer.

    Scans batch headers of the whole log; only control batches are decoded.
    """
    outcome: dict[int, int] = {}
    open_txn: dict[int, list[int]] = {}
    last_of_producer: dict[int, int] = {}
    for seg, size in segments:
        for pos, h in seg.scan(0, verify=False, end=size):
            if h.producer_id < 0:
                continue
            last_of_producer[h.producer_id] = h.base_offset
            if not h.is_transactional:
                continue
            if h.is_control:
                try:
                    kind = control_batch_type(seg.pread(pos, h.size_in_bytes), 0)
                except InvalidRecordBatch:
                    kind = CONTROL_ABORT
                result = _ABORTED if kind == CONTROL_ABORT else _COMMITTED
                for base in open_txn.pop(h.producer_id, []):
                    outcome[base] = result
            else:
                open_txn.setdefault(h.producer_id, []).append(h.base_offset)
    for bases in open_txn.values():
        for base in bases:
            outcome[base] = _UNKNOWN
    return outcome, last_of_producer


def _group_by_size(
    segments: list[LogSegment], sizes: dict[int, int], max_bytes: int
) -> list[list[LogSegment]]:
    """Consecutive segments whose original sizes add up to at most ``max_bytes`` (and
    whose offsets fit the index's 32-bit relative offsets) are cleaned into one."""
    groups: list[list[LogSegment]] = []
    for seg in segments:
        if groups:
            g = groups[-1]
            total = sum(sizes[id(x)] for x in g) + sizes[id(seg)]
            adjacent = log_adjacent(g[-1], seg)
            if adjacent and total <= max_bytes and seg.next_offset - g[0].base_offset < 2**31:
                g.append(seg)
                continue
        groups.append([seg])
    return groups


def log_adjacent(a: LogSegment, b: LogSegment) -> bool:
    return a.next_offset == b.base_offset


def compact_log(log: PartitionLog, now_ms: int) -> int:
    """Compact ``log``; returns the records removed.

    Holds the log's lock only to pick the segments and to swap the cleaned files in:
    reading, decoding and writing the cleaned copies run while appends and fetches go
    on. If the log changed underneath (truncation, retention), the pass is abandoned.
    Small consecutive segments are merged into one (grouped by their sizes before
    cleaning, as Kafka does), so compacted topics do not accumulate tiny segments.
    """
    with log._clean_lock:
        with log._lock:
            log._check_open()
            segments = _cleanable(log, now_ms)
            if not segments or not should_clean(log, segments, now_ms):
                return 0
            end = segments[-1].next_offset
            everything = [(s, s.size) for s in log.segments]
            generation = log._generation
            groups = _group_by_size(segments, {id(s): n for s, n in everything},
                                    log.config.segment_bytes)
        sizes = {id(s): n for s, n in everything}
        cleaned: list[tuple[list[LogSegment], str, list[AbortedTxn]]] = []
        try:
            source = {(t.producer_id, t.last_offset): t
                      for seg in segments for t in seg.txn_index.entries}
            observed: set[int] = set()  # producers with a batch of an aborted txn read
            traversed: set[int] = set()  # producers with a txn batch kept since a marker
            reindexed: list[tuple[LogSegment, list[AbortedTxn]]] = []
            outcome, last_of_producer = _transaction_outcomes(everything)
            latest: dict[bytes, int] = {}
            for seg in segments:
                for pos, h in seg.scan(0, verify=True, end=sizes[id(seg)]):
                    if h.is_control or outcome.get(h.base_offset, _COMMITTED) != _COMMITTED:
                        continue
                    for r in decode_batch_records(seg.pread(pos, h.size_in_bytes), 0):
                        if r.key is not None:
                            latest[r.key] = r.offset
            horizon = (now_ms, now_ms + log.config.delete_retention_ms)
            removed = 0
            pending = -1  # earliest delete horizon of a tombstone left in the log
            for group in groups:
                n, path, group_pending, txns = _clean_group(
                    group, sizes, latest, outcome, last_of_producer, horizon,
                    source, observed, traversed)
                pending = _earliest(pending, group_pending)
                if path:
                    removed += n
                    cleaned.append((group, path, txns))
                elif txns != group[0].txn_index.entries:
                    reindexed.append((group[0], txns))  # only entries to drop
        except InvalidRecordBatch as exc:
            _discard(cleaned)
            raise LogDirectoryError(
                f"{log.directory}: cannot compact damaged segment: {exc}") from exc
        except FileNotFoundError:
            _discard(cleaned)
            return 0  # a segment went away (retention/truncation): try again next pass
        with log._lock:
            if log._closed or log._generation != generation or any(
                seg not in log.segments or seg.size != sizes[id(seg)]
                for group, _, _ in cleaned for seg in group
            ) or any(seg not in log.segments for seg, _ in reindexed):
                _discard(cleaned)
                return 0
            for group, path, txns in cleaned:
                _swap(log, group, path, txns)
            for seg, txns in reindexed:
                seg.txn_index.replace(txns, sync=True)
            _advance_recovery_point(log, {id(group[0]) for group, _, _ in cleaned})
            log.set_cleaner_checkpoint(end, pending)
        return removed


def _advance_recovery_point(log: PartitionLog, swapped: set[int]) -> None:
    """A swapped-in segment was fsynced (file and directory) before it replaced the old
    ones: if it continues the durable prefix of the log, the recovery point moves past
    it (and is checkpointed). Otherwise recovery after a crash would treat the compacted
    segment, whose first batch may lie past its base offset, as unflushed data."""
    rp = log.recovery_point
    for seg in log.segments[:-1]:
        if seg.next_offset <= rp:
            continue
        if id(seg) not in swapped:
            break
        rp = seg.next_offset
    if rp > log.recovery_point:
        log.recovery_point = min(rp, log.log_end_offset)
        log._dirty = True
        log._write_checkpoint()  # recovery after a crash starts past the compacted part


def _discard(cleaned: list[tuple[list[LogSegment], str, list[AbortedTxn]]]) -> None:
    for _, path, _ in cleaned:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _clean_group(
    group: list[LogSegment],
    sizes: dict[int, int],
    latest: dict[bytes, int],
    outcome: dict[int, int],
    last_of_producer: dict[int, int],
    horizon: tuple[int, int],
    source: dict[tuple[int, int], AbortedTxn],
    observed: set[int],
    traversed: set[int],
) -> tuple[int, str, int, list[AbortedTxn]]:
    """Write the cleaned copy of ``group`` to ``<first log>.cleaned`` (fsynced).

    Returns (records removed, path, earliest delete horizon of a tombstone kept or -1,
    the cleaned segment's aborted transactions); path is "" when there is nothing to
    gain (one segment and no record removed). The group's final batch is always kept
    (empty if need be) so the result still ends where the next segment starts.
    ``source`` holds the groups' .txnindex entries by (producer id, marker offset);
    ``observed`` (carried from group to group) the producers of which a batch of an
    aborted transaction was read since its start; ``traversed`` (likewise) those of which
    a batch of the current transaction, of either outcome, is kept in the cleaned output
    since their last marker. Removed markers count as removed records.
    """
    out = bytearray()
    txns: list[AbortedTxn] = []
    removed = 0
    pending = -1
    stamped = 0  # batches given a delete horizon in this pass
    last_seg = group[-1]
    final = -1
    for _pos, h in last_seg.scan(0, verify=False, end=sizes[id(last_seg)]):
        final = h.base_offset
    now, new_horizon = horizon
    for seg in group:
        for pos, h in seg.scan(0, verify=True, end=sizes[id(seg)]):
            raw = seg.pread(pos, h.size_in_bytes)
            if h.is_control:
                pid = h.producer_id
                if pid >= 0 and _marker_type(raw) == CONTROL_ABORT:
                    entry = source.get((pid, h.base_offset))
                    if pid in observed and entry is not None:
                        txns.append(entry)
                observed.discard(pid)
                in_use = pid < 0 or pid in traversed
                traversed.discard(pid)
                if in_use or last_of_producer.get(pid) == h.base_offset \
                        or h.base_offset == final:
                    out += raw
                elif not h.has_delete_horizon:  # first pass to find it unused
                    stamped += 1
                    pending = _earliest(pending, new_horizon)
                    out += _rebuild(h, decode_batch_records(raw, 0), new_horizon)
                elif now < h.base_timestamp:  # stamped earlier, horizon not reached
                    pending = _earliest(pending, h.base_timestamp)
                    out += raw
                else:
                    removed += 1
                continue
            state = (outcome.get(h.base_offset, _COMMITTED) if h.is_transactional
                     else _COMMITTED)
            if state == _ABORTED:
                observed.add(h.producer_id)
            if state == _UNKNOWN:
                out += raw
                continue
            records = decode_batch_records(raw, 0)
            expired = h.has_delete_horizon and now >= h.base_timestamp
            if state == _ABORTED:
                kept: list[Record] = []
            else:
                kept = [
                    r for r in records
                    if r.key is not None and latest.get(r.key) == r.offset
                    and not (r.value is None and expired)
                ]
            tombstones = any(r.value is None for r in kept)
            stamp = not h.has_delete_horizon and tombstones
            if tombstones:
                due = new_horizon if stamp else h.base_timestamp
                pending = _earliest(pending, due)
            if len(kept) == len(records) and not stamp:
                out += raw
                if h.is_transactional:
                    traversed.add(h.producer_id)
                continue
            removed += len(records) - len(kept)
            if not kept and not (
                h.producer_id >= 0 and last_of_producer.get(h.producer_id) == h.base_offset
            ) and h.base_offset != final:
                continue
            if h.is_transactional:
                traversed.add(h.producer_id)
            if stamp:
                stamped += 1
            out += _rebuild(h, kept, new_horizon if stamp else None)
    if removed == 0 and stamped == 0 and len(group) == 1:
        return 0, "", pending, txns
    cleaned = group[0].log_path + ".cleaned"
    fd = os.open(cleaned, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        view = memoryview(out)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    return removed, cleaned, pending, txns


def _earliest(a: int, b: int) -> int:
    """The earlier of two delete horizons, -1 standing for none."""
    return b if a < 0 else a if b < 0 else min(a, b)


def _marker_type(raw: bytes) -> int:
    try:
        return control_batch_type(raw, 0)
    except InvalidRecordBatch:
        return CONTROL_COMMIT  # no decodable marker: no entry to carry


def _rebuild(h: BatchHeader, kept: list[Record], horizon: int | None) -> bytes:
    """Re-encode a batch with only ``kept``; same offsets span, codec and producer
    fields. ``horizon`` stamps a delete horizon; an existing one is carried over."""
    if horizon is None and h.has_delete_horizon:
        horizon = h.base_timestamp
    return build_batch(
        kept,
        base_offset=h.base_offset,
        compression=h.compression,
        producer_id=h.producer_id,
        producer_epoch=h.producer_epoch,
        base_sequence=h.base_sequence,
        is_transactional=h.is_transactional,
        is_control=h.is_control,
        partition_leader_epoch=h.partition_leader_epoch,
        timestamp_type=h.timestamp_type,
        last_offset_delta=h.last_offset_delta,
        base_timestamp=kept[0].timestamp if kept else h.base_timestamp,
        max_timestamp=h.max_timestamp,
        delete_horizon_ms=horizon,
    )


def _swap(log: PartitionLog, group: list[LogSegment], cleaned: str,
          txns: list[AbortedTxn]) -> None:
    """Replace the group's segments by the cleaned file; rebuild the indexes; the first
    segment's .txnindex becomes ``txns``.

    The caller holds the log's lock. Crash-safe order for a merge of several segments:
    rename ``.cleaned`` to ``<first>.log.swap`` (the commit point), write the merged
    .txnindex, delete the merged segments, then rename the swap file over the first log.
    At open, a leftover ``.swap`` completes the same steps and rebuilds the .txnindex
    (see PartitionLog._open).
    """
    first = group[0]
    for p in (first.index_path, first.timeindex_path):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(p)
    if len(group) > 1:
        swap = first.log_path + ".swap"
        os.replace(cleaned, swap)
        fsync_dir(log.directory)
        first.txn_index.replace(txns, sync=True)
        for seg in group[1:]:
            i = log.segments.index(seg)
            del log.segments[i]
            del log._bases[i]
            seg.delete()
        cleaned = swap
    log.cache.forget(first.log_path)
    os.replace(cleaned, first.log_path)
    if len(group) == 1:
        first.txn_index.replace(txns, sync=True)
    fsync_dir(log.directory)
    log._generation += 1
    log._dirty = True
    first.size = os.stat(first.log_path).st_size
    first._next_offset = None
    first.recover(None)
    first.on_become_inactive()
    first.persist_indexes()
