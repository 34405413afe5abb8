"""protocol.fetch_codec writes exactly the bytes kio's generic writers write for the same
FetchRequest v12 / FetchResponse v4-v12 values, and plugs into protocol.codec's request
and response framing."""

from __future__ import annotations

import datetime
import io

from hypothesis import given, settings
from hypothesis import strategies as st
from kio.index import load_request_schema

from protocol.build import build
from protocol.codec import (
    _writer,
    decode_request,
    decode_response,
    encode_request,
    encode_response_chunks,
    response_type,
)
from protocol.fetch_codec import EncodedBody, encode_fetch_request, encode_fetch_response
from protocol.headers import parse_request_header

i32 = st.integers(-(2**31), 2**31 - 1)
i64 = st.integers(-(2**63), 2**63 - 1)
names = st.text(min_size=0, max_size=20)
records = st.one_of(st.binary(max_size=300), st.binary(min_size=33 * 1024, max_size=33 * 1024)
                    .map(memoryview))


def kio_body(cls: type, entity: object) -> bytes:
    buf = io.BytesIO()
    _writer(cls)(buf, entity)
    return buf.getvalue()


partitions = st.fixed_dictionaries(
    {"partition_index": i32, "error_code": st.sampled_from([0, 1, 3, 6, 74]),
     "high_watermark": i64, "last_stable_offset": i64, "log_start_offset": i64,
     "records": records, "preferred_read_replica": i32,
     "aborted_transactions": st.one_of(st.none(), st.lists(st.fixed_dictionaries(
         {"producer_id": i64, "first_offset": i64}), max_size=3))},
    optional={"diverging_epoch": st.fixed_dictionaries({"epoch": i32, "end_offset": i64}),
              "current_leader": st.fixed_dictionaries({"leader_id": i32,
                                                       "leader_epoch": i32}),
              "snapshot_id": st.fixed_dictionaries({"end_offset": i64, "epoch": i32})})
responses = st.fixed_dictionaries({
    "throttle_time": st.integers(0, 2**31 - 1), "error_code": st.sampled_from([0, 70]),
    "session_id": i32,
    "responses": st.lists(st.fixed_dictionaries({
        "topic": names, "partitions": st.lists(partitions, max_size=3)}), max_size=3)})


@settings(max_examples=150, deadline=None)
@given(version=st.integers(4, 12), values=responses)
def test_fetch_response_matches_kio(version: int, values: dict) -> None:
    cls = response_type(1, version)
    expected = kio_body(cls, build(cls, values))
    assert encode_fetch_response(version, values).to_bytes() == expected


def test_default_tagged_fields_are_left_out_and_others_written() -> None:
    base = {"partition_index": 0, "error_code": 0, "high_watermark": 5,
            "last_stable_offset": 5, "log_start_offset": 0, "records": b"",
            "aborted_transactions": None, "preferred_read_replica": -1}
    for extra in ({}, {"diverging_epoch": {"epoch": -1, "end_offset": -1}},
                  {"diverging_epoch": {"epoch": 3, "end_offset": 17}},
                  {"current_leader": {"leader_id": 2, "leader_epoch": 9}}):
        values = {"throttle_time": 0, "error_code": 0, "session_id": 0,
                  "responses": [{"topic": "t", "partitions": [{**base, **extra}]}]}
        cls = response_type(1, 12)
        assert encode_fetch_response(12, values).to_bytes() == kio_body(
            cls, build(cls, values))


def test_large_records_are_kept_by_reference_in_the_frame() -> None:
    payload = memoryview(bytes(range(256)) * 1024)
    values = {"throttle_time": 0, "error_code": 0, "session_id": 0, "responses": [
        {"topic": "t", "partitions": [{"partition_index": 0, "error_code": 0,
                                       "high_watermark": 1, "last_stable_offset": 1,
                                       "log_start_offset": 0, "records": payload}]}]}
    body = encode_fetch_response(12, values)
    assert any(chunk is payload for chunk in body.chunks)
    chunks = encode_response_chunks(1, 12, 42, body)
    assert any(chunk is payload for chunk in chunks)
    frame = b"".join(bytes(c) for c in chunks)
    assert int.from_bytes(frame[:4], "big") == len(frame) - 4
    cid, decoded = decode_response(1, 12, frame[4:])
    assert cid == 42
    assert bytes(decoded.responses[0].partitions[0].records) == bytes(payload)


fetch_partitions = st.tuples(i32, i32, i64, i32, i64, i32)


@settings(max_examples=150, deadline=None)
@given(head=st.tuples(i32, st.integers(0, 2**31 - 1), i32, i32, st.integers(0, 1), i32, i32),
       topics=st.lists(st.tuples(names, st.lists(fetch_partitions, max_size=3)), max_size=3),
       forgotten=st.lists(st.tuples(names, st.lists(i32, max_size=3)), max_size=2),
       rack=names, cluster_id=st.one_of(st.none(), names))
def test_fetch_request_matches_kio(head: tuple, topics: list, forgotten: list, rack: str,
                                   cluster_id: str | None) -> None:
    cls = load_request_schema(1, 12)
    module = __import__(cls.__module__, fromlist=["FetchTopic"])
    entity = cls(
        cluster_id=cluster_id, replica_id=head[0],
        max_wait=datetime.timedelta(milliseconds=head[1]), min_bytes=head[2],
        max_bytes=head[3], isolation_level=head[4], session_id=head[5],
        session_epoch=head[6],
        topics=tuple(module.FetchTopic(topic=t, partitions=tuple(
            module.FetchPartition(partition=p[0], current_leader_epoch=p[1],
                                  fetch_offset=p[2], last_fetched_epoch=p[3],
                                  log_start_offset=p[4], partition_max_bytes=p[5])
            for p in ps)) for t, ps in topics),
        forgotten_topics_data=tuple(module.ForgottenTopic(topic=t, partitions=tuple(ps))
                                    for t, ps in forgotten),
        rack_id=rack)
    ours = encode_fetch_request(
        replica_id=head[0], max_wait_ms=head[1], min_bytes=head[2], max_bytes=head[3],
        isolation_level=head[4], session_id=head[5], session_epoch=head[6],
        topics=topics, forgotten=forgotten, rack_id=rack, cluster_id=cluster_id)
    assert ours.to_bytes() == kio_body(cls, entity)


def test_encoded_request_frames_like_an_entity() -> None:
    body = encode_fetch_request(replica_id=2, max_wait_ms=500, min_bytes=1,
                                max_bytes=10 << 20, isolation_level=0, session_id=0,
                                session_epoch=-1,
                                topics=[("topic", [(0, 4, 1234, 3, 0, 1 << 20)])])
    assert isinstance(body, EncodedBody) and body.__api_key__ == 1 and body.__version__ == 12
    frame = encode_request(1, 12, 7, "strom-broker-2", body)
    assert int.from_bytes(frame[:4], "big") == len(frame) - 4
    header = parse_request_header(frame[4:])
    assert (header.api_key, header.api_version, header.correlation_id) == (1, 12, 7)
    request = decode_request(1, 12, frame[4:], header.body_offset)
    assert request.replica_id == 2
    partition = request.topics[0].partitions[0]
    assert (partition.fetch_offset, partition.last_fetched_epoch,
            partition.current_leader_epoch) == (1234, 3, 4)


@settings(max_examples=100, deadline=None)
@given(api_key=st.sampled_from([0, 1, 3, 18, 52, 55, 56, 62]), version=st.integers(0, 12),
       cid=i32, client_id=st.one_of(st.none(), st.text(max_size=30)))
def test_request_header_matches_kio(api_key: int, version: int, cid: int,
                                    client_id: str | None) -> None:
    from kio.schema.request_header.v1.header import RequestHeader as H1
    from kio.schema.request_header.v2.header import RequestHeader as H2

    from protocol.codec import request_header
    from protocol.headers import request_header_version

    try:
        flexible = request_header_version(api_key, version) == 2
    except Exception:  # noqa: BLE001 - no such version in kio: nothing to compare
        return
    cls = H2 if flexible else H1
    expected = kio_body(cls, cls(request_api_key=api_key, request_api_version=version,
                                 correlation_id=cid, client_id=client_id))
    assert request_header(api_key, version, cid, client_id) == expected
