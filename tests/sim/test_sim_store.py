"""The simulation again, but every node keeps its state in a real ``RaftStore`` directory
and every restart recovers from the files (reopen = what a kill -9 leaves behind, minus
torn writes, which ``raft_store_test`` covers). The invariants must hold exactly as with
the in-memory disk model."""

from __future__ import annotations

from pathlib import Path

import pytest
from raft_sim import Disk, InvariantViolation, SimParams, Simulation

from controller.raft import DurableState, Ready
from controller.raft_store import RaftStore


class StoreDisk(Disk):
    """A Disk whose durable image lives in a RaftStore directory."""

    def __init__(self, directory: Path, voters: frozenset[int]) -> None:
        super().__init__()
        self.directory = directory
        self.voters = voters
        self.store = RaftStore.open(directory, cluster_id="sim", voters=voters)

    def durable_state(self) -> DurableState:
        self.store = RaftStore.open(self.directory, cluster_id="sim", voters=self.voters)
        return self.store.load()

    def write(self, rd: Ready, torn: object = None) -> bool:
        if torn is not None:
            return False  # torn writes are not modelled on real files here
        self.store.persist(rd)
        return rd.quorum_state is not None


@pytest.mark.timeout(120)
@pytest.mark.parametrize("seed", range(1, 9))
def test_simulation_on_real_raft_stores(tmp_path: Path, seed: int) -> None:
    params = SimParams(nodes=3)
    voters = frozenset({1, 2, 3})
    sim = Simulation(seed, params,
                     disk_factory=lambda i: StoreDisk(tmp_path / f"n{i}", voters))
    try:
        sim.random_faults(2000)
        sim.run_until(2000)
        sim.heal_everything()
        sim.run_until(sim.now + 1)
        sim.check_liveness(4000)
    except InvariantViolation as exc:
        pytest.fail(f"seed {seed}: {exc}", pytrace=False)
    restarts = sum(n.incarnation - 1 for n in sim.nodes.values())
    assert restarts >= 1 and len(sim.committed) > 20
