"""Request/response header selection and parsing (sans-I/O).

Request header layouts (schemas from kio)::

    v1 (non-flexible request):  api_key:int16 api_version:int16 correlation_id:int32
                                client_id:nullable legacy string (int16 length)
    v2 (flexible request):      v1 fields + tagged fields (uvarint count ...)

``client_id`` stays a *legacy* nullable string even in v2 (Kafka special-cases it so any
broker can read the first fields of any request).

Response header layouts::

    v0: correlation_id:int32
    v1: correlation_id:int32 + tagged fields          (flexible responses)

The ApiVersions response header is always v0, whatever the version, so a client can
parse it before it knows which versions the broker speaks.

Header versions are derived from kio's schemas: a request version is *flexible* when kio
marks it so. For a version kio does not know (a client newer than us, or a removed old
version), flexibility is extrapolated from the API's first flexible version, which is how
Kafka's generated ``requestHeaderVersion`` behaves.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from kio.index import load_request_schema, load_response_schema
from kio.schema.index import api_key_map, schema_name_map
from kio.schema.request_header.v1.header import RequestHeader as RequestHeaderV1
from kio.schema.request_header.v2.header import RequestHeader as RequestHeaderV2
from kio.schema.response_header.v0.header import ResponseHeader as ResponseHeaderV0
from kio.schema.response_header.v1.header import ResponseHeader as ResponseHeaderV1
from kio.serial import entity_reader, entity_writer
from kio.serial.readers import read_int16

API_VERSIONS_KEY = 18

_read_header_v1 = entity_reader(RequestHeaderV1)
_read_header_v2 = entity_reader(RequestHeaderV2)
_write_response_header_v0 = entity_writer(ResponseHeaderV0)
_write_response_header_v1 = entity_writer(ResponseHeaderV1)


class HeaderError(ValueError):
    """The frame does not start with a readable request header."""


@dataclass(frozen=True, slots=True)
class RequestHeader:
    """A parsed request header plus where the body starts in the frame."""

    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    header_version: int
    body_offset: int


@functools.cache
def _first_flexible_version(api_key: int) -> int | None:
    """Lowest request version kio marks flexible for ``api_key`` (None: never/unknown)."""
    name = api_key_map.get(api_key)
    if name is None:
        return None
    for version in sorted(schema_name_map[name]):
        if load_request_schema(api_key, version).__flexible__:
            return version
    return None


@functools.cache
def request_header_version(api_key: int, api_version: int) -> int:
    """Header version (1 or 2) a client uses for this request."""
    first = _first_flexible_version(api_key)
    return 2 if first is not None and api_version >= first else 1


@functools.cache
def response_header_version(api_key: int, api_version: int) -> int:
    """Header version (0 or 1) of the response; ApiVersions is always 0."""
    if api_key == API_VERSIONS_KEY:
        return 0
    try:
        flexible = load_response_schema(api_key, api_version).__flexible__
    except Exception:
        return 1 if request_header_version(api_key, api_version) == 2 else 0
    return 1 if flexible else 0


def peek_api_key_version(frame: bytes | bytearray | memoryview) -> tuple[int, int]:
    """Read just ``api_key`` and ``api_version`` (raises HeaderError if too short)."""
    if len(frame) < 4:
        raise HeaderError(f"frame of {len(frame)} bytes is too short for a request header")
    api_key, _ = read_int16(frame, 0)
    api_version, _ = read_int16(frame, 2)
    return int(api_key), int(api_version)


def parse_request_header(frame: bytes | bytearray | memoryview) -> RequestHeader:
    """Parse the request header at the start of ``frame``.

    Unknown API keys are parsed as header v1 (the fields every version shares), so the
    caller can still log the correlation id before closing the connection.
    """
    api_key, api_version = peek_api_key_version(frame)
    header_version = request_header_version(api_key, api_version)
    reader = _read_header_v2 if header_version == 2 else _read_header_v1
    try:
        header, size = reader(frame, 0)
    except Exception as exc:  # kio raises BufferUnderflow/ValueError/UnicodeDecodeError
        raise HeaderError(f"unreadable request header: {exc}") from exc
    return RequestHeader(
        api_key=api_key,
        api_version=api_version,
        correlation_id=int(header.correlation_id),
        client_id=header.client_id,
        header_version=header_version,
        body_offset=size,
    )


def write_response_header(
    buffer: Any, api_key: int, api_version: int, correlation_id: int
) -> None:
    """Write the response header for (api_key, api_version) into ``buffer`` (anything
    with ``write(bytes)``)."""
    if response_header_version(api_key, api_version) == 1:
        _write_response_header_v1(buffer, ResponseHeaderV1(correlation_id=correlation_id))
    else:
        _write_response_header_v0(buffer, ResponseHeaderV0(correlation_id=correlation_id))
