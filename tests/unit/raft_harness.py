"""A tiny manual network for unit-testing ``RaftCore``: messages move only when a test
says so, every Ready is "persisted" at once and recorded for inspection."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from typing import Any

from controller.raft import DurableState, RaftConfig, RaftCore, Ready

CONFIG = {"election_timeout_ms": 100, "fetch_timeout_ms": 200, "request_timeout_ms": 50,
          "fetch_max_wait_ms": 50, "cluster_id": "t"}


class Net:
    def __init__(self, ids: Iterable[int], voters: Iterable[int] | None = None,
                 durable: dict[int, DurableState] | None = None, **config: Any) -> None:
        ids = list(ids)
        self.voters = frozenset(voters if voters is not None else ids)
        self.config = {**CONFIG, **config}
        self.now = 0
        self.cores: dict[int, RaftCore] = {}
        self.readies: dict[int, list[Ready]] = {i: [] for i in ids}
        self.committed: dict[int, list] = {i: [] for i in ids}
        self.outbox: list[Any] = []
        self.cut: set[int] = set()  # isolated nodes: their messages are dropped
        for i in ids:
            self.cores[i] = RaftCore(RaftConfig(node_id=i, voters=self.voters, **self.config),
                                     random.Random(i), (durable or {}).get(i))

    def __getitem__(self, node_id: int) -> RaftCore:
        return self.cores[node_id]

    def flush(self) -> None:
        for i, core in self.cores.items():
            while core.has_ready():
                rd = core.ready()
                self.readies[i].append(rd)
                self.committed[i].extend(rd.committed)
                self.outbox.extend(rd.messages)
                core.advance(rd)

    def deliver(self, keep: Callable[[Any], bool] = lambda m: True) -> list[Any]:
        """Deliver every queued message ``keep`` accepts (others are dropped)."""
        self.flush()
        batch, self.outbox = self.outbox, []
        delivered = []
        for m in batch:
            if m.src in self.cut or m.dst in self.cut or not keep(m):
                continue
            self.cores[m.dst].step(m, self.now)
            delivered.append(m)
        self.flush()
        return delivered

    def settle(self, rounds: int = 50) -> None:
        for _ in range(rounds):
            self.flush()
            if not self.outbox:
                return
            self.deliver()

    def advance(self, ms: int, step: int = 10) -> None:
        """Let ``ms`` of time pass, ticking every node and exchanging messages."""
        end = self.now + ms
        while self.now < end:
            self.now = min(end, self.now + step)
            for core in self.cores.values():
                core.tick(self.now)
            self.settle()

    def leader(self) -> int | None:
        leaders = [i for i, c in self.cores.items() if c.is_leader]
        assert len(leaders) <= 1
        return leaders[0] if leaders else None

    def sent(self, node_id: int, kind: type) -> list[Any]:
        return [m for rd in self.readies[node_id] for m in rd.messages if isinstance(m, kind)]
