"""KIP-590 Envelope payloads: Kafka's DefaultPrincipalData serialization, the client
address bytes and the embedded request / response framing."""

from __future__ import annotations

import pytest
from kio.schema.create_topics.v7.request import CreateTopicsRequest
from kio.schema.create_topics.v7.response import CreateTopicsResponse

from protocol import envelope
from protocol.build import build
from protocol.codec import decode_request, request_type, response_type


def test_principal_round_trip_in_kafkas_layout() -> None:
    data = envelope.serialize_principal("User:alice")
    # int16 version 0, compact "User", compact "alice", token_authenticated false, no tags
    assert data == b"\x00\x00\x05User\x06alice\x00\x00"
    assert envelope.deserialize_principal(data) == "User:alice"
    assert envelope.deserialize_principal(
        envelope.serialize_principal("User:ANONYMOUS")) == "User:ANONYMOUS"


@pytest.mark.parametrize("data", [b"", b"\x00\x01\x05User\x06alice\x00\x00",
                                  b"\x00\x00\x05Us", b"\x00\x00\x00\x06alice\x00\x00",
                                  b"\x00\x00\x05User\x06alice", b"\x00\x00\xff\xff\xff\xff\xff"])
def test_malformed_principal_is_a_value_error(data: bytes) -> None:
    with pytest.raises(ValueError):
        envelope.deserialize_principal(data)


def test_host_bytes() -> None:
    assert envelope.host_bytes("127.0.0.1") == b"\x7f\x00\x00\x01"
    assert envelope.host_text(envelope.host_bytes("::1")) == "::1"
    assert envelope.host_bytes("in-process") == b"" and envelope.host_text(b"") == ""


def test_request_and_response_data_round_trip() -> None:
    body = build(request_type(19, 7), {"timeout_ms": 1000, "validate_only": False, "topics": [
        {"name": "t", "num_partitions": 2, "replication_factor": 1, "assignments": [],
         "configs": []}]})
    assert isinstance(body, CreateTopicsRequest)
    data = envelope.request_data(19, 7, 42, "app", body)
    header = envelope.open_request(data)
    assert (header.api_key, header.api_version, header.correlation_id, header.client_id) == \
        (19, 7, 42, "app")
    assert decode_request(19, 7, data, header.body_offset) == body
    answer = build(response_type(19, 7), {"throttle_time": 250, "topics": []})
    assert isinstance(answer, CreateTopicsResponse)
    assert envelope.open_response(19, 7, envelope.response_data(19, 7, 42, answer)) == answer
