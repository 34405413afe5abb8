"""Producer state from snapshots and batch headers, and the transaction indexes rebuilt
on the way (Kafka's ProducerStateManager loading and LogSegment.recover's txn part).

``load_snapshot`` picks the latest readable ``<offset>.snapshot`` at or below an offset
(storage/producer_state.py has the format); ``replay`` applies the headers of the
batches after it, in offset order, reading only the one control record of each marker
(``control_marker``). Segments from ``index_from`` on get their ``.txnindex`` entries
(storage/txn_index.py) appended as ABORT markers complete transactions; the caller
resets those indexes first. Used by storage/partition_log.py under its lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from protocol.records import CONTROL_ABORT, InvalidRecordBatch, control_batch_marker
from storage.partition_files import snapshot_offsets, snapshot_path
from storage.producer_state import ProducerStateManager, SnapshotError
from storage.txn_index import AbortedTxn

if TYPE_CHECKING:
    from storage.segment import LogSegment


def control_marker(buf: bytes | bytearray | memoryview, pos: int) -> tuple[int, int]:
    """(type, coordinator epoch) of a marker; an undecodable one counts as an ABORT of
    unknown coordinator epoch (-1), which fences nothing and ends the transaction."""
    try:
        return control_batch_marker(buf, pos)
    except InvalidRecordBatch:
        return CONTROL_ABORT, -1


def load_snapshot(directory: Path, offset: int,
                  first_offset: int) -> tuple[ProducerStateManager, int]:
    """(state, offset to replay from): the latest valid snapshot at or below ``offset``,
    else empty state and ``first_offset`` (the first segment's base offset)."""
    for b in reversed(snapshot_offsets(directory)):
        if b > offset:
            continue
        try:
            loaded = ProducerStateManager.from_bytes(snapshot_path(directory, b).read_bytes())
        except (OSError, SnapshotError):
            continue
        return loaded, max(b, first_offset)
    return ProducerStateManager(), first_offset


def replay(segments: Sequence[LogSegment], psm: ProducerStateManager, start: int,
           index_from: int | None = None) -> None:
    """Apply the headers of batches at offsets >= ``start`` to ``psm``; the aborted
    transactions completed in ``segments[index_from:]`` go to their .txnindex. Stops at
    the first malformed batch."""
    for k, seg in enumerate(segments):
        if seg.size == 0 or seg.next_offset <= start:
            continue
        aborted: list[AbortedTxn] | None = \
            [] if index_from is not None and k >= index_from else None
        try:
            for pos, h in seg.scan(seg.find_position(start), verify=False):
                if h.base_offset < start or h.producer_id < 0:
                    continue
                ctype, cepoch = None, -1
                if h.is_control:
                    ctype, cepoch = control_marker(seg.pread(pos, h.size_in_bytes), 0)
                psm.producers[h.producer_id] = psm.apply(
                    h, h.base_offset, h.last_offset, h.max_timestamp,
                    control_type=ctype, coordinator_epoch=cepoch, aborted=aborted)
        except InvalidRecordBatch:
            break
        finally:
            for t in aborted or ():
                seg.txn_index.append(t)
