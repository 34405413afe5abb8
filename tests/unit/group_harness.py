"""Test helpers for the pure group coordinator: an in-memory ``OffsetsStore`` and a
driver that gives every delayed request a token and collects the answers."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

from kio.schema.errors import ErrorCode

from broker.group.config import GroupConfig
from broker.group.coordinator import GroupCoordinator, JoinResult, SyncResult

E = ErrorCode


@dataclass
class MemoryStore:
    """Records appended per partition, in order; ``fail_with`` makes appends fail."""

    log: dict[int, list[tuple[bytes, bytes | None]]] = field(default_factory=dict)
    fail_with: ErrorCode | None = None
    #: partitions led by another node (their groups answer NOT_COORDINATOR)
    foreign: set[int] = field(default_factory=set)

    def append(self, partition: int, records: Sequence[tuple[bytes, bytes | None]]) -> ErrorCode:
        if self.fail_with is not None:
            return self.fail_with
        self.log.setdefault(partition, []).extend(records)
        return E.none

    def is_local(self, partition: int) -> bool:
        return partition not in self.foreign

    def replay_into(self, coordinator: GroupCoordinator, now_ms: int) -> None:
        coordinator.begin_load()
        for partition in sorted(self.log):
            for key, value in self.log[partition]:
                coordinator.load_record(key, value, now_ms)
        coordinator.complete_load(now_ms)


class Driver:
    """Drives a GroupCoordinator like the shell does: tokens in, completions out."""

    def __init__(self, config: GroupConfig | None = None, store: MemoryStore | None = None):
        self.config = config or GroupConfig(initial_rebalance_delay_ms=0)
        self.store = store or MemoryStore()
        ids = itertools.count(1)
        self.coord = GroupCoordinator(
            self.config, self.store, new_member_id=lambda prefix: f"{prefix}-{next(ids)}"
        )
        self.coord.complete_load(0)
        self.now = 0
        self._tokens = itertools.count(1)
        self.results: dict[int, JoinResult | SyncResult] = {}

    def collect(self) -> None:
        for c in self.coord.drain_completions():
            assert c.token not in self.results, f"token {c.token} answered twice"
            self.results[c.token] = c

    def advance(self, ms: int) -> None:
        self.now += ms
        self.coord.tick(self.now)
        self.collect()

    def join(
        self,
        group: str = "g",
        member_id: str = "",
        *,
        instance_id: str | None = None,
        protocols: Sequence[tuple[str, bytes]] = (("range", b"m"),),
        protocol_type: str = "consumer",
        session_ms: int = 10_000,
        rebalance_ms: int = 30_000,
        require_known: bool = True,
        client_id: str = "c",
        version: int = 5,
    ) -> int:
        token = next(self._tokens)
        self.coord.join_group(
            token,
            self.now,
            group_id=group,
            member_id=member_id,
            group_instance_id=instance_id,
            client_id=client_id,
            client_host="/127.0.0.1",
            session_timeout_ms=session_ms,
            rebalance_timeout_ms=rebalance_ms,
            protocol_type=protocol_type,
            protocols=list(protocols),
            require_known_member_id=require_known,
            version=version,
        )
        self.collect()
        return token

    def join_new(self, group: str = "g", **kw) -> int:
        """A dynamic member's first join: MEMBER_ID_REQUIRED, then the real join."""
        first = self.results[self.join(group, **kw)]
        assert isinstance(first, JoinResult) and first.error == E.member_id_required
        return self.join(group, first.member_id, **kw)

    def sync(
        self,
        group: str,
        member_id: str,
        generation: int,
        assignments: dict[str, bytes] | None = None,
        *,
        instance_id: str | None = None,
        protocol_name: str | None = None,
    ) -> int:
        token = next(self._tokens)
        self.coord.sync_group(
            token,
            self.now,
            group_id=group,
            generation_id=generation,
            member_id=member_id,
            group_instance_id=instance_id,
            protocol_type=None,
            protocol_name=protocol_name,
            assignments=assignments or {},
        )
        self.collect()
        return token

    def heartbeat(self, group: str, member_id: str, generation: int, **kw) -> ErrorCode:
        return self.coord.heartbeat(
            self.now,
            group_id=group,
            generation_id=generation,
            member_id=member_id,
            group_instance_id=kw.get("instance_id"),
        )

    def result(self, token: int) -> JoinResult | SyncResult | None:
        return self.results.get(token)
