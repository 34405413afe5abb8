"""The payloads of KIP-590's Envelope (API 58), in which a broker forwards a client's request
to the controller with the client's identity (pure).

- ``request_data``: the client's request as sent, header and body, without the size
  prefix (``request_data``); ``response_data``: the controller's response, header and body,
  without the size prefix (``response_data``, read back with ``open_response``);
- ``request_principal``: Kafka's ``DefaultKafkaPrincipalBuilder`` serialization, an int16
  version (0) then the flexible ``DefaultPrincipalData`` v0: compact strings ``type`` and
  ``name``, a boolean ``token_authenticated``, an empty tagged-field section
  (``serialize_principal`` / ``deserialize_principal``; ``User:alice`` <-> type ``User``,
  name ``alice``);
- ``client_host_address``: the client's IP address as 4 or 16 bytes (``host_bytes`` /
  ``host_text``).

Malformed input raises ``ValueError`` (``DecodeError`` for an undecodable body).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from protocol.codec import decode_response, encode_request, encode_response
from protocol.headers import RequestHeader, parse_request_header

_PRINCIPAL_VERSION = 0


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_uvarint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(data) or shift > 28:
            raise ValueError("truncated or oversized varint in principal data")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7


def _compact_string(text: str) -> bytes:
    raw = text.encode()
    return _uvarint(len(raw) + 1) + raw


def _read_compact_string(data: bytes, at: int) -> tuple[str, int]:
    n, at = _read_uvarint(data, at)
    if n == 0:
        raise ValueError("null string in principal data")
    end = at + n - 1
    if end > len(data):
        raise ValueError("truncated string in principal data")
    return data[at:end].decode(), end


def serialize_principal(principal: str) -> bytes:
    """``User:alice`` → Kafka's DefaultPrincipalData bytes (see the module doc)."""
    kind, _, name = principal.partition(":")
    return (_PRINCIPAL_VERSION.to_bytes(2, "big") + _compact_string(kind)
            + _compact_string(name) + b"\x00" + _uvarint(0))


def deserialize_principal(data: bytes) -> str:
    """The principal (``type:name``) of ``serialize_principal``'s bytes."""
    if len(data) < 2 or int.from_bytes(data[:2], "big") != _PRINCIPAL_VERSION:
        raise ValueError("unsupported principal data version")
    kind, at = _read_compact_string(data, 2)
    name, at = _read_compact_string(data, at)
    if at >= len(data):
        raise ValueError("truncated principal data")
    return f"{kind}:{name}"


def host_bytes(host: str) -> bytes:
    """The client's address as 4 or 16 bytes (empty when ``host`` is no IP address)."""
    try:
        return ipaddress.ip_address(host.strip("[]")).packed
    except ValueError:
        return b""


def host_text(data: bytes) -> str:
    if len(data) in (4, 16):
        return str(ipaddress.ip_address(data))
    return ""


def request_data(api_key: int, api_version: int, correlation_id: int,
                 client_id: str | None, body: Any) -> bytes:
    """The client's request (header and body) as an Envelope carries it."""
    return encode_request(api_key, api_version, correlation_id, client_id, body)[4:]


def open_request(data: bytes) -> RequestHeader:
    """The header of an Envelope's ``request_data`` (its ``body_offset`` says where the
    body starts, for ``protocol.codec.decode_request``)."""
    return parse_request_header(data)


def response_data(api_key: int, api_version: int, correlation_id: int, body: Any) -> bytes:
    """The controller's response (header and body) as an Envelope response carries it."""
    return encode_response(api_key, api_version, correlation_id, body)[4:]


def open_response(api_key: int, api_version: int, data: bytes) -> Any:
    """The response body of an Envelope's ``response_data``."""
    return decode_response(api_key, api_version, data)[1]
