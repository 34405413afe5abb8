"""Per-record errors over the wire (KIP-467, Produce v8+) and the stored codec seen by Fetch.

Hand-built batches (protocol/records.py) over ``net.wire.WireClient``: a refused batch's
partition response names every offending record by its index in the batch, with a message
per record and one for the whole; Produce v7 has no such fields and still gets the code.
"""

from __future__ import annotations

import time
import uuid

from kio.schema.errors import ErrorCode

from net.wire import WireClient
from protocol import compression
from protocol.records import Record, build_batch, decode_batch_records, iter_batches
from tests.integration.test_protocol_server import _addr, create_topic, fetch_req, produce

TIMEOUT = 10.0


def _batch(keys: list[bytes | None], stamps: list[int] | None = None, codec: int = 0) -> bytes:
    now = int(time.time() * 1000)
    stamps = stamps or [now] * len(keys)
    return build_batch([Record(i, ts, k, b"v%d" % i, []) for i, (k, ts) in
                        enumerate(zip(keys, stamps, strict=True))], compression=codec)


def test_null_keys_on_a_compacted_topic_are_listed(bootstrap: str) -> None:
    topic = f"kip467-keys-{uuid.uuid4().hex[:8]}"
    with WireClient(*_addr(bootstrap), timeout=TIMEOUT) as c:
        create_topic(c, topic, **{"cleanup.policy": "compact"})
        bad = _batch([b"a", None, b"c", None], codec=compression.GZIP)
        part = produce(c, topic, bad, version=9)
        assert part.error_code == ErrorCode.invalid_record
        assert [e.batch_index for e in part.record_errors] == [1, 3]
        assert all("without a key" in (e.batch_index_error_message or "")
                   for e in part.record_errors)
        assert part.error_message and "2 record errors" in part.error_message
        old = produce(c, topic, bad, version=7)
        assert old.error_code == ErrorCode.invalid_record
        assert produce(c, topic, _batch([b"a"]), version=9).error_code == ErrorCode.none


def test_out_of_range_timestamps_are_listed(bootstrap: str) -> None:
    topic = f"kip467-ts-{uuid.uuid4().hex[:8]}"
    now = int(time.time() * 1000)
    day = 86_400_000
    with WireClient(*_addr(bootstrap), timeout=TIMEOUT) as c:
        create_topic(c, topic, **{"message.timestamp.before.max.ms": str(day),
                                  "message.timestamp.after.max.ms": str(day)})
        stamps = [now, now - 2 * day, now, now + 2 * day]
        part = produce(c, topic, _batch([b"k"] * 4, stamps), version=9)
        assert part.error_code == ErrorCode.invalid_timestamp
        assert [e.batch_index for e in part.record_errors] == [1, 3]
        assert part.error_message and "invalid timestamp" in part.error_message


def test_fetch_serves_the_topics_codec(bootstrap: str) -> None:
    topic = f"recompress-wire-{uuid.uuid4().hex[:8]}"
    with WireClient(*_addr(bootstrap), timeout=TIMEOUT) as c:
        create_topic(c, topic, **{"compression.type": "lz4", "compression.lz4.level": "12"})
        sent = _batch([b"k%d" % i for i in range(20)], codec=compression.SNAPPY)
        assert produce(c, topic, sent, version=9).error_code == ErrorCode.none
        got = c.request(fetch_req(topic, 0)).responses[0].partitions[0]
        assert got.error_code == ErrorCode.none
        ((pos, h),) = list(iter_batches(got.records))
        assert h.compression == compression.LZ4 and h.records_count == 20
        assert [(r.key, r.value) for r in decode_batch_records(got.records, pos)] == [
            (b"k%d" % i, b"v%d" % i) for i in range(20)]
