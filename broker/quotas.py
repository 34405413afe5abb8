"""Client quota enforcement per broker (KIP-13 byte rates, KIP-124 request rates, KIP-219
throttling), the I/O shell around ``common.security.quotas``.

``QuotaManager`` keeps one sensor per (quota type, user, client id) as far as the matching
quota entity names them, reading the quotas of the node's current metadata image at each
request, so a quota set through any broker applies on all at once; a sensor idle for an
hour is dropped (Kafka's inactive sensor expiry). ``quota_wrapped(api_key, handler,
manager)`` wraps every client API handler:

- Produce: the request's record bytes are recorded against ``producer_byte_rate`` after
  the handler ran (a refused produce counts too, as in Kafka);
- Fetch from a consumer (follower fetches are never client-throttled): the response's
  bytes against ``consumer_byte_rate``. A throttled Fetch still carries its records
  (Kafka answers it empty and un-records them; here the records already read are sent
  and counted). Its ``max_bytes`` is capped to ``num - 1`` windows' worth of the quota, as
  Kafka caps fetchMaxBytes (a first record batch larger than that still comes whole);
- any API, when some quota has ``request_percentage``: the time the handler itself ran on
  the event loop (the steps of its coroutine, not the time it waited for I/O, replication
  or a long poll: Kafka's request handler thread time), as percent of a second, against
  ``request_percentage``; that throttle is bounded by one quota window, as Kafka's;
- over a bound, the response carries ``throttle_time_ms`` (the largest of the quotas
  violated) and ``ctx.throttle_ms`` is set: ``broker.server`` sends the response at once,
  then mutes the connection (reads paused, queued requests held) for that long, as a
  KIP-219 broker does. Well-behaved clients (librdkafka, the Java client) also wait
  before their next request; the others are held by the mute, so they cannot starve
  the broker.

The user of a quota is the principal's name (``User:alice`` → ``alice``; ``ANONYMOUS``
unauthenticated, as Kafka's sanitized user); the client id is the request header's.
Requests the process sends itself (``ctx.internal``) are exempt.

Metrics (Prometheus gauges read when scraped, labels ``quota_type`` = produce / fetch /
request, ``user``, ``client_id`` as the sensor is keyed, "" for a part the entity does not
name; Kafka's byte-rate / request-time and throttle-time): ``strom_quota_rate`` (bytes/s,
or percent for request), ``strom_quota_limit`` (the bound in force) and
``strom_quota_throttle_time_ms`` (average throttle time of the requests throttled over the
quota window). Broker-to-broker APIs (``EXEMPT_KEYS``) and follower fetches are exempt.

KIP-599 ``controller_mutation_rate`` is charged on the active controller, not here:
``MutationQuotaManager`` / ``MutationQuota`` below, used by
``broker.cluster.controller_api`` for the CreateTopics, DeleteTopics and CreatePartitions
brokers forward with the client's identity.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import time
from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from common.metrics import CallbackGauges
from common.security.quotas import (
    CONSUMER_BYTE_RATE,
    CONTROLLER_MUTATION_RATE,
    NANOS_TO_PERCENT,
    PRODUCER_BYTE_RATE,
    REQUEST_PERCENTAGE,
    SampledStat,
    TokenBucket,
    bounded_throttle_time_ms,
    mutation_throttle_time_ms,
    resolve,
    throttle_time_ms,
)

Handler = Callable[[Any, Any], Awaitable[Any]]
PRODUCE, FETCH = 0, 1
#: broker-to-broker APIs, never client-throttled (Kafka's cluster-action APIs):
#: WriteTxnMarkers, Initialize/Read/Write/DeleteShareGroupState, ReadShareGroupStateSummary
EXEMPT_KEYS = frozenset({27, 83, 84, 85, 86, 87})
QUOTA_TYPES = {"produce": PRODUCER_BYTE_RATE, "fetch": CONSUMER_BYTE_RATE,
               "request": REQUEST_PERCENTAGE}
#: Kafka's inactiveSensorExpirationTimeSeconds
SENSOR_EXPIRY_MS = 3_600_000
_SWEEP_EVERY_MS = 60_000


@dataclass(slots=True)
class Sensor:
    rate: SampledStat
    throttle: SampledStat
    bound: float
    last_ms: int


def now_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class QuotaManager:
    """Sensors and throttle times; ``quotas()`` returns the image's entity -> {key: value}."""

    def __init__(self, quotas: Callable[[], Mapping[Any, Mapping[str, float]]], *,
                 window_num: int, window_ms: int,
                 expiry_ms: int = SENSOR_EXPIRY_MS) -> None:
        self.quotas = quotas
        self.window_num = window_num
        self.window_ms = window_ms
        self.expiry_ms = expiry_ms
        self.sensors: dict[tuple[str, str, str], Sensor] = {}
        self._swept_ms = 0
        self._keys_of: tuple[Any, frozenset[str]] = (None, frozenset())
        self._registered: set[int] = set()

    def enforces(self, quotas: Mapping[Any, Mapping[str, float]], key: str) -> bool:
        """Whether any entity of ``quotas`` sets ``key`` (cached per image mapping)."""
        seen, keys = self._keys_of
        if seen is not quotas:  # the image's mapping is replaced on every change
            keys = frozenset(k for values in quotas.values() for k in values)
            self._keys_of = (quotas, keys)
        return key in keys

    def record(self, quota_type: str, user: str, client_id: str, amount: float,
               at_ms: int | None = None) -> int:
        """Record ``amount`` (bytes, or percent of a second for ``request``) for the
        client; the throttle time in ms (0: within its quota or none applies)."""
        found = resolve(self.quotas(), user, client_id, QUOTA_TYPES[quota_type])
        if found is None:
            return 0
        bound, (s_user, s_client), _entity = found
        now = now_ms() if at_ms is None else at_ms
        key = (quota_type, s_user, s_client)
        sensor = self.sensors.get(key)
        if sensor is None:
            sensor = self.sensors[key] = Sensor(
                SampledStat(self.window_num, self.window_ms),
                SampledStat(self.window_num, self.window_ms), bound, now)
        sensor.bound, sensor.last_ms = bound, now
        sensor.rate.record(now, amount)
        rate, span = sensor.rate.rate(now), sensor.rate.span_ms(now)
        if quota_type == "request":
            throttle = bounded_throttle_time_ms(rate, bound, span, self.window_ms)
        else:
            throttle = throttle_time_ms(rate, bound, span)
        if throttle > 0:
            sensor.throttle.record(now, float(throttle))
        if now - self._swept_ms >= _SWEEP_EVERY_MS:
            self.sweep(now)
        return max(throttle, 0)

    def max_in_window(self, quota_type: str, user: str, client_id: str) -> float | None:
        """Kafka's getMaxValueInQuotaWindow: the bound x (num - 1) windows, in the bound's
        unit (a consumer's Fetch asks at most that many bytes); None without a quota."""
        found = resolve(self.quotas(), user, client_id, QUOTA_TYPES[quota_type])
        if found is None:
            return None
        return found[0] * (self.window_num - 1) * self.window_ms / 1000

    def sweep(self, at_ms: int) -> None:
        """Drop the sensors not recorded for ``expiry_ms``."""
        self._swept_ms = at_ms
        for key in [k for k, s in self.sensors.items() if at_ms - s.last_ms >= self.expiry_ms]:
            del self.sensors[key]

    def register_metrics(self, registry: Any) -> None:
        """The ``strom_quota_*`` gauges (module doc) in ``registry`` (once per registry)."""
        if registry is None or id(registry) in self._registered:
            return
        self._registered.add(id(registry))
        gauges = CallbackGauges()
        labels = ("quota_type", "user", "client_id")

        def each(value: Callable[[Sensor, int], float]
                 ) -> Callable[[], Iterable[tuple[tuple[str, ...], float]]]:
            def read() -> list[tuple[tuple[str, ...], float]]:
                now = now_ms()
                return [(key, value(s, now)) for key, s in list(self.sensors.items())]
            return read

        gauges.gauge("strom_quota_rate", "Measured client quota rate (bytes per second; "
                     "percent of a handler for request), per sensor.",
                     each(lambda s, now: s.rate.rate(now)), labels)
        gauges.gauge("strom_quota_limit", "Client quota bound in force, per sensor.",
                     each(lambda s, _now: s.bound), labels)
        gauges.gauge("strom_quota_throttle_time_ms",
                     "Average throttle time of the requests throttled over the quota "
                     "window, per sensor.",
                     each(lambda s, now: s.throttle.avg(now)), labels)
        gauges.register(registry)


class _Timed:
    """Awaits a coroutine and sums, in ``ns``, the time its steps ran (the handler's own
    time on the event loop, without its waits)."""

    __slots__ = ("coro", "ns")

    def __init__(self, coro: Any) -> None:
        self.coro = coro
        self.ns = 0

    def __await__(self) -> Generator[Any, Any, Any]:
        coro = self.coro
        value: Any = None
        error: BaseException | None = None
        while True:
            started = time.perf_counter_ns()
            try:
                yielded = coro.send(value) if error is None else coro.throw(error)
            except StopIteration as stop:
                self.ns += time.perf_counter_ns() - started
                return stop.value
            except BaseException:
                self.ns += time.perf_counter_ns() - started
                raise
            self.ns += time.perf_counter_ns() - started
            try:
                value, error = (yield yielded), None
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # e.g. CancelledError: into the handler
                value, error = None, exc


def user_of(principal: str) -> str:
    """Kafka's quota user: the principal's name (``User:alice`` → ``alice``)."""
    kind, _, name = principal.partition(":")
    return name if kind == "User" and name else principal


def _produce_bytes(request: Any) -> int:
    return sum(len(p.records or b"") for t in request.topic_data for p in t.partition_data)


def _fetch_bytes(response: Any) -> int:
    if hasattr(response, "responses"):
        return sum(len(p.records or b"") for t in response.responses for p in t.partitions)
    return int(getattr(response, "size", 0))  # a pre-encoded body (protocol.fetch_codec)


def _replica_fetch(request: Any) -> bool:
    state = getattr(request, "replica_state", None)
    replica_id = int(getattr(request, "replica_id", -1)) if state is None \
        else int(state.replica_id)
    return replica_id >= 0


def _capped(request: Any, cap: float | None) -> Any:
    """A Fetch asking at most ``cap`` bytes (Kafka's fetchMaxBytes bound by the quota)."""
    asked = getattr(request, "max_bytes", None)
    if cap is None or asked is None or asked <= cap:
        return request
    return dataclasses.replace(request, max_bytes=max(int(cap), 1))


def with_throttle(response: Any, ms: int) -> Any:
    """``response`` carrying ``throttle_time_ms`` = ``ms`` (a kio entity with the field, or
    a pre-encoded Fetch body, v1+, whose first int32 is it), or the larger one it already
    carries (a controller's KIP-599 throttle); others unchanged."""
    if dataclasses.is_dataclass(response) and hasattr(response, "throttle_time"):
        had = response.throttle_time
        if isinstance(had, datetime.timedelta):
            ms = max(ms, int(had.total_seconds() * 1000))
        return dataclasses.replace(response,  # type: ignore[type-var]
                                   throttle_time=datetime.timedelta(milliseconds=ms))
    chunks = getattr(response, "chunks", None)
    if chunks and getattr(response, "__api_key__", None) == FETCH \
            and getattr(response, "__version__", 0) >= 1 and len(chunks[0]) >= 4:
        chunks[0] = ms.to_bytes(4, "big", signed=True) + bytes(chunks[0][4:])
    return response


def quota_wrapped(api_key: int, handler: Handler, manager: QuotaManager) -> Handler:
    """``handler`` with quota recording and throttling (see the module doc)."""
    if api_key in EXEMPT_KEYS:
        return handler

    async def handle(ctx: Any, request: Any) -> Any:
        quotas = manager.quotas()
        if not quotas or ctx.internal:
            return await handler(ctx, request)
        replica = api_key == FETCH and _replica_fetch(request)
        user, client_id = user_of(ctx.principal), ctx.client_id or ""
        if api_key == FETCH and not replica and manager.enforces(quotas, CONSUMER_BYTE_RATE):
            request = _capped(request, manager.max_in_window("fetch", user, client_id))
        timed = None
        call = handler(ctx, request)
        if not replica and asyncio.iscoroutine(call) \
                and manager.enforces(quotas, REQUEST_PERCENTAGE):
            timed = _Timed(call)
            response = await timed
        else:
            response = await call
        if replica:
            return response
        at = now_ms()
        throttle = 0
        if api_key == PRODUCE:
            throttle = manager.record("produce", user, client_id, _produce_bytes(request), at)
        elif api_key == FETCH and response is not None:
            throttle = manager.record("fetch", user, client_id, _fetch_bytes(response), at)
        if timed is not None:
            throttle = max(throttle, manager.record("request", user, client_id,
                                                    timed.ns * NANOS_TO_PERCENT, at))
        if throttle > 0:
            ctx.throttle_ms = max(ctx.throttle_ms, throttle)
            if response is not None:
                response = with_throttle(response, throttle)
        return response

    return handle


# ---- KIP-599 controller_mutation_rate ---------------------------------------------------
#: Kafka's message of THROTTLING_QUOTA_EXCEEDED
THROTTLED_MESSAGE = "The throttling quota has been exceeded."


class ThrottlingQuotaExceeded(Exception):
    """A strict mutation quota refused a topic: the bucket was already in debt."""

    def __init__(self, throttle_ms: int) -> None:
        super().__init__(THROTTLED_MESSAGE)
        self.throttle_ms = throttle_ms


@dataclass(slots=True)
class MutationSensor:
    """One (user, client id) bucket as far as its quota entity names them, with Kafka's
    mutation-rate (``rate``), tokens and throttle-time (``throttle``) metrics."""

    bucket: TokenBucket
    rate: SampledStat
    throttle: SampledStat
    bound: float
    last_ms: int


class MutationQuota:
    """One request's view of its bucket (Kafka's Strict/PermissiveControllerMutationQuota).

    ``record(permits)`` is called once per topic that passed every other check, with the
    partitions it creates or deletes. Strict (CreateTopics v6+, CreatePartitions v3+,
    DeleteTopics v5+): a bucket already in debt refuses the topic
    (``ThrottlingQuotaExceeded``); one not in debt admits it whole, even into debt, and
    does not throttle. Permissive (older versions): every topic is admitted; once the
    bucket is in debt the request is throttled. ``throttle_time_ms()``: the last throttle
    time less the time since it was recorded (0: not throttled)."""

    def __init__(self, manager: MutationQuotaManager, sensor: MutationSensor,
                 strict: bool) -> None:
        self.manager = manager
        self.sensor = sensor
        self.strict = strict
        self._throttle_ms = 0
        self._at_ms = 0

    def _throttled(self, ms: int, at: int) -> None:
        self._throttle_ms, self._at_ms = ms, at
        self.sensor.throttle.record(at, float(ms))

    def record(self, permits: int) -> None:
        m, s = self.manager, self.sensor
        now = now_ms()
        s.last_ms = now
        burst = m.burst(s.bound)
        if self.strict:
            tokens = s.bucket.measure(now, s.bound, burst)
            if tokens < 0:
                self._throttled(mutation_throttle_time_ms(tokens, s.bound), now)
                raise ThrottlingQuotaExceeded(self._throttle_ms)
            s.bucket.record(now, permits, s.bound, burst)
        else:
            tokens = s.bucket.record(now, permits, s.bound, burst)
            if tokens < 0:
                self._throttled(mutation_throttle_time_ms(tokens, s.bound), now)
        s.rate.record(now, float(permits))

    def throttle_time_ms(self) -> int:
        return max(0, self._throttle_ms - (now_ms() - self._at_ms))


class MutationQuotaManager:
    """The active controller's ``controller_mutation_rate`` buckets (Kafka's
    ControllerMutationQuotaManager), read from the image at each request (``quotas()``) and
    resolved with the client quotas' precedence. A bucket holds ``window_num`` x
    ``window_ms`` worth of its rate (Kafka's ``controller.quota.window.num`` x
    ``controller.quota.window.size.seconds``); one idle for an hour is dropped.

    Metrics (labels ``user``, ``client_id`` as the bucket is keyed):
    ``strom_controller_mutation_rate`` (partitions per second over the window),
    ``strom_controller_mutation_tokens`` (tokens left; negative: exhausted),
    ``strom_controller_mutation_limit`` (the rate in force) and
    ``strom_controller_mutation_throttle_time_ms`` (average throttle time)."""

    def __init__(self, quotas: Callable[[], Mapping[Any, Mapping[str, float]]], *,
                 window_num: int, window_ms: int,
                 expiry_ms: int = SENSOR_EXPIRY_MS) -> None:
        self.quotas = quotas
        self.window_num = window_num
        self.window_ms = window_ms
        self.expiry_ms = expiry_ms
        self.sensors: dict[tuple[str, str], MutationSensor] = {}
        self._swept_ms = 0
        self._registered: set[int] = set()

    def burst(self, bound: float) -> float:
        return self.window_num * self.window_ms / 1000 * bound

    def quota_for(self, user: str, client_id: str, strict: bool) -> MutationQuota | None:
        """The request's quota, or None when no controller_mutation_rate applies."""
        found = resolve(self.quotas(), user, client_id, CONTROLLER_MUTATION_RATE)
        if found is None:
            return None
        bound, key, _entity = found
        now = now_ms()
        sensor = self.sensors.get(key)
        if sensor is None:
            sensor = self.sensors[key] = MutationSensor(
                TokenBucket(), SampledStat(self.window_num, self.window_ms),
                SampledStat(self.window_num, self.window_ms), bound, now)
        sensor.bound, sensor.last_ms = bound, now
        if now - self._swept_ms >= _SWEEP_EVERY_MS:
            self._swept_ms = now
            for k in [k for k, s in self.sensors.items() if now - s.last_ms >= self.expiry_ms]:
                del self.sensors[k]
        return MutationQuota(self, sensor, strict)

    def register_metrics(self, registry: Any) -> None:
        """The ``strom_controller_mutation_*`` gauges in ``registry`` (once per registry)."""
        if registry is None or id(registry) in self._registered:
            return
        self._registered.add(id(registry))
        gauges = CallbackGauges()
        labels = ("user", "client_id")

        def each(value: Callable[[MutationSensor, int], float]
                 ) -> Callable[[], Iterable[tuple[tuple[str, ...], float]]]:
            def read() -> list[tuple[tuple[str, ...], float]]:
                now = now_ms()
                return [(key, value(s, now)) for key, s in list(self.sensors.items())]
            return read

        gauges.gauge("strom_controller_mutation_rate",
                     "Partitions created or deleted per second (KIP-599), per bucket.",
                     each(lambda s, now: s.rate.rate(now)), labels)
        gauges.gauge("strom_controller_mutation_tokens",
                     "Tokens left in the controller mutation bucket (negative: exhausted).",
                     each(lambda s, now: s.bucket.measure(now, s.bound,
                                                          self.burst(s.bound))), labels)
        gauges.gauge("strom_controller_mutation_limit",
                     "controller_mutation_rate in force, per bucket.",
                     each(lambda s, _now: s.bound), labels)
        gauges.gauge("strom_controller_mutation_throttle_time_ms",
                     "Average throttle time of the throttled mutation requests over the "
                     "quota window, per bucket.", each(lambda s, now: s.throttle.avg(now)),
                     labels)
        gauges.register(registry)
