"""Which long polls a leader wakes: an append wakes every fetch of the partition; a high
watermark move alone wakes consumers, and replica fetches only when a replica selector
is configured (then followers are answered at once with the new high watermark)."""

from __future__ import annotations

import uuid
from pathlib import Path

from protocol.records import Record, build_batch
from replication.fetch_purgatory import FetchPurgatory
from replication.partition import Assignment
from replication.replica_manager import FetchPartition, ReplicaManager, ReplicationConfig
from replication.replica_selector import RACK_AWARE
from storage.log_config import LogConfig
from storage.log_manager import LogManager

TP = ("t", 0)


async def test_high_watermark_moves_wake_consumers_appends_wake_everyone() -> None:
    p = FetchPurgatory()
    consumer = p.watch([TP])
    replica = p.watch([TP], replica=True)
    p.notify(TP, replicas=False)
    assert consumer.done() and not replica.done()
    p.notify(TP)
    assert replica.done()
    replica2 = p.watch([TP, ("t", 1)], replica=True)
    p.unwatch([TP, ("t", 1)], replica2)
    assert p.waiting() == 0
    late = p.watch([TP], replica=True)
    p.wake_all()
    assert late.done()


async def _leader(tmp_path: Path, selector: str | None) -> tuple[ReplicaManager, LogManager]:
    logs = LogManager(tmp_path, LogConfig())
    logs.startup(0)
    logs.create("t", 0, LogConfig())
    rm = ReplicaManager(logs, 1, FetchPurgatory(),
                        config=ReplicationConfig(replica_selector_class=selector))
    epochs = {1: 10, 2: 20, 3: 30}
    rm.apply_assignments({TP: Assignment(1, 0, 0, (1, 2, 3), (1, 2, 3))},
                         topic_ids={"t": uuid.uuid4()}, broker_epochs=epochs,
                         eligible=frozenset(epochs), serving=True, now_ms=0)
    rm.append(logs.get(*TP), bytes(build_batch([Record(0, 0, b"k", b"v", [])])), 1)  # type: ignore[arg-type]
    return rm, logs


def _replica_fetch(rm: ReplicaManager, replica: int, offset: int) -> None:
    rm.fetch_records([(TP, FetchPartition(offset, 1 << 20, 0, 0))], replica_id=replica,
                     read_committed=False, max_bytes=1 << 20, now_ms=1)


async def test_a_follower_moving_the_high_watermark_wakes_consumers_not_the_other_follower(
        tmp_path: Path) -> None:
    rm, logs = await _leader(tmp_path, None)
    _replica_fetch(rm, 2, 1)  # follower 2 has the record; follower 3 not yet
    _replica_fetch(rm, 3, 1)  # ... now it has: the high watermark moves to 1
    assert logs.get(*TP).high_watermark == 1  # type: ignore[union-attr]
    waiting_replica = rm.purgatory.watch([TP], replica=True)
    consumer = rm.purgatory.watch([TP])
    rm.append(logs.get(*TP), bytes(build_batch([Record(0, 0, b"k", b"w", [])])), 2)  # type: ignore[arg-type]
    assert waiting_replica.done() and consumer.done()  # an append wakes everyone
    waiting_replica = rm.purgatory.watch([TP], replica=True)
    consumer = rm.purgatory.watch([TP])
    _replica_fetch(rm, 2, 2)
    _replica_fetch(rm, 3, 2)  # the high watermark moves to 2
    assert consumer.done()  # a consumer may now read the record
    assert not waiting_replica.done()  # a follower's re-read would find nothing new
    await rm.close()
    logs.shutdown()


async def test_with_a_selector_followers_are_woken_by_high_watermark_moves(
        tmp_path: Path) -> None:
    rm, logs = await _leader(tmp_path, RACK_AWARE)
    _replica_fetch(rm, 2, 1)
    waiting_replica = rm.purgatory.watch([TP], replica=True)
    _replica_fetch(rm, 3, 1)  # the high watermark moves: follower 2 should hear of it
    assert waiting_replica.done()
    await rm.close()
    logs.shutdown()
