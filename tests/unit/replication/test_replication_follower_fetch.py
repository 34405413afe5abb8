"""Follower fetching (KIP-392): the rack-aware selector's choice, a leader naming a
preferred read replica, and a follower serving consumers up to its high watermark, on
real PartitionLogs (no sockets)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from broker.config import ConfigError, load_config
from protocol.errors import ErrorCode
from protocol.records import Record, build_batch
from replication.fetch_purgatory import FetchPurgatory
from replication.partition import Assignment, Role
from replication.replica_manager import (
    FetchPartition,
    PartitionRead,
    ReplicaManager,
    ReplicationConfig,
)
from replication.replica_selector import (
    RACK_AWARE,
    ReplicaView,
    canonical_selector,
    rack_aware_select,
)
from storage.log_config import LogConfig
from storage.log_manager import LogManager

TP = ("t", 0)
TID = uuid.uuid4()
RACKS = {1: "a", 2: "b", 3: "c"}
EPOCHS = {1: 10, 2: 20, 3: 30}


def batch(base: int, *values: bytes, epoch: int = 0) -> bytes:
    return bytes(build_batch([Record(0, 0, b"k", v, []) for v in values], base_offset=base,
                             partition_leader_epoch=epoch))


def manager(tmp_path: Path, selector: str | None = RACK_AWARE
            ) -> tuple[ReplicaManager, LogManager]:
    logs = LogManager(tmp_path, LogConfig())
    logs.startup(0)
    logs.create("t", 0, LogConfig())
    config = ReplicationConfig(replica_selector_class=selector)
    return ReplicaManager(logs, 1, FetchPurgatory(), config=config,
                          min_insync_replicas=lambda _t: 1), logs


def assign(rm: ReplicaManager, a: Assignment, *, eligible: frozenset[int] | None = None,
           racks: dict[int, str | None] | None = None) -> None:
    rm.apply_assignments({TP: a}, topic_ids={"t": TID}, broker_epochs=EPOCHS,
                         eligible=frozenset(EPOCHS) if eligible is None else eligible,
                         serving=True, now_ms=0,
                         broker_racks=RACKS if racks is None else racks)


def fetch(rm: ReplicaManager, offset: int, *, rack: str | None, replica: int = -1,
          epoch: int = 0, read_committed: bool = False, log_start: int = -1
          ) -> PartitionRead:
    result = rm.fetch_records([(TP, FetchPartition(offset, 1 << 20, epoch, -1, log_start))],
                              replica_id=replica, read_committed=read_committed,
                              max_bytes=1 << 20, now_ms=1_000, client_rack=rack)
    return result.reads[0][1]


# ---- the selector (pure) ---------------------------------------------------------------
def test_selector_names() -> None:
    assert canonical_selector(None) is None and canonical_selector("  ") is None
    assert canonical_selector(RACK_AWARE) == RACK_AWARE
    assert canonical_selector("RackAwareReplicaSelector") == RACK_AWARE
    with pytest.raises(ValueError, match="unsupported replica selector"):
        canonical_selector("com.example.MySelector")


def test_config_accepts_kafkas_names_and_refuses_others() -> None:
    config, _ = load_config(overrides={"replica.selector.class": "RackAwareReplicaSelector"},
                            environ={})
    assert config.replica_selector_class == RACK_AWARE
    config, _ = load_config(overrides={}, environ={})
    assert config.replica_selector_class is None  # Kafka's default: the leader serves
    with pytest.raises(ConfigError, match="replica.selector.class"):
        load_config(overrides={"replica.selector.class": "org.example.Closest"}, environ={})


def test_rack_aware_choice() -> None:
    leader = ReplicaView(1, "a", 100)
    b_slow = ReplicaView(2, "b", 90, 500)
    b_fast = ReplicaView(3, "b", 100, 20)
    c = ReplicaView(4, "c", 100, 0)
    assert rack_aware_select(None, leader, [b_fast]) is leader
    assert rack_aware_select("", leader, [b_fast]) is leader
    assert rack_aware_select("a", leader, [b_fast]) is leader  # the leader's own rack
    assert rack_aware_select("z", leader, [b_fast, c]) is leader  # no replica there
    assert rack_aware_select("c", leader, [b_fast, c]) is c
    # the most caught up of the rack: log end offset first ...
    assert rack_aware_select("b", leader, [b_slow, b_fast]) is b_fast
    # ... then the shortest time since caught up, then the larger broker id
    b_recent = ReplicaView(5, "b", 100, 10)
    assert rack_aware_select("b", leader, [b_fast, b_recent]) is b_recent
    b_twin = ReplicaView(6, "b", 100, 10)
    assert rack_aware_select("b", leader, [b_twin, b_recent]) is b_twin
    # racks compare exactly (Kafka's equals)
    assert rack_aware_select("B", leader, [b_fast]) is leader


# ---- the leader names a preferred read replica ----------------------------------------
async def _leader_with_caught_up_followers(tmp_path: Path, selector: str | None = RACK_AWARE
                                           ) -> tuple[ReplicaManager, LogManager]:
    rm, logs = manager(tmp_path, selector)
    assign(rm, Assignment(1, 0, 0, (1, 2, 3), (1, 2, 3)))
    [r] = await rm.append_records([(TP, batch(0, b"x", b"y", b"z"))], acks=1,
                                  timeout_ms=100)
    assert r.error_code == 0
    for follower in (2, 3):  # both fetch to the log end: the high watermark is 3
        assert fetch(rm, 3, rack=None, replica=follower, log_start=0).error_code == 0
    assert logs.get(*TP).high_watermark == 3  # type: ignore[union-attr]
    return rm, logs


async def test_leader_points_a_consumer_to_an_in_sync_follower_of_its_rack(tmp_path: Path
                                                                           ) -> None:
    rm, logs = await _leader_with_caught_up_followers(tmp_path)
    r = fetch(rm, 0, rack="b")
    assert r.error_code == 0 and r.preferred_read_replica == 2 and r.records == b""
    assert r.high_watermark == 3 and r.log_start_offset == 0
    assert fetch(rm, 3, rack="c").preferred_read_replica == 3
    # the answer goes out at once (it is not long-polled)
    result = rm.fetch_records([(TP, FetchPartition(0, 1 << 20))], replica_id=-1,
                              read_committed=False, max_bytes=1 << 20, now_ms=1_000,
                              client_rack="b")
    assert result.errors
    # served here: the leader's rack, no rack, an unknown rack, or Fetch below v11
    for rack in ("a", "", "z", None):
        served = fetch(rm, 0, rack=rack)
        assert served.preferred_read_replica == -1 and served.records, rack
    # the epoch checks come first
    assert fetch(rm, 0, rack="b", epoch=1).error_code == ErrorCode.unknown_leader_epoch
    await rm.close()
    logs.shutdown()


async def test_no_selector_no_preferred_replica(tmp_path: Path) -> None:
    rm, logs = await _leader_with_caught_up_followers(tmp_path, selector=None)
    r = fetch(rm, 0, rack="b")
    assert r.preferred_read_replica == -1 and r.records
    await rm.close()
    logs.shutdown()


async def test_only_in_sync_unfenced_followers_that_have_the_offset(tmp_path: Path) -> None:
    rm, logs = await _leader_with_caught_up_followers(tmp_path)
    # out of the ISR
    assign(rm, Assignment(1, 0, 1, (1, 2, 3), (1, 3)))
    assert fetch(rm, 0, rack="b").preferred_read_replica == -1
    assert fetch(rm, 0, rack="c").preferred_read_replica == 3
    # fenced (still in the ISR)
    assign(rm, Assignment(1, 0, 2, (1, 2, 3), (1, 2, 3)), eligible=frozenset({1, 2}))
    assert fetch(rm, 0, rack="c").preferred_read_replica == -1
    assert fetch(rm, 0, rack="b").preferred_read_replica == 2
    # its last fetch did not reach the consumer's offset
    [r] = await rm.append_records([(TP, batch(0, b"w"))], acks=1, timeout_ms=100)
    assert r.error_code == 0
    assert fetch(rm, 4, rack="b").preferred_read_replica == -1  # follower 2 is at 3
    assert fetch(rm, 3, rack="b").preferred_read_replica == 2
    # its log starts after the consumer's offset
    assert fetch(rm, 3, rack=None, replica=2, log_start=2).error_code == 0
    assert fetch(rm, 1, rack="b").preferred_read_replica == -1
    assert fetch(rm, 2, rack="b").preferred_read_replica == 2
    # without an endpoint on the client's listener
    points = rm.fetch_records([(TP, FetchPartition(3, 1 << 20))], replica_id=-1,
                              read_committed=False, max_bytes=1 << 20, now_ms=1_000,
                              client_rack="b", reachable=frozenset({1, 3}))
    assert points.reads[0][1].preferred_read_replica == -1
    assert rm.preferred_read_replica(TP, "b", 3, 1_000, frozenset({1, 2})) == 2
    # no racks known (an image without them)
    assign(rm, Assignment(1, 0, 3, (1, 2, 3), (1, 2, 3)), racks={})
    assert fetch(rm, 3, rack="b").preferred_read_replica == -1
    await rm.close()
    logs.shutdown()


# ---- a follower serves consumers ----------------------------------------------------------
def _follower(tmp_path: Path, selector: str | None = RACK_AWARE
              ) -> tuple[ReplicaManager, LogManager]:
    """Broker 1 follows broker 2 (leader epoch 4) and holds offsets 0..4, of which the
    leader said 0..2 are committed."""
    rm, logs = manager(tmp_path, selector)
    assign(rm, Assignment(2, 4, 0, (2, 1, 3), (2, 1, 3)))
    assert rm.partition(*TP).role is Role.FOLLOWER  # type: ignore[union-attr]
    plog = logs.get(*TP)
    assert plog is not None
    plog.append_as_follower(batch(0, b"a", b"b", b"c", epoch=4))
    plog.append_as_follower(batch(3, b"d", b"e", epoch=4))
    rm.follower_high_watermark(TP, 3)
    assert plog.high_watermark == 3 and plog.log_end_offset == 5
    return rm, logs


@pytest.mark.parametrize("selector", [RACK_AWARE, None])
async def test_follower_serves_consumers_up_to_its_high_watermark(tmp_path: Path,
                                                                  selector: str | None
                                                                  ) -> None:
    rm, logs = _follower(tmp_path, selector)  # Kafka: with or without a selector
    for rack in ("a", ""):
        r = fetch(rm, 0, rack=rack, epoch=4)
        assert r.error_code == 0 and r.high_watermark == 3 and r.records, rack
        assert r.preferred_read_replica == -1
        plog = logs.get(*TP)
        assert plog is not None
        assert r.records == plog.read(0, 1 << 20, max_offset=3).records  # only 0..2
    # an unchecked leader epoch is served too
    assert fetch(rm, 1, rack="a", epoch=-1).records
    # read_committed: the last stable offset (no transactions: the high watermark)
    r = fetch(rm, 0, rack="a", epoch=4, read_committed=True)
    assert r.error_code == 0 and r.last_stable_offset == 3 and r.aborted_transactions == []
    await rm.close()
    logs.shutdown()


async def test_follower_behind_the_leaders_high_watermark(tmp_path: Path) -> None:
    rm, logs = _follower(tmp_path)
    # offsets it has but has not been told are committed: no records, no error (Kafka)
    for offset in (3, 4, 5):
        r = fetch(rm, offset, rack="a", epoch=4)
        assert r.error_code == 0 and r.records == b"" and r.high_watermark == 3, offset
    # past its log end: OFFSET_OUT_OF_RANGE with its high watermark, so a client that was
    # sent here sees fetch offset > high watermark and goes back to the leader
    r = fetch(rm, 6, rack="a", epoch=4)
    assert r.error_code == ErrorCode.offset_out_of_range and r.high_watermark == 3
    # the leader's next answer moves the bound
    rm.follower_high_watermark(TP, 5)
    assert fetch(rm, 3, rack="a", epoch=4).records
    # ... never past its own log end
    rm.follower_high_watermark(TP, 9)
    assert logs.get(*TP).high_watermark == 5  # type: ignore[union-attr]
    await rm.close()
    logs.shutdown()


async def test_what_a_follower_still_refuses(tmp_path: Path) -> None:
    rm, logs = _follower(tmp_path)
    # Fetch below v11 (no client metadata): leaders only
    assert fetch(rm, 0, rack=None, epoch=4).error_code == ErrorCode.not_leader_or_follower
    # another replica's fetch
    assert fetch(rm, 0, rack=None, replica=3, epoch=4).error_code \
        == ErrorCode.not_leader_or_follower
    # the consumer's leader epoch must match the follower's
    assert fetch(rm, 0, rack="a", epoch=3).error_code == ErrorCode.fenced_leader_epoch
    assert fetch(rm, 0, rack="a", epoch=5).error_code == ErrorCode.unknown_leader_epoch
    # ListOffsets, OffsetForLeaderEpoch and the coordinators use log(): leader-only
    assert rm.log(*TP) is None
    assert rm.missing_error(*TP) == ErrorCode.not_leader_or_follower
    # a follower never redirects
    assert fetch(rm, 0, rack="b", epoch=4).preferred_read_replica == -1
    # not serving any more (e.g. fenced): nothing
    rm.apply_assignments({TP: Assignment(2, 4, 0, (2, 1, 3), (2, 1, 3))},
                         topic_ids={"t": TID}, broker_epochs=EPOCHS,
                         eligible=frozenset(EPOCHS), serving=False, now_ms=0,
                         broker_racks=RACKS)
    assert fetch(rm, 0, rack="a", epoch=4).error_code == ErrorCode.not_leader_or_follower
    await rm.close()
    logs.shutdown()


async def test_follower_high_watermark_wakes_long_polls(tmp_path: Path) -> None:
    rm, logs = _follower(tmp_path)
    fut = rm.purgatory.watch([TP])
    rm.follower_high_watermark(TP, 3)  # unchanged: no wake-up
    assert not fut.done()
    rm.follower_high_watermark(TP, 4)
    assert fut.done()
    rm.purgatory.unwatch([TP], fut)
    await rm.close()
    logs.shutdown()


@pytest.mark.parametrize("selector", [RACK_AWARE, None])
async def test_a_high_watermark_a_follower_was_not_sent_answers_its_fetch_at_once(
        tmp_path: Path, selector: str | None) -> None:
    rm, logs = manager(tmp_path, selector)
    assign(rm, Assignment(1, 0, 0, (1, 2, 3), (1, 2, 3)))
    [r] = await rm.append_records([(TP, batch(0, b"x"))], acks=1, timeout_ms=100)
    assert r.error_code == 0

    def replica_fetch(replica: int, offset: int) -> tuple[bool, int]:
        result = rm.fetch_records([(TP, FetchPartition(offset, 1 << 20, 0))],
                                  replica_id=replica, read_committed=False,
                                  max_bytes=1 << 20, now_ms=1_000)
        return result.errors, result.reads[0][1].high_watermark

    assert replica_fetch(2, 1) == (selector is not None, 0)  # its first answer
    assert replica_fetch(2, 1) == (False, 0)  # nothing new: it may long-poll
    # follower 3 reaching the log end moves the high watermark: its own answer carries it
    assert replica_fetch(3, 1) == (selector is not None, 1)
    # and follower 2's next read (its long poll is woken by the move) answers at once
    assert replica_fetch(2, 1) == (selector is not None, 1)
    assert replica_fetch(2, 1) == (False, 1)
    await rm.close()
    logs.shutdown()
