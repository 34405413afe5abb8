"""A broker that re-registers without a data directory it registered before (the disk was
wiped or replaced, KIP-858) leaves every ISR, even as the last member, and is never
elected with its empty log; the same or unknown directory ids keep the old rules."""

from __future__ import annotations

import uuid

from controller.metadata import (
    NO_LEADER,
    RESOURCE_TOPIC,
    ConfigRecord,
    Endpoint,
    MetadataImage,
    PartitionChangeRecord,
    PartitionRecord,
    RegisterBrokerRecord,
    TopicRecord,
    UnfenceBrokerRecord,
    apply_all,
)
from controller.metadata.broker_control import BrokerHeartbeats, heartbeat, register_broker
from controller.metadata.dir_control import lost_directories, on_data_lost
from controller.metadata.records import FenceBrokerRecord

DIR_A, DIR_B, DIR_C = uuid.UUID(int=0xA), uuid.UUID(int=0xB), uuid.UUID(int=0xC)
T1, T2 = uuid.UUID(int=1), uuid.UUID(int=2)
EP = (Endpoint("PLAINTEXT", "127.0.0.1", 9092),)
SESSION_MS = 1000


def cluster() -> MetadataImage:
    """Brokers 1-3 (unfenced, one directory each); broker 1 leads ``orders`` 0 (with 2 in
    sync), ``solo`` 0 alone, follows in ``orders`` 1; ``lagging`` 0 has 3 out of sync."""
    return apply_all(MetadataImage(), [
        RegisterBrokerRecord(1, uuid.UUID(int=11), 10, EP, fenced=False, log_dirs=(DIR_A,)),
        RegisterBrokerRecord(2, uuid.UUID(int=12), 11, EP, fenced=False, log_dirs=(DIR_B,)),
        RegisterBrokerRecord(3, uuid.UUID(int=13), 12, EP, fenced=False, log_dirs=(DIR_C,)),
        TopicRecord("orders", T1),
        PartitionRecord(0, T1, (1, 2), (1, 2), 1),
        PartitionRecord(1, T1, (2, 1), (2, 1), 2),
        TopicRecord("solo", T2),
        PartitionRecord(0, T2, (1,), (1,), 1),
        TopicRecord("lagging", uuid.UUID(int=3)),
        PartitionRecord(0, uuid.UUID(int=3), (1, 3), (1,), 1),
    ], offset=20)


def reregister(image: MetadataImage, dirs: tuple[uuid.UUID, ...], *, unclean: bool = False
               ) -> tuple[MetadataImage, object]:
    """Broker 1's process died (its session ran out) and a new one registers."""
    hb = BrokerHeartbeats(SESSION_MS)
    res = register_broker(image, hb, broker_id=1, incarnation_id=uuid.uuid4(),
                          endpoints=EP, rack=None, next_offset=30, now_ms=10_000,
                          log_dirs=dirs, unclean=unclean)
    assert res.error_code == 0, res
    return apply_all(image, list(res.records), 30), res


def state(image: MetadataImage, topic: str, index: int) -> tuple[int, tuple[int, ...]]:
    p = image.partition(topic, index)
    assert p is not None
    return p.leader, p.isr


def fenced(image: MetadataImage) -> MetadataImage:
    """Broker 1 fenced as the session expiry does: it keeps the last ISR places."""
    return apply_all(image, [
        FenceBrokerRecord(1, 10),
        PartitionChangeRecord(0, T1, isr=(2,), leader=2),
        PartitionChangeRecord(1, T1, isr=(2,)),
        PartitionChangeRecord(0, T2, leader=NO_LEADER),
        PartitionChangeRecord(0, uuid.UUID(int=3), leader=NO_LEADER),
    ])


def test_lost_directories() -> None:
    assert lost_directories((DIR_A,), (DIR_B,)) == (DIR_A,)
    assert lost_directories((DIR_A, DIR_B), (DIR_B, DIR_C)) == (DIR_A,)
    assert lost_directories((DIR_A,), (DIR_A,)) == ()
    assert lost_directories((), (DIR_A,)) == ()  # registered before directory ids
    assert lost_directories((DIR_A,), ()) == ()  # a broker that sends none


def test_wiped_broker_leaves_every_isr_even_as_the_last_member() -> None:
    image, res = reregister(fenced(cluster()), (uuid.UUID(int=0xD),))
    assert res.lost_dirs == (DIR_A,)  # type: ignore[attr-defined]
    assert state(image, "orders", 0) == (2, (2,))
    assert state(image, "orders", 1) == (2, (2,))
    assert state(image, "solo", 0) == (NO_LEADER, ())  # nobody holds its data any more
    assert state(image, "lagging", 0) == (NO_LEADER, ())  # 3 is not in sync: not elected
    assert image.brokers[1].log_dirs == (uuid.UUID(int=0xD),)
    # back and caught up, it is unfenced but still leads nothing it lost
    hb = BrokerHeartbeats(SESSION_MS)
    beat = heartbeat(image, hb, broker_id=1, broker_epoch=30, current_metadata_offset=30,
                     want_fence=False, want_shut_down=False, now_ms=10_001)
    assert any(isinstance(r, UnfenceBrokerRecord) for r in beat.records)
    image = apply_all(image, list(beat.records))
    assert state(image, "solo", 0) == (NO_LEADER, ())
    assert state(image, "lagging", 0) == (NO_LEADER, ())


def test_unclean_election_picks_another_live_replica_never_the_wiped_one() -> None:
    image = apply_all(fenced(cluster()), [
        ConfigRecord(RESOURCE_TOPIC, "lagging", "unclean.leader.election.enable", "true")])
    image, _ = reregister(image, (uuid.UUID(int=0xD),))
    assert state(image, "lagging", 0) == (3, (3,))
    assert state(image, "solo", 0) == (NO_LEADER, ())
    image, _ = reregister(fenced(cluster()), (uuid.UUID(int=0xD),), unclean=True)
    assert state(image, "lagging", 0) == (3, (3,))  # the broker default, too


def test_same_or_unknown_directory_keeps_the_old_behaviour() -> None:
    for dirs in ((DIR_A,), ()):
        image, res = reregister(fenced(cluster()), dirs)
        assert res.lost_dirs == ()  # type: ignore[attr-defined]
        assert not [r for r in res.records  # type: ignore[attr-defined]
                    if isinstance(r, PartitionChangeRecord)]
        assert state(image, "solo", 0) == (NO_LEADER, (1,))  # it may lead again


def test_wiped_broker_that_was_still_unfenced_hands_over_its_leaderships() -> None:
    image, _ = reregister(cluster(), (uuid.UUID(int=0xD),))
    assert state(image, "orders", 0) == (2, (2,))
    assert state(image, "solo", 0) == (NO_LEADER, ())
    assert state(image, "lagging", 0) == (NO_LEADER, ())


def test_on_data_lost_without_the_broker_changes_nothing() -> None:
    image = cluster()
    assert on_data_lost(image, 7) == ()
