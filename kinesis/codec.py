"""Request and response bodies: AWS JSON 1.1 and CBOR (the AWS SDK for Java's default).

- JSON (``application/x-amz-json-1.1``, also ``application/json``): blobs are base64
  strings, timestamps epoch seconds as a number.
- CBOR (``application/x-amz-cbor-1.1``): blobs are byte strings, timestamps epoch
  milliseconds (tag 1 on the way out, as the Java SDK writes and reads them).

Responses are built from plain values where ``bytes`` is a blob and ``Timestamp`` a
point in time; ``decode`` raises SerializationException on malformed bodies.
"""

from __future__ import annotations

import base64
from typing import Any

import cbor2
import orjson

from kinesis.errors import serialization

JSON = "application/x-amz-json-1.1"
CBOR = "application/x-amz-cbor-1.1"


class Timestamp:
    """A point in time in milliseconds since the epoch (a plain class: orjson would
    serialize a dataclass itself instead of asking ``default``)."""

    __slots__ = ("ms",)

    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Timestamp) and other.ms == self.ms

    def __hash__(self) -> int:
        return hash(self.ms)


def is_cbor(content_type: str) -> bool:
    return content_type.split(";")[0].strip().lower() == CBOR


def decode(content_type: str, body: bytes) -> Any:
    if not body:
        return {}
    if is_cbor(content_type):
        try:
            return cbor2.loads(body, semantic_decoders={1: _epoch_millis}, max_depth=32,
                               strict_hashable_types=True)
        except Exception:  # cbor2 raises several types (CBORDecodeError, ValueError...)
            raise serialization("Malformed CBOR body.") from None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise serialization("Start of structure or map found where not expected.") from None


def _epoch_millis(value: Any, *_immutable: Any) -> Any:
    """Tag 1 as the Java SDK writes it (epoch milliseconds) -> epoch seconds, the unit
    validation reads timestamps in (cbor2 6 passes the tagged value, already decoded)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("tag 1 must hold a number")
    return value / 1000


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, Timestamp):
        return value.ms / 1000
    raise TypeError(type(value).__name__)


def _cbor_default(encoder: Any, value: Any) -> None:
    if isinstance(value, Timestamp):
        encoder.encode(cbor2.CBORTag(1, value.ms))
        return
    if isinstance(value, memoryview):
        encoder.encode(bytes(value))
        return
    raise cbor2.CBOREncodeError(f"cannot encode {type(value).__name__}")


def encode(cbor: bool, value: Any) -> bytes:
    if cbor:
        return cbor2.dumps(value, default=_cbor_default)
    return orjson.dumps(value, default=_json_default)
