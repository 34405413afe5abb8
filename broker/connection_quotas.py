"""How many connections a broker accepts, and how fast (pure; Kafka's ``ConnectionQuotas``).

- ``max.connections``: connections on the broker's client listeners together; one more is
  refused (Kafka's acceptor stops accepting until one closes; Strom closes the new one at
  once with a log line, so a flood cannot park descriptors);
- ``max.connections.per.ip`` with ``max.connections.per.ip.overrides`` (``host:count``):
  one more from that address is closed at once (Kafka: ``TooManyConnectionsException``);
- ``max.connection.creation.rate``: connections per second; beyond it a new connection
  *waits* before it is served (Kafka throttles the acceptor): ``admit`` returns the delay,
  spacing connections ``1/rate`` s apart (a virtual-time scheduler, no window state).

``admit(ip, now)`` → ``Admission``; ``release(ip)`` when an admitted connection closes.
Time is passed in (seconds, monotonic).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

UNLIMITED = 2_147_483_647


@dataclass(frozen=True, slots=True)
class Admission:
    """``refused``: the limit that refuses the connection (Kafka's property name), or
    None; ``delay``: seconds to wait before serving it (creation rate)."""

    refused: str | None = None
    delay: float = 0.0


class ConnectionQuotas:
    """Counts per broker and per IP address."""

    def __init__(self, *, max_connections: int = UNLIMITED, per_ip: int = UNLIMITED,
                 per_ip_overrides: Mapping[str, int] | None = None,
                 creation_rate: int = UNLIMITED) -> None:
        self.max_connections = max_connections
        self.per_ip = per_ip
        self.overrides = dict(per_ip_overrides or {})
        self.creation_rate = creation_rate
        self.total = 0
        self.by_ip: dict[str, int] = {}
        self._next_slot = 0.0

    def limit_for(self, ip: str) -> int:
        return self.overrides.get(ip, self.per_ip)

    def admit(self, ip: str, now: float) -> Admission:
        if self.by_ip.get(ip, 0) >= self.limit_for(ip):
            return Admission("max.connections.per.ip")
        if self.total >= self.max_connections:
            return Admission("max.connections")
        if self.creation_rate <= 0:  # a rate of 0 admits nobody
            return Admission("max.connection.creation.rate")
        self.total += 1
        self.by_ip[ip] = self.by_ip.get(ip, 0) + 1
        delay = 0.0
        if self.creation_rate < UNLIMITED:
            slot = max(now, self._next_slot)
            self._next_slot = slot + 1.0 / self.creation_rate
            delay = slot - now
        return Admission(None, delay)

    def release(self, ip: str) -> None:
        self.total = max(0, self.total - 1)
        count = self.by_ip.get(ip, 0) - 1
        if count > 0:
            self.by_ip[ip] = count
        else:
            self.by_ip.pop(ip, None)
