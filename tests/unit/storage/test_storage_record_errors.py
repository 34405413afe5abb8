"""Per-record errors (KIP-467): the leader names every offending record of a refused batch."""

from __future__ import annotations

import pytest

from protocol import compression
from protocol.records import Record, build_batch
from storage.errors import InvalidRecordError, InvalidTimestampError, RecordValidationError
from storage.log_config import LogConfig

NOW = 10_000_000
COMPACT = LogConfig(cleanup_policy=frozenset({"compact"}))


def _batch(keys: list[bytes | None], stamps: list[int] | None = None, **kw: object) -> bytes:
    stamps = stamps or [NOW] * len(keys)
    recs = [Record(-1, ts, k, b"v") for k, ts in zip(keys, stamps, strict=True)]
    return build_batch(recs, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("codec", [compression.NONE, compression.GZIP, compression.ZSTD])
def test_every_null_key_is_reported_with_its_batch_index(open_log, codec: int) -> None:
    log = open_log(COMPACT)
    with pytest.raises(InvalidRecordError) as exc:
        log.append_as_leader(_batch([b"a", None, b"c", None, None], compression=codec),
                             leader_epoch=0, now_ms=NOW)
    err = exc.value
    assert [i for i, _ in err.record_errors] == [1, 3, 4]
    assert all(m and "without a key" in m for _, m in err.record_errors)
    assert err.error_code == 87 and isinstance(err, RecordValidationError)
    assert err.error_message == str(err) and "3 record errors" in err.error_message
    assert log.log_end_offset == 0


def test_indexes_are_relative_to_the_refused_batch(open_log) -> None:
    log = open_log(COMPACT)
    good = _batch([b"a", b"b"])
    with pytest.raises(InvalidRecordError) as exc:
        log.append_as_leader(good + _batch([None, b"x"]), leader_epoch=0, now_ms=NOW)
    assert exc.value.record_errors == (
        (0, "Compacted topic cannot accept a record without a key"),
    )
    assert log.log_end_offset == 0  # all or nothing


def test_every_out_of_range_timestamp_is_reported(open_log) -> None:
    log = open_log(LogConfig(message_timestamp_before_max_ms=1000,
                             message_timestamp_after_max_ms=500))
    stamps = [NOW, NOW - 1001, -1, NOW + 501, NOW - 1000, NOW + 500, NOW - 5000]
    with pytest.raises(InvalidTimestampError) as exc:
        log.append_as_leader(_batch([b"k"] * len(stamps), stamps, compression=compression.LZ4),
                             leader_epoch=0, now_ms=NOW)
    err = exc.value
    assert [i for i, _ in err.record_errors] == [1, 3, 6]
    messages = dict(err.record_errors)
    assert "before" in (messages[1] or "") and "after" in (messages[3] or "")
    assert str(NOW - 5000) in (messages[6] or "")
    assert err.error_message.startswith("One or more records have been rejected due to "
                                        "invalid timestamp")
    assert f"[{NOW - 1000}, {NOW + 500}]" in err.error_message
    assert err.error_code == 32


def test_both_rules_in_one_batch_is_an_invalid_timestamp_listing_both(open_log) -> None:
    log = open_log(LogConfig(cleanup_policy=frozenset({"compact"}),
                             message_timestamp_before_max_ms=10))
    # record 1: null key (and a bad timestamp: reported once, for the key, as Kafka)
    with pytest.raises(InvalidTimestampError) as exc:
        log.append_as_leader(_batch([b"a", None, b"c"], [NOW, NOW - 99, NOW - 11]),
                             leader_epoch=0, now_ms=NOW)
    errors = exc.value.record_errors
    assert [i for i, _ in errors] == [1, 2]
    assert "without a key" in (errors[0][1] or "") and "before" in (errors[1][1] or "")


def test_batch_level_refusals_carry_no_record_errors(open_log) -> None:
    log = open_log()
    bad = build_batch([Record(-1, NOW, b"k", b"v")] * 2, last_offset_delta=5)
    with pytest.raises(InvalidRecordError) as exc:
        log.append_as_leader(bad, leader_epoch=0, now_ms=NOW)
    assert exc.value.record_errors == () and exc.value.error_message


def test_accepted_batches_are_unaffected(open_log) -> None:
    log = open_log(LogConfig(cleanup_policy=frozenset({"compact"}),
                             message_timestamp_before_max_ms=10,
                             message_timestamp_after_max_ms=10))
    result = log.append_as_leader(_batch([b"a", b"b"], [NOW - 10, NOW + 10]),
                                  leader_epoch=0, now_ms=NOW)
    assert (result.first_offset, result.last_offset) == (0, 1)
