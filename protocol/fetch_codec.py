"""Hand-written encoders for the two messages of the replication hot path: FetchRequest
v12 (what replica fetchers send) and FetchResponse v4-v12 (what every fetch is answered
with). Byte for byte what kio's generic writers produce for the same values (the unit
tests compare them), at a fraction of the cost: kio's writer walks the schema and checks
every field's type per call. Measured on the 2-core box (best of 5, one partition, 1 MB
of records): a response built and encoded with kio 80 µs, here 20 µs; a replica fetch
request 64 µs with kio entities, 25 µs here (then ~5 µs with
``protocol.codec.request_header``). Every follower costs its leader one of each per
produce round.

Both return an ``EncodedBody``: the message body as buffers, record sets by reference
(never copied), carrying ``__api_key__``/``__version__`` as kio entities do, so
``protocol.codec.encode_request``/``encode_response_chunks`` and ``net.client`` accept it
in place of an entity.

Wire formats (Kafka's protocol guide): int8/16/32/64 big-endian; before v12 strings are
int16 length + UTF-8, arrays int32 count (-1 null), records int32 length (-1 null); v12 is
flexible: unsigned-varint length + 1 (0 null) for compact strings, arrays and records, and
a tagged-field section (varint count, then varint tag, varint size, data) after every
structure. Only fields whose value differs from the default are written as tagged fields,
as kio does.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

FETCH_KEY = 1
#: records at least this large are kept by reference (protocol.codec.LARGE_WRITE)
LARGE_RECORDS = 32 * 1024

_H = struct.Struct(">h")
_I = struct.Struct(">i")
_Q = struct.Struct(">q")
_IHQQ = struct.Struct(">ihqq")  # partition index, error code, high watermark, LSO
_QQ = struct.Struct(">qq")
_IIIIBII = struct.Struct(">iiiibii")  # fetch request v12 head
_IIQIQI = struct.Struct(">iiqiqi")  # fetch request v12 partition
_IQ = struct.Struct(">iq")


class EncodedBody:
    """A request or response body already encoded: ``chunks`` in order (large record
    sets by reference)."""

    __slots__ = ("chunks", "__api_key__", "__version__")

    def __init__(self, api_key: int, version: int,
                 chunks: list[bytes | bytearray | memoryview]) -> None:
        self.__api_key__ = api_key
        self.__version__ = version
        self.chunks = chunks

    @property
    def size(self) -> int:
        return sum(len(c) for c in self.chunks)

    def to_bytes(self) -> bytes:
        return b"".join(bytes(c) if isinstance(c, memoryview) else c for c in self.chunks)


def _uvarint(value: int) -> bytes:
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _string(buf: bytearray, value: str, flexible: bool) -> None:
    data = value.encode()
    if flexible:
        buf += _uvarint(len(data) + 1)
    else:
        buf += _H.pack(len(data))
    buf += data


def _nullable_string(buf: bytearray, value: str | None, flexible: bool) -> None:
    if value is None:
        buf += b"\0" if flexible else b"\xff\xff"
    else:
        _string(buf, value, flexible)


def _count(buf: bytearray, n: int, flexible: bool) -> None:
    buf += _uvarint(n + 1) if flexible else _I.pack(n)


def encode_fetch_request(
    *, replica_id: int, max_wait_ms: int, min_bytes: int, max_bytes: int,
    isolation_level: int, session_id: int, session_epoch: int,
    topics: Sequence[tuple[str, Sequence[tuple[int, int, int, int, int, int]]]],
    forgotten: Sequence[tuple[str, Sequence[int]]] = (), rack_id: str = "",
    cluster_id: str | None = None,
) -> EncodedBody:
    """FetchRequest v12. ``topics``: (topic, partitions) with each partition as (index,
    current leader epoch, fetch offset, last fetched epoch, log start offset, partition
    max bytes); ``forgotten``: (topic, partition indexes)."""
    buf = bytearray(_IIIIBII.pack(replica_id, max_wait_ms, min_bytes, max_bytes,
                                  isolation_level, session_id, session_epoch))
    buf += _uvarint(len(topics) + 1)
    for topic, partitions in topics:
        _string(buf, topic, True)
        buf += _uvarint(len(partitions) + 1)
        for index, leader_epoch, offset, last_epoch, log_start, part_max in partitions:
            buf += _IIQIQI.pack(index, leader_epoch, offset, last_epoch, log_start, part_max)
            buf += b"\0"  # no tagged fields
        buf += b"\0"
    buf += _uvarint(len(forgotten) + 1)
    for topic, indexes in forgotten:
        _string(buf, topic, True)
        buf += _uvarint(len(indexes) + 1)
        for index in indexes:
            buf += _I.pack(index)
        buf += b"\0"
    _string(buf, rack_id, True)
    if cluster_id is None:
        buf += b"\0"
    else:
        field = bytearray()
        _string(field, cluster_id, True)
        buf += b"\x01\x00" + _uvarint(len(field)) + field
    return EncodedBody(FETCH_KEY, 12, [buf])


def _epoch_end_offset(value: Mapping[str, Any] | None) -> tuple[int, int]:
    if value is None:
        return -1, -1
    return int(value.get("epoch", -1)), int(value.get("end_offset", -1))


def _partition(buf: bytearray, chunks: list[Any], p: Mapping[str, Any], version: int,
               flexible: bool) -> bytearray:
    """Append one PartitionData; returns the bytearray to continue in (a large record set
    closes the current one)."""
    buf += _IHQQ.pack(p["partition_index"], int(p["error_code"]), p["high_watermark"],
                      p["last_stable_offset"])
    if version >= 5:
        buf += _Q.pack(p["log_start_offset"])
    aborted = p.get("aborted_transactions")
    if aborted is None:
        buf += b"\0" if flexible else b"\xff\xff\xff\xff"
    else:
        _count(buf, len(aborted), flexible)
        for txn in aborted:
            buf += _QQ.pack(txn["producer_id"], txn["first_offset"])
            if flexible:
                buf += b"\0"
    if version >= 11:
        buf += _I.pack(p.get("preferred_read_replica", -1))
    records = p.get("records")
    if records is None:
        buf += b"\0" if flexible else b"\xff\xff\xff\xff"
    else:
        size = len(records)
        buf += _uvarint(size + 1) if flexible else _I.pack(size)
        if size >= LARGE_RECORDS:
            chunks.append(buf)
            chunks.append(records)
            buf = bytearray()
        else:
            buf += records
    if flexible:
        tags = []
        epoch, end = _epoch_end_offset(p.get("diverging_epoch"))
        if (epoch, end) != (-1, -1):
            tags.append((0, _IQ.pack(epoch, end) + b"\0"))
        leader = p.get("current_leader")
        if leader is not None:
            leader_id, leader_epoch = int(leader.get("leader_id", -1)), \
                int(leader.get("leader_epoch", -1))
            if (leader_id, leader_epoch) != (-1, -1):
                tags.append((1, _I.pack(leader_id) + _I.pack(leader_epoch) + b"\0"))
        snapshot = p.get("snapshot_id")
        if snapshot is not None:
            end_offset, snap_epoch = int(snapshot.get("end_offset", -1)), \
                int(snapshot.get("epoch", -1))
            if (end_offset, snap_epoch) != (-1, -1):
                tags.append((2, _Q.pack(end_offset) + _I.pack(snap_epoch) + b"\0"))
        buf += _uvarint(len(tags))
        for tag, data in tags:
            buf += _uvarint(tag) + _uvarint(len(data)) + data
    return buf


def encode_fetch_response(version: int, values: Mapping[str, Any]) -> EncodedBody:
    """FetchResponse v4-v12 from the values ``protocol.build.build`` takes:
    ``throttle_time`` (ms), ``error_code``, ``session_id``, ``responses`` (each with
    ``topic`` and ``partitions``: dicts with kio's PartitionData field names; missing
    optional fields take their defaults)."""
    if not 4 <= version <= 12:
        raise ValueError(f"FetchResponse v{version} is not encoded here")
    flexible = version >= 12
    chunks: list[Any] = []
    buf = bytearray(_I.pack(int(values.get("throttle_time", 0))))
    if version >= 7:
        buf += _H.pack(int(values.get("error_code", 0)))
        buf += _I.pack(int(values.get("session_id", 0)))
    responses: Iterable[Mapping[str, Any]] = values.get("responses", ())
    responses = list(responses)
    _count(buf, len(responses), flexible)
    for topic in responses:
        _string(buf, topic["topic"], flexible)
        partitions = list(topic["partitions"])
        _count(buf, len(partitions), flexible)
        for p in partitions:
            buf = _partition(buf, chunks, p, version, flexible)
        if flexible:
            buf += b"\0"
    if flexible:
        buf += b"\0"
    chunks.append(buf)
    return EncodedBody(FETCH_KEY, version, [c for c in chunks if len(c)])
