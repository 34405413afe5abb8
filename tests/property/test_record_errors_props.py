"""Property tests for storage/record_validation.py: the per-record errors (KIP-467) name
exactly the records a straightforward model finds offending, for any codec."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.records import Record, build_batch
from storage.errors import InvalidRecordError, InvalidTimestampError, RecordValidationError
from storage.record_validation import check_batch_records

NOW = 1_000_000_000
SETTINGS = settings(max_examples=300, deadline=None)

records_st = st.lists(
    st.tuples(st.none() | st.binary(max_size=4),
              st.just(-1) | st.integers(NOW - 5_000, NOW + 5_000)),
    min_size=1,
    max_size=30,
)
bounds_st = st.none() | st.tuples(st.integers(0, 6_000), st.integers(0, 6_000))


@SETTINGS
@given(records_st, st.integers(0, 4), bounds_st, st.booleans())
def test_record_errors_match_the_model(
    recs: list[tuple[bytes | None, int]], codec: int, bounds: tuple[int, int] | None,
    require_keys: bool,
) -> None:
    buf = build_batch([Record(-1, ts, key, b"v") for key, ts in recs], compression=codec)
    key_bad = [require_keys and key is None for key, _ in recs]
    ts_bad = [
        bounds is not None and ts != -1 and (NOW - ts > bounds[0] or ts - NOW > bounds[1])
        for _, ts in recs
    ]
    expected = [i for i in range(len(recs)) if key_bad[i] or ts_bad[i]]
    try:
        check_batch_records(buf, 0, now_ms=NOW, ts_bounds=bounds, require_keys=require_keys)
    except RecordValidationError as exc:
        assert [i for i, _ in exc.record_errors] == expected
        assert all(message for _, message in exc.record_errors)
        # a record with a null key is reported for its key, as Kafka checks that first
        timestamp_offence = any(ts_bad[i] and not key_bad[i] for i in expected)
        kind = InvalidTimestampError if timestamp_offence else InvalidRecordError
        assert type(exc) is kind
        assert str(exc) == exc.error_message
    else:
        assert expected == []
