"""The Kinesis facade's pure model: hash-key ranges, sequence numbers, shard iterators,
the stream document, request validation, record conversion, bodies and SigV4."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kinesis import codec, hashing, iterators, sequence, sigv4, validation
from kinesis import records as krecords
from kinesis.errors import KinesisError
from kinesis.metadata import StreamMeta, parse_shard_id, shard_id

KEY = b"k" * 32


def test_uniform_ranges_match_kinesis_boundaries() -> None:
    # what Kinesis answers for a new 2-shard stream
    assert hashing.uniform_ranges(2) == [
        (0, 170141183460469231731687303715884105727),
        (170141183460469231731687303715884105728, 340282366920938463463374607431768211455)]
    three = hashing.uniform_ranges(3)
    assert three[0][0] == 0 and three[-1][1] == hashing.MAX_HASH_KEY
    assert all(a[1] + 1 == b[0] for a, b in zip(three, three[1:], strict=False))


def test_partition_key_hash_is_md5_big_endian() -> None:
    expected = int.from_bytes(hashlib.md5(b"pk1").digest(), "big")
    assert hashing.partition_key_hash("pk1") == expected
    ranges = list(enumerate(hashing.uniform_ranges(4)))
    assert hashing.shard_for(expected, ranges) == expected * 4 // (1 << 128)


def test_parse_hash_key_bounds() -> None:
    assert hashing.parse_hash_key("0") == 0
    assert hashing.parse_hash_key(str(hashing.MAX_HASH_KEY)) == hashing.MAX_HASH_KEY
    assert hashing.parse_hash_key(str(hashing.MAX_HASH_KEY + 1)) is None
    assert hashing.parse_hash_key("-1") is None
    assert hashing.parse_hash_key("01") is None


@given(st.integers(0, 10**6), st.integers(0, 10**19))
def test_sequence_numbers_round_trip_and_order(shard: int, offset: int) -> None:
    text = sequence.encode(shard, offset)
    assert sequence.decode(text) == (shard, offset)
    assert int(sequence.encode(shard, offset + 1)) > int(text)


@pytest.mark.parametrize("bad", ["", "abc", "-5", "12", "1" + "0" * 60, "007"])
def test_foreign_sequence_numbers_are_refused(bad: str) -> None:
    with pytest.raises(sequence.BadSequenceNumber):
        sequence.decode(bad)


def test_iterator_round_trip_forgery_and_expiry() -> None:
    pos = iterators.Position("s", uuid.uuid4(), 3, 42)
    it = iterators.encode(KEY, pos, issued_ms=1000)
    assert iterators.decode(KEY, it, now_ms=1000 + iterators.TTL_MS) == pos
    with pytest.raises(KinesisError) as exc:
        iterators.decode(KEY, it, now_ms=1001 + iterators.TTL_MS)
    assert exc.value.type == "ExpiredIteratorException"
    raw = bytearray(base64.b64decode(it))
    raw[20] ^= 1  # move the offset: the signature no longer matches
    for forged in (base64.b64encode(raw).decode(), "AAAA", "not base64!",
                   iterators.encode(b"other key", pos, 1000)):
        with pytest.raises(KinesisError) as exc:
            iterators.decode(KEY, forged, now_ms=1000)
        assert exc.value.type == "InvalidArgumentException"


def test_stream_document_round_trip() -> None:
    meta = StreamMeta.new(3, "ON_DEMAND", 123, {"team": "a"})
    again = StreamMeta.from_json(meta.to_json())
    assert again == meta
    assert [s.partition for s in again.open_shards()] == [0, 1, 2]
    with pytest.raises(ValueError):
        StreamMeta.from_json('{"shards": []}')
    assert shard_id(7) == "shardId-000000000007"
    assert parse_shard_id("shardId-000000000007") == 7 and parse_shard_id("7") == 7
    assert parse_shard_id("shard-7") is None


def test_validation_types_and_constraints() -> None:
    ok = validation.check("PutRecord", {"StreamName": "s", "PartitionKey": "k",
                                        "Data": base64.b64encode(b"hi").decode()}, 10)
    assert ok["Data"] == b"hi"
    cases = [
        ("PutRecord", {"StreamName": "s", "Data": "aGk="}, "ValidationException",
         "Value null at 'partitionKey'"),
        ("PutRecord", {"StreamName": 5, "PartitionKey": "k", "Data": "aGk="},
         "SerializationException", "streamName"),
        ("PutRecord", {"StreamName": "s", "PartitionKey": "k", "Data": "@@"},
         "SerializationException", "data"),
        ("PutRecord", {"StreamName": "s", "PartitionKey": "k",
                       "Data": base64.b64encode(b"x" * 11).decode()},
         "ValidationException", "less than or equal to 10"),
        ("GetShardIterator", {"StreamName": "s", "ShardId": "x", "ShardIteratorType": "NOW"},
         "ValidationException", "enum value set"),
        ("GetRecords", {"ShardIterator": "x", "Limit": 10_001}, "ValidationException",
         "less than or equal to 10000"),
        ("CreateStream", {"StreamName": "bad name!"}, "ValidationException", "pattern"),
        ("PutRecords", {"StreamName": "s", "Records": [{"PartitionKey": "k"}]},
         "ValidationException", "records.1.member.data"),
        ("ListStreams", [], "SerializationException", "structure"),
    ]
    for op, body, kind, text in cases:
        with pytest.raises(KinesisError) as exc:
            validation.check(op, body, 10)
        assert exc.value.type == kind, (op, body)
        assert text in exc.value.message, exc.value.message
        assert exc.value.status == 400


def test_stream_name_from_arn() -> None:
    arn = "arn:aws:kinesis:us-east-1:000000000000:stream/orders"
    assert validation.stream_name({"StreamARN": arn}) == "orders"
    with pytest.raises(KinesisError) as exc:
        validation.stream_name({})
    assert exc.value.type == "InvalidArgumentException"


def test_records_round_trip_through_a_batch() -> None:
    puts = [krecords.PutEntry("k1", b"one"), krecords.PutEntry("k2", b"two", "17")]
    batch = krecords.build(puts, now_ms=5000)
    got, nxt = krecords.decode(batch, 0, 10)
    assert [(r.offset, r.partition_key, r.data, r.timestamp_ms) for r in got] == [
        (0, "k1", b"one", 5000), (1, "k2", b"two", 5000)]
    assert nxt == 2
    got, nxt = krecords.decode(batch, 1, 10)
    assert [r.offset for r in got] == [1] and nxt == 2
    got, nxt = krecords.decode(batch, 0, 1)
    assert [r.offset for r in got] == [0] and nxt == 1


def test_json_and_cbor_bodies() -> None:
    value = {"Data": b"\x00\x01", "T": codec.Timestamp(1500), "N": 3}
    assert codec.decode(codec.JSON, codec.encode(False, value)) == {
        "Data": "AAE=", "T": 1.5, "N": 3}
    back = codec.decode(codec.CBOR, codec.encode(True, {"Data": b"\x00\x01", "N": 3}))
    assert back == {"Data": b"\x00\x01", "N": 3}
    for ctype, body in ((codec.JSON, b"{not json"), (codec.CBOR, b"\xff\xff")):
        with pytest.raises(KinesisError) as exc:
            codec.decode(ctype, body)
        assert exc.value.type == "SerializationException"


def _signed(secret: str, body: bytes) -> dict[str, str]:
    headers = {"host": "127.0.0.1:4567", "x-amz-date": "20261202T120000Z",
               "x-amz-target": "Kinesis_20131202.ListStreams"}
    signed = sorted(headers)
    creq = sigv4.canonical_request("POST", "/", headers, signed, body)
    scope = "20261202/us-east-1/kinesis/aws4_request"
    to_sign = "\n".join([sigv4.ALGORITHM, headers["x-amz-date"], scope,
                         hashlib.sha256(creq.encode()).hexdigest()])
    sig = hmac.new(sigv4.signing_key(secret, "20261202", "us-east-1", "kinesis"),
                   to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = (f"AWS4-HMAC-SHA256 Credential=AKID/{scope}, "
                                f"SignedHeaders={';'.join(signed)}, Signature={sig}")
    return headers


def test_sigv4_checks() -> None:
    auth = sigv4.Authenticator({"AKID": "secret"})
    body = b"{}"
    auth.check("POST", "/", _signed("secret", body), body)
    for headers, kind in ((_signed("wrong", body), "InvalidSignatureException"),
                          ({}, "MissingAuthenticationTokenException"),
                          ({"Authorization": "AWS4-HMAC-SHA256 nonsense"},
                           "IncompleteSignatureException")):
        with pytest.raises(KinesisError) as exc:
            auth.check("POST", "/", headers, body)
        assert exc.value.type == kind
    other = _signed("secret", body)
    other["Authorization"] = other["Authorization"].replace("AKID/", "NOPE/")
    with pytest.raises(KinesisError) as exc:
        auth.check("POST", "/", other, body)
    assert exc.value.type == "UnrecognizedClientException"
    signed_ms = 1796212800000  # 2026-12-02T12:00:00Z, the X-Amz-Date of _signed
    auth.check("POST", "/", _signed("secret", body), body, now_ms=signed_ms + 60_000)
    with pytest.raises(KinesisError) as exc:
        auth.check("POST", "/", _signed("secret", body), body, now_ms=signed_ms + 16 * 60_000)
    assert exc.value.type == "InvalidSignatureException" and "expired" in exc.value.message
    sigv4.Authenticator({}).check("POST", "/", {}, body)  # no keys: anything goes
    assert sigv4.parse_access_keys("A:b, C:d") == {"A": "b", "C": "d"}
    with pytest.raises(ValueError):
        sigv4.parse_access_keys("nosecret")


def test_resharding_lineage() -> None:
    meta = StreamMeta.new(2, "PROVISIONED", 0)
    lo, hi = meta.shards[0].start_hash, meta.shards[0].end_hash
    mid = (lo + hi) // 2
    split = meta.split(0, mid, now_ms=10)
    assert split.resharding and [s.partition for s in split.open_shards()] == [1, 2, 3]
    assert [(s.start_hash, s.end_hash, s.parent) for s in split.shards[2:]] == [
        (lo, mid - 1, 0), (mid, hi, 0)]
    assert split.shard(0).read_end is None and not split.shard(0).is_open
    closed = split.close({0: 7})
    assert not closed.resharding and closed.shard(0).read_end == 7
    assert [c.partition for c in closed.children(0)] == [2, 3]
    merged = closed.merge(2, 3, now_ms=20).close({2: 0, 3: 0})
    child = merged.shard(4)
    assert (child.start_hash, child.end_hash, child.parent, child.adjacent_parent) == (
        lo, hi, 2, 3)
    for bad in (lambda: meta.split(0, lo, 1), lambda: meta.split(0, hi + 1, 1),
                lambda: closed.split(0, mid, 1), lambda: meta.merge(0, 0, 1)):
        with pytest.raises(ValueError):
            bad()
    three = StreamMeta.new(3, "PROVISIONED", 0)
    with pytest.raises(ValueError):
        three.merge(0, 2, 1)  # not adjacent
    two = three.rescale(2, now_ms=5).close({0: 1, 1: 1, 2: 1})
    kids = [s for s in two.shards if s.is_open]
    assert [(s.parent, s.adjacent_parent) for s in kids] == [(0, 1), (1, 2)]
    assert kids[0].start_hash == 0 and kids[-1].end_hash == hashing.MAX_HASH_KEY
    assert StreamMeta.from_json(two.to_json()) == two
    assert two.shard(0).open_at(4) and not two.shard(0).open_at(5) and kids[0].open_at(5)


def test_event_stream_messages_parse_with_botocore() -> None:
    from botocore.eventstream import EventStreamBuffer

    from kinesis import eventstream

    buf = EventStreamBuffer()
    buf.add_data(eventstream.event("initial-response", b"{}")
                 + eventstream.event("SubscribeToShardEvent", b'{"Records": []}')
                 + eventstream.exception("ResourceNotFoundException", b'{"message": "x"}'))
    got = [(m.headers, m.payload) for m in buf]
    assert got[0] == ({":message-type": "event", ":event-type": "initial-response",
                       ":content-type": "application/json"}, b"{}")
    assert got[1][0][":event-type"] == "SubscribeToShardEvent"
    assert got[1][1] == b'{"Records": []}'
    assert got[2][0][":exception-type"] == "ResourceNotFoundException"


@given(st.lists(st.tuples(st.none() | st.binary(max_size=300), st.none() | st.binary(max_size=3000),
                          st.lists(st.tuples(st.text(max_size=5), st.binary(max_size=9)),
                                   max_size=2),
                          st.integers(0, 2**40)), min_size=1, max_size=20),
       st.sampled_from([0, 1, 4]), st.integers(0, 5))
def test_fast_record_decoder_matches_protocol(items: list, codec_id: int, start: int) -> None:
    from protocol.records import Record, build_batch, decode_batch_records

    recs = [Record(-1, ts, k, v, list(h)) for k, v, h, ts in items]
    batch = build_batch(recs, base_offset=3, compression=codec_id)
    ref = [r for r in decode_batch_records(batch, 0) if r.offset >= start]
    got, nxt = krecords.decode(batch, start, 100)
    assert [(g.offset, g.timestamp_ms, g.data) for g in got] == [
        (r.offset, r.timestamp, r.value or b"") for r in ref]
    assert [g.partition_key for g in got] == [
        None if r.key is None else r.key.decode("utf-8", "replace") for r in ref]
    assert nxt == max(start, 3 + len(items))  # never behind where reading started
