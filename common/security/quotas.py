"""Client quotas as Kafka's ClientQuotaManager: entities, precedence, validation, sampled
rates and the throttle time (KIP-13, KIP-55, KIP-124, KIP-219). Pure: time is passed in
(milliseconds of a monotonic clock).

Entities are the (type, name) pairs of a quota, sorted by type: types ``user`` and
``client-id``; a name None is the type's default (``<default>`` in kafka-configs.sh), e.g.
``(("client-id", None), ("user", "alice"))`` is /users/alice/clients/<default>.

Keys of user and client-id entities (``QUOTA_KEYS``): ``producer_byte_rate`` (bytes/s of
Produce requests), ``consumer_byte_rate`` (bytes/s of Fetch responses), both integral
(Kafka's LONG), ``request_percentage`` (a DOUBLE: percent of one request handler's time per
second, 200 = two handlers' worth) and ``controller_mutation_rate`` (a DOUBLE: partitions
created or deleted per second by CreateTopics, CreatePartitions and DeleteTopics, KIP-599;
a ``TokenBucket``).

The ``ip`` entity (KIP-612) stands alone (never beside user or client-id): ``(("ip",
"10.0.0.1"),)`` or its default ``(("ip", None),)``, with the one key
``connection_creation_rate`` (``IP_QUOTA_KEYS``, Kafka's INT: new connections per second
from that address; ``resolve_ip``: the address's own entity, else the default). Its name
must be an IP address literal (Kafka also accepts a resolvable host name; Strom does no
DNS lookup in the controller).

Precedence (``resolve``: the first entity that has the key applies), for user U and
client id C: /users/U/clients/C, /users/U/clients/<default>, /users/U,
/users/<default>/clients/C, /users/<default>/clients/<default>, /users/<default>,
/clients/C, /clients/<default>. The rate is measured per (user, client id) *as far as
the matching entity names them* (``SensorKey``): a /users/U quota is shared by all of U's
clients, a default applies to each user or client separately, as Kafka's metric tags.

Rates (``SampledStat``, Kafka's SampledStat + Rate): ``num`` samples (quota.window.num,
11) of ``window_ms`` (quota.window.size.seconds, 1 s). A sample is complete once
``window_ms`` has passed since its start; the next one starts on the grid of the previous
(previous start + k x window), reusing the oldest slot; samples older than ``num`` windows
are reset at the time they are read. The rate is the sum of the samples over the elapsed
span from the oldest sample's start, padded to at least ``num - 1`` whole windows (so a
first burst is spread over 10 s rather than throttled at once), at least 1 ms.

Throttle time (Kafka's QuotaUtils): over the bound, ``round((rate - bound) / bound x span)``
ms: the time after which the rate over the grown span falls back to the bound. Request
quotas bound it by one window (``boundedThrottleTime``), byte rates do not.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

USER, CLIENT_ID, IP = "user", "client-id", "ip"
PRODUCER_BYTE_RATE = "producer_byte_rate"
CONSUMER_BYTE_RATE = "consumer_byte_rate"
REQUEST_PERCENTAGE = "request_percentage"
CONTROLLER_MUTATION_RATE = "controller_mutation_rate"
CONNECTION_CREATION_RATE = "connection_creation_rate"
#: the keys of user / client-id entities -> Kafka's type (integral ones refuse fractions)
QUOTA_KEYS: Mapping[str, str] = {PRODUCER_BYTE_RATE: "LONG", CONSUMER_BYTE_RATE: "LONG",
                                 REQUEST_PERCENTAGE: "DOUBLE",
                                 CONTROLLER_MUTATION_RATE: "DOUBLE"}
#: the keys of ip entities
IP_QUOTA_KEYS: Mapping[str, str] = {CONNECTION_CREATION_RATE: "INT"}
ENTITY_TYPES = frozenset({USER, CLIENT_ID, IP})
WINDOW_NUM = 11
WINDOW_MS = 1000
#: Kafka's nanosToPercentage: handler nanoseconds -> percent of one second
NANOS_TO_PERCENT = 100 / 1e9
_LONG_MAX = 2**63 - 1
_INT_MAX = 2**31 - 1
_MAXIMA = {"LONG": (_LONG_MAX, "a LONG"), "INT": (_INT_MAX, "an INT")}

Entity = tuple[tuple[str, str | None], ...]
#: what a rate is measured for: (user or "", client id or "")
SensorKey = tuple[str, str]


def entity(**names: str | None) -> Entity:
    """``entity(user="alice", client_id=None)`` → the sorted entity tuple."""
    return tuple(sorted((k.replace("_", "-"), v) for k, v in names.items()))


def entity_problem(pairs: tuple[tuple[str, str | None], ...]) -> str | None:
    """Why an entity cannot carry quotas (Kafka: INVALID_REQUEST), or None."""
    if not pairs:
        return "Invalid empty client quota entity"
    seen: set[str] = set()
    for entity_type, name in pairs:
        if entity_type in seen:
            return f"Invalid empty client quota entity, duplicate entity entry {entity_type}"
        seen.add(entity_type)
        if entity_type not in ENTITY_TYPES:
            return f"Unhandled client quota entity type: {entity_type}"
        if name is not None and not name:
            return f"Empty {entity_type} not supported"
    if IP in seen:
        if len(seen) > 1:  # Kafka's configKeysForEntityType: no such combination
            return "Invalid empty client quota entity"
        name = dict(pairs)[IP]
        if name is not None and ip_key(name) is None:
            return f"{name} is not a valid IP or resolvable host."
    return None


def ip_key(name: str) -> str | None:
    """The canonical text of an IP address literal (``ipaddress``'s compressed form, so
    ``0:0::1`` and ``::1`` are one address), or None for anything else."""
    try:
        return str(ipaddress.ip_address(name.strip("[]")))
    except ValueError:
        return None


def keys_for(pairs: tuple[tuple[str, str | None], ...]) -> Mapping[str, str]:
    """The keys a (valid) entity may carry: ``IP_QUOTA_KEYS`` for an ip entity."""
    return IP_QUOTA_KEYS if any(t == IP for t, _ in pairs) else QUOTA_KEYS


def key_problem(key: str, value: float | None,
                keys: Mapping[str, str] = QUOTA_KEYS) -> str | None:
    """Why ``key`` = ``value`` cannot be set (None: a removal) on an entity taking
    ``keys`` (``keys_for``), Kafka's messages."""
    kind = keys.get(key)
    if kind is None:
        return f"Invalid configuration key {key}"
    if value is None:
        return None
    if math.isnan(value) or value <= 0:
        return f"Quota {key} must be greater than 0"
    if kind in _MAXIMA:
        maximum, name = _MAXIMA[kind]
        if value > maximum:
            return f"Proposed value for {key} is too large for {name}."
        if abs(value % 1.0) > 1e-6:
            return f"{key} cannot be a fractional value."
    return None


def resolve_ip(quotas: Mapping[Entity, Mapping[str, float]], ip: str) -> float | None:
    """The ``connection_creation_rate`` for connections from ``ip`` (canonical text,
    ``ip_key``): its own entity's, else the default ip entity's, else None."""
    found = None
    for e, values in quotas.items():
        if len(e) != 1 or e[0][0] != IP or CONNECTION_CREATION_RATE not in values:
            continue
        name = e[0][1]
        if name is None:
            found = values[CONNECTION_CREATION_RATE] if found is None else found
        elif ip_key(name) == ip:
            return values[CONNECTION_CREATION_RATE]
    return found


def _levels(user: str, client_id: str) -> list[tuple[Entity, SensorKey]]:
    return [
        (entity(user=user, client_id=client_id), (user, client_id)),
        (entity(user=user, client_id=None), (user, client_id)),
        (entity(user=user), (user, "")),
        (entity(user=None, client_id=client_id), (user, client_id)),
        (entity(user=None, client_id=None), (user, client_id)),
        (entity(user=None), (user, "")),
        (entity(client_id=client_id), ("", client_id)),
        (entity(client_id=None), ("", client_id)),
    ]


def resolve(quotas: Mapping[Entity, Mapping[str, float]], user: str, client_id: str,
            key: str) -> tuple[float, SensorKey, Entity] | None:
    """The bound for ``key``, the sensor it is measured on and the entity it came from,
    or None (no quota applies)."""
    for e, sensor in _levels(user, client_id):
        values = quotas.get(e)
        if values is not None and key in values:
            return values[key], sensor, e
    return None


@dataclass(slots=True)
class _Sample:
    start_ms: int
    value: float = 0.0
    events: int = 0


@dataclass
class SampledStat:
    """Kafka's SampledStat over ``num`` samples of ``window_ms`` (see the module doc);
    ``rate`` is its Rate (sum per second), ``avg`` its Avg."""

    num: int = WINDOW_NUM
    window_ms: int = WINDOW_MS
    samples: list[_Sample] = field(default_factory=list)
    current: int = 0

    def record(self, now_ms: int, value: float) -> None:
        if not self.samples:
            self.samples.append(_Sample(now_ms))
        sample = self.samples[self.current]
        if now_ms - sample.start_ms >= self.window_ms:
            end = sample.start_ms + self.window_ms
            start = now_ms - (now_ms - end) % self.window_ms
            self.current = (self.current + 1) % self.num
            if self.current >= len(self.samples):
                sample = _Sample(start)
                self.samples.append(sample)
            else:
                sample = self.samples[self.current]
                sample.start_ms, sample.value, sample.events = start, 0.0, 0
        sample.value += value
        sample.events += 1

    def _purge(self, now_ms: int) -> None:
        expire = self.num * self.window_ms
        for s in self.samples:
            if now_ms - s.start_ms >= expire:
                s.start_ms, s.value, s.events = now_ms, 0.0, 0

    def span_ms(self, now_ms: int) -> int:
        """Kafka's Rate.windowSize: elapsed since the oldest sample, padded to at least
        ``num - 1`` whole windows, at least 1 ms."""
        self._purge(now_ms)
        oldest = min((s.start_ms for s in self.samples), default=now_ms)
        elapsed = now_ms - oldest
        full = elapsed // self.window_ms
        if full < self.num - 1:
            elapsed += (self.num - 1 - full) * self.window_ms
        return max(elapsed, 1)

    def total(self, now_ms: int) -> float:
        self._purge(now_ms)
        return sum(s.value for s in self.samples)

    def rate(self, now_ms: int) -> float:
        """Sum of the samples per second of the span."""
        return self.total(now_ms) * 1000 / self.span_ms(now_ms)

    def avg(self, now_ms: int) -> float:
        self._purge(now_ms)
        events = sum(s.events for s in self.samples)
        return sum(s.value for s in self.samples) / events if events else 0.0


def throttle_time_ms(rate: float, bound: float, span_ms: int) -> int:
    """Kafka's QuotaUtils.throttleTime: 0 within the bound."""
    if rate <= bound:
        return 0
    return round((rate - bound) / bound * span_ms)


def bounded_throttle_time_ms(rate: float, bound: float, span_ms: int, max_ms: int) -> int:
    """Kafka's boundedThrottleTime (request quotas): at most ``max_ms``."""
    return min(throttle_time_ms(rate, bound, span_ms), max_ms)


@dataclass(slots=True)
class TokenBucket:
    """Kafka's TokenBucket stat (KIP-599): refilled at ``rate`` tokens a second up to
    ``burst`` (Kafka: window num x window seconds x rate); a new bucket is full. ``tokens``
    below 0 means the quota is exhausted (in debt)."""

    tokens: float | None = None
    last_ms: int = 0

    def measure(self, now_ms: int, rate: float, burst: float) -> float:
        if self.tokens is None:
            self.tokens = burst
        else:
            elapsed = max(0, now_ms - self.last_ms)
            self.tokens = min(burst, self.tokens + rate * elapsed / 1000)
        self.last_ms = now_ms
        return self.tokens

    def record(self, now_ms: int, value: float, rate: float, burst: float) -> float:
        """Take ``value`` tokens (no check); the tokens left."""
        self.tokens = min(burst, self.measure(now_ms, rate, burst) - value)
        return self.tokens


def mutation_throttle_time_ms(tokens: float, rate: float) -> int:
    """Kafka's ControllerMutationQuotaManager.throttleTimeMs: the time an in-debt bucket
    takes to refill to zero (0 when not in debt)."""
    return round(-tokens / rate * 1000) if tokens < 0 else 0
