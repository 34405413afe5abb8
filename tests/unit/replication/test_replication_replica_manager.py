"""ReplicaManager on real PartitionLogs (no sockets): roles from assignments, the serving
gate, acks=-1 waiting for the high watermark, replica fetches moving it, divergence
answers, and a restarted follower's state being forgotten."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from protocol.errors import ErrorCode
from protocol.records import Record, build_batch
from replication.fetch_purgatory import FetchPurgatory
from replication.partition import Assignment, Role
from replication.replica_manager import FetchPartition, ReplicaManager
from storage.log_config import LogConfig
from storage.log_manager import LogManager

TP = ("t", 0)
TID = uuid.uuid4()


def batch(*values: bytes) -> bytes:
    return bytes(build_batch([Record(0, 0, b"k", v, []) for v in values]))


def manager(tmp_path: Path, min_isr: int = 2) -> tuple[ReplicaManager, LogManager]:
    logs = LogManager(tmp_path, LogConfig())
    logs.startup(0)
    logs.create("t", 0, LogConfig())
    return ReplicaManager(logs, 1, FetchPurgatory(), min_insync_replicas=lambda _t: min_isr), \
        logs


def assign(rm: ReplicaManager, a: Assignment, *, epochs: dict[int, int] | None = None,
           serving: bool = True) -> None:
    epochs = epochs or {1: 10, 2: 20, 3: 30}
    rm.apply_assignments({TP: a}, topic_ids={"t": TID}, broker_epochs=epochs,
                         eligible=frozenset(epochs), serving=serving, now_ms=0)


def fetch(rm: ReplicaManager, replica: int, offset: int, epoch: int = 0,
          last_epoch: int = -1) -> object:
    result = rm.fetch_records([(TP, FetchPartition(offset, 1 << 20, epoch, last_epoch))],
                              replica_id=replica, read_committed=False, max_bytes=1 << 20,
                              now_ms=1)
    return result.reads[0][1]


async def test_acks_all_waits_for_the_followers(tmp_path: Path) -> None:
    rm, logs = manager(tmp_path)
    assign(rm, Assignment(1, 0, 0, (1, 2, 3), (1, 2, 3)))
    assert rm.partition(*TP).role is Role.LEADER  # type: ignore[union-attr]
    task = asyncio.ensure_future(rm.append_records([(TP, batch(b"a", b"b"))], acks=-1,
                                                   timeout_ms=5000))
    await asyncio.sleep(0.01)
    assert not task.done()
    consumer = fetch(rm, -1, 0)
    assert consumer.records == b"" and consumer.high_watermark == 0  # type: ignore[attr-defined]
    replica = fetch(rm, 2, 0)
    assert replica.records  # type: ignore[attr-defined]  # followers read to the log end
    fetch(rm, 2, 2)
    await asyncio.sleep(0.01)
    assert not task.done()  # replica 3 has not fetched
    fetch(rm, 3, 2)
    [result] = await asyncio.wait_for(task, 1)
    assert result.error_code == 0 and result.base_offset == 0 and result.last_offset == 1
    assert logs.get(*TP).high_watermark == 2  # type: ignore[union-attr]
    await rm.close()
    logs.shutdown()


async def test_acks_all_times_out_and_is_refused_below_min_isr(tmp_path: Path) -> None:
    rm, logs = manager(tmp_path)
    assign(rm, Assignment(1, 0, 0, (1, 2, 3), (1, 2, 3)))
    [late] = await rm.append_records([(TP, batch(b"a"))], acks=-1, timeout_ms=50)
    assert late.error_code == ErrorCode.request_timed_out
    assign(rm, Assignment(1, 0, 1, (1, 2, 3), (1,)))
    [refused] = await rm.append_records([(TP, batch(b"b"))], acks=-1, timeout_ms=50)
    assert refused.error_code == ErrorCode.not_enough_replicas
    [one] = await rm.append_records([(TP, batch(b"c"))], acks=1, timeout_ms=50)
    assert one.error_code == 0 and one.base_offset == 1
    await rm.close()
    logs.shutdown()


async def test_nothing_is_led_until_this_broker_serves(tmp_path: Path) -> None:
    rm, logs = manager(tmp_path)
    assign(rm, Assignment(1, 0, 0, (1, 2, 3), (1, 2, 3)), serving=False)
    assert rm.log(*TP) is None
    [r] = await rm.append_records([(TP, batch(b"a"))], acks=1, timeout_ms=50)
    assert r.error_code == ErrorCode.not_leader_or_follower
    await rm.close()
    logs.shutdown()


async def test_replica_fetch_checks_and_divergence(tmp_path: Path) -> None:
    rm, logs = manager(tmp_path, min_isr=1)
    assign(rm, Assignment(1, 3, 0, (1, 2, 3), (1, 2, 3)))
    await rm.append_records([(TP, batch(b"a", b"b"))], acks=1, timeout_ms=50)
    assert fetch(rm, 9, 0, 3).error_code == ErrorCode.not_leader_or_follower  # type: ignore[attr-defined]
    assert fetch(rm, 2, 0, 2).error_code == ErrorCode.fenced_leader_epoch  # type: ignore[attr-defined]
    assert fetch(rm, 2, 0, 4).error_code == ErrorCode.unknown_leader_epoch  # type: ignore[attr-defined]
    # a follower that has offsets 0..4 of epoch 1, which this leader never had
    diverged = fetch(rm, 2, 5, 3, last_epoch=1)
    assert diverged.diverging_epoch == (-1, 0) and diverged.records == b""  # type: ignore[attr-defined]
    # same epoch, but the follower is ahead of where epoch 3 ends here
    ahead = fetch(rm, 2, 5, 3, last_epoch=3)
    assert ahead.diverging_epoch == (3, 2)  # type: ignore[attr-defined]
    fine = fetch(rm, 2, 2, 3, last_epoch=3)
    assert fine.diverging_epoch is None and fine.error_code == 0  # type: ignore[attr-defined]
    await rm.close()
    logs.shutdown()


async def test_a_restarted_follower_must_fetch_again_before_it_rejoins(tmp_path: Path) -> None:
    rm, logs = manager(tmp_path, min_isr=1)
    assign(rm, Assignment(1, 0, 0, (1, 2, 3), (1, 3)))
    await rm.append_records([(TP, batch(b"a"))], acks=1, timeout_ms=50)
    fetch(rm, 3, 1)
    fetch(rm, 2, 1)  # caught up: proposed for the ISR
    part = rm.partition(*TP)
    assert part is not None and part.pending_isr == (1, 3, 2)
    part.alter_failed()
    # broker 2 restarts: registered again (new epoch), fenced meanwhile
    assign(rm, Assignment(1, 0, 0, (1, 2, 3), (1, 3)), epochs={1: 10, 2: 21, 3: 30})
    assert part.followers[2].log_end_offset == -1
    assert part.isr_to_expand(rm.eligible) is None
    await rm.close()
    logs.shutdown()


async def test_an_unanswered_isr_change_is_sent_again_never_forgotten(tmp_path: Path) -> None:
    rm, logs = manager(tmp_path, min_isr=1)
    assign(rm, Assignment(1, 0, 0, (1, 2, 3), (1, 3)))
    sent: list[tuple[int, ...]] = []
    answers = [RuntimeError("controller unreachable"), [int(ErrorCode.invalid_update_version)],
               [int(ErrorCode.ineligible_replica)]]

    async def alter(items: object) -> list[int]:
        sent.extend(prop.isr for _, _, prop in items)  # type: ignore[attr-defined]
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    rm.alter_partition = alter
    rm.start()
    await rm.append_records([(TP, batch(b"a"))], acks=1, timeout_ms=50)
    fetch(rm, 3, 1)
    fetch(rm, 2, 1)  # caught up: expansion proposed
    part = rm.partition(*TP)
    assert part is not None
    for _ in range(100):
        if len(sent) == 2:
            break
        await asyncio.sleep(0.01)
    # no answer → sent again; INVALID_UPDATE_VERSION → kept pending for the metadata
    assert sent == [(1, 3, 2), (1, 3, 2)] and part.pending_isr == (1, 3, 2)
    # the newer assignment ends it; a certain refusal drops the next proposal
    assign(rm, Assignment(1, 0, 1, (1, 2, 3), (1, 3)))
    assert part.pending_isr is None
    fetch(rm, 2, 1)
    for _ in range(100):
        if part.pending_isr is None and len(sent) == 3:
            break
        await asyncio.sleep(0.01)
    assert sent[-1] == (1, 3, 2) and part.pending_isr is None
    await rm.close()
    logs.shutdown()


async def test_a_duplicate_under_acks_all_waits_for_the_original_to_replicate(
        tmp_path: Path) -> None:
    rm, logs = manager(tmp_path)
    assign(rm, Assignment(1, 0, 0, (1, 2, 3), (1, 2, 3)))
    idempotent = bytes(build_batch([Record(0, 0, b"k", b"v", [])], producer_id=7,
                                   producer_epoch=0, base_sequence=0))
    [first] = await rm.append_records([(TP, idempotent)], acks=-1, timeout_ms=30)
    assert first.error_code == ErrorCode.request_timed_out
    retry = asyncio.ensure_future(rm.append_records([(TP, idempotent)], acks=-1,
                                                    timeout_ms=5000))
    await asyncio.sleep(0.01)
    assert not retry.done()  # stored once, not replicated yet
    fetch(rm, 2, 1)
    fetch(rm, 3, 1)
    [dup] = await asyncio.wait_for(retry, 1)
    assert dup.error_code == 0 and dup.base_offset == 0
    assert logs.get(*TP).log_end_offset == 1  # type: ignore[union-attr]
    await rm.close()
    logs.shutdown()
