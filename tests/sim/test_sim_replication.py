"""Randomized deterministic simulation of one partition replicated by pure ``Partition``
state machines (see ``replication_sim`` for the model and the invariants).

Each seed: ``CHAOS_MS`` of virtual time (at most ``MAX_EVENTS`` events) with acks=all and
acks=1 writes, crashes that lose unflushed data (within the failure bound), partitions,
cut links, message loss and delay, slow metadata; every invariant checked after every
event; then every fault heals and the replicas must converge (full ISR, equal logs, high
watermark at the log end). Seeds run in chunks so a failure names its seed.

Environment: ``SIM_SEEDS=N`` runs seeds 0..N-1 of each configuration (default: 500 for
RF 3 / min ISR 2 - 400 with Strom's shell choices, 100 with ``kafka_shell`` - and 100 each
for RF 3 / min ISR 1 and RF 5 / min ISR 3); ``SIM_SEED=S`` runs only seed S. Replay one
seed with every event printed: ``.venv/bin/python -m tests.sim.replication_sim --seed S
[--rf 3 --min-isr 2] [--kafka] -v`` (a failure prints this command).
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from replication_sim import (
    CHAOS_MS,
    CONTROLLER,
    MAX_EVENTS,
    InvariantViolation,
    Log,
    SimParams,
    Simulation,
    Stats,
    kafka_shell,
    run_seed,
)

from replication.partition import (
    NONE,
    NOT_ENOUGH_REPLICAS,
    NOT_ENOUGH_REPLICAS_AFTER_APPEND,
    Partition,
    Role,
)

CHUNK = 50
#: (replicas, min.insync.replicas, Kafka's shell choices: ``kafka_shell``) -> seeds per run
CONFIGS = {(3, 2, False): 400, (3, 2, True): 100, (3, 1, False): 100, (5, 3, False): 100}


def _seeds(default: int) -> list[int]:
    one = os.environ.get("SIM_SEED")
    if one:
        return [int(one)]
    return list(range(int(os.environ.get("SIM_SEEDS", default))))


Chunk = tuple[int, int, bool, tuple[int, ...]]


def _chunks() -> list[Chunk]:
    out = []
    for (rf, min_isr, kafka), default in CONFIGS.items():
        seeds = _seeds(default)
        for i in range(0, len(seeds), CHUNK):
            out.append((rf, min_isr, kafka, tuple(seeds[i:i + CHUNK])))
    return out


def _id(chunk: Chunk) -> str:
    rf, min_isr, kafka, seeds = chunk
    return f"rf{rf}-min{min_isr}{'-kafka' if kafka else ''}-seeds{seeds[0]}-{seeds[-1]}"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("chunk", _chunks(), ids=_id)
def test_random_faults_keep_invariants(chunk: Chunk) -> None:
    rf, min_isr, kafka, seeds = chunk
    total = Stats()
    beyond = 0
    for seed in seeds:
        params = SimParams(replicas=rf, min_isr=min_isr)
        if kafka:
            params = kafka_shell(params)
        try:
            sim = run_seed(seed, params=params, chaos_ms=CHAOS_MS, max_events=MAX_EVENTS)
        except InvariantViolation as exc:
            flag = " --kafka" if kafka else ""
            pytest.fail(
                f"{exc}\nreplay: .venv/bin/python -m tests.sim.replication_sim --seed {seed} "
                f"--rf {rf} --min-isr {min_isr}{flag} -v\n"
                f"  (or SIM_SEED={seed} .venv/bin/python -m pytest "
                f"tests/sim/test_sim_replication.py -k {_id(chunk).rsplit('-seeds', 1)[0]})\n"
                "last events:\n  " + "\n  ".join(getattr(exc, "history", [])[-30:]),
                pytrace=False)
        beyond += sim.beyond_bound
        for name, value in vars(sim.stats).items():
            setattr(total, name, getattr(total, name) + value)
    if len(seeds) < CHUNK:
        return  # a replayed seed: no workload statistics
    # the workload really exercises the protocol
    assert total.acked_all > 30 * len(seeds), total
    assert total.elections > len(seeds), total
    assert total.shrinks > 0 and total.expands > 0 and total.truncations > 0, total
    if min_isr > 1:
        assert total.lossy_crashes > len(seeds) // 5, total
        assert total.not_enough_replicas > 0, total
    # runs where every ISR member lost committed records (beyond what the design
    # survives, see the module doc of replication_sim) stay rare
    assert beyond <= len(seeds) // 10, f"{beyond} of {len(seeds)} runs beyond the bound"


# ---- the log model ----------------------------------------------------------------------
def test_end_offset_for_epoch_has_kafkas_semantics() -> None:
    log = Log()
    for epoch in (0, 0, 2, 2, 2, 5):
        log.append(epoch, 1)
    assert log.cache == [(0, 0), (2, 2), (5, 5)]
    assert log.end_offset_for_epoch(5) == (5, 6)  # latest: the log end
    assert log.end_offset_for_epoch(2) == (2, 5)
    assert log.end_offset_for_epoch(3) == (2, 5)  # largest epoch <= 3, next start
    assert log.end_offset_for_epoch(1) == (0, 2)
    assert log.end_offset_for_epoch(7) == (5, 6)  # above the latest epoch
    assert log.end_offset_for_epoch(0) == (0, 2)
    assert log.end_offset_for_epoch(-1) == (-1, -1)
    log.assign_epoch(8)  # a new leader's epoch starts at its log end
    assert log.end_offset_for_epoch(5) == (5, 6)
    assert log.end_offset_for_epoch(8) == (8, 6)
    log.truncate_to(6)  # nothing to truncate, but the empty epoch 8 goes (Kafka)
    assert log.cache == [(0, 0), (2, 2), (5, 5)]
    log.truncate_to(3)
    assert log.cache == [(0, 0), (2, 2)] and log.end_offset == 3
    log.append(9, 1)
    assert log.end_offset_for_epoch(8) == (2, 3)
    fresh = Log()
    fresh.append(4, 1)
    assert fresh.end_offset_for_epoch(2) == (2, 0)  # older than every epoch: first start


def test_crash_keeps_the_flushed_prefix() -> None:
    log = Log()
    for epoch in (1, 1, 3):
        log.append(epoch, 7)
    log.flushed = 2
    log.append(3, 8)
    assert log.crash() == 2
    assert log.pids == [7, 7] and log.cache == [(1, 0)]


# ---- targeted scenarios -----------------------------------------------------------------
def _quiet(seed: int = 1) -> Simulation:
    """A lossless cluster after 300 ms: b1 leads, every replica in the ISR."""
    sim = Simulation(seed, SimParams(drop_rate=0.0))
    sim.run_until(300)
    g = sim.reg
    assert g.leader == 1 and set(g.isr) == {1, 2, 3}, sim.describe()
    return sim


def _leader(sim: Simulation) -> Partition:
    part = sim.brokers[sim.reg.leader].part
    assert part is not None and part.role is Role.LEADER
    return part


def _logs_equal(sim: Simulation) -> bool:
    logs = [(b.log.epochs, b.log.pids) for b in sim.brokers.values()]
    return all(log == logs[0] for log in logs)


def test_old_leader_returns_as_follower_and_truncates_what_nobody_got() -> None:
    sim = _quiet()
    for _ in range(3):
        assert sim.produce(acks=-1, count=2, broker=1) == NONE
    sim.run_until(sim.now + 100)
    committed = len(sim.acked)
    assert committed == 6
    sim.partition({1}, {CONTROLLER, 2, 3})
    assert sim.produce(acks=1, count=3, broker=1) == NONE
    orphans = sim.last_pids
    sim.run_until(sim.now + 400)  # session expires, b2 leads in epoch 1
    assert sim.reg.leader == 2 and sim.reg.leader_epoch == 1, sim.describe()
    assert sim.produce(acks=-1, count=2, broker=2) == NONE
    old = sim.brokers[1]
    assert old.part is not None and old.part.role is Role.LEADER  # still believes it
    assert old.log.pids[-3:] == list(orphans)
    sim.heal()
    sim.run_until(sim.now + 600)
    assert old.part.role is Role.FOLLOWER and old.part.leader_id == 2
    assert sim.stats.truncations >= 1
    assert not set(orphans) & set(old.log.pids)
    assert _logs_equal(sim), sim.describe()
    assert set(sim.reg.isr) == {1, 2, 3}, sim.describe()
    assert all(old.log.pids[o] == pid for o, pid in sim.acked.items())


def test_lagging_follower_leaves_the_isr_and_rejoins() -> None:
    sim = _quiet()
    sim.cut_links((1, 3), (2, 3))  # b3 still heartbeats to the controller
    for i in range(40):
        sim.at(sim.now + 10 * i, lambda: sim.produce(acks=-1, broker=1))
    sim.run_until(sim.now + 400)
    assert sim.reg.isr == (1, 2), sim.describe()
    assert sim.stats.shrinks >= 1
    assert len(sim.acked) > 0  # writes go on with two in sync
    lagging = sim.brokers[3].log.end_offset
    assert lagging < sim.brokers[1].log.end_offset
    sim.heal()
    sim.run_until(sim.now + 400)
    assert set(sim.reg.isr) == {1, 2, 3}, sim.describe()
    assert _logs_equal(sim)
    assert _leader(sim).high_watermark == sim.brokers[1].log.end_offset


def test_two_of_three_down_refuses_acks_all() -> None:
    sim = _quiet()
    sim.crash(2, force=True)
    sim.crash(3, force=True)
    assert sim.produce(acks=-1, count=1, broker=1) == NONE  # the ISR still has 3 members
    in_flight = sim.last_pids[0]
    sim.run_until(sim.now + 400)
    assert sim.reg.isr == (1,), sim.describe()
    assert sim.produce_results[in_flight] == NOT_ENOUGH_REPLICAS_AFTER_APPEND
    assert sim.produce(acks=-1, broker=1) == NOT_ENOUGH_REPLICAS
    assert sim.produce(acks=1, broker=1) == NONE  # acks=1 still works
    hw = _leader(sim).high_watermark
    sim.run_until(sim.now + 100)
    assert _leader(sim).high_watermark == hw  # the last replica standing cannot commit
    sim.restart(2)
    sim.run_until(sim.now + 500)
    assert sim.reg.isr == (1, 2), sim.describe()
    assert sim.produce(acks=-1, count=1, broker=1) == NONE
    pid = sim.last_pids[0]
    sim.run_until(sim.now + 100)
    assert sim.produce_results[pid] == NONE


@pytest.mark.xfail(raises=InvariantViolation, strict=True, reason=(
    "KIP-966's unclean-shutdown case: the ISR keeps its last member, and when that member "
    "comes back without unflushed records it leads again and the others truncate to it"))
def test_last_isr_member_losing_unflushed_records_keeps_acked_records() -> None:
    sim = Simulation(1, SimParams(drop_rate=0.0, strict=True, unbounded_crashes=True),
                     auto_flush=False)
    sim.run_until(300)
    assert sim.produce(acks=-1, count=2, broker=1) == NONE
    sim.run_until(sim.now + 100)
    assert len(sim.acked) == 2  # on all three replicas
    sim.cut_links((1, 2), (1, 3))  # b2, b3 lag (and still reach the controller)
    sim.run_until(sim.now + 400)
    assert sim.reg.isr == (1,), sim.describe()
    sim.crash(1)  # nothing was flushed
    sim.run_until(sim.now + 400)
    sim.restart(1)
    sim.heal()
    sim.run_until(sim.now + 600)  # b1 leads again; invariant (3) fails


# ---- the checker has teeth ----------------------------------------------------------------
def _first_violation(seeds: range, params: SimParams | None = None
                     ) -> InvariantViolation | None:
    for seed in seeds:
        try:
            run_seed(seed, chaos_ms=CHAOS_MS, max_events=MAX_EVENTS, params=params)
        except InvariantViolation as exc:
            return exc
    return None


@pytest.mark.timeout(60)
def test_forgetting_an_applied_expansion_is_caught() -> None:
    """``alter_failed`` on a timeout (the expansion may have been applied) lets the leader
    commit without a replica the controller put in the ISR."""
    exc = _first_violation(range(200), params=SimParams(naive_alter=True))
    assert exc is not None and "(1)" in str(exc), exc


@pytest.mark.timeout(60)
def test_a_high_watermark_ignoring_the_pending_expansion_is_caught(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Partition, "maximal_isr", property(lambda self: self.isr))
    exc = _first_violation(range(200))
    assert exc is not None, "no invariant noticed a high watermark over the committed ISR"


@pytest.mark.timeout(60)
def test_committing_below_min_insync_replicas_is_caught(
        monkeypatch: pytest.MonkeyPatch) -> None:
    original = Partition.maybe_advance_high_watermark

    def alone(self: Partition) -> bool:
        saved, self.min_insync_replicas = self.min_insync_replicas, 1
        try:
            return original(self)
        finally:
            self.min_insync_replicas = saved

    monkeypatch.setattr(Partition, "maybe_advance_high_watermark", alone)
    exc = _first_violation(range(200))
    assert exc is not None and "min.insync.replicas" in str(exc), exc


@pytest.mark.timeout(60)
def test_expanding_below_the_leader_epoch_start_is_caught(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A follower that reached the high watermark but not the new leader's epoch start
    may lack records a stale leader committed (KAFKA-7128)."""
    original = Partition.isr_to_expand

    def early(self: Partition, eligible: set[int] | frozenset[int]) -> object:
        saved, self.epoch_start_offset = self.epoch_start_offset, 0
        try:
            return original(self, eligible)
        finally:
            self.epoch_start_offset = saved

    monkeypatch.setattr(Partition, "isr_to_expand", early)
    exc = _first_violation(range(400))
    assert exc is not None, "no invariant noticed an expansion below the epoch start"


def _restart_behind_a_cut(restarts_seen_while_fenced: bool) -> Simulation:
    """b2 loses committed records in a crash and comes back unable to reach the leader."""
    sim = Simulation(1, SimParams(drop_rate=0.0, unbounded_crashes=True,
                                  restarts_seen_while_fenced=restarts_seen_while_fenced),
                     auto_flush=False)
    sim.run_until(300)
    assert sim.produce(acks=-1, count=2, broker=1) == NONE
    sim.run_until(sim.now + 100)
    sim.flush(2)
    assert sim.produce(acks=-1, count=2, broker=1) == NONE
    sim.run_until(sim.now + 100)
    assert len(sim.acked) == 4 and sim.brokers[2].log.end_offset == 4
    sim.crash(2)  # keeps offsets 0-1: committed 2-3 are gone
    sim.cut_links((1, 2))  # b2 reaches the controller, not the leader
    sim.restart(2)
    sim.run_until(sim.now + 600)  # fenced by its session, registered, unfenced
    return sim


def test_a_restarted_follower_rejoins_the_isr_only_after_fetching_again() -> None:
    sim = _restart_behind_a_cut(True)
    assert not sim.breg[2].fenced and 2 not in sim.reg.isr, sim.describe()
    sim.heal()
    sim.run_until(sim.now + 400)
    assert set(sim.reg.isr) == {1, 2, 3} and _logs_equal(sim), sim.describe()


def test_restarts_noticed_only_among_unfenced_brokers_are_caught() -> None:
    """broker/cluster/node.py gives ReplicaManager the epochs of unfenced brokers only, so
    its restart check never fires (a new process registers fenced) and the leader expands
    the ISR with the old process's follower state."""
    with pytest.raises(InvariantViolation, match=r"\(1\) ISR member b2"):
        _restart_behind_a_cut(False)


def _expansion_answer_lost(naive_alter: bool) -> Simulation:
    """b3 lagged out of the ISR; the leader b1's expansion back to [1, 2, 3] is applied
    but its answer is lost, and b1 loses the controller and b3 right then."""
    sim = Simulation(1, SimParams(drop_rate=0.0, dup_rate=0.0, naive_alter=naive_alter))
    sim.run_until(300)
    sim.cut_links((1, 3))
    for i in range(20):
        sim.at(sim.now + 20 * i, lambda: sim.produce(acks=-1, broker=1))
    sim.run_until(sim.now + 400)
    assert sim.reg.isr == (1, 2), sim.describe()
    handle = sim._on_alter

    def on_alter(*args: Any) -> None:
        handle(*args)
        if sim.reg.isr == (1, 2, 3):
            sim.cut_links((CONTROLLER, 1), (1, 3))
            sim._on_alter = handle  # type: ignore[method-assign]

    sim._on_alter = on_alter  # type: ignore[method-assign]
    sim.heal()
    sim.run_until(sim.now + 100)
    assert sim.reg.isr == (1, 2, 3) and sim.brokers[1].part is not None
    assert sim.brokers[1].part.isr == (1, 2)  # the answer never came
    for i in range(10):
        sim.at(sim.now + 10 * i, lambda: sim.produce(acks=-1, broker=1))
    sim.run_until(sim.now + 300)
    return sim


def test_an_expansion_whose_answer_is_lost_stays_pending() -> None:
    sim = _expansion_answer_lost(False)
    assert sim.reg.leader == 2 and set(sim.reg.isr) == {2, 3}, sim.describe()
    assert all(sim.brokers[2].log.pids[o] == pid for o, pid in sim.acked.items())


def test_forgetting_an_expansion_whose_answer_is_lost_is_caught() -> None:
    """ReplicaManager._alter_loop's policy today: ``alter_failed`` on a timeout, so the
    leader commits over [1, 2] while the controller's ISR (which it elects from) has b3."""
    with pytest.raises(InvariantViolation, match=r"\(1\) ISR member b3"):
        _expansion_answer_lost(True)
