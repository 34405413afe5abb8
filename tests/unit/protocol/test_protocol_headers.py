"""Request header versions, parsing, response header selection, codec round trips."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kio.schema.api_versions.v0.request import ApiVersionsRequest as AV0
from kio.schema.api_versions.v3.request import ApiVersionsRequest as AV3
from kio.schema.metadata.v9.request import MetadataRequest as M9
from kio.schema.metadata.v9.request import MetadataRequestTopic as M9Topic

from protocol.build import build
from protocol.codec import (
    DecodeError,
    decode_request,
    encode_request,
    encode_response,
    response_type,
)
from protocol.headers import (
    HeaderError,
    parse_request_header,
    request_header_version,
    response_header_version,
)


def test_header_versions_follow_flexibility() -> None:
    assert request_header_version(18, 0) == 1
    assert request_header_version(18, 3) == 2
    assert request_header_version(18, 7) == 2  # unknown newer ApiVersions: still flexible
    assert request_header_version(0, 2) == 1  # removed Produce v2: non-flexible
    assert request_header_version(0, 9) == 2
    assert request_header_version(3, 8) == 1
    assert request_header_version(3, 9) == 2
    assert request_header_version(9999, 0) == 1  # unknown api key


def test_api_versions_response_header_is_always_v0() -> None:
    assert response_header_version(18, 3) == 0
    assert response_header_version(18, 4) == 0
    assert response_header_version(3, 9) == 1
    assert response_header_version(3, 8) == 0


def test_parse_v2_header_keeps_legacy_client_id() -> None:
    raw = encode_request(18, 3, 42, "my-client", AV3(client_software_name="x",
                                                    client_software_version="1"))
    payload = raw[4:]
    h = parse_request_header(payload)
    assert (h.api_key, h.api_version, h.correlation_id, h.client_id) == (18, 3, 42, "my-client")
    assert h.header_version == 2
    # client_id is a legacy int16-length string even in header v2
    assert payload[8:10] == len("my-client").to_bytes(2, "big")
    body = decode_request(18, 3, payload, h.body_offset)
    assert body.client_software_name == "x"


def test_parse_null_client_id() -> None:
    payload = encode_request(18, 0, 1, None, AV0())[4:]
    h = parse_request_header(payload)
    assert h.client_id is None and h.header_version == 1


@pytest.mark.parametrize("data", [b"", b"\x00", b"\x00\x12\x00", b"\x00\x12\x00\x00\x00\x00"])
def test_truncated_header_raises(data: bytes) -> None:
    with pytest.raises(HeaderError):
        parse_request_header(data)


def test_truncated_body_raises_decode_error() -> None:
    req = M9(topics=(M9Topic(name="t"),), allow_auto_topic_creation=True,
             include_cluster_authorized_operations=False,
             include_topic_authorized_operations=False)
    payload = encode_request(3, 9, 5, "c", req)[4:]
    h = parse_request_header(payload)
    assert decode_request(3, 9, payload, h.body_offset).topics[0].name == "t"
    with pytest.raises(DecodeError):
        decode_request(3, 9, payload[:-3], h.body_offset)


def test_encode_response_frames_header_and_body() -> None:
    body = build(response_type(18, 0), {"error_code": 35, "api_keys": [
        {"api_key": 18, "min_version": 0, "max_version": 4}]})
    raw = encode_response(18, 0, 77, body)
    assert int.from_bytes(raw[:4], "big") == len(raw) - 4
    assert raw[4:8] == (77).to_bytes(4, "big")
    assert raw[8:10] == (35).to_bytes(2, "big")


def test_chunked_response_equals_contiguous_and_keeps_records_by_reference() -> None:
    from protocol.codec import encode_response_chunks

    records = b"r" * (1 << 20)
    body = build(response_type(1, 12), {"responses": [{"topic": "t", "partitions": [
        {"partition_index": 0, "high_watermark": 5, "records": records},
        {"partition_index": 1, "records": b"abc"}]}]})
    chunks = encode_response_chunks(1, 12, 9, body)
    assert b"".join(bytes(c) for c in chunks) == encode_response(1, 12, 9, body)
    assert any(c is records for c in chunks)


_KNOWN = [(0, v) for v in range(3, 13)] + [(1, v) for v in range(4, 13)] + \
    [(3, v) for v in range(0, 13)] + [(18, v) for v in range(0, 5)] + \
    [(2, v) for v in range(1, 9)] + [(22, v) for v in range(0, 6)]


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(_KNOWN), st.binary(max_size=300))
def test_arbitrary_bodies_raise_only_protocol_errors(key_version: tuple[int, int],
                                                     junk: bytes) -> None:
    """Header + body decoding of random bytes either succeeds or raises HeaderError /
    DecodeError: never anything else (which would escape as a crash)."""
    api_key, version = key_version
    payload = api_key.to_bytes(2, "big") + version.to_bytes(2, "big") + junk
    try:
        header = parse_request_header(payload)
        decode_request(api_key, version, payload, header.body_offset)
    except (HeaderError, DecodeError):
        pass
