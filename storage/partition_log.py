"""The log of one partition: an ordered list of segments plus checkpoints.

Directory ``<topic>-<partition>/`` holds::

    <base:020d>.log / .index / .timeindex   segments (see storage/segment.py)
    <base:020d>.txnindex                     aborted transactions whose ABORT marker is in
                                             that segment (storage/txn_index.py)
    <offset:020d>.snapshot                   producer state as of that offset
    partition.checkpoint                     log start offset, recovery point, high
                                             watermark, and (after a clean close only) the
                                             log end offset + active segment size
    leader-epoch-checkpoint                  Kafka's text format: "0\\n<n>\\n<epoch> <start>\\n"

Rules kept here:

* Offsets are assigned by the leader, in place in the batch headers (records stay opaque;
  one CRC check per batch, one pwritev per append; requests >= 256 KiB have their CRCs
  checked on a helper thread during the write, storage/crc_check.py). Followers keep
  offsets.
* Topic configs applied here besides the obvious ones: message.timestamp.before/
  after.max.ms (every record's CreateTime, walked only when a bound is set),
  segment.jitter.ms, max.compaction.lag.ms (caps segment.ms when compacting; the
  cleaner's trigger in storage/cleaner.py with min.cleanable.dirty.ratio), preallocate
  (storage/segment.py: disk reserved, file length unchanged), compression.type (KIP-390:
  other than "producer", client batches in another codec are rebuilt in the topic's codec
  and level before offsets are assigned, protocol/recompress.py; control batches and
  batches already in that codec stay opaque; "producer" leaves the path above untouched).
* Per-record errors (KIP-467) for null keys and timestamp bounds: storage/record_validation.py.
* Everything below ``recovery_point`` has been fsynced. After an unclean shutdown every
  segment holding offsets >= the recovery point is rescanned with CRC checks, a torn or
  corrupt tail is cut, and indexes are rebuilt. After a clean close nothing is scanned.
* Transaction indexes (Kafka's): an ABORT marker that completes a transaction adds an
  entry to the active segment's .txnindex (leader and follower appends); read_committed
  fetches take ``aborted_transactions`` from them. They are rebuilt from the batches and
  the producer state (Kafka's LogSegment.recover) for the segments recovery rescans, for
  a segment a compaction merge swapped in, from a damaged file's segment on, and for the
  whole log when an old producer snapshot still carried the aborted list. Truncation
  cuts entries at or after the new end; deleted segments take their file along; the
  cleaner writes the cleaned segment's own (storage/cleaner.py).
* fsync happens on ``flush()`` only: the owner calls it on roll (``flush_if_due`` reports
  a pending roll flush), per ``flush.messages`` inline, per ``flush.ms`` via
  ``flush_if_due``, and on close. ``flush()`` does its fsyncs outside the lock so that a
  worker thread may flush while the event-loop thread appends and reads.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import os
import shutil
import struct
import threading
from dataclasses import dataclass
from pathlib import Path

from crc32c import crc32c

from protocol.recompress import recompress_batches
from protocol.records import (
    CONTROL_BIT,
    HEADER_SIZE,
    LOG_APPEND_TIME,
    T_ATTRIBUTES,
    T_BATCH_LENGTH,
    T_LAST_OFFSET_DELTA,
    T_MAX_TIMESTAMP,
    T_PRODUCER_ID,
    T_RECORDS_COUNT,
    BatchHeader,
    InvalidRecordBatch,
    decode_batch_records,
    iter_header_tuples,
    parse_header,
)
from storage import crc_check
from storage.checkpoint import fsync_dir, write_atomic
from storage.errors import (
    CorruptRecordError,
    DuplicateSequenceError,
    InvalidRecordError,
    LogDirectoryError,
    OffsetOutOfRangeError,
    RecordTooLargeError,
    StorageError,
)
from storage.file_cache import DEFAULT_FILE_CACHE, FileCache
from storage.index import CorruptIndexError
from storage.log_config import LONG_MAX, LogConfig
from storage.partition_files import (
    CleanMark,
    PartitionCheckpoint,
    delete_snapshots,
    parse_base,
    parse_partition_dir,
    read_cleaner_checkpoint,
    read_leader_epochs,
    read_partition_checkpoint,
    snapshot_offsets,
    snapshot_path,
    write_cleaner_checkpoint,
    write_leader_epochs,
    write_partition_checkpoint,
)
from storage.producer_replay import control_marker, load_snapshot, replay
from storage.producer_state import ProducerEntry, ProducerStateManager
from storage.record_validation import check_batch_records
from storage.segment import LOG_SUFFIX, LogSegment
from storage.shared_reads import SHARED_READS
from storage.txn_index import TXN_INDEX_SUFFIX, AbortedTxn, decode_entries

SNAPSHOTS_TO_KEEP = 3
SNAPSHOT_MIN_LOG_BYTES = 1024 * 1024
_Q = struct.Struct(">q")
_I = struct.Struct(">i")
_PREFIX = struct.Struct(">qi")
READ_HINTS = 64  # remembered (next fetch offset -> segment position) pairs
UNLOCKED_READ_BYTES = 256 * 1024  # larger fetch copies run without the log's lock


class _LogChanged(Exception):
    """The log was truncated/compacted while a read copied data without the lock."""


@dataclass(slots=True)
class AppendResult:
    first_offset: int
    last_offset: int
    max_timestamp: int
    log_append_time: int
    log_start_offset: int
    batch_count: int


@dataclass(slots=True)
class FetchData:
    """Whole batches as stored (``records``), plus the log's bounds at read time.

    ``records`` is b"" when empty, else a read-only memoryview of the bytes read from
    the segment (len, slicing without copies, ``==`` with bytes, the buffer protocol;
    ``bytes(records)`` for a copy): it goes into a response by reference.
    ``next_offset`` follows the last batch returned (-1 when empty): the upper bound of
    the aborted transactions a read_committed fetch lists, as Kafka's."""

    records: bytes | memoryview
    first_offset: int
    log_start_offset: int
    log_end_offset: int
    high_watermark: int
    next_offset: int = -1


class PartitionLog:
    """A partition's segmented log; see the module docstring. Use :meth:`open`."""

    def __init__(self, directory: Path, config: LogConfig, cache: FileCache) -> None:
        self.directory = directory
        self.config = config
        self.cache = cache
        try:
            self.topic, self.partition = parse_partition_dir(directory.name)
        except ValueError:
            self.topic, self.partition = directory.name, -1
        self.segments: list[LogSegment] = []
        self._bases: list[int] = []
        self.log_start_offset = 0
        self.log_end_offset = 0
        self._high_watermark = 0
        self.recovery_point = 0
        self.leader_epochs: list[tuple[int, int]] = []  # (epoch, start offset)
        self._psm: ProducerStateManager | None = None
        self._lock = threading.RLock()
        self._clean_lock = threading.Lock()  # one compaction pass at a time
        self._read_hints: dict[int, tuple[LogSegment, int, int]] = {}
        self._generation = 0  # bumped by truncation/deletion: invalidates in-flight flushes
        self._unflushed_messages = 0
        self._last_flush_ms = 0
        self._roll_flush_pending = False
        self._closed = False
        self.recovered_bytes = 0  # bytes cut from torn tails at open (for logs/tests)
        self._checkpointed: tuple[int, int, int] | None = None
        self._dirty = True  # changed since the last clean checkpoint
        self._dir_dirty = True  # a file was created since the last directory fsync
        self._parent_dirty = False  # the partition directory was created by open()
        self._epochs_dirty = False  # leader_epochs differ from leader-epoch-checkpoint
        self._jitter_cache = (-1, 0, 0)  # (segment base, jitter bound, roll jitter)
        self._cleaner_state: tuple[int, int] | None = None  # see cleaner_checkpoint()

    # ------------------------------------------------------------------ open / recovery

    @classmethod
    def open(
        cls,
        directory: Path,
        config: LogConfig,
        *,
        now_ms: int,
        file_cache: FileCache | None = None,
    ) -> PartitionLog:
        """Open (or create) the log in ``directory``, recovering after an unclean stop.

        Raises LogDirectoryError when the directory cannot be read or repaired.
        """
        log = cls(Path(directory), config, file_cache or DEFAULT_FILE_CACHE)
        try:
            log._open(now_ms)
        except LogDirectoryError:
            raise
        except OSError as exc:
            raise LogDirectoryError(f"{directory}: cannot open log: {exc}") from exc
        return log

    def _open(self, now_ms: int) -> None:
        d = self.directory
        if not d.is_dir():
            d.mkdir(parents=True, exist_ok=True)
            self._parent_dirty = True
        logs: list[int] = []
        sizes: dict[int, int] = {}
        others: list[os.DirEntry[str]] = []
        swapped: list[int] = []
        with os.scandir(d) as it:
            entries = list(it)
        for e in entries:
            name = e.name
            if name.endswith((".tmp", ".cleaned", ".deleted")):
                os.unlink(e.path)
            elif name.endswith(".swap"):
                # a compaction committed this merged segment: complete the swap below
                final = d / name[: -len(".swap")]
                os.replace(e.path, final)
                if final.suffix == LOG_SUFFIX:
                    for suffix in (".index", ".timeindex", TXN_INDEX_SUFFIX):
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(final.with_suffix(suffix))
                    base = parse_base(final.name, LOG_SUFFIX)
                    if base is not None:
                        logs.append(base)
                        sizes[base] = final.stat().st_size
                        swapped.append(base)
            elif name.endswith(LOG_SUFFIX):
                base = parse_base(name, LOG_SUFFIX)
                if base is not None and base not in sizes:
                    logs.append(base)
                    sizes[base] = e.stat().st_size
            else:
                others.append(e)
        logs = sorted(set(logs))
        ckpt = read_partition_checkpoint(d)
        self.leader_epochs = read_leader_epochs(d)
        ii = self.config.index_interval_bytes
        for base in logs:
            self.segments.append(
                LogSegment(d, base, self.cache, index_interval_bytes=ii, size=sizes[base])
            )
        for base in swapped:
            # the merged segment covers its successors up to its own end: drop them
            merged = next(x for x in self.segments if x.base_offset == base)
            end = merged.next_offset
            for seg in [x for x in self.segments if base < x.base_offset < end]:
                seg.delete()
                self.segments.remove(seg)
                logs.remove(seg.base_offset)
        live = set(logs)
        damaged_txn: set[int] = set(swapped)  # bases whose .txnindex must be rebuilt
        for e in others:  # orphan indexes
            for suffix in (".index", ".timeindex", TXN_INDEX_SUFFIX):
                if e.name.endswith(suffix):
                    b = parse_base(e.name, suffix)
                    if b is not None and b not in live:
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(e.path)
                    elif b is not None and suffix == TXN_INDEX_SUFFIX:
                        try:
                            decode_entries(Path(e.path).read_bytes(), b)
                        except CorruptIndexError:
                            damaged_txn.add(b)
        fresh = not self.segments
        if fresh:
            start = ckpt.log_start_offset if ckpt else 0
            self.segments.append(
                LogSegment.create(d, start, self.cache, index_interval_bytes=ii, now_ms=now_ms,
                                  preallocate_bytes=self._preallocate_bytes())
            )
        self._bases = [s.base_offset for s in self.segments]
        active = self.segments[-1]
        clean = ckpt.clean if ckpt else None
        txn_from = next((k for k, s in enumerate(self.segments)
                         if s.base_offset in damaged_txn), None)
        if fresh:
            self.log_end_offset = self.recovery_point = active.base_offset
        elif clean and clean.base == active.base_offset and clean.size == active.size:
            active._next_offset = clean.leo
            self.log_end_offset = self.recovery_point = clean.leo
            self._dirty = False
            if txn_from is not None:
                self._psm = self._rebuild_txn_indexes(txn_from)
        else:
            self._recover_from(ckpt.recovery_point if ckpt else 0, txn_from)
        ls = ckpt.log_start_offset if ckpt else self.segments[0].base_offset
        if ls > self.log_end_offset:
            # recovery cut below a durable DeleteRecords point: offsets never go back
            # below the log start, so restart empty there
            self._high_watermark = 0
            self.truncate_fully_and_start_at(ls)
            self._last_flush_ms = now_ms
            return
        self.log_start_offset = max(ls, self.segments[0].base_offset)
        self.recovery_point = min(self.recovery_point, self.log_end_offset)
        hw = ckpt.high_watermark if ckpt else 0
        self._high_watermark = max(self.log_start_offset, min(hw, self.log_end_offset))
        if self.leader_epochs and self.leader_epochs[-1][1] > self.log_end_offset:
            self.leader_epochs = [(e, s) for e, s in self.leader_epochs
                                  if s <= self.log_end_offset]
        active.rolling_base_ms = -2  # learned lazily from its first batch
        self._last_flush_ms = now_ms

    def _recover_from(self, recovery_point: int, txn_from: int | None = None) -> None:
        """Rescan every segment holding offsets >= recovery_point; cut a bad tail.

        Segments after a damaged one are deleted (their data lies beyond the cut). The
        .txnindex of every rescanned segment (and from segment ``txn_from`` on, if
        given) is rebuilt, which also loads the producer state.
        """
        i = max(0, bisect.bisect_right(self._bases, recovery_point) - 1)
        keep = self.segments[:i]
        broken = False
        for seg in self.segments[i:]:
            if broken:
                seg.delete()
                continue
            if keep and keep[-1].next_offset != seg.base_offset:
                # a hole: the previous segment lost its tail in the crash (segments
                # always start where the previous one ends, see roll and the cleaner)
                broken = True
                seg.delete()
                continue
            truncated = seg.recover(None)
            self.recovered_bytes += truncated
            keep.append(seg)
            broken = truncated > 0
        self.segments = []
        for k, s in enumerate(keep):
            if s.size == 0 and k != len(keep) - 1:
                s.delete()  # an empty segment in the middle holds nothing
            else:
                self.segments.append(s)
        self._bases = [s.base_offset for s in self.segments]
        active = self.segments[-1]
        self.log_end_offset = max(active.next_offset, active.base_offset)
        self.recovery_point = min(recovery_point, self.log_end_offset)
        self._rebuild_leader_epochs(i)
        first = min(i, len(self.segments) - 1)
        if txn_from is not None:
            first = min(first, txn_from)
        self._psm = self._rebuild_txn_indexes(first)
        self._delete_snapshots_above(self.log_end_offset)

    def _rebuild_leader_epochs(self, first_segment: int) -> None:
        """Re-derive epoch starts from batch headers of recovered segments (the file may
        lag: it is written at flush time)."""
        if first_segment >= len(self.segments):
            return
        start = self.segments[first_segment].base_offset
        epochs = [(e, o) for e, o in self.leader_epochs if o < start]
        for seg in self.segments[first_segment:]:
            for _, h in seg.scan(0, verify=False):
                e = h.partition_leader_epoch
                if e >= 0 and (not epochs or e > epochs[-1][0]):
                    epochs.append((e, h.base_offset))
        if epochs != self.leader_epochs:
            self.leader_epochs = epochs
            self._epochs_dirty = True

    def _write_checkpoint(self, *, clean: bool = False, sync: bool = True) -> None:
        mark = None
        if clean:
            active = self.segments[-1]
            mark = CleanMark(self.log_end_offset, active.base_offset, active.size)
        self._checkpointed = (self.log_start_offset, self.recovery_point, self._high_watermark)
        write_partition_checkpoint(
            self.directory,
            PartitionCheckpoint(self.log_start_offset, self.recovery_point,
                                self._high_watermark, mark),
            sync=sync,
        )

    def _write_leader_epochs(self, *, sync: bool = True) -> None:
        write_leader_epochs(self.directory, self.leader_epochs, sync=sync)
        self._epochs_dirty = False

    # ------------------------------------------------------------------ properties

    @property
    def high_watermark(self) -> int:
        return self._high_watermark

    @high_watermark.setter
    def high_watermark(self, value: int) -> None:
        hw = max(self.log_start_offset, min(value, self.log_end_offset))
        if hw != self._high_watermark:
            self._high_watermark = hw
            self._dirty = True

    @property
    def size_in_bytes(self) -> int:
        return sum(s.size for s in self.segments)

    @property
    def active_segment(self) -> LogSegment:
        return self.segments[-1]

    @property
    def producer_state(self) -> dict[int, ProducerEntry]:
        """producer id -> entry (``.epoch``, ``.last_sequence``, ``.last_offset``...)."""
        return self._producers().producers

    def _producers(self) -> ProducerStateManager:
        if self._psm is None:
            with self._lock:
                if self._psm is None:
                    self._psm = self._load_producer_state()
        return self._psm

    @property
    def last_stable_offset(self) -> int:
        """First offset of the oldest ongoing transaction, else the high watermark."""
        fuo = self._producers().first_unstable_offset()
        return self._high_watermark if fuo is None else min(fuo, self._high_watermark)

    def aborted_transactions(self, start: int, end: int) -> list[tuple[int, int]]:
        """(producer_id, first_offset) of the aborted transactions overlapping [start,
        end): the .txnindex entries from the segment holding ``start`` on, until one's
        last stable offset reaches ``end`` (Kafka's collectAbortedTransactions)."""
        self._producers()  # loading may migrate an old snapshot's list to the indexes
        with self._lock:
            i = max(0, bisect.bisect_right(self._bases, start) - 1)
            out: list[tuple[int, int]] = []
            for seg in self.segments[i:]:
                found, complete = seg.txn_index.collect(start, end)
                out.extend((t.producer_id, t.first_offset) for t in found)
                if complete:
                    break
            return out

    def latest_epoch(self) -> int:
        return self.leader_epochs[-1][0] if self.leader_epochs else -1

    def end_offset_for_epoch(self, epoch: int) -> tuple[int, int]:
        """(epoch, end offset) for OffsetForLeaderEpoch: the largest epoch <= ``epoch``
        and the start offset of the next epoch (or the log end); (-1, -1) if unknown."""
        with self._lock:
            best = -1
            for i, (e, _start) in enumerate(self.leader_epochs):
                if e <= epoch:
                    best = i
            if best < 0:
                return -1, -1
            e, _ = self.leader_epochs[best]
            if best + 1 < len(self.leader_epochs):
                return e, self.leader_epochs[best + 1][1]
            return e, self.log_end_offset

    # ------------------------------------------------------------------ append

    def _validate(
        self, view: memoryview, *, origin: str, now_ms: int, defer_crc: bool = False
    ) -> list[tuple[int, tuple[int, ...]]]:
        """Check every batch; returns (position, raw header tuple) pairs (see records.py).

        One CRC-32C pass per batch and a struct unpack of its header: no record is
        decoded, except on compacted topics (null keys are refused there) and with
        timestamp bounds. ``defer_crc`` leaves the CRCs to the caller (see
        storage/crc_check.py).
        """
        try:
            batches = list(iter_header_tuples(view, verify_crc=not defer_crc))
        except InvalidRecordBatch as exc:
            raise CorruptRecordError(str(exc)) from exc
        if not batches:
            raise CorruptRecordError("the produce request has no record batches")
        cfg = self.config
        max_bytes = cfg.max_message_bytes
        before, after = cfg.timestamp_before_max_ms, cfg.timestamp_after_max_ms
        # Kafka checks every record's CreateTime; that needs a walk over the records, so
        # it only happens when a bound is configured (both default to Long.MAX_VALUE)
        check_ts = (before < LONG_MAX or after < LONG_MAX) and not cfg.log_append_time
        for pos, t in batches:
            if t[T_BATCH_LENGTH] + 12 > max_bytes:
                raise RecordTooLargeError(
                    f"batch of {t[T_BATCH_LENGTH] + 12} bytes exceeds max.message.bytes "
                    f"{max_bytes}"
                )
            if origin == "replication":
                continue
            is_control = t[T_ATTRIBUTES] & CONTROL_BIT
            if is_control and origin != "coordinator":
                raise InvalidRecordError("clients may not write control batches")
            count = t[T_RECORDS_COUNT]
            if count == 0 or count != t[T_LAST_OFFSET_DELTA] + 1:
                raise InvalidRecordError(
                    f"batch has {count} records but last_offset_delta "
                    f"{t[T_LAST_OFFSET_DELTA]}"
                )
            keys = cfg.compact and not is_control
            if check_ts or keys:  # per-record errors (KIP-467): storage/record_validation.py
                check_batch_records(view, pos, now_ms=now_ms, require_keys=keys,
                                    ts_bounds=(before, after) if check_ts else None)
        return batches

    def append_as_leader(
        self,
        records: bytes | bytearray | memoryview,
        *,
        leader_epoch: int,
        now_ms: int,
        origin: str = "client",
    ) -> AppendResult:
        """Validate, assign offsets, stamp the epoch (and LogAppendTime), and append.

        ``origin`` is "client" (control batches rejected) or "coordinator" (transaction
        markers). All batches are appended or none. Raises the storage errors of
        storage/errors.py; DuplicateSequenceError means nothing was appended. The
        caller's buffer is not modified: stamped headers go out through pwritev.
        """
        view = memoryview(records)
        cfg = self.config
        checked = None  # batches validated (and rebuilt) before the lock
        if origin == "client" and cfg.target_codec is not None:
            # compression.type (KIP-390): validate and rebuild before taking the lock, so
            # reads are not held up for the milliseconds per MiB that recompression costs
            view, checked = _recompress(
                view, self._validate(view, origin=origin, now_ms=now_ms), cfg)
        # big requests: the CRCs are checked on a helper thread while the bytes are
        # written (storage/crc_check.py); not where records get decoded before the check
        defer = (view.nbytes >= crc_check.PARALLEL_CRC_BYTES and not cfg.compact
                 and cfg.timestamp_before_max_ms == LONG_MAX
                 and cfg.timestamp_after_max_ms == LONG_MAX and checked is None)
        with self._lock:
            self._check_open()
            batches = checked if checked is not None else self._validate(
                view, origin=origin, now_ms=now_ms, defer_crc=defer)
            check = crc_check.CRC_CHECKER.submit(view, batches) if defer else None
            try:
                if self.segments[-1]._index is None:
                    self._load_active_segment()
                log_append = self.config.log_append_time
                psm = None
                pending: dict[int, ProducerEntry] = {}
                next_offset = self.log_end_offset
                first_offset = next_offset
                max_ts = -1
                count = 0
                rel = 0
                iov: list[bytes | bytearray | memoryview] = []
                index_info: list[tuple[int, int, int, int]] = []
                aborted: list[AbortedTxn] = []
                for pos, t in batches:
                    first = next_offset
                    last = first + t[T_LAST_OFFSET_DELTA]
                    ts = now_ms if log_append else t[T_MAX_TIMESTAMP]
                    if t[T_PRODUCER_ID] >= 0:
                        h = BatchHeader(*t)
                        if psm is None:
                            psm = self._producers()
                        ctype, cepoch = control_marker(view, pos) if h.is_control \
                            else (None, -1)
                        try:
                            entry = psm.check(h, pending, cepoch if h.is_control else None)
                        except DuplicateSequenceError as dup:
                            if not log_append:  # Kafka reports -1 for CreateTime topics
                                dup.log_append_time = -1
                            raise
                        pending[h.producer_id] = psm.apply(
                            h, first, last, ts, entry, control_type=ctype,
                            coordinator_epoch=cepoch, aborted=aborted, pending=pending)
                    size = t[T_BATCH_LENGTH] + 12
                    hdr = bytearray(view[pos : pos + HEADER_SIZE])
                    _Q.pack_into(hdr, 0, first)
                    _I.pack_into(hdr, 12, leader_epoch)
                    if log_append:
                        _set_log_append_time(hdr, ts, view[pos + HEADER_SIZE : pos + size])
                    iov.append(hdr)
                    if size > HEADER_SIZE:
                        iov.append(view[pos + HEADER_SIZE : pos + size])
                    index_info.append((rel, first, last, ts))
                    rel += size
                    count += t[T_RECORDS_COUNT]
                    if ts > max_ts:
                        max_ts = ts
                    next_offset = last + 1
                last_offset = next_offset - 1
                self._maybe_roll_for(rel, last_offset, now_ms)
                self._write(iov, rel, index_info, check)
                self._dirty = True
                if psm is not None:
                    psm.commit(pending, last_offset + 1)
                if leader_epoch >= 0 and leader_epoch > self.latest_epoch():
                    self.leader_epochs.append((leader_epoch, first_offset))
                    self._epochs_dirty = True  # written by the next flush (before the data)
                self.log_end_offset = next_offset
                if aborted:
                    self._index_aborted(aborted)
                self._after_append(count, now_ms)
                return AppendResult(
                    first_offset,
                    last_offset,
                    max_ts,
                    now_ms if log_append else -1,
                    self.log_start_offset,
                    len(batches),
                )
            except (StorageError, LogDirectoryError):
                # a corrupt request is CORRUPT_MESSAGE even when another check
                # (duplicate sequence, ...) would have spoken first
                error = check.result() if check is not None else None
                if error is not None:
                    raise CorruptRecordError(error) from None
                raise

    def append_as_follower(self, records: bytes | bytearray | memoryview) -> AppendResult:
        """Append batches fetched from the leader, keeping their offsets and epochs.

        Rejects a batch that overlaps the log (base offset < log end offset) or, on a
        topic without compaction, leaves a gap (compacted leaders legitimately have gaps).
        """
        view = memoryview(records)
        with self._lock:
            self._check_open()
            if self.segments[-1]._index is None:
                self._load_active_segment()
            batches = [(pos, BatchHeader(*t)) for pos, t in
                       self._validate(view, origin="replication", now_ms=0)]
            expected = self.log_end_offset
            psm = self._psm
            pending: dict[int, ProducerEntry] = {}
            index_info: list[tuple[int, int, int, int]] = []
            aborted: list[AbortedTxn] = []
            max_ts = -1
            for pos, h in batches:
                if h.base_offset < expected or (
                    h.base_offset > expected and not self.config.compact
                ):
                    raise CorruptRecordError(
                        f"follower append out of order: batch base offset {h.base_offset}, "
                        f"expected {expected}"
                    )
                if h.producer_id >= 0:
                    psm = self._producers()
                    ctype, cepoch = control_marker(view, pos) if h.is_control \
                        else (None, -1)
                    pending[h.producer_id] = psm.apply(
                        h, h.base_offset, h.last_offset, h.max_timestamp,
                        pending.get(h.producer_id), control_type=ctype,
                        coordinator_epoch=cepoch, aborted=aborted, pending=pending,
                    )
                index_info.append((pos, h.base_offset, h.last_offset, h.max_timestamp))
                max_ts = max(max_ts, h.max_timestamp)
                expected = h.next_offset
            first_offset = batches[0][1].base_offset
            last_offset = batches[-1][1].last_offset
            self._maybe_roll_for(len(view), last_offset, 0)
            self._write([view], len(view), index_info)
            self._dirty = True
            if psm is not None and pending:
                psm.commit(pending, last_offset + 1)
            for _pos, h in batches:
                if h.partition_leader_epoch > self.latest_epoch():
                    self.leader_epochs.append((h.partition_leader_epoch, h.base_offset))
                    self._epochs_dirty = True
            self.log_end_offset = last_offset + 1
            if aborted:
                self._index_aborted(aborted)
            self._after_append(sum(h.records_count for _, h in batches), None)
            return AppendResult(first_offset, last_offset, max_ts, -1, self.log_start_offset,
                                len(batches))

    def _index_aborted(self, aborted: list[AbortedTxn]) -> None:
        """Add the transactions an append's ABORT markers completed to the active
        segment's .txnindex (which holds those markers)."""
        seg = self.segments[-1]
        try:
            for t in aborted:
                if seg.txn_index.append(t):
                    self._dir_dirty = True
        except OSError as exc:
            raise LogDirectoryError(f"{seg.txn_index.path}: write failed: {exc}") from exc

    def _load_active_segment(self) -> None:
        """First write since a clean open: load (validate) the active segment's indexes.

        A damaged index makes the segment rescan its log with CRC checks; if that cut a
        corrupt tail, the log end offset taken from the clean checkpoint moves back.
        """
        active = self.segments[-1]
        active.index  # noqa: B018 - loads, validates or rebuilds
        end = max(active.next_offset, active.base_offset)
        if end < self.log_end_offset:
            self._generation += 1
            self.log_end_offset = end
            self.recovery_point = min(self.recovery_point, end)
            self._high_watermark = min(self._high_watermark, end)
            self._dirty = True

    def _write(
        self, iov: list, total: int, index_info: list[tuple[int, int, int, int]],
        check: crc_check.CrcCheck | None = None,
    ) -> None:
        seg = self.segments[-1]

        def verify() -> None:
            assert check is not None
            error = check.result()
            if error is not None:
                raise CorruptRecordError(error)

        try:
            seg.append_iov(iov, total, index_info, verify=verify if check else None)
        except OSError as exc:
            if check is not None:
                check.result()  # the helper must be done with the buffer
            raise LogDirectoryError(f"{seg.log_path}: write failed: {exc}") from exc

    def _after_append(self, count: int, now_ms: int | None) -> None:
        self._unflushed_messages += count
        if self._unflushed_messages >= self.config.flush_messages or (
            now_ms is not None and now_ms - self._last_flush_ms >= self.config.flush_ms
        ):
            self.flush(now_ms)

    def _check_open(self) -> None:
        if self._closed:
            raise LogDirectoryError(f"{self.directory}: log is closed")

    # ------------------------------------------------------------------ roll

    def _maybe_roll_for(self, size: int, last_offset: int, now_ms: int) -> None:
        seg = self.segments[-1]
        if seg.size == 0:
            return
        cfg = self.config
        if (
            seg.size + size > cfg.segment_bytes
            or last_offset - seg.base_offset > 2**31 - 1
            or len(seg.index) >= cfg.segment_index_bytes // 8
            or (now_ms > 0 and self._segment_age_exceeded(seg, now_ms))
        ):
            self.roll(now_ms)

    def _replace_empty_active(self, base: int, now_ms: int) -> None:
        self._dir_dirty = True
        seg = self.segments.pop()
        seg.delete()
        new = LogSegment.create(self.directory, base, self.cache,
                                index_interval_bytes=self.config.index_interval_bytes,
                                now_ms=now_ms, preallocate_bytes=self._preallocate_bytes())
        self.segments.append(new)
        self._bases[-1] = base

    def _preallocate_bytes(self) -> int:
        """preallocate=true reserves segment.bytes of disk for each new active segment
        (storage/segment.py preallocate: the file's length stays its data's length)."""
        return self.config.segment_bytes if self.config.preallocate else 0

    def _segment_age_exceeded(self, seg: LogSegment, now_ms: int) -> bool:
        if seg.rolling_base_ms == -2:
            first = seg.find_batch(seg.base_offset)
            seg.rolling_base_ms = (
                first[1].max_timestamp if first and first[1].max_timestamp >= 0 else now_ms
            )
        if seg.rolling_base_ms < 0:
            return False
        return now_ms - seg.rolling_base_ms >= self.config.max_segment_ms - self._roll_jitter(seg)

    def _roll_jitter(self, seg: LogSegment) -> int:
        """segment.jitter.ms: a per-segment amount in [0, min(jitter, segment.ms)) taken
        off the roll time, so partitions created together do not all roll at once (Kafka
        draws it at random per segment; here it is derived from the partition and the
        segment's base offset, so it is stable across restarts and reproducible)."""
        jitter = min(self.config.segment_jitter_ms, self.config.segment_ms)
        if jitter <= 0:
            return 0
        cached = self._jitter_cache
        if cached[0] == seg.base_offset and cached[1] == jitter:
            return cached[2]
        key = f"{self.topic}-{self.partition}@{seg.base_offset}".encode()
        value = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") % jitter
        self._jitter_cache = (seg.base_offset, jitter, value)
        return value

    def maybe_roll(self, now_ms: int) -> bool:
        """Roll the active segment if segment.ms has passed; True if rolled."""
        with self._lock:
            seg = self.segments[-1]
            if seg.size and self._segment_age_exceeded(seg, now_ms):
                self.roll(now_ms)
                return True
            return False

    def roll(self, now_ms: int) -> LogSegment:
        """Start a new active segment at the log end offset (no-op if the active is empty).

        The old segment gets its final time-index entry and is scheduled for fsync
        (``flush_if_due`` returns it as due); a producer snapshot is written.
        """
        with self._lock:
            self._check_open()
            active = self.segments[-1]
            if active.size == 0:
                return active
            base = self.log_end_offset  # segments are contiguous: recovery relies on it
            active.on_become_inactive()
            active.persist_indexes()
            active.release_preallocation()
            new = LogSegment.create(
                self.directory, base, self.cache,
                index_interval_bytes=self.config.index_interval_bytes, now_ms=now_ms,
                preallocate_bytes=self._preallocate_bytes(),
            )
            self.segments.append(new)
            self._bases.append(base)
            self._write_snapshot(sync=False)
            self._roll_flush_pending = True
            self._dirty = True
            active.unload()
            return new

    # ------------------------------------------------------------------ read

    def read(
        self,
        offset: int,
        max_bytes: int,
        *,
        max_offset: int | None = None,
        min_one_batch: bool = True,
        share: bool = False,
    ) -> FetchData:
        """Whole stored batches from the one containing ``offset``; see the module doc.

        Only batches with base offset < ``max_offset`` (default: log end) are returned;
        at most ``max_bytes`` unless ``min_one_batch`` and the first batch is larger.
        Raises OffsetOutOfRangeError outside [log_start_offset, log_end_offset].
        ``share``: the bytes may come from, and are kept in, ``storage.shared_reads``
        (followers of one leader read the same new batches at about the same time).
        """
        for attempt in range(3):
            with self._lock:
                leo = self.log_end_offset
                if offset < self.log_start_offset or offset > leo:
                    raise OffsetOutOfRangeError(
                        f"offset {offset} is outside [{self.log_start_offset}, {leo}] of "
                        f"{self.topic}-{self.partition}"
                    )
                limit = leo if max_offset is None else min(max_offset, leo)
                empty = FetchData(b"", -1, self.log_start_offset, leo, self._high_watermark)
                if offset >= limit:
                    return empty
                try:
                    return self._read(offset, max_bytes, limit, min_one_batch, empty,
                                      unlocked_copy=attempt < 2, share=share)
                except _LogChanged:
                    continue  # truncated/compacted/deleted during an unlocked copy
                except InvalidRecordBatch as exc:
                    raise CorruptRecordError(
                        f"{self.topic}-{self.partition}: stored data is corrupt: {exc}"
                    ) from exc
                except OSError as exc:
                    raise LogDirectoryError(f"{self.directory}: read failed: {exc}") from exc
        raise AssertionError("unreachable: the last attempt runs fully locked")

    def _read(
        self, offset: int, max_bytes: int, limit: int, min_one_batch: bool, empty: FetchData,
        *, unlocked_copy: bool, share: bool = False,
    ) -> FetchData:
        data: bytes | memoryview = b""
        hint = self._read_hints.get(offset)
        seg: LogSegment | None = None
        if hint is not None and hint[2] == self._generation and hint[1] < hint[0].size:
            # a consumer continuing where its last fetch ended: no index lookup, no scan
            seg, pos = hint[0], hint[1]
            want = max(min(max_bytes, seg.size - pos), HEADER_SIZE)
            data = self._copy(seg, pos, want, unlocked_copy, share)
            h = parse_header(data, 0)
        else:
            i = max(0, bisect.bisect_right(self._bases, offset) - 1)
            found = None
            while i < len(self.segments):
                seg = self.segments[i]
                found = seg.find_batch(offset)
                if found is not None:
                    break
                i += 1
            if found is None or seg is None:
                return empty
            pos, h = found
        if h.base_offset >= limit:
            return empty
        if not data:
            want = min(max_bytes, seg.size - pos)
            data = self._copy(seg, pos, want, unlocked_copy, share) \
                if want >= HEADER_SIZE else b""
        end, next_offset = _whole_batches(data, limit)
        if end == 0:
            if not min_one_batch:
                return empty
            data = seg.pread(pos, h.size_in_bytes)
            end, next_offset = len(data), h.next_offset
        # a view, not a slice: cutting a partial tail batch off a bytes object would copy
        # the whole response once more (and a bytearray filled by preadv costs a memset)
        records = memoryview(data) if end == len(data) else memoryview(data)[:end]
        if len(self._read_hints) >= READ_HINTS:
            self._read_hints.clear()
        self._read_hints[next_offset] = (seg, pos + end, self._generation)
        return FetchData(records, h.base_offset, self.log_start_offset, self.log_end_offset,
                         self._high_watermark, next_offset)

    def _copy(self, seg: LogSegment, pos: int, want: int, unlocked_copy: bool,
              share: bool) -> bytes | memoryview:
        """``want`` bytes of ``seg`` at ``pos`` (lock held): from the shared reads when
        ``share`` and another reader just read them, else a pread (without the lock when
        large, see ``_pread_unlocked``)."""
        # only bytes below the segment's size are settled (an append may be writing past it)
        share = share and pos + want <= seg.size
        key = (seg, pos, self._generation)
        if share:
            hit = SHARED_READS.get(key, want)
            if hit is not None:
                return hit
        if want >= UNLOCKED_READ_BYTES and unlocked_copy:
            data = self._pread_unlocked(seg, pos, want)
        else:
            data = seg.pread(pos, want)
        if share:
            SHARED_READS.put(key, data)  # the generation is unchanged: _LogChanged otherwise
        return data

    def _pread_unlocked(self, seg: LogSegment, pos: int, size: int) -> bytes:
        """Copy a large range without holding the lock (appends and flushes go on).

        Bytes below a segment's size never change except through truncation, compaction
        or deletion, which bump the generation: then the copy is discarded and the read
        restarts. The caller holds the lock exactly once (read()).
        """
        generation = self._generation
        self._lock.release()
        try:
            try:
                data: bytes | None = seg.pread(pos, size)
            except FileNotFoundError:
                data = None
        finally:
            self._lock.acquire()
        if data is None or generation != self._generation:
            raise _LogChanged()
        return data

    def offset_for_timestamp(self, ts: int) -> tuple[int, int] | None:
        """(offset, timestamp) of the first record with timestamp >= ``ts`` (ListOffsets).

        Found through the time index and batch headers; only the one matching batch is
        decoded to pick the exact record. None if every record is older.
        """
        with self._lock:
            for seg in self.segments:
                if seg.size == 0 or seg.max_timestamp < ts:
                    continue
                found = seg.find_timestamp(ts)
                if found is None:
                    continue
                pos, h = found
                offset, stamp = h.base_offset, h.max_timestamp
                if h.timestamp_type != LOG_APPEND_TIME:
                    try:
                        batch = seg.pread(pos, h.size_in_bytes)
                        for r in decode_batch_records(batch, 0):
                            if r.timestamp >= ts:
                                offset, stamp = r.offset, r.timestamp
                                break
                    except InvalidRecordBatch:
                        pass
                if offset < self.log_start_offset:
                    offset = self.log_start_offset
                return offset, stamp
            return None

    def max_timestamp_and_offset(self) -> tuple[int, int] | None:
        """(largest timestamp, offset of the record carrying it), None if no timestamps."""
        with self._lock:
            best: tuple[int, int] | None = None
            best_seg = None
            for seg in self.segments:
                if seg.size and seg.max_timestamp >= 0 and (
                    best is None or seg.max_timestamp > best[0]
                ):
                    best = (seg.max_timestamp, seg.offset_of_max_timestamp)
                    best_seg = seg
            if best is None or best_seg is None:
                return None
            found = best_seg.find_batch(best[1])
            if found is not None and found[1].timestamp_type != LOG_APPEND_TIME:
                pos, h = found
                try:
                    recs = decode_batch_records(best_seg.pread(pos, h.size_in_bytes), 0)
                    top = max(recs, key=lambda r: r.timestamp, default=None)
                    if top is not None and top.timestamp == best[0]:
                        best = (top.timestamp, top.offset)
                except InvalidRecordBatch:
                    pass
            return best

    # ------------------------------------------------------------------ truncation

    def truncate_to(self, offset: int) -> None:
        """Remove every batch with offsets >= ``offset`` (follower divergence repair).

        A batch straddling ``offset`` is removed whole. Below the log start offset this
        becomes :meth:`truncate_fully_and_start_at`.
        """
        with self._lock:
            self._check_open()
            if offset >= self.log_end_offset:
                return
            if offset < self.log_start_offset:
                self.truncate_fully_and_start_at(offset)
                return
            self._generation += 1
            self._dirty = True
            self.recovery_point = min(self.recovery_point, offset)
            self._write_checkpoint()
            self._truncate_cleaner_checkpoint(offset)
            while len(self.segments) > 1 and self.segments[-1].base_offset >= offset:
                self.segments.pop().delete()
                self._bases.pop()
            seg = self.segments[-1]
            if seg.base_offset >= offset:
                # the only segment starts at/after offset: restart it empty at offset
                self._replace_empty_active(offset, 0)
                new_end = offset
            else:
                new_end = seg.truncate_to(offset)
                if new_end < self.log_start_offset:
                    # the batch holding the log start went: nothing visible is left
                    self.truncate_fully_and_start_at(self.log_start_offset)
                    return
            self.log_end_offset = new_end
            self.recovery_point = min(self.recovery_point, self.log_end_offset)
            self._high_watermark = min(self._high_watermark, self.log_end_offset)
            self.leader_epochs = [(e, s) for e, s in self.leader_epochs
                                  if s < self.log_end_offset]
            self._write_leader_epochs()
            self._delete_snapshots_above(self.log_end_offset)
            self._psm = None
            self._write_checkpoint()

    def truncate_fully_and_start_at(self, offset: int) -> None:
        """Delete everything and restart the log empty at ``offset``."""
        with self._lock:
            self._check_open()
            self._generation += 1
            self._dirty = True
            self._dir_dirty = True
            for seg in self.segments:
                seg.delete()
            self.segments = [LogSegment.create(
                self.directory, offset, self.cache,
                index_interval_bytes=self.config.index_interval_bytes, now_ms=0,
                preallocate_bytes=self._preallocate_bytes())]
            self._bases = [offset]
            self.log_start_offset = self.log_end_offset = offset
            self.recovery_point = self._high_watermark = offset
            self.leader_epochs = []
            self._write_leader_epochs()
            self._delete_snapshots_above(-1)
            self._psm = ProducerStateManager()
            self._psm.map_end_offset = offset
            self._write_checkpoint()
            self._truncate_cleaner_checkpoint(offset)

    def delete_records_before(self, offset: int) -> int:
        """DeleteRecords: move the log start offset to ``offset``; return the new start.

        Raises OffsetOutOfRangeError beyond the log end. Whole segments below the new
        start are deleted at once.
        """
        with self._lock:
            self._check_open()
            if offset > self.log_end_offset or offset < 0:
                raise OffsetOutOfRangeError(
                    f"cannot delete records before {offset}: log end is {self.log_end_offset}"
                )
            if offset > self.log_start_offset:
                self._dirty = True
                self.log_start_offset = offset
                self._high_watermark = max(self._high_watermark, offset)
                self._delete_segments_below_start()
                self._write_checkpoint()
            return self.log_start_offset

    # ------------------------------------------------------------------ retention

    def _delete_segments_below_start(self) -> int:
        deleted = 0
        while len(self.segments) > 1 and self.segments[1].base_offset <= self.log_start_offset:
            self._delete_oldest()
            deleted += 1
        return deleted

    def _delete_oldest(self) -> None:
        seg = self.segments.pop(0)
        self._bases.pop(0)
        self._generation += 1
        self._dirty = True
        seg.delete()

    def enforce_retention(self, now_ms: int) -> int:
        """Delete closed segments past retention.ms / retention.bytes / the log start.

        The active segment is never deleted. Also expires idle producer ids. Returns the
        number of segments deleted.
        """
        with self._lock:
            self._check_open()
            deleted = self._delete_segments_below_start()
            cfg = self.config
            if cfg.delete:
                if cfg.retention_ms >= 0:
                    while len(self.segments) > 1:
                        seg = self.segments[0]
                        ts = seg.max_timestamp
                        if ts < 0:
                            ts = int(os.stat(seg.log_path).st_mtime * 1000)
                        if now_ms - ts <= cfg.retention_ms:
                            break
                        self._delete_oldest()
                        deleted += 1
                if cfg.retention_bytes >= 0:
                    total = self.size_in_bytes
                    while len(self.segments) > 1 and (
                        total - self.segments[0].size >= cfg.retention_bytes
                    ):
                        total -= self.segments[0].size
                        self._delete_oldest()
                        deleted += 1
            if self._psm is not None:
                self._psm.expire(now_ms, cfg.producer_id_expiration_ms)
            if deleted:
                self.log_start_offset = max(self.log_start_offset, self.segments[0].base_offset)
                self._high_watermark = max(self._high_watermark, self.log_start_offset)
                self.recovery_point = max(self.recovery_point, self.log_start_offset)
                self._delete_snapshots_below(self.log_start_offset)
                self._write_checkpoint()
            return deleted

    def cleaner_checkpoint(self) -> tuple[int, int]:
        """(first dirty offset, earliest pending tombstone delete horizon or -1).

        Offsets below the first dirty offset have been through a compaction pass
        (Kafka's cleaner-offset-checkpoint); it is clamped to the log's current bounds.
        """
        with self._lock:
            if self._cleaner_state is None:
                self._cleaner_state = read_cleaner_checkpoint(self.directory) or (
                    self.log_start_offset, -1)
            first_dirty, horizon = self._cleaner_state
            if not self.log_start_offset <= first_dirty <= self.log_end_offset:
                first_dirty = self.log_start_offset
            return first_dirty, horizon

    def set_cleaner_checkpoint(self, first_dirty: int, horizon: int) -> None:
        """Record a compaction pass's result (see :meth:`cleaner_checkpoint`). Written
        without fsync: a lost or stale file only changes when the next pass runs, never
        what it keeps."""
        with self._lock:
            self._cleaner_state = (first_dirty, horizon)
            if not self._closed:
                write_cleaner_checkpoint(self.directory, first_dirty, horizon, sync=False)

    def _truncate_cleaner_checkpoint(self, offset: int) -> None:
        """Truncation below the first dirty offset makes what follows dirty again."""
        state = self._cleaner_state or read_cleaner_checkpoint(self.directory)
        if state is not None and state[0] > offset:
            self.set_cleaner_checkpoint(offset, state[1])

    def compact(self, now_ms: int) -> int:
        """Compact closed segments (cleanup.policy=compact); returns records removed."""
        if not self.config.compact:
            return 0
        from storage.cleaner import compact_log

        return compact_log(self, now_ms)

    # ------------------------------------------------------------------ flush / close

    def flush(self, now_ms: int | None = None) -> None:
        """fsync every segment holding unflushed data and advance the recovery point.

        Only .log files are fsynced (plus the directory after a segment was created):
        index tails are written but not synced, because a stale or short index is
        detected at load and rebuilt, or merely sparser. The fsyncs run without the lock
        (safe from a worker thread while appends go on).
        """
        with self._lock:
            if self._closed:
                return
            if now_ms is not None:
                self._last_flush_ms = now_ms
            self._unflushed_messages = 0
            if self._epochs_dirty:
                self._write_leader_epochs()
            if self.recovery_point >= self.log_end_offset and not self._roll_flush_pending:
                return
            target = self.log_end_offset
            generation = self._generation
            i = max(0, bisect.bisect_right(self._bases, self.recovery_point) - 1)
            segs = self.segments[i:]
            for s in segs:
                s.persist_indexes()
            paths = [s.log_path for s in segs]
            txn_indexes = [s.txn_index for s in segs]
            sync_dir = self._roll_flush_pending or self._dir_dirty
            self._roll_flush_pending = False
            self._dir_dirty = False
        for p in paths:
            try:
                fd = os.open(p, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue  # deleted meanwhile (retention, truncation)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        for t in txn_indexes:
            t.flush()  # no file (no aborted transaction): nothing to do
        if sync_dir:
            with contextlib.suppress(FileNotFoundError):
                fsync_dir(self.directory)
                if self._parent_dirty:  # the partition directory itself is new
                    fsync_dir(self.directory.parent)
                    self._parent_dirty = False
        with self._lock:
            if generation == self._generation:
                self.recovery_point = max(self.recovery_point, min(target, self.log_end_offset))

    def flush_if_due(self, now_ms: int) -> bool:
        """Flush when a roll left data unsynced or flush.ms has elapsed; True if flushed."""
        due = self._roll_flush_pending or (
            self._unflushed_messages > 0 and now_ms - self._last_flush_ms >= self.config.flush_ms
        )
        if due:
            self.flush(now_ms)
        return due

    def checkpoint(self) -> None:
        """Write the partition checkpoint (recovery point, log start, high watermark)."""
        with self._lock:
            if not self._closed:
                self._write_checkpoint()

    def checkpoint_if_changed(self, *, sync: bool = True) -> bool:
        """Write the checkpoint only if its content changed since the last write.

        ``sync=False`` skips the fsyncs (the caller syncs the file system once for many
        partitions). Safe either way: the recovery point only ever names data that is
        already fsynced, and a lost or torn checkpoint just means a longer recovery.
        """
        with self._lock:
            state = (self.log_start_offset, self.recovery_point, self._high_watermark)
            if self._closed or state == self._checkpointed:
                return False
            self._write_checkpoint(sync=sync)
            return True

    def prepare_close(self) -> None:
        """First half of a batched clean shutdown: write index tails and the producer
        snapshot without fsync (the caller then syncs the whole file system)."""
        with self._lock:
            if self._closed or not self._dirty:
                return
            for s in self.segments:
                s.persist_indexes()
            if self._epochs_dirty:
                self._write_leader_epochs(sync=False)
            if self._wants_snapshot():
                self._write_snapshot(sync=False)

    def _wants_snapshot(self) -> bool:
        """A snapshot at close saves replaying the log's headers at the next open; skip it
        for small logs without producer state."""
        if self._psm is not None and self._psm.producers:
            return True
        return self.size_in_bytes > SNAPSHOT_MIN_LOG_BYTES

    def close(self, *, sync: bool = True) -> None:
        """Flush, persist indexes, snapshot producer state, write a clean checkpoint.

        ``sync=False`` is for :class:`LogManager` shutdown, which has already called
        :meth:`prepare_close` and synced the file system: no per-file fsync here. A log
        opened cleanly and never changed is closed without writing anything.
        """
        with self._lock:
            if self._closed:
                return
            if self._dirty:
                if sync:
                    self.flush()
                if self._epochs_dirty:
                    self._write_leader_epochs(sync=sync)
                for s in self.segments:
                    s.persist_indexes()
                if self.config.preallocate:
                    self.segments[-1].release_preallocation()
                if self._wants_snapshot():
                    self._write_snapshot(sync=sync)
                self.recovery_point = self.log_end_offset
                self._write_checkpoint(clean=True, sync=sync)
            for s in self.segments:
                s.close()
            self._closed = True

    def delete(self) -> None:
        """Remove the partition directory and everything in it."""
        with self._lock:
            for s in self.segments:
                self.cache.forget(s.log_path)
            self._closed = True
            shutil.rmtree(self.directory, ignore_errors=True)

    def update_config(self, config: LogConfig) -> None:
        with self._lock:
            self.config = config
            for s in self.segments:
                s.index_interval_bytes = config.index_interval_bytes

    # ------------------------------------------------------------------ producer snapshots

    def _write_snapshot(self, *, sync: bool) -> None:
        psm = self._producers()
        psm.map_end_offset = self.log_end_offset
        write_atomic(snapshot_path(self.directory, self.log_end_offset), psm.to_bytes(),
                     sync=sync)
        delete_snapshots(self.directory, snapshot_offsets(self.directory)[:-SNAPSHOTS_TO_KEEP])

    def _delete_snapshots_above(self, offset: int) -> None:
        delete_snapshots(self.directory,
                         [b for b in snapshot_offsets(self.directory) if b > offset])

    def _delete_snapshots_below(self, offset: int) -> None:
        delete_snapshots(self.directory,
                         [b for b in snapshot_offsets(self.directory)[:-1] if b < offset])

    def _load_producer_state(self) -> ProducerStateManager:
        """Latest valid snapshot <= log end, then replay batch headers after it.

        A snapshot of the old format with aborted transactions, in a log without any
        .txnindex file, first has every segment's index rebuilt from the log."""
        psm, start = load_snapshot(self.directory, self.log_end_offset,
                                   self.segments[0].base_offset)
        if psm.legacy_aborted and not any(s.txn_index.exists() for s in self.segments):
            self._rebuild_txn_indexes(0)
        replay(self.segments, psm, start)
        psm.map_end_offset = self.log_end_offset
        return psm

    def _rebuild_txn_indexes(self, first: int) -> ProducerStateManager:
        """Rebuild the .txnindex of ``segments[first:]`` from their batches (Kafka's
        LogSegment.recover): the producer state as of that segment's base offset, then
        every batch in order, each ABORT that completes a transaction adding its entry
        to its segment. Returns the producer state at the log end."""
        psm, start = load_snapshot(self.directory, self.segments[first].base_offset,
                                   self.segments[0].base_offset)
        for seg in self.segments[first:]:
            seg.txn_index.reset()
        self._dir_dirty = True
        replay(self.segments, psm, start, index_from=first)
        psm.map_end_offset = self.log_end_offset
        return psm

    def __repr__(self) -> str:
        return (f"PartitionLog({self.directory.name}, start={self.log_start_offset}, "
                f"end={self.log_end_offset}, segments={len(self.segments)})")


# ---------------------------------------------------------------------- helpers


def _whole_batches(data: bytes, limit: int) -> tuple[int, int]:
    """(length, next offset) of the prefix of ``data`` made of whole batches with base
    offset < limit (reads 16 header bytes per batch, nothing else)."""
    off = 0
    n = len(data)
    next_offset = -1
    unpack = _PREFIX.unpack_from
    while off + HEADER_SIZE <= n:
        base, length = unpack(data, off)
        if base >= limit:
            break
        size = length + 12
        if size < HEADER_SIZE or off + size > n:
            break
        (delta,) = _I.unpack_from(data, off + 23)
        next_offset = base + delta + 1
        off += size
    return off, next_offset


def _recompress(
    view: memoryview, batches: list[tuple[int, tuple[int, ...]]], cfg: LogConfig
) -> tuple[memoryview, list[tuple[int, tuple[int, ...]]]]:
    """compression.type (KIP-390): the (CRC-checked) client batches not stored in the
    topic's codec rebuilt in it (protocol/recompress.py), control batches and batches
    already in that codec kept as sent; the inputs themselves when nothing changes.
    Rebuilt batches are held to max.message.bytes again, as Kafka does."""
    assert cfg.target_codec is not None
    try:
        rebuilt = recompress_batches(view, batches, cfg.target_codec, cfg.target_level,
                                     verify=False)
    except InvalidRecordBatch as exc:
        raise CorruptRecordError(str(exc)) from exc
    if rebuilt is None:
        return view, batches
    new_view = memoryview(rebuilt)
    new_batches = list(iter_header_tuples(new_view, verify_crc=False))
    for _pos, t in new_batches:
        if t[T_BATCH_LENGTH] + 12 > cfg.max_message_bytes:
            raise RecordTooLargeError(
                f"batch of {t[T_BATCH_LENGTH] + 12} bytes after recompression to "
                f"{cfg.compression_type} exceeds max.message.bytes {cfg.max_message_bytes}"
            )
    return new_view, new_batches


def _set_log_append_time(hdr: bytearray, ts: int, body: memoryview) -> None:
    attributes = int.from_bytes(hdr[21:23], "big", signed=True) | 0x08
    hdr[21:23] = attributes.to_bytes(2, "big", signed=True)
    hdr[35:43] = ts.to_bytes(8, "big", signed=True)
    crc = crc32c(body, crc32c(memoryview(hdr)[21:HEADER_SIZE]))
    hdr[17:21] = crc.to_bytes(4, "big")
