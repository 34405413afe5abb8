"""How many connections a broker accepts, and how fast (pure; Kafka's ``ConnectionQuotas``).

- ``max.connections``: connections on the broker's client listeners together; one more is
  refused (Kafka's acceptor stops accepting until one closes; Strom closes the new one at
  once with a log line, so a flood cannot park descriptors);
- ``max.connections.per.ip`` with ``max.connections.per.ip.overrides`` (``host:count``):
  one more from that address is closed at once (Kafka: ``TooManyConnectionsException``);
- ``max.connection.creation.rate``: connections per second; beyond it a new connection
  *waits* before it is served (Kafka throttles the acceptor): ``admit`` returns the delay,
  spacing connections ``1/rate`` s apart (a virtual-time scheduler, no window state);
- KIP-612 ``connection_creation_rate`` of the peer's ``ip`` quota entity (or the default
  ip entity) in the metadata image (``ip_quotas``): each new connection from the address
  is recorded on its sampled rate (Kafka's Rate over ``quota.window.num`` windows of
  ``quota.window.size.seconds``, as the client quotas); over the bound the connection is
  un-recorded and ``Admission.throttle_ms`` is the throttle time (bounded by one window,
  Kafka's boundedThrottleTime): the caller holds it unserved and closes it after that long
  (Kafka's acceptor delays the close of a throttled socket). It is checked before the
  broker-wide rate, so a throttled connection takes no creation slot (Kafka un-records it
  from the broker rate) and is not counted in ``max.connections``.

``admit(ip, now)`` → ``Admission``; ``release(ip)`` when an admitted connection closes.
Time is passed in (seconds, monotonic).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from common.security.quotas import (
    WINDOW_MS,
    WINDOW_NUM,
    Entity,
    SampledStat,
    bounded_throttle_time_ms,
    ip_key,
    resolve_ip,
)

UNLIMITED = 2_147_483_647
#: an ip sensor idle this long is dropped (Kafka's inactive sensor expiry)
IP_SENSOR_EXPIRY_MS = 3_600_000
_MAX_CACHED_BOUNDS = 10_000


@dataclass(frozen=True, slots=True)
class Admission:
    """``refused``: the limit that refuses the connection (Kafka's property name), or
    None; ``delay``: seconds to wait before serving it (creation rate)."""

    refused: str | None = None
    delay: float = 0.0
    #: over the address's connection_creation_rate: hold the connection unserved and
    #: close it after this many ms (0: not throttled)
    throttle_ms: int = 0


@dataclass(slots=True)
class IpSensor:
    """One address's connection creation rate, the bound in force and the throttle
    times it drew (``throttle.avg``: Kafka's connection-accept-throttle-time)."""

    rate: SampledStat
    throttle: SampledStat
    bound: float
    last_ms: int
    throttled: int = 0


class ConnectionQuotas:
    """Counts per broker and per IP address; ``ip_quotas()`` returns the image's client
    quota entities (None: no KIP-612 quotas)."""

    def __init__(self, *, max_connections: int = UNLIMITED, per_ip: int = UNLIMITED,
                 per_ip_overrides: Mapping[str, int] | None = None,
                 creation_rate: int = UNLIMITED,
                 ip_quotas: Callable[[], Mapping[Entity, Mapping[str, float]]] | None = None,
                 window_num: int = WINDOW_NUM, window_ms: int = WINDOW_MS) -> None:
        self.max_connections = max_connections
        self.per_ip = per_ip
        self.overrides = dict(per_ip_overrides or {})
        self.creation_rate = creation_rate
        self.total = 0
        self.by_ip: dict[str, int] = {}
        self._next_slot = 0.0
        self.ip_quotas = ip_quotas
        self.window_num = window_num
        self.window_ms = window_ms
        #: canonical address -> its sensor, while a quota applies to it
        self.ip_sensors: dict[str, IpSensor] = {}
        self._bounds_of: Mapping[Entity, Mapping[str, float]] | None = None
        self._bounds: dict[str, float | None] = {}
        self._swept_ms = 0

    def limit_for(self, ip: str) -> int:
        return self.overrides.get(ip, self.per_ip)

    def admit(self, ip: str, now: float) -> Admission:
        if self.by_ip.get(ip, 0) >= self.limit_for(ip):
            return Admission("max.connections.per.ip")
        if self.total >= self.max_connections:
            return Admission("max.connections")
        if self.creation_rate <= 0:  # a rate of 0 admits nobody
            return Admission("max.connection.creation.rate")
        throttle = self._ip_throttle_ms(ip, int(now * 1000))
        if throttle > 0:
            return Admission(throttle_ms=throttle)
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

    # ---- KIP-612 connection_creation_rate -------------------------------------------
    def ip_bound(self, ip: str) -> float | None:
        """The connection_creation_rate for ``ip`` in the current image (cached per image
        mapping, which every change replaces)."""
        if self.ip_quotas is None:
            return None
        quotas = self.ip_quotas()
        if quotas is not self._bounds_of or len(self._bounds) > _MAX_CACHED_BOUNDS:
            self._bounds_of, self._bounds = quotas, {}
        if ip not in self._bounds:
            self._bounds[ip] = resolve_ip(quotas, ip) if quotas else None
        return self._bounds[ip]

    def _ip_throttle_ms(self, ip: str, now_ms: int) -> int:
        if self.ip_quotas is None:
            return 0
        key = ip_key(ip) or ip
        bound = self.ip_bound(key)
        if now_ms - self._swept_ms >= 60_000:
            self.sweep(now_ms)
        if bound is None:
            self.ip_sensors.pop(key, None)
            return 0
        sensor = self.ip_sensors.get(key)
        if sensor is None:
            sensor = self.ip_sensors[key] = IpSensor(
                SampledStat(self.window_num, self.window_ms),
                SampledStat(self.window_num, self.window_ms), bound, now_ms)
        sensor.bound, sensor.last_ms = bound, now_ms
        sensor.rate.record(now_ms, 1.0)
        throttle = bounded_throttle_time_ms(sensor.rate.rate(now_ms), bound,
                                            sensor.rate.span_ms(now_ms), self.window_ms)
        if throttle > 0:
            sensor.rate.record(now_ms, -1.0)  # not accepted: un-recorded, as Kafka
            sensor.throttle.record(now_ms, float(throttle))
            sensor.throttled += 1
        return throttle

    def sweep(self, now_ms: int) -> None:
        """Drop ip sensors idle for ``IP_SENSOR_EXPIRY_MS`` or whose quota is gone."""
        self._swept_ms = now_ms
        for key in [k for k, s in self.ip_sensors.items()
                    if now_ms - s.last_ms >= IP_SENSOR_EXPIRY_MS or self.ip_bound(k) is None]:
            del self.ip_sensors[key]
