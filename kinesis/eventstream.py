"""AWS event-stream messages (``application/vnd.amazon.eventstream``), the framing of
SubscribeToShard's answer, encoded as botocore's ``EventStreamBuffer`` reads them:

    total length:u32 | headers length:u32 | CRC-32 of the previous 8 bytes:u32 |
    headers | payload | CRC-32 of everything before:u32

Each header is ``name length:u8 | name | type:u8 (7 = string) | value length:u16 | value``
(big-endian throughout). SubscribeToShard sends an ``initial-response`` event, then
``SubscribeToShardEvent`` events with JSON payloads; a failure is an ``exception``
message naming the error type.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

CONTENT_TYPE = "application/vnd.amazon.eventstream"
_STRING = 7


def _headers(headers: Sequence[tuple[str, str]]) -> bytes:
    out = bytearray()
    for name, value in headers:
        raw_name, raw_value = name.encode("utf-8"), value.encode("utf-8")
        out += struct.pack(">B", len(raw_name)) + raw_name
        out += struct.pack(">BH", _STRING, len(raw_value)) + raw_value
    return bytes(out)


def message(headers: Sequence[tuple[str, str]], payload: bytes) -> bytes:
    head = _headers(headers)
    total = 12 + len(head) + len(payload) + 4
    prelude = struct.pack(">II", total, len(head))
    body = prelude + struct.pack(">I", zlib.crc32(prelude)) + head + payload
    return body + struct.pack(">I", zlib.crc32(body))


def event(event_type: str, payload: bytes) -> bytes:
    return message([(":message-type", "event"), (":event-type", event_type),
                    (":content-type", "application/json")], payload)


def exception(error_type: str, payload: bytes) -> bytes:
    return message([(":message-type", "exception"), (":exception-type", error_type),
                    (":content-type", "application/json")], payload)
