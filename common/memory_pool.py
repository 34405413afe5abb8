"""A byte budget shared by connections (pure): Kafka's ``queued.max.request.bytes``.

Kafka's broker uses a *non-strict* ``SimpleMemoryPool``: a reservation succeeds while any
room is left, even one larger than the room (the pool may go below zero), so one request
bigger than the whole pool is still served once the pool is free enough, instead of never.
``capacity=None`` is an unbounded pool (``-1``, Kafka's default): every reservation
succeeds and only the count is kept.

``try_reserve(n)`` → bool; ``release(n)`` returns bytes; ``available`` may be negative.
Whoever was refused waits until ``available > 0`` (the server keeps the waiting
connections and retries them after releases).
"""

from __future__ import annotations


class MemoryPool:
    """Non-strict byte budget."""

    __slots__ = ("capacity", "used")

    def __init__(self, capacity: int | None) -> None:
        if capacity is not None and capacity <= 0:
            raise ValueError("capacity must be > 0 (None: unbounded)")
        self.capacity = capacity
        self.used = 0

    @property
    def available(self) -> int:
        return (1 << 62) if self.capacity is None else self.capacity - self.used

    def try_reserve(self, nbytes: int) -> bool:
        if self.capacity is not None and self.used >= self.capacity:
            return False
        self.used += nbytes
        return True

    def release(self, nbytes: int) -> None:
        self.used -= nbytes
        if self.used < 0:  # a bug elsewhere must not make the pool unbounded
            self.used = 0
