"""Storage errors. Each maps to one Kafka error code (``error_code``) the server returns.

Per-record errors (KIP-467). When the leader refuses a batch because of some of its
records, the exception is a :class:`RecordValidationError` (:class:`InvalidRecordError`:
a null key on a compacted topic; :class:`InvalidTimestampError`: a CreateTime outside
message.timestamp.before/after.max.ms) and carries, for Produce v8+ responses:

- ``record_errors: tuple[tuple[int, str | None], ...]`` -- one ``(batch_index, message)``
  per offending record, every one of them (not only the first), in record order.
  ``batch_index`` is the record's position within its batch (0 = first record), as
  Kafka's ``RecordError.batchIndex``; ``message`` says what is wrong (None: nothing to add).
- ``error_message: str`` -- the message for the whole partition (also ``str(exc)``).

A batch-level refusal (bad offsets, control batch from a client, ...) has
``record_errors == ()``. A request is all or nothing: the first refused batch stops it, so
the indexes always refer to that one batch. Where a batch has both kinds of offending
records, the error is InvalidTimestampError (Kafka's rule) and lists both kinds.
"""

from __future__ import annotations

#: (batch_index, message) per offending record; see the module docstring.
RecordErrors = tuple[tuple[int, str | None], ...]


class StorageError(Exception):
    """Base class of every error raised by ``storage``."""

    error_code: int = -1  # UNKNOWN_SERVER_ERROR


class CorruptRecordError(StorageError):
    """A batch fails length/magic/CRC validation (Kafka CORRUPT_MESSAGE)."""

    error_code = 2


class RecordValidationError(StorageError):
    """A batch refused for the batch or for some of its records (see the module docstring:
    ``error_message`` for the whole, ``record_errors`` per offending record)."""

    def __init__(self, error_message: str, record_errors: RecordErrors = ()) -> None:
        super().__init__(error_message)
        self.error_message = error_message
        self.record_errors = record_errors


class InvalidRecordError(RecordValidationError):
    """A record breaks a topic rule, e.g. a null key on a compacted topic (INVALID_RECORD)."""

    error_code = 87


class RecordTooLargeError(StorageError):
    """A batch is larger than ``max.message.bytes`` (MESSAGE_TOO_LARGE)."""

    error_code = 10


class InvalidTimestampError(RecordValidationError):
    """A CreateTime timestamp is outside [now - message.timestamp.before.max.ms,
    now + message.timestamp.after.max.ms] (or the deprecated difference.max.ms)."""

    error_code = 32


class OffsetOutOfRangeError(StorageError):
    """A fetch offset lies outside [log_start_offset, log_end_offset] (OFFSET_OUT_OF_RANGE)."""

    error_code = 1


class OutOfOrderSequenceError(StorageError):
    """An idempotent batch's sequence does not follow the producer's last one."""

    error_code = 45


class InvalidProducerEpochError(StorageError):
    """A batch carries an older producer epoch than the one already seen (fenced)."""

    error_code = 47


class TransactionCoordinatorFencedError(StorageError):
    """A transaction marker carries a coordinator epoch older than the one the partition
    last accepted for that producer (a zombie coordinator): nothing was appended."""

    error_code = 52  # TRANSACTION_COORDINATOR_FENCED


class UnknownProducerIdError(StorageError):
    """The producer id is unknown where continuity is required (UNKNOWN_PRODUCER_ID)."""

    error_code = 59


class DuplicateSequenceError(StorageError):
    """A retried batch equals one of the producer's last five: nothing was appended.

    The server answers NONE with the original offsets, as Kafka does.
    """

    error_code = 0

    def __init__(self, first_offset: int, last_offset: int, log_append_time: int = -1) -> None:
        super().__init__(
            f"duplicate batch already stored at offsets {first_offset}..{last_offset}"
        )
        self.first_offset = first_offset
        self.last_offset = last_offset
        self.log_append_time = log_append_time


class LogDirectoryError(StorageError):
    """A partition directory or file is damaged beyond repair, or the disk failed."""

    error_code = 56  # KAFKA_STORAGE_ERROR
