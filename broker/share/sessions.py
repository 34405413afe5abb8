"""Share sessions (KIP-932's ``ShareSessionCache``) on a partition leader. Pure.

A share session is keyed by (group id, member id) and remembers the partitions a member
fetches, so that incremental ShareFetch requests only name changes. ``ShareSessionEpoch``
in each request, as Kafka 4.2 defines it:

- ``0`` opens a session (replacing one the member had) with the request's partitions;
  acknowledgements are not allowed in that request (INVALID_REQUEST).
- ``-1`` closes it: acknowledgements are applied, then the records the member still holds
  on the session's partitions are released; nothing is fetched.
- any other value must be the session's next epoch (the previous one plus one, wrapping
  from 2^31-1 to 1): INVALID_SHARE_SESSION_EPOCH otherwise, SHARE_SESSION_NOT_FOUND when
  the member has no session. The request's topics are added to the session and
  ``forgotten_topics_data`` removed from it.

At most ``group.share.max.share.sessions`` sessions: when full, a new session takes the
place of the least recently used one idle for ``idle_ms`` (a member that died without
closing its session), else SHARE_SESSION_LIMIT_REACHED. Time is ``now_ms`` passed in.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

INITIAL_EPOCH, FINAL_EPOCH = 0, -1
NONE = 0
SHARE_SESSION_NOT_FOUND = 122
INVALID_SHARE_SESSION_EPOCH = 123
SHARE_SESSION_LIMIT_REACHED = 133

SessionKey = tuple[str, str]  # (group id, member id)
SharePartitionKey = tuple[uuid.UUID, int]  # (topic id, partition)


def next_epoch(epoch: int) -> int:
    return 1 if epoch >= 2**31 - 1 else epoch + 1


@dataclass(slots=True)
class ShareSession:
    group_id: str
    member_id: str
    #: the epoch the next request must carry
    expected_epoch: int = 1
    partitions: dict[SharePartitionKey, None] = field(default_factory=dict)
    last_used_ms: int = 0


class ShareSessionCache:
    def __init__(self, max_sessions: int = 2000, idle_ms: int = 45_000) -> None:
        self.max_sessions = max_sessions
        self.idle_ms = idle_ms
        self.sessions: dict[SessionKey, ShareSession] = {}

    def get(self, group_id: str, member_id: str) -> ShareSession | None:
        return self.sessions.get((group_id, member_id))

    def update(self, group_id: str, member_id: str, epoch: int,
               added: list[SharePartitionKey],
               forgotten: list[SharePartitionKey],
               now_ms: int = 0) -> tuple[int, ShareSession | None]:
        """Apply a request's session fields; (error, session). For ``FINAL_EPOCH`` the
        session is returned (for its partitions) and removed from the cache."""
        key = (group_id, member_id)
        if epoch == INITIAL_EPOCH:
            if key not in self.sessions and len(self.sessions) >= self.max_sessions:
                oldest = min(self.sessions.values(), key=lambda s: s.last_used_ms)
                if oldest.last_used_ms + self.idle_ms > now_ms:
                    return SHARE_SESSION_LIMIT_REACHED, None
                del self.sessions[(oldest.group_id, oldest.member_id)]
            session = ShareSession(group_id, member_id, last_used_ms=now_ms)
            session.partitions = dict.fromkeys(added)
            self.sessions[key] = session
            return NONE, session
        session = self.sessions.get(key)
        if session is None:
            return SHARE_SESSION_NOT_FOUND, None
        if epoch == FINAL_EPOCH:
            del self.sessions[key]
            return NONE, session
        if epoch != session.expected_epoch:
            return INVALID_SHARE_SESSION_EPOCH, None
        session.expected_epoch = next_epoch(epoch)
        session.last_used_ms = now_ms
        for tp in added:
            session.partitions[tp] = None
        for tp in forgotten:
            session.partitions.pop(tp, None)
        return NONE, session

    def remove_member(self, group_id: str, member_id: str) -> ShareSession | None:
        return self.sessions.pop((group_id, member_id), None)
