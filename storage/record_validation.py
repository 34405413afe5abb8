"""Record-level checks of a leader append, with Kafka's per-record errors (KIP-467).

Two topic rules need the records of a client batch, not just its header:

- ``cleanup.policy=compact``: every record has a key (else INVALID_RECORD);
- message.timestamp.before/after.max.ms (CreateTime topics): every record timestamp,
  except "none" (-1), lies in [now - before, now + after] (else INVALID_TIMESTAMP).

:func:`check_batch_records` keeps the accepting path cheap -- one walk over the records'
timestamp deltas (:func:`protocol.records.batch_timestamp_bounds`) and/or one key scan --
and only when something offends decodes the batch once more to list *every* offending
record, as Kafka's LogValidator does. The exception (storage/errors.py) carries
``record_errors`` ((batch_index, message) pairs, batch_index = position in the batch) and
``error_message``; a record breaking both rules is reported once, for its key (Kafka
checks the key first), and any timestamp offence makes the whole an InvalidTimestampError.
"""

from __future__ import annotations

from protocol.records import (
    Buffer,
    InvalidRecordBatch,
    batch_has_null_key,
    batch_timestamp_bounds,
    decode_batch_records,
)
from storage.errors import CorruptRecordError, InvalidRecordError, InvalidTimestampError
from storage.log_config import LONG_MAX

NO_TIMESTAMP = -1
_SHOWN = 3  # record errors quoted in the whole's message, as Kafka


def check_batch_records(
    buf: Buffer,
    pos: int,
    *,
    now_ms: int,
    ts_bounds: tuple[int, int] | None,
    require_keys: bool,
) -> None:
    """Check the records of the (CRC-checked) batch at ``pos``.

    ``ts_bounds`` is (before, after) in ms, or None to skip timestamps; ``require_keys``
    refuses null keys. Raises InvalidRecordError / InvalidTimestampError with every
    offending record, or CorruptRecordError when the records cannot be decoded.
    """
    try:
        if not _offends(buf, pos, now_ms, ts_bounds, require_keys):
            return
        records = decode_batch_records(buf, pos, verify=False)
    except InvalidRecordBatch as exc:
        raise CorruptRecordError(str(exc)) from exc
    errors: list[tuple[int, str | None]] = []
    bad_timestamps = 0
    for index, rec in enumerate(records):
        if require_keys and rec.key is None:
            errors.append((index, "Compacted topic cannot accept a record without a key"))
        elif ts_bounds is not None and rec.timestamp != NO_TIMESTAMP:
            message = _timestamp_error(rec.timestamp, now_ms, *ts_bounds)
            if message is not None:
                errors.append((index, message))
                bad_timestamps += 1
    if not errors:  # the fast checks and the decode disagree: cannot happen
        raise CorruptRecordError(f"batch at position {pos}: inconsistent records")
    shown = "; ".join(f"record {i}: {m}" for i, m in errors[:_SHOWN])
    if bad_timestamps:
        before, after = ts_bounds or (LONG_MAX, LONG_MAX)
        raise InvalidTimestampError(
            f"One or more records have been rejected due to invalid timestamp: "
            f"{len(errors)} of {len(records)} records rejected, allowed range "
            f"[{now_ms - before}, {_add_capped(now_ms, after)}]; first errors: {shown}",
            tuple(errors),
        )
    raise InvalidRecordError(
        f"One or more records have been rejected due to {len(errors)} record errors in "
        f"total, and only showing the first {_SHOWN} errors at most: {shown}",
        tuple(errors),
    )


def _offends(
    buf: Buffer, pos: int, now_ms: int, ts_bounds: tuple[int, int] | None, require_keys: bool
) -> bool:
    """The cheap scan: does any record break a rule? (InvalidRecordBatch if undecodable)."""
    if ts_bounds is not None:
        bounds = batch_timestamp_bounds(buf, pos)
        if bounds is not None:
            before, after = ts_bounds
            lo, hi = bounds
            if now_ms - lo > before or hi - now_ms > after:
                return True
    return require_keys and batch_has_null_key(buf, pos)


def _timestamp_error(ts: int, now_ms: int, before: int, after: int) -> str | None:
    if now_ms - ts > before:
        return (f"timestamp {ts} is more than {before} ms before broker time {now_ms} "
                "(message.timestamp.before.max.ms)")
    if ts - now_ms > after:
        return (f"timestamp {ts} is more than {after} ms after broker time {now_ms} "
                "(message.timestamp.after.max.ms)")
    return None


def _add_capped(a: int, b: int) -> int:
    return min(a + b, LONG_MAX)
