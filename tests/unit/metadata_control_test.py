"""The active controller's pure decisions: broker registration, heartbeats and fencing,
topic creation/deletion, partition growth, config changes — checked by applying the
records they produce to a MetadataImage."""

from __future__ import annotations

import random
import uuid
from collections import Counter

from controller.metadata import NO_LEADER, Endpoint, MetadataImage, apply_all
from controller.metadata.broker_control import (
    BrokerHeartbeats,
    fence_expired,
    heartbeat,
    register_broker,
)
from controller.metadata.topic_control import (
    alter_topic_configs,
    create_partitions,
    create_topic,
    delete_topic,
    validate_topic_name,
)
from protocol.errors import ErrorCode

SESSION_MS = 9000


def ep(broker_id: int) -> tuple[Endpoint, ...]:
    return (Endpoint("PLAINTEXT", "127.0.0.1", 9091 + broker_id),)


class Cluster:
    """Applies every decision's records, as the committed log would."""

    def __init__(self) -> None:
        self.image = MetadataImage()
        self.offset = 0
        self.hb = BrokerHeartbeats(SESSION_MS)
        self.rng = random.Random(5)
        self.epochs: dict[int, int] = {}

    def commit(self, records: tuple) -> None:
        if records:
            self.image = apply_all(self.image, list(records), self.offset)
            self.offset += 1

    def start_broker(self, broker_id: int, now: int, rack: str | None = None) -> None:
        res = register_broker(self.image, self.hb, broker_id=broker_id,
                              incarnation_id=uuid.uuid4(), endpoints=ep(broker_id),
                              rack=rack, next_offset=self.offset, now_ms=now)
        assert res.error_code == 0, res
        self.commit(res.records)
        self.epochs[broker_id] = res.broker_epoch
        self.beat(broker_id, now)

    def beat(self, broker_id: int, now: int, **kw: bool) -> object:
        res = heartbeat(self.image, self.hb, broker_id=broker_id,
                        broker_epoch=self.epochs[broker_id],
                        current_metadata_offset=self.offset,
                        want_fence=kw.get("want_fence", False),
                        want_shut_down=kw.get("want_shut_down", False), now_ms=now)
        self.commit(res.records)
        return res


def three_brokers() -> Cluster:
    c = Cluster()
    for b in (1, 2, 3):
        c.start_broker(b, 0)
    return c


def test_registration_then_heartbeat_unfences() -> None:
    c = three_brokers()
    assert [b.broker_id for b in c.image.unfenced_brokers()] == [1, 2, 3]
    assert c.image.brokers[2].broker_epoch == c.epochs[2]


def test_six_partitions_get_leaders_on_all_three_brokers() -> None:
    c = three_brokers()
    d = create_topic(c.image, "orders", num_partitions=6, replication_factor=2, rng=c.rng)
    assert d.ok
    c.commit(d.records)
    topic = c.image.topic("orders")
    leaders = Counter(p.leader for p in topic.partitions.values())
    assert leaders == {1: 2, 2: 2, 3: 2}
    assert all(p.isr == p.replicas for p in topic.partitions.values())


def test_topic_errors() -> None:
    c = three_brokers()
    c.commit(create_topic(c.image, "t", rng=c.rng).records)
    cases = [
        (create_topic(c.image, "t", rng=c.rng), ErrorCode.topic_already_exists),
        (create_topic(c.image, "bad name", rng=c.rng), ErrorCode.invalid_topic_exception),
        (create_topic(c.image, "x", replication_factor=4, rng=c.rng),
         ErrorCode.invalid_replication_factor),
        (create_topic(c.image, "x", num_partitions=0, rng=c.rng), ErrorCode.invalid_partitions),
        (create_topic(c.image, "x", assignments={0: [1, 9]}, rng=c.rng),
         ErrorCode.invalid_replica_assignment),
        (delete_topic(c.image, "nope"), ErrorCode.unknown_topic_or_partition),
        (create_partitions(c.image, "t", 1, rng=c.rng), ErrorCode.invalid_partitions),
    ]
    for decision, code in cases:
        assert decision.error_code == code.value and not decision.records, decision


def test_topic_name_rules() -> None:
    assert validate_topic_name("a.b_c-1") is None
    assert validate_topic_name("..") and validate_topic_name("x" * 250)
    assert validate_topic_name("") and validate_topic_name("ü")


def test_explicit_assignments_and_configs() -> None:
    c = three_brokers()
    d = create_topic(c.image, "t", assignments={0: [3, 1], 1: [2, 3]},
                     configs={"cleanup.policy": "compact"}, rng=c.rng)
    c.commit(d.records)
    assert c.image.partition("t", 0).leader == 3
    assert c.image.topic_config("t") == {"cleanup.policy": "compact"}
    c.commit(alter_topic_configs(c.image, "t", {"cleanup.policy": None,
                                                "retention.ms": "5"}).records)
    assert c.image.topic_config("t") == {"retention.ms": "5"}


def test_create_partitions_grows_the_topic() -> None:
    c = three_brokers()
    c.commit(create_topic(c.image, "t", num_partitions=2, replication_factor=3,
                          rng=c.rng).records)
    d = create_partitions(c.image, "t", 5, rng=c.rng)
    c.commit(d.records)
    topic = c.image.topic("t")
    assert sorted(topic.partitions) == [0, 1, 2, 3, 4]
    assert all(len(p.replicas) == 3 for p in topic.partitions.values())


def test_delete_topic() -> None:
    c = three_brokers()
    c.commit(create_topic(c.image, "t", rng=c.rng).records)
    c.commit(delete_topic(c.image, "t").records)
    assert c.image.topic("t") is None


def test_missed_heartbeats_fence_and_move_leadership() -> None:
    c = three_brokers()
    c.commit(create_topic(c.image, "r2", num_partitions=6, replication_factor=2,
                          rng=c.rng).records)
    c.commit(create_topic(c.image, "r1", num_partitions=3, replication_factor=1,
                          rng=c.rng).records)
    for now in (3000, 6000, 9000):  # brokers 1 and 3 keep beating, 2 went silent
        c.beat(1, now)
        c.beat(3, now)
    c.commit(fence_expired(c.image, c.hb, 9500))
    assert c.image.brokers[2].fenced
    for p in c.image.topic("r2").partitions.values():
        assert p.leader in (1, 3) and 2 not in p.isr
    on_2 = [i for i, p in c.image.topic("r1").partitions.items() if p.replicas == (2,)]
    assert on_2  # RF 1 on the fenced broker: unavailable (no leader), not silently lost
    assert all(c.image.partition("r1", i).leader == NO_LEADER for i in on_2)
    # broker 2 restarts: a new incarnation registers, catches up, is unfenced
    c.start_broker(2, 10_000)
    assert not c.image.brokers[2].fenced
    assert all(c.image.partition("r1", i).leader == 2 for i in on_2)


def test_heartbeat_errors() -> None:
    c = three_brokers()
    res = heartbeat(c.image, c.hb, broker_id=9, broker_epoch=0, current_metadata_offset=0,
                    want_fence=False, want_shut_down=False, now_ms=1)
    assert res.error_code == ErrorCode.broker_id_not_registered.value
    res = heartbeat(c.image, c.hb, broker_id=1, broker_epoch=c.epochs[1] + 100,
                    current_metadata_offset=0, want_fence=False, want_shut_down=False,
                    now_ms=1)
    assert res.error_code == ErrorCode.stale_broker_epoch.value


def test_duplicate_registration_of_a_live_broker_is_refused() -> None:
    c = three_brokers()
    res = register_broker(c.image, c.hb, broker_id=1, incarnation_id=uuid.uuid4(),
                          endpoints=ep(1), rack=None, next_offset=c.offset, now_ms=100)
    assert res.error_code == ErrorCode.duplicate_broker_registration.value


def test_controlled_shutdown_moves_leadership_then_allows_shutdown() -> None:
    c = three_brokers()
    c.commit(create_topic(c.image, "t", num_partitions=3, replication_factor=3,
                          rng=c.rng).records)
    res = c.beat(1, 100, want_shut_down=True)
    assert res.should_shut_down and c.image.brokers[1].fenced
    assert all(p.leader != 1 for p in c.image.topic("t").partitions.values())
