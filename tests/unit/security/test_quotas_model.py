"""Client quotas, pure parts: Kafka's precedence of the eight quota entities, the sampled
rate and throttle time (ClientQuotaManager, QuotaUtils), the ClientQuotaRecord codec and
image, and the controller's AlterClientQuotas / DescribeClientQuotas rules."""

from __future__ import annotations

import time

import pytest

from broker.quotas import QuotaManager
from common.security.quotas import (
    IP_QUOTA_KEYS,
    SampledStat,
    TokenBucket,
    bounded_throttle_time_ms,
    entity,
    key_problem,
    mutation_throttle_time_ms,
    resolve,
    resolve_ip,
    throttle_time_ms,
)
from controller.metadata import MetadataImage, apply_all, decode_image, encode_image
from controller.metadata.codec import decode_batch, encode_batch
from controller.metadata.quota_control import Component, QuotaOp, alter, describe
from controller.metadata.records import ClientQuotaRecord
from protocol.errors import ErrorCode

P, C, R = "producer_byte_rate", "consumer_byte_rate", "request_percentage"
CCR, CMR = "connection_creation_rate", "controller_mutation_rate"
INVALID = ErrorCode.invalid_request


def test_the_eight_entities_in_kafkas_order() -> None:
    """Each level wins over all below it; removing it uncovers the next one."""
    levels = [entity(user="alice", client_id="app"), entity(user="alice", client_id=None),
              entity(user="alice"), entity(user=None, client_id="app"),
              entity(user=None, client_id=None), entity(user=None),
              entity(client_id="app"), entity(client_id=None)]
    sensors = [("alice", "app"), ("alice", "app"), ("alice", ""), ("alice", "app"),
               ("alice", "app"), ("alice", ""), ("", "app"), ("", "app")]
    quotas = {e: {P: float(i + 1)} for i, e in enumerate(levels)}
    for i, e in enumerate(levels):
        assert resolve(quotas, "alice", "app", P) == (float(i + 1), sensors[i], e)
        del quotas[e]
    assert resolve(quotas, "alice", "app", P) is None


def test_defaults_apply_to_each_user_and_names_beat_defaults() -> None:
    quotas = {entity(user=None): {P: 3.0}, entity(user="alice"): {P: 5.0},
              entity(client_id="app"): {C: 7.0}}
    assert resolve(quotas, "bob", "x", P) == (3.0, ("bob", ""), entity(user=None))
    assert resolve(quotas, "carol", "x", P)[1] == ("carol", "")  # type: ignore[index]
    assert resolve(quotas, "alice", "x", P)[0] == 5.0  # type: ignore[index]
    # a key is resolved on its own: the user's entity has no consumer quota
    assert resolve(quotas, "alice", "app", C) == (7.0, ("", "app"), entity(client_id="app"))
    assert resolve(quotas, "alice", "other", C) is None


def test_sampled_rate_as_kafkas() -> None:
    r = SampledStat(num=3, window_ms=1000)
    r.record(0, 100_000)
    assert r.span_ms(0) == 2000  # a first burst is spread over num - 1 windows
    assert r.rate(0) == 50_000
    r.record(500, 300_000)  # same sample: 400 kB over 0.5 s + 2 padding windows
    assert r.span_ms(500) == 2500 and r.rate(500) == 160_000
    assert throttle_time_ms(r.rate(500), 100_000, r.span_ms(500)) == 1500
    r.record(1200, 10)  # a new sample on the previous one's grid: starts at 1000
    r.record(3500, 10)  # starts at 3000 (2000-3000 had nothing)
    assert [s.start_ms for s in r.samples] == [0, 1000, 3000]
    r.record(4100, 10)  # the oldest slot is reused, starting at 4000
    assert [s.start_ms for s in r.samples] == [4000, 1000, 3000]
    # at 4100 the 1000 sample is 3 windows old: reset; the oldest left starts at 3000
    assert r.span_ms(4100) == 2100 and r.total(4100) == 20
    r.record(60_000, 1)  # everything older than 3 windows is forgotten
    assert r.total(60_000) == 1


def test_throttle_time_as_quota_utils() -> None:
    assert throttle_time_ms(100.0, 50.0, 2000) == 2000
    assert throttle_time_ms(16.5, 16.5, 9000) == 0
    assert throttle_time_ms(16.5, 20.4, 9000) == 0
    assert bounded_throttle_time_ms(55.0, 50.0, 1000, 500) == 100
    assert bounded_throttle_time_ms(100.0, 50.0, 9000, 500) == 500


def test_a_client_that_waits_its_throttle_time_keeps_to_the_quota() -> None:
    """A producer sending 10 kB as soon as it may, waiting each throttle time: after the
    first burst (the padding lets ~num - 1 windows' worth through at once), every period
    of ``num`` windows carries the quota's worth (in bursts, as Kafka's Rate does)."""
    bound, num = 200_000, 11
    quotas = {entity(client_id="slow"): {P: float(bound)}}
    m = QuotaManager(lambda: quotas, window_num=num, window_ms=1000)
    now, sent = 0, []
    while now < 60_000:
        throttle = m.record("produce", "ANONYMOUS", "slow", 10_000, now)
        sent.append((now, 10_000))
        now += max(throttle, 0) + 2
    assert sum(n for t, n in sent if t < 1000) >= (num - 1) * bound  # the first burst
    period = num * 1000
    for start in (2 * period, 2 * period + 3_700):  # any whole number of periods
        carried = sum(n for t, n in sent if start <= t < start + 3 * period)
        assert 0.95 * bound <= carried * 1000 / (3 * period) <= 1.05 * bound


def test_a_consumer_fetch_asks_at_most_the_windows_worth() -> None:
    quotas = {entity(user=None): {C: 1000.0}}
    m = QuotaManager(lambda: quotas, window_num=11, window_ms=1000)
    assert m.max_in_window("fetch", "anyone", "c") == 10_000  # Kafka: bound x (num - 1) s
    assert m.max_in_window("produce", "anyone", "c") is None


def test_request_percentage_throttle_is_bounded_by_one_window() -> None:
    quotas = {entity(user="u"): {R: 1.0}}
    m = QuotaManager(lambda: quotas, window_num=11, window_ms=1000)
    assert m.record("request", "u", "c", 50.0, 0) == 1000  # 0.5 s of handler time
    assert m.record("request", "v", "c", 50.0, 0) == 0  # no quota for v
    assert set(m.sensors) == {("request", "u", "")}
    m.sweep(3_600_000)
    assert m.sensors == {}


def test_key_rules() -> None:
    assert key_problem(P, 1024.0) is None and key_problem(R, 12.5) is None
    assert key_problem(P, None) is None  # a removal
    assert key_problem(P, 10.5) == f"{P} cannot be a fractional value."
    assert key_problem(P, 0.0) == f"Quota {P} must be greater than 0"
    assert key_problem(R, -1.0) == f"Quota {R} must be greater than 0"
    # KIP-599: a DOUBLE on user / client-id entities; KIP-612: an INT on ip entities only
    assert key_problem("controller_mutation_rate", 2.5) is None
    assert key_problem("connection_creation_rate", 5.0) == \
        "Invalid configuration key connection_creation_rate"
    assert key_problem("connection_creation_rate", 5.0, IP_QUOTA_KEYS) is None
    assert key_problem("connection_creation_rate", 2.5, IP_QUOTA_KEYS) == \
        "connection_creation_rate cannot be a fractional value."
    assert key_problem("connection_creation_rate", 2.0**31, IP_QUOTA_KEYS) == \
        "Proposed value for connection_creation_rate is too large for an INT."
    assert key_problem(P, 1.0, IP_QUOTA_KEYS) == f"Invalid configuration key {P}"
    assert key_problem("bogus", 1.0) == "Invalid configuration key bogus"


def test_record_codec_image_and_snapshot() -> None:
    e = entity(user="alice", client_id=None)
    records = [ClientQuotaRecord(e, P, 1024.0), ClientQuotaRecord(e, R, 12.5)]
    assert decode_batch(encode_batch(records)) == records
    image = apply_all(MetadataImage(), records)
    assert image.quotas == {e: {P: 1024.0, R: 12.5}}
    assert decode_image(encode_image(image)).quotas == image.quotas
    image = apply_all(image, [ClientQuotaRecord(e, P, 0.0, True),
                              ClientQuotaRecord(e, R, 0.0, True)])
    assert image.quotas == {}


@pytest.mark.parametrize("pairs, ops, message", [
    ((), [QuotaOp(P, 1.0, False)], "Invalid empty client quota entity"),
    ((("user", "x"), ("user", "y")), [QuotaOp(P, 1.0, False)],
     "Invalid empty client quota entity, duplicate entity entry user"),
    ((("user", ""),), [QuotaOp(P, 1.0, False)], "Empty user not supported"),
    ((("group", "g"),), [QuotaOp(P, 1.0, False)],
     "Unhandled client quota entity type: group"),
    ((("user", "x"),), [QuotaOp(P, 1.0, False), QuotaOp(P, 2.0, False)],
     f"Duplicate quota key {P} not updating quota for this entity"),
    ((("user", "x"),), [QuotaOp("nope", 1.0, False)], "Invalid configuration key nope"),
    ((("client-id", "c"),), [QuotaOp(C, 1.5, False)], f"{C} cannot be a fractional value."),
    # KIP-612: ip stands alone, names an IP address and takes connection_creation_rate only
    ((("ip", "1.2.3.4"), ("user", "x")), [QuotaOp(CCR, 1.0, False)],
     "Invalid empty client quota entity"),
    ((("client-id", None), ("ip", None)), [QuotaOp(CCR, 1.0, False)],
     "Invalid empty client quota entity"),
    ((("ip", "not-an-ip"),), [QuotaOp(CCR, 1.0, False)],
     "not-an-ip is not a valid IP or resolvable host."),
    ((("ip", "1.2.3.4"),), [QuotaOp(P, 1.0, False)], f"Invalid configuration key {P}"),
    ((("ip", None),), [QuotaOp(CCR, 0.0, False)], f"Quota {CCR} must be greater than 0"),
    ((("user", "x"),), [QuotaOp(CCR, 1.0, False)], f"Invalid configuration key {CCR}"),
])
def test_alter_refuses_as_kafka(pairs: tuple, ops: list, message: str) -> None:
    records, results = alter(MetadataImage(), [(pairs, ops)])
    assert records == []
    assert (results[0].error_code, results[0].message) == (INVALID, message)
    assert results[0].entity == pairs  # echoed as sent


def test_alter_and_describe() -> None:
    image = MetadataImage()
    records, results = alter(image, [
        ((("user", "alice"),), [QuotaOp(P, 10.0, False), QuotaOp(R, 50.0, False)]),
        ((("ip", "1.2.3.4"),), [QuotaOp(P, 10.0, False)]),
        ((("user", "bob"), ("client-id", "app")), [QuotaOp(C, 5.0, False)]),
        ((("client-id", None),), [QuotaOp(P, 5.0, False)]),
        ((("ip", "1.2.3.4"),), [QuotaOp(CCR, 10.0, False)]),
        ((("ip", None),), [QuotaOp(CCR, 3.0, False)]),
        ((("user", "carol"),), [QuotaOp(CMR, 2.5, False)])])
    assert [r.error_code for r in results] == [0, INVALID, 0, 0, 0, 0, 0]
    assert len(records) == 7
    assert alter(image, [((("user", "a"),), [QuotaOp(P, 1.0, False)])], True)[0] == []
    image = apply_all(image, records)
    both = (("client-id", "app"), ("user", "bob"))
    assert set(image.quotas) == {(("user", "alice"),), both, (("client-id", None),),
                                 (("ip", "1.2.3.4"),), (("ip", None),), (("user", "carol"),)}
    # removing a key that is not set writes nothing
    assert alter(image, [((("user", "alice"),), [QuotaOp(C, 0.0, True)])])[0] == []

    def found(components: list[Component], strict: bool = False) -> list:
        code, _, out = describe(image, components, strict)
        assert code == 0
        return [e for e, _ in out]

    assert found([Component("user", 0, "alice")]) == [(("user", "alice"),)]
    assert found([Component("user", 0, "bob")]) == [both]
    assert found([Component("user", 0, "bob")], strict=True) == []
    assert found([Component("client-id", 1, None)], strict=True) == [(("client-id", None),)]
    assert sorted(found([Component("user", 2, None)])) == sorted(
        [(("user", "alice"),), both, (("user", "carol"),)])
    assert len(found([])) == 6 and found([], strict=True) == []
    # kafka-configs.sh --describe --entity-type ips [--entity-name ... | --entity-default]
    assert found([Component("ip", 0, "1.2.3.4")]) == [(("ip", "1.2.3.4"),)]
    assert found([Component("ip", 1, None)], strict=True) == [(("ip", None),)]
    assert sorted(found([Component("ip", 2, None)]), key=repr) == sorted(
        [(("ip", "1.2.3.4"),), (("ip", None),)], key=repr)


@pytest.mark.parametrize("components, code", [
    ([Component("user", 2, None), Component("user", 1, None)], INVALID),
    ([Component("user", 0, None)], INVALID),
    ([Component("user", 1, "x")], INVALID),
    ([Component("user", 7, None)], INVALID),
    ([Component("", 2, None)], INVALID),
    ([Component("ip", 2, None), Component("user", 2, None)], INVALID),
    ([Component("group", 2, None)], ErrorCode.unsupported_version),
])
def test_describe_filter_errors(components: list[Component], code: int) -> None:
    got, message, out = describe(MetadataImage(), components, False)
    assert got == code and message and out == []


def test_handler_time_counts_its_steps_not_its_waits() -> None:
    """request_percentage measures a handler's own time on the loop (broker.quotas)."""
    import asyncio

    from broker.quotas import _Timed

    def busy(seconds: float) -> None:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            pass

    seen: list[str] = []

    async def handler(wait: float) -> int:
        try:
            busy(0.02)
            await asyncio.sleep(wait)
            busy(0.02)
            return 7
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    async def main() -> None:
        timed = _Timed(handler(0.3))
        assert await timed == 7
        assert 0.04 <= timed.ns / 1e9 < 0.25, timed.ns  # the 0.3 s sleep is not counted
        task = asyncio.ensure_future(_Timed(handler(30)))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert seen == ["cancelled"]  # the cancellation reached the handler

    asyncio.run(main())


def test_ip_quota_resolution() -> None:
    """KIP-612: the address's own entity, else the default ip entity; names compare as
    addresses."""
    quotas = {(("ip", "127.0.0.1"),): {CCR: 5.0}, (("ip", "0:0::1"),): {CCR: 7.0},
              (("user", None),): {P: 1.0}}
    assert resolve_ip(quotas, "127.0.0.1") == 5.0
    assert resolve_ip(quotas, "::1") == 7.0
    assert resolve_ip(quotas, "10.0.0.1") is None
    quotas[(("ip", None),)] = {CCR: 2.0}
    assert resolve_ip(quotas, "10.0.0.1") == 2.0 and resolve_ip(quotas, "127.0.0.1") == 5.0


def test_token_bucket_as_kafkas() -> None:
    """KIP-599: a new bucket is full (burst = window num x window s x rate); refilled at
    the rate; the throttle time is the time back to zero tokens."""
    b = TokenBucket()
    rate, burst = 2.0, 4.0  # 2 windows of 1 s
    assert b.measure(1000, rate, burst) == 4.0
    assert b.record(1000, 5, rate, burst) == -1.0
    assert mutation_throttle_time_ms(-1.0, rate) == 500
    assert b.measure(1250, rate, burst) == -0.5
    assert b.measure(1500, rate, burst) == 0.0
    assert b.measure(60_000, rate, burst) == 4.0  # never more than the burst
    assert mutation_throttle_time_ms(0.0, rate) == 0


def test_mutation_quota_strict_and_permissive() -> None:
    """KIP-599 as Kafka's Strict/PermissiveControllerMutationQuota: strict admits while the
    bucket is not in debt (a topic may take it into debt) and refuses after; permissive
    admits everything and throttles once in debt."""
    from broker.quotas import MutationQuotaManager, ThrottlingQuotaExceeded

    image = {entity(user="alice"): {CMR: 2.0}}
    m = MutationQuotaManager(lambda: image, window_num=2, window_ms=1000)
    assert m.quota_for("bob", "x", strict=True) is None  # no quota applies
    strict = m.quota_for("alice", "app", strict=True)
    assert strict is not None
    for _ in range(5):  # 4 tokens: the fifth is admitted into debt
        strict.record(1)
    assert strict.throttle_time_ms() == 0
    with pytest.raises(ThrottlingQuotaExceeded) as refused:
        strict.record(1)
    assert 400 < refused.value.throttle_ms <= 500 and strict.throttle_time_ms() > 0
    permissive = m.quota_for("alice", "other", strict=False)  # /users/alice: one bucket
    assert permissive is not None
    permissive.record(3)
    assert 1500 < permissive.throttle_time_ms() <= 2000
    assert list(m.sensors) == [("alice", "")]
