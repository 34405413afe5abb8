"""Incremental fetch sessions (KIP-227), Kafka's ``FetchSessionCache``. Pure: the clock
is passed in.

A session remembers, per partition a consumer fetches, what the consumer last asked for
(fetch offset, partition max bytes, current leader epoch) and what the broker last told
it (high watermark, last stable offset, log start offset). Requests then carry only the
partitions whose fetch parameters changed, and responses only the partitions with news:
records, an error, or a changed high watermark, last stable offset or log start offset.

Request forms (``session_id``, ``session_epoch``):

- ``(0, -1)``: sessionless, a full request and a full response;
- ``(0, 0)``: open a session holding the request's partitions; full response with the
  new ``session_id`` (0 when the cache is full: the client goes on sessionless);
- ``(id, 0)``: close session ``id`` and open a new one as above;
- ``(id, -1)``: close session ``id``; a sessionless full fetch;
- ``(id, n > 0)``: incremental: the request's partitions are added or updated, its
  ``forgotten_topics_data`` removed; FETCH_SESSION_ID_NOT_FOUND for an unknown id,
  INVALID_FETCH_SESSION_EPOCH unless ``n`` is the session's next epoch. Every answered
  request advances the epoch by one.

Partitions are read in session order; one that returned records moves to the end so the
next fetch starts with the others (fairness under ``max_bytes``). The cache holds at most
``max_slots`` sessions; when full, the least recently used session is evicted if it has
been idle for ``eviction_ms``, otherwise no session is created.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from dataclasses import dataclass

Key = tuple[str, int]

#: Kafka's max.incremental.fetch.session.cache.slots and min.incremental.fetch.session.
#: eviction.ms
MAX_SLOTS = 1000
EVICTION_MS = 120_000


@dataclass(slots=True)
class SessionPartition:
    fetch_offset: int
    partition_max_bytes: int
    current_leader_epoch: int = -1
    #: what the last response said (-2: never sent, so the next response includes it)
    high_watermark: int = -2
    last_stable_offset: int = -2
    log_start_offset: int = -2

    def changed(self, response: dict) -> bool:
        """Whether ``response`` (a partition of a Fetch response) has news for the client;
        records what it said."""
        news = (bool(response["records"]) or response["error_code"] != 0
                or response["high_watermark"] != self.high_watermark
                or response["last_stable_offset"] != self.last_stable_offset
                or response["log_start_offset"] != self.log_start_offset)
        self.high_watermark = response["high_watermark"]
        self.last_stable_offset = response["last_stable_offset"]
        self.log_start_offset = response["log_start_offset"]
        return news


@dataclass(slots=True)
class FetchSession:
    session_id: int
    #: the epoch the next incremental request must carry
    next_epoch: int
    partitions: OrderedDict[Key, SessionPartition]
    last_used_ms: int

    def served(self, with_records: list[Key], now_ms: int) -> None:
        """After an incremental response: advance the epoch; partitions that returned
        records move to the end."""
        self.next_epoch = self.next_epoch + 1 if self.next_epoch < 0x7FFFFFFF else 1
        self.last_used_ms = now_ms
        for key in with_records:
            self.partitions.move_to_end(key)


class FetchSessionCache:
    def __init__(self, max_slots: int = MAX_SLOTS, eviction_ms: int = EVICTION_MS) -> None:
        self.max_slots = max_slots
        self.eviction_ms = eviction_ms
        self._sessions: OrderedDict[int, FetchSession] = OrderedDict()  # LRU first
        self._ids = itertools.count(1)

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, session_id: int, now_ms: int) -> FetchSession | None:
        session = self._sessions.get(session_id)
        if session is not None:
            session.last_used_ms = now_ms
            self._sessions.move_to_end(session_id)
        return session

    def remove(self, session_id: int) -> None:
        self._sessions.pop(session_id, None)

    def create(self, partitions: OrderedDict[Key, SessionPartition], now_ms: int
               ) -> FetchSession | None:
        """A new session (its first incremental request carries epoch 1), or None when
        the cache is full of sessions used within ``eviction_ms``."""
        if len(self._sessions) >= self.max_slots:
            oldest = next(iter(self._sessions.values()))
            if now_ms - oldest.last_used_ms < self.eviction_ms:
                return None
            self._sessions.popitem(last=False)
        session_id = next(self._ids)
        while session_id in self._sessions or session_id > 0x7FFFFFFF:
            if session_id > 0x7FFFFFFF:
                self._ids = itertools.count(1)
            session_id = next(self._ids)
        session = FetchSession(session_id, 1, partitions, now_ms)
        self._sessions[session_id] = session
        return session
