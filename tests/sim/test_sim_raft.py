"""Randomized deterministic simulation of 3- and 5-voter quorums (see ``raft_sim``).

Each seed: ``CHAOS_MS`` of virtual time with random proposals, crashes that lose unflushed
writes, partitions, message loss/duplication/reordering and graceful resignations, with
every invariant checked after every event (odd seeds add a non-voting observer that must
follow the log too); then every fault heals and a leader must be
elected and a new proposal applied everywhere within ``LIVENESS_MS``.

Environment: ``SIM_SEEDS=N`` runs seeds 0..N-1 (default 500 per cluster size);
``SIM_SEED=S`` runs only seed S (the replay command printed on failure).
"""

from __future__ import annotations

import os

import pytest
from raft_sim import InvariantViolation, SimParams, Simulation

CHAOS_MS = 5000
LIVENESS_MS = 4000
SEEDS = int(os.environ.get("SIM_SEEDS", "500"))


def _seeds() -> list[int]:
    one = os.environ.get("SIM_SEED")
    return [int(one)] if one else list(range(SEEDS))


def run_seed(seed: int, nodes: int) -> Simulation:
    # odd seeds add an observer (a broker-only node following the log)
    sim = Simulation(seed, SimParams(nodes=nodes, observers=seed % 2))
    sim.random_faults(CHAOS_MS)
    sim.run_until(CHAOS_MS)
    sim.heal_everything()
    sim.run_until(sim.now + 1)
    sim.check_liveness(LIVENESS_MS)
    return sim


@pytest.mark.timeout(140)
@pytest.mark.parametrize("nodes", [3, 5])
def test_random_faults_keep_invariants(nodes: int) -> None:
    commits = 0
    for seed in _seeds():
        failure: InvariantViolation | None = None
        try:
            sim = run_seed(seed, nodes)
        except InvariantViolation as exc:
            failure = exc
        if failure is not None:
            exc = failure
            pytest.fail(
                f"seed {seed} ({nodes} nodes): {exc}\n"
                f"replay: SIM_SEED={seed} .venv/bin/python -m pytest "
                f"'tests/sim/test_sim_raft.py::test_random_faults_keep_invariants[{nodes}]'\n"
                "last events:\n  " + "\n  ".join(exc_history(exc)),
                pytrace=False,
            )
        commits += len(sim.committed)
    # the workload really commits: on average well over one entry per 100 ms of chaos
    assert commits > len(_seeds()) * CHAOS_MS // 200


def exc_history(exc: InvariantViolation) -> list[str]:
    return getattr(exc, "history", [])[-25:]


@pytest.mark.timeout(60)
def test_the_checker_catches_an_injected_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    """Teeth: break the vote restriction (every candidate's log counts as up to date, so
    voters elect candidates missing committed entries): the simulation must notice."""
    import controller.raft.core as core_module
    from controller.raft.types import OffsetAndEpoch

    class AlwaysUpToDate(OffsetAndEpoch):
        def __ge__(self, other: object) -> bool:
            return True

    monkeypatch.setattr(core_module, "OffsetAndEpoch", AlwaysUpToDate)
    for seed in range(40):
        try:
            run_seed(seed, 3)
        except InvariantViolation as exc:
            assert "committed entry changed" in str(exc) or "disagrees" in str(exc)
            return
    pytest.fail("40 seeds with a broken vote rule and no invariant violation")
