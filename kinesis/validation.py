"""Request shapes of the supported operations and their checks, as Kinesis applies them.

A decoded body (``codec``) is checked against the operation's fields:

- a field of the wrong JSON type (a number for a string, a string for a structure, a
  non-base64 blob) is a ``SerializationException``, as AWS's deserializer answers;
- a missing required field, a length, range, pattern or enum violation is a
  ``ValidationException`` whose message names the field in AWS's words
  (``1 validation error detected: Value null at 'shardId' failed to satisfy constraint:
  Member must not be null``);
- unknown fields are ignored (AWS does the same).

``check(op, body, max_record_bytes)`` returns a new dict with blobs decoded to bytes and
timestamps to milliseconds since the epoch.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kinesis.errors import KinesisError, serialization

STREAM_NAME = re.compile(r"[a-zA-Z0-9_.-]+")
STREAM_ARN = re.compile(r"arn:aws[a-z-]*:kinesis:[a-z0-9-]*:\d{12}:stream/([a-zA-Z0-9_.-]+)")
CONSUMER_ARN = re.compile(r"(arn:aws[a-z-]*:kinesis:[a-z0-9-]*:\d{12}:stream/[a-zA-Z0-9_.-]+)"
                          r"/consumer/([a-zA-Z0-9_.-]+):(\d+)")
HASH_KEY = re.compile(r"0|[1-9]\d{0,38}")
SEQUENCE = re.compile(r"0|[1-9]\d{0,128}")
SHARD_ID = re.compile(r"[a-zA-Z0-9_.-]+")
TAG_KEY_MAX = 128
TAG_VALUE_MAX = 256
ITERATOR_TYPES = ("AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER", "TRIM_HORIZON", "LATEST",
                  "AT_TIMESTAMP")
STREAM_MODES = ("PROVISIONED", "ON_DEMAND")
SHARD_FILTER_TYPES = ("AFTER_SHARD_ID", "AT_TRIM_HORIZON", "FROM_TRIM_HORIZON", "AT_LATEST",
                      "AT_TIMESTAMP", "FROM_TIMESTAMP")


@dataclass(frozen=True, slots=True)
class F:
    """One field: ``kind`` is str, int, bool, blob, timestamp, struct, list or map."""

    kind: str
    required: bool = False
    min_len: int | None = None
    max_len: int | None = None
    pattern: re.Pattern[str] | None = None
    enum: tuple[str, ...] | None = None
    lo: int | None = None
    hi: int | None = None
    members: Mapping[str, F] | None = None  # struct members; list item struct members
    item: F | None = None  # list items


def _name(required: bool = False) -> F:
    return F("str", required, 1, 128, STREAM_NAME)


_STREAM = {"StreamName": _name(), "StreamARN": F("str", False, 1, 2048)}
_ENTRY = {"Data": F("blob", True), "PartitionKey": F("str", True, 1, 256),
          "ExplicitHashKey": F("str", False, pattern=HASH_KEY)}
_TAGS = F("map", min_len=1, max_len=50)

OPERATIONS: dict[str, dict[str, F]] = {
    "CreateStream": {"StreamName": _name(True), "ShardCount": F("int", lo=1, hi=100_000),
                     "StreamModeDetails": F("struct", members={
                         "StreamMode": F("str", True, enum=STREAM_MODES)}),
                     "Tags": _TAGS},
    "DeleteStream": {**_STREAM, "EnforceConsumerDeletion": F("bool")},
    "ListStreams": {"Limit": F("int", lo=1, hi=10_000),
                    "ExclusiveStartStreamName": _name(), "NextToken": F("str", False, 1, 1048576)},
    "DescribeStream": {**_STREAM, "Limit": F("int", lo=1, hi=10_000),
                       "ExclusiveStartShardId": F("str", False, 1, 128, SHARD_ID)},
    "DescribeStreamSummary": dict(_STREAM),
    "ListShards": {**_STREAM, "NextToken": F("str", False, 1, 1048576),
                   "ExclusiveStartShardId": F("str", False, 1, 128, SHARD_ID),
                   "MaxResults": F("int", lo=1, hi=10_000),
                   "StreamCreationTimestamp": F("timestamp"),
                   "ShardFilter": F("struct", members={
                       "Type": F("str", True, enum=SHARD_FILTER_TYPES),
                       "ShardId": F("str", False, 1, 128, SHARD_ID),
                       "Timestamp": F("timestamp")})},
    "PutRecord": {**_STREAM, **_ENTRY, "SequenceNumberForOrdering": F("str", pattern=SEQUENCE)},
    "PutRecords": {**_STREAM, "Records": F("list", True, 1, 500,
                                           item=F("struct", members=_ENTRY))},
    "GetShardIterator": {**_STREAM, "ShardId": F("str", True, 1, 128, SHARD_ID),
                         "ShardIteratorType": F("str", True, enum=ITERATOR_TYPES),
                         "StartingSequenceNumber": F("str", pattern=SEQUENCE),
                         "Timestamp": F("timestamp")},
    "GetRecords": {"ShardIterator": F("str", True, 1, 512), "Limit": F("int", lo=1, hi=10_000),
                   "StreamARN": F("str", False, 1, 2048)},
    "AddTagsToStream": {**_STREAM, "Tags": F("map", True, 1, 50)},
    "RemoveTagsFromStream": {**_STREAM, "TagKeys": F("list", True, 1, 50,
                                                     item=F("str", True, 1, TAG_KEY_MAX))},
    "ListTagsForStream": {**_STREAM, "ExclusiveStartTagKey": F("str", False, 1, TAG_KEY_MAX),
                          "Limit": F("int", lo=1, hi=50)},
    "IncreaseStreamRetentionPeriod": {**_STREAM, "RetentionPeriodHours": F("int", True)},
    "DecreaseStreamRetentionPeriod": {**_STREAM, "RetentionPeriodHours": F("int", True)},
    "DescribeLimits": {},
    "SubscribeToShard": {"ConsumerARN": F("str", True, 1, 2048),
                         "ShardId": F("str", True, 1, 128, SHARD_ID),
                         "StartingPosition": F("struct", True, members={
                             "Type": F("str", True, enum=ITERATOR_TYPES),
                             "SequenceNumber": F("str", pattern=SEQUENCE),
                             "Timestamp": F("timestamp")})},
    "RegisterStreamConsumer": {"StreamARN": F("str", True, 1, 2048),
                               "ConsumerName": F("str", True, 1, 128, STREAM_NAME)},
    "DescribeStreamConsumer": {"StreamARN": F("str", False, 1, 2048),
                               "ConsumerName": F("str", False, 1, 128, STREAM_NAME),
                               "ConsumerARN": F("str", False, 1, 2048)},
    "DeregisterStreamConsumer": {"StreamARN": F("str", False, 1, 2048),
                                 "ConsumerName": F("str", False, 1, 128, STREAM_NAME),
                                 "ConsumerARN": F("str", False, 1, 2048)},
    "ListStreamConsumers": {"StreamARN": F("str", True, 1, 2048),
                            "NextToken": F("str", False, 1, 1048576),
                            "MaxResults": F("int", lo=1, hi=10_000),
                            "StreamCreationTimestamp": F("timestamp")},
    "SplitShard": {**_STREAM, "ShardToSplit": F("str", True, 1, 128, SHARD_ID),
                   "NewStartingHashKey": F("str", True, pattern=HASH_KEY)},
    "MergeShards": {**_STREAM, "ShardToMerge": F("str", True, 1, 128, SHARD_ID),
                    "AdjacentShardToMerge": F("str", True, 1, 128, SHARD_ID)},
    "UpdateShardCount": {**_STREAM, "TargetShardCount": F("int", True, lo=1, hi=100_000),
                         "ScalingType": F("str", True, enum=("UNIFORM_SCALING",))},
    "UpdateStreamMode": {"StreamARN": F("str", True, 1, 2048),
                         "StreamModeDetails": F("struct", True, members={
                             "StreamMode": F("str", True, enum=STREAM_MODES)})},
}


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _violation(value: Any, path: str, constraint: str) -> KinesisError:
    shown = "null" if value is None else f"'{value}'"
    return KinesisError("ValidationException",
                        f"1 validation error detected: Value {shown} at '{path}' failed to "
                        f"satisfy constraint: {constraint}")


def _blob(value: Any, path: str) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if not isinstance(value, str):
        raise serialization(f"Expected a base64 string for '{path}'")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise serialization(f"Base64 encoded bytes expected for '{path}'") from None


def _timestamp_ms(value: Any, path: str) -> int:
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.UTC)
        return int(value.timestamp() * 1000)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise serialization(f"Expected a timestamp (epoch seconds) for '{path}'")
    return round(value * 1000)


def _field(spec: F, value: Any, path: str, max_record_bytes: int) -> Any:
    kind = spec.kind
    if kind == "str":
        if not isinstance(value, str):
            raise serialization(f"Expected a string for '{path}'")
        if spec.min_len is not None and len(value) < spec.min_len:
            raise _violation(value, path, f"Member must have length greater than or equal "
                                          f"to {spec.min_len}")
        if spec.max_len is not None and len(value) > spec.max_len:
            raise _violation(value, path, f"Member must have length less than or equal to "
                                          f"{spec.max_len}")
        if spec.enum is not None and value not in spec.enum:
            raise _violation(value, path, "Member must satisfy enum value set: "
                                          f"[{', '.join(spec.enum)}]")
        if spec.pattern is not None and not spec.pattern.fullmatch(value):
            raise _violation(value, path, "Member must satisfy regular expression pattern: "
                                          f"{spec.pattern.pattern}")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise serialization(f"Expected an integer for '{path}'")
        if spec.lo is not None and value < spec.lo:
            raise _violation(value, path, f"Member must have value greater than or equal "
                                          f"to {spec.lo}")
        if spec.hi is not None and value > spec.hi:
            raise _violation(value, path, f"Member must have value less than or equal to "
                                          f"{spec.hi}")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise serialization(f"Expected a boolean for '{path}'")
        return value
    if kind == "blob":
        data = _blob(value, path)
        if len(data) > max_record_bytes:
            raise _violation("java.nio.HeapByteBuffer", path,
                             f"Member must have length less than or equal to "
                             f"{max_record_bytes}")
        return data
    if kind == "timestamp":
        return _timestamp_ms(value, path)
    if kind == "struct":
        if not isinstance(value, dict):
            raise serialization(f"Expected a structure for '{path}'")
        return _struct(spec.members or {}, value, path + ".", max_record_bytes)
    if kind == "list":
        if not isinstance(value, list):
            raise serialization(f"Expected a list for '{path}'")
        if spec.min_len is not None and len(value) < spec.min_len:
            raise _violation(value if value else "[]", path,
                             f"Member must have length greater than or equal to "
                             f"{spec.min_len}")
        if spec.max_len is not None and len(value) > spec.max_len:
            raise _violation(f"[{len(value)} items]", path,
                             f"Member must have length less than or equal to "
                             f"{spec.max_len}")
        assert spec.item is not None
        if spec.item.members is _ENTRY:
            return _entries(spec.item, value, path, max_record_bytes)
        return [_field(spec.item, v, f"{path}.{i + 1}.member", max_record_bytes)
                for i, v in enumerate(value)]
    if kind == "map":
        if not isinstance(value, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise serialization(f"Expected a map of strings for '{path}'")
        if spec.min_len is not None and len(value) < spec.min_len:
            raise _violation("{}", path, f"Member must have length greater than or equal "
                                         f"to {spec.min_len}")
        if spec.max_len is not None and len(value) > spec.max_len:
            raise _violation(f"{{{len(value)} entries}}", path,
                             f"Member must have length less than or equal to "
                             f"{spec.max_len}")
        for k, v in value.items():
            if not 1 <= len(k) <= TAG_KEY_MAX:
                raise _violation(k, path, f"Map keys must have length between 1 and "
                                          f"{TAG_KEY_MAX}")
            if len(v) > TAG_VALUE_MAX:
                raise _violation(v, path, f"Map values must have length less than or "
                                          f"equal to {TAG_VALUE_MAX}")
        return dict(value)
    raise AssertionError(kind)


def _entries(spec: F, items: list[Any], path: str, max_record_bytes: int
             ) -> list[dict[str, Any]]:
    """PutRecords entries: the common well-formed entry checked inline (PutRecords' hot
    path); any other goes through ``_field``, which names what is wrong."""
    out: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        if type(item) is dict:
            data, key = item.get("Data"), item.get("PartitionKey")
            explicit = item.get("ExplicitHashKey")
            if type(key) is str and 0 < len(key) <= 256 and (
                    explicit is None or (type(explicit) is str
                                         and HASH_KEY.fullmatch(explicit))):
                raw: bytes | None = None
                if type(data) is str:
                    try:
                        raw = binascii.a2b_base64(data, strict_mode=True)
                    except binascii.Error:
                        raw = None
                elif type(data) is bytes:
                    raw = data
                if raw is not None and len(raw) <= max_record_bytes:
                    entry = {"Data": raw, "PartitionKey": key}
                    if explicit is not None:
                        entry["ExplicitHashKey"] = explicit
                    out.append(entry)
                    continue
        out.append(_field(spec, item, f"{path}.{i + 1}.member", max_record_bytes))
    return out


def _struct(members: Mapping[str, F], body: Mapping[str, Any], prefix: str,
            max_record_bytes: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, spec in members.items():
        value = body.get(name)
        path = prefix + _camel(name)
        if value is None:
            if spec.required:
                raise _violation(None, path, "Member must not be null")
            continue
        out[name] = _field(spec, value, path, max_record_bytes)
    return out


def check(operation: str, body: Any, max_record_bytes: int) -> dict[str, Any]:
    """The checked request of ``operation`` (one of ``OPERATIONS``)."""
    if not isinstance(body, dict):
        raise serialization("Start of structure or map found where not expected.")
    return _struct(OPERATIONS[operation], body, "", max_record_bytes)


def stream_name(request: Mapping[str, Any]) -> str:
    """The stream a request names by StreamName or StreamARN."""
    name = request.get("StreamName")
    arn = request.get("StreamARN")
    if arn is not None:
        m = STREAM_ARN.fullmatch(arn)
        if m is None:
            raise _violation(arn, "streamARN", "Member must satisfy regular expression "
                                               f"pattern: {STREAM_ARN.pattern}")
        if name is not None and name != m.group(1):
            raise KinesisError("InvalidArgumentException",
                               "StreamName and StreamARN name different streams.")
        return m.group(1)
    if name is None:
        raise KinesisError("InvalidArgumentException",
                           "Either StreamName or StreamARN should be provided.")
    return name
