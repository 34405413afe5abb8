"""A blocking partition reader over ``KafkaClient`` (for tools; no group membership).

``PartitionReader(client, topic, positions)`` fetches from each partition's leader,
starting at ``positions[partition]`` (an absolute offset), and ``poll()`` returns the
records of one Fetch round (at most ``max_wait_ms`` of waiting), in offset order per
partition, advancing the positions past them. Control batches (transaction markers) are
skipped; with ``isolation=1`` (read_committed) the broker stops at the last stable
offset. ``high_watermarks`` holds the last high watermark seen per partition, so a caller
can tell when it has reached the end.

A trailing partial batch (a broker cut the response at ``max_bytes``) is ignored and
fetched again next round. A partition without a leader, a NOT_LEADER answer or an
unreachable leader refreshes metadata (waiting ``retry_backoff_s`` when nothing came);
``max_failures`` consecutive unreachable rounds raise ``BrokerUnreachable``.
OFFSET_OUT_OF_RANGE and other errors raise ``KafkaApiError``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from net.kafka_client import ClusterMetadata, KafkaClient, error_name
from net.session import BrokerUnreachable, ClientError, KafkaApiError
from protocol.records import (
    HEADER_SIZE,
    LOG_APPEND_TIME,
    InvalidRecordBatch,
    decode_batch_records,
    parse_header,
)

FETCH = 1
REFRESH = {"NOT_LEADER_OR_FOLLOWER", "LEADER_NOT_AVAILABLE", "UNKNOWN_LEADER_EPOCH",
           "FENCED_LEADER_EPOCH"}


@dataclass(frozen=True, slots=True)
class ConsumedRecord:
    topic: str
    partition: int
    offset: int
    timestamp: int
    timestamp_type: str  # "CreateTime" | "LogAppendTime"
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = field(default_factory=tuple)


def decode_fetched(topic: str, partition: int, data: bytes, start: int
                   ) -> tuple[list[ConsumedRecord], int]:
    """Records at offsets >= ``start`` in the fetched ``data`` and the next position
    (after the last whole batch, even when it held only control records). Pure."""
    out: list[ConsumedRecord] = []
    pos, position, size = 0, start, len(data)
    while size - pos >= HEADER_SIZE:
        h = parse_header(data, pos)
        if pos + h.size_in_bytes > size:
            break  # partial trailing batch
        if not h.is_control:
            kind = "LogAppendTime" if h.timestamp_type == LOG_APPEND_TIME else "CreateTime"
            for r in decode_batch_records(data, pos):
                if r.offset >= start:
                    out.append(ConsumedRecord(topic, partition, r.offset, r.timestamp, kind,
                                              r.key, r.value, tuple(r.headers)))
        position = max(position, h.next_offset)
        pos += h.size_in_bytes
    return out, position


class PartitionReader:
    """See the module doc."""

    def __init__(self, client: KafkaClient, topic: str, positions: Mapping[int, int], *,
                 isolation: int = 0, max_wait_ms: int = 500,
                 max_bytes: int = 8 * 1024 * 1024, partition_max_bytes: int = 1024 * 1024
                 ) -> None:
        self.client = client
        self.topic = topic
        self.positions = dict(positions)
        self.isolation = isolation
        self.max_wait_ms = max_wait_ms
        self.max_bytes = max_bytes
        self.partition_max_bytes = partition_max_bytes
        self.high_watermarks: dict[int, int] = {}
        self._metadata: ClusterMetadata | None = None
        self._failures = 0
        self.max_failures = 30  # consecutive failed fetch rounds before giving up
        self.retry_backoff_s = 0.2

    def at_end(self) -> bool:
        """True once every partition's position reached its last seen high watermark."""
        return all(p in self.high_watermarks and self.positions[p] >= self.high_watermarks[p]
                   for p in self.positions)

    def poll(self) -> list[ConsumedRecord]:
        if self._metadata is None:
            self._metadata = self.client.metadata([self.topic])
        groups = KafkaClient.by_leader(self._metadata,
                                       [(self.topic, p) for p in sorted(self.positions)])
        out: list[ConsumedRecord] = []
        refresh = False
        for leader, parts in groups.items():
            if leader < 0:
                refresh = True
                continue
            try:
                response = self._fetch(leader, parts, len(groups))
            except BrokerUnreachable as exc:  # the leader died: ask who leads now
                self.client.forget(leader)
                self._failures += 1
                if self._failures > self.max_failures:
                    raise BrokerUnreachable(f"{exc} ({self._failures} fetch rounds failed)"
                                            ) from None
                refresh = True
                continue
            self._failures = 0
            if int(response.error_code if hasattr(response, "error_code") else 0) != 0:
                raise KafkaApiError(int(response.error_code), error_name(response.error_code),
                                    f"fetch from broker {leader}: "
                                    f"{error_name(response.error_code)}")
            for t in response.responses:
                for p in t.partitions:
                    out.extend(self._take(p))
                    refresh |= error_name(p.error_code) in REFRESH
        if refresh:
            self._metadata = None
            if not out:
                time.sleep(self.retry_backoff_s)  # no leader or a dead one: do not spin
        return out

    def _fetch(self, leader: int, parts: list[tuple[str, int]], leaders: int) -> Any:
        return self.client.session(leader).call(FETCH, {
                "cluster_id": None, "replica_id": -1,
                "max_wait": self.max_wait_ms // max(leaders, 1), "min_bytes": 1,
                "max_bytes": self.max_bytes, "isolation_level": self.isolation,
                "session_id": 0, "session_epoch": -1, "rack_id": "",
                "forgotten_topics_data": [],
                "topics": [{"topic": self.topic, "partitions": [{
                    "partition": p, "current_leader_epoch": -1,
                    "fetch_offset": self.positions[p], "last_fetched_epoch": -1,
                    "log_start_offset": -1, "partition_max_bytes": self.partition_max_bytes}
                    for _, p in parts]}]}, highest=12, lowest=4)

    def _take(self, p: object) -> list[ConsumedRecord]:
        index = p.partition_index  # type: ignore[attr-defined]
        name = error_name(p.error_code)  # type: ignore[attr-defined]
        if name in REFRESH:
            return []
        if name != "NONE":
            hint = (f" (position {self.positions[index]} is outside the log; "
                    "start from --offset earliest or latest)"
                    if name == "OFFSET_OUT_OF_RANGE" else "")
            raise KafkaApiError(-1, name, f"fetch {self.topic}-{index}: {name}{hint}")
        self.high_watermarks[index] = p.high_watermark  # type: ignore[attr-defined]
        data = p.records or b""  # type: ignore[attr-defined]
        try:
            records, position = decode_fetched(self.topic, index, bytes(data),
                                               self.positions[index])
        except InvalidRecordBatch as exc:
            raise ClientError(f"fetch {self.topic}-{index}: corrupt data: {exc}") from None
        self.positions[index] = position
        return records
