"""Leader elections decided by the active controller, checked by applying the records they
produce to a MetadataImage: ElectLeaders (preferred and unclean, KIP-460), per-topic
``unclean.leader.election.enable`` on fencing and unfencing and in the periodic check of
offline partitions, and the automatic leader rebalance by imbalance ratio."""

from __future__ import annotations

import uuid

from controller.metadata import (
    RESOURCE_TOPIC,
    ConfigRecord,
    Endpoint,
    FenceBrokerRecord,
    MetadataImage,
    PartitionRecord,
    RegisterBrokerRecord,
    TopicRecord,
    UnfenceBrokerRecord,
    apply_all,
)
from controller.metadata.broker_control import (
    BrokerHeartbeats,
    fence_broker,
    fence_expired,
    heartbeat,
    unfence_broker,
)
from controller.metadata.elect_leaders import (
    ELECTION_NOT_NEEDED,
    ELIGIBLE_LEADERS_NOT_AVAILABLE,
    INVALID_REQUEST,
    PREFERRED,
    PREFERRED_LEADER_NOT_AVAILABLE,
    UNCLEAN,
    UNKNOWN_TOPIC_OR_PARTITION,
    elect_leaders,
    elect_unclean_leaderless,
    imbalance_ratios,
    rebalance_leaders,
    unclean_enabled,
)

TOPIC_ID = uuid.UUID(int=1)
OTHER_ID = uuid.UUID(int=2)


def brokers(*ids: int, fenced: tuple[int, ...] = ()) -> MetadataImage:
    records: list = []
    for b in ids:
        records.append(RegisterBrokerRecord(b, uuid.UUID(int=100 + b), 10 + b,
                                            (Endpoint("PLAINTEXT", "h", 9000 + b),)))
        if b not in fenced:
            records.append(UnfenceBrokerRecord(b, 10 + b))
    return apply_all(MetadataImage(), records)


def with_topic(image: MetadataImage, name: str, topic_id: uuid.UUID,
               parts: list[tuple[tuple[int, ...], tuple[int, ...], int]],
               configs: dict[str, str] | None = None) -> MetadataImage:
    """``parts``: (replicas, isr, leader) per partition index."""
    records: list = [TopicRecord(name, topic_id)]
    records += [PartitionRecord(i, topic_id, replicas, isr, leader)
                for i, (replicas, isr, leader) in enumerate(parts)]
    records += [ConfigRecord(RESOURCE_TOPIC, name, k, v) for k, v in (configs or {}).items()]
    return apply_all(image, records)


def codes(decision) -> dict[tuple[str, int], int]:
    return {(topic, r.partition): r.error_code
            for topic, results in decision.results for r in results}


def test_preferred_election_answers_as_kafka() -> None:
    image = with_topic(brokers(1, 2, 3, fenced=(3,)), "t", TOPIC_ID, [
        ((1, 2), (1, 2), 1),   # 0: the preferred replica leads
        ((1, 2), (1, 2), 2),   # 1: preferred live and in the ISR, not leading
        ((3, 2), (3, 2), 2),   # 2: preferred fenced
        ((2, 1), (1,), 1),     # 3: preferred live but out of the ISR
    ])
    d = elect_leaders(image, PREFERRED, [("t", [0, 1, 2, 3, 9]), ("nope", [0])])
    assert codes(d) == {("t", 0): ELECTION_NOT_NEEDED, ("t", 1): 0,
                        ("t", 2): PREFERRED_LEADER_NOT_AVAILABLE,
                        ("t", 3): PREFERRED_LEADER_NOT_AVAILABLE,
                        ("t", 9): UNKNOWN_TOPIC_OR_PARTITION,
                        ("nope", 0): UNKNOWN_TOPIC_OR_PARTITION}
    assert [t for t, _ in d.results] == ["t", "nope"]  # request order
    [not_needed] = [r for r in d.results[0][1] if r.partition == 0]
    assert not_needed.message == "Leader election not needed for topic partition."
    after = apply_all(image, list(d.records))
    assert after.partition("t", 1).leader == 1
    assert after.partition("t", 1).leader_epoch == image.partition("t", 1).leader_epoch + 1
    assert after.partition("t", 1).isr == (1, 2)
    for i in (0, 2, 3):
        assert after.partition("t", i) == image.partition("t", i)


def test_a_partition_named_twice_is_elected_once() -> None:
    image = with_topic(brokers(1, 2), "t", TOPIC_ID, [((1, 2), (1, 2), 2)])
    d = elect_leaders(image, PREFERRED, [("t", [0, 0])])
    assert [r.error_code for r in d.results[0][1]] == [0, ELECTION_NOT_NEEDED]
    assert len(d.records) == 1


def test_all_partitions_lists_every_topic_but_leaves_out_not_needed() -> None:
    image = with_topic(brokers(1, 2), "b", TOPIC_ID, [((1, 2), (1, 2), 1),
                                                      ((2, 1), (2, 1), 1)])
    image = with_topic(image, "a", OTHER_ID, [((1,), (1,), 1)])
    d = elect_leaders(image, PREFERRED, None)
    assert [(t, [(r.partition, r.error_code) for r in rs]) for t, rs in d.results] == [
        ("a", []), ("b", [(1, 0)])]
    assert apply_all(image, list(d.records)).partition("b", 1).leader == 2


def test_unclean_election_prefers_the_isr_then_any_live_replica() -> None:
    image = with_topic(brokers(1, 2, 3, fenced=(1,)), "t", TOPIC_ID, [
        ((1, 2, 3), (1, 2, 3), 2),  # 0: live leader
        ((1, 2, 3), (1, 3), -1),    # 1: leaderless, ISR member 3 live
        ((1, 2, 3), (1,), -1),      # 2: leaderless, only the fenced 1 in the ISR
        ((1,), (1,), -1),           # 3: no live replica at all
    ])
    d = elect_leaders(image, UNCLEAN, [("t", [0, 1, 2, 3])])
    assert codes(d) == {("t", 0): ELECTION_NOT_NEEDED, ("t", 1): 0, ("t", 2): 0,
                        ("t", 3): ELIGIBLE_LEADERS_NOT_AVAILABLE}
    after = apply_all(image, list(d.records))
    assert (after.partition("t", 1).leader, after.partition("t", 1).isr) == (3, (1, 3))
    # out of the ISR: the first live replica leads alone, although the topic does not
    # allow unclean election itself (the admin request means it)
    assert (after.partition("t", 2).leader, after.partition("t", 2).isr) == (2, (2,))
    assert after.partition("t", 3).leader == -1


def test_unknown_election_type_is_an_invalid_request() -> None:
    image = with_topic(brokers(1), "t", TOPIC_ID, [((1,), (1,), 1)])
    d = elect_leaders(image, 7, [("t", [0])])
    assert d.error_code == INVALID_REQUEST and not d.records
    assert codes(d) == {("t", 0): INVALID_REQUEST}
    assert elect_leaders(image, 7, None).results == ()


def test_unclean_setting_topic_first_then_broker_default() -> None:
    image = with_topic(brokers(1), "yes", TOPIC_ID, [((1,), (1,), 1)],
                       {"unclean.leader.election.enable": "TRUE"})
    image = with_topic(image, "no", OTHER_ID, [((1,), (1,), 1)],
                       {"unclean.leader.election.enable": "false"})
    assert unclean_enabled(image, "yes", False)
    assert not unclean_enabled(image, "no", True)
    assert unclean_enabled(image, "other", True)
    assert not unclean_enabled(image, "other", False)


def test_fencing_elects_out_of_sync_replicas_only_where_the_topic_allows() -> None:
    # ISR is only broker 1; 2 is a live out-of-sync replica
    image = brokers(1, 2)
    image = with_topic(image, "dirty", TOPIC_ID, [((1, 2), (1,), 1)],
                       {"unclean.leader.election.enable": "true"})
    image = with_topic(image, "clean", OTHER_ID, [((1, 2), (1,), 1)])
    after = apply_all(image, list(fence_broker(image, 1)))
    assert (after.partition("dirty", 0).leader, after.partition("dirty", 0).isr) == (2, (2,))
    assert (after.partition("clean", 0).leader, after.partition("clean", 0).isr) == (-1, (1,))
    # the broker default covers topics without their own setting
    by_default = apply_all(image, list(fence_broker(image, 1, unclean=True)))
    assert by_default.partition("clean", 0).leader == 2
    # and fence_expired decides per topic the same way
    hb = BrokerHeartbeats(1000)
    hb.touch(1, 0)
    hb.touch(2, 5000)
    expired = apply_all(image, list(fence_expired(image, hb, 5500)))
    assert expired.brokers[1].fenced
    assert expired.partition("dirty", 0).leader == 2
    assert expired.partition("clean", 0).leader == -1


def test_unfencing_elects_a_returning_out_of_sync_replica_if_the_topic_allows() -> None:
    # both replicas fenced; the ISR member 1 stays down, out-of-sync 2 comes back
    image = brokers(1, 2, fenced=(1, 2))
    image = with_topic(image, "dirty", TOPIC_ID, [((1, 2), (1,), -1)],
                       {"unclean.leader.election.enable": "true"})
    image = with_topic(image, "clean", OTHER_ID, [((1, 2), (1,), -1)])
    after = apply_all(image, list(unfence_broker(image, 2)))
    assert not after.brokers[2].fenced
    assert (after.partition("dirty", 0).leader, after.partition("dirty", 0).isr) == (2, (2,))
    assert after.partition("clean", 0).leader == -1
    assert apply_all(image, list(unfence_broker(image, 2, unclean=True))).partition(
        "clean", 0).leader == 2
    # through the heartbeat that unfences it
    hb = BrokerHeartbeats(9000)
    res = heartbeat(image, hb, broker_id=2, broker_epoch=12, current_metadata_offset=99,
                    want_fence=False, want_shut_down=False, now_ms=0)
    via_heartbeat = apply_all(image, list(res.records))
    assert via_heartbeat.partition("dirty", 0).leader == 2
    assert via_heartbeat.partition("clean", 0).leader == -1


def test_unfencing_an_isr_member_is_a_clean_election() -> None:
    image = brokers(1, 2, fenced=(1, 2))
    image = with_topic(image, "dirty", TOPIC_ID, [((2, 1), (1,), -1)],
                       {"unclean.leader.election.enable": "true"})
    after = apply_all(image, list(unfence_broker(image, 1)))
    assert (after.partition("dirty", 0).leader, after.partition("dirty", 0).isr) == (1, (1,))


def _ten_partitions(led_elsewhere: int) -> MetadataImage:
    """Broker 1 is preferred for ten partitions; ``led_elsewhere`` of them are led by 2."""
    parts = [((1, 2), (1, 2), 2 if i < led_elsewhere else 1) for i in range(10)]
    parts.append(((2, 1), (2, 1), 2))
    return with_topic(brokers(1, 2), "t", TOPIC_ID, parts)


def test_rebalance_only_when_the_imbalance_exceeds_the_percentage() -> None:
    assert imbalance_ratios(_ten_partitions(1)) == {1: 0.1, 2: 0.0}
    assert rebalance_leaders(_ten_partitions(1), 10) == ((), False)  # 10% is not above 10%
    image = _ten_partitions(2)
    records, more = rebalance_leaders(image, 10)
    assert not more and sorted(r.partition_id for r in records) == [0, 1]
    after = apply_all(image, list(records))
    assert all(p.leader == p.replicas[0] for p in after.topic("t").partitions.values())
    assert rebalance_leaders(after, 10) == ((), False)
    assert rebalance_leaders(image, 0)[0] == records
    assert rebalance_leaders(image, 100) == ((), False)


def test_rebalance_skips_preferred_replicas_that_are_fenced_or_out_of_sync() -> None:
    image = with_topic(brokers(1, 2, 3), "t", TOPIC_ID, [
        ((1, 2), (2,), 2),     # preferred 1 out of the ISR
        ((1, 2), (1, 2), 2),   # eligible
        ((3, 2), (3, 2), 2),   # preferred 3, about to be fenced
    ])
    image = apply_all(image, [FenceBrokerRecord(3, 13)])
    records, more = rebalance_leaders(image, 10)
    assert [(r.partition_id, r.leader) for r in records] == [(1, 1)] and not more


def test_rebalance_caps_a_batch() -> None:
    records, more = rebalance_leaders(_ten_partitions(5), 10, limit=3)
    assert len(records) == 3 and more


def test_periodic_unclean_check_brings_back_offline_partitions_that_may_be() -> None:
    # the only ISR member (1) is fenced; 2 is a live out-of-sync replica
    image = brokers(1, 2, fenced=(1,))
    image = with_topic(image, "dirty", TOPIC_ID, [((1, 2), (1,), -1), ((1,), (1,), -1)],
                       {"unclean.leader.election.enable": "true"})
    image = with_topic(image, "clean", OTHER_ID, [((1, 2), (1,), -1)])
    records, more = elect_unclean_leaderless(image, False)
    assert not more
    assert [(r.topic_id, r.partition_id, r.leader, r.isr) for r in records] == [
        (TOPIC_ID, 0, 2, (2,))]  # partition 1 has no live replica: left alone
    assert [r.topic_id for r in elect_unclean_leaderless(image, True)[0]] == [
        OTHER_ID, TOPIC_ID]  # the broker default covers "clean"; topics by name
    after = apply_all(image, list(records))
    assert elect_unclean_leaderless(after, False) == ((), False)
    assert elect_unclean_leaderless(image, True, limit=1) == (
        elect_unclean_leaderless(image, True)[0][:1], True)
