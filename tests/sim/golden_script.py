"""Golden scenarios: a small text script of steps and the trace it must produce.

Script format (one step per line, ``#`` starts a comment)::

    nodes 3                 # cluster size (first step)
    observers 1             # non-voting followers, numbered after the voters
    seed 4                  # simulation seed (first steps)
    snapshot-every 40       # applied entries between local snapshots
    net drop=0 dup=0        # message loss / duplication rates (default 0 in scripts)
    run 400                 # advance virtual time by 400 ms
    propose 5               # propose 5 entries to the current leader
    crash leader            # node names: n1..nN, ``leader`` (the current leader),
    restart n2              #   ``others`` (everyone but the last named leader),
                            #   ``crashed`` (every node that is down)
    partition leader | others
    heal
    resign                  # the leader resigns gracefully (EndQuorumEpoch)
    expect leader n2        # or ``expect leader any`` / ``expect leader none``
    expect epoch n1 2       # node's current epoch
    expect role n1 follower
    expect applied-all 7    # every live node applied exactly 7 entries
    expect snapshot-installed n3
    --- trace               # the rest of the file: the expected trace, one event a line

The runner checks every invariant of ``raft_sim`` after every event, evaluates the
``expect`` steps, and compares the recorded trace with the expected one. Set
``SIM_GOLDEN_UPDATE=1`` to rewrite the trace section after a deliberate change.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from raft_sim import SimParams, Simulation


class ScriptError(AssertionError):
    pass


@dataclass
class Outcome:
    trace: list[str]
    expected: list[str]
    steps: list[str]


def parse(text: str) -> tuple[list[str], list[str]]:
    head, _, tail = text.partition("--- trace")
    steps = [ln.split("#", 1)[0].strip() for ln in head.splitlines()]
    expected = [ln.strip() for ln in tail.splitlines() if ln.strip()]
    return [s for s in steps if s], expected


def run_script(text: str) -> Outcome:
    steps, expected = parse(text)
    params = SimParams(drop_rate=0.0, dup_rate=0.0)
    seed = 0
    body: list[str] = []
    for step in steps:
        word, *args = step.split()
        if word == "nodes":
            params.nodes = int(args[0])
        elif word == "observers":
            params.observers = int(args[0])
        elif word == "seed":
            seed = int(args[0])
        elif word == "snapshot-every":
            params.snapshot_every = int(args[0])
        elif word == "net":
            for arg in args:
                key, value = arg.split("=")
                setattr(params, {"drop": "drop_rate", "dup": "dup_rate"}[key], float(value))
        else:
            body.append(step)
    sim = Simulation(seed, params, trace=True)
    runner = _Runner(sim)
    for step in body:
        runner.do(step)
    return Outcome(sim.trace, expected, steps)


class _Runner:
    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.last_leader: int | None = None

    def node(self, name: str) -> list[int]:
        sim = self.sim
        if name == "leader":
            node = sim.leader()
            if node is None:
                raise ScriptError(f"t={sim.now}: no leader ({sim.describe()})")
            self.last_leader = node.node_id
            return [node.node_id]
        if name == "crashed":
            return [n for n in sorted(sim.nodes) if sim.nodes[n].core is None]
        if name == "others":
            if self.last_leader is None:
                raise ScriptError("'others' needs a 'leader' named earlier")
            return [n for n in sorted(sim.nodes) if n != self.last_leader]
        return [int(part.lstrip("n")) for part in name.split(",")]

    def do(self, step: str) -> None:
        sim = self.sim
        word, *args = step.split()
        if word == "run":
            sim.run_until(sim.now + int(args[0]))
        elif word == "propose":
            for _ in range(int(args[0])):
                if sim.propose() is None:
                    raise ScriptError(f"t={sim.now}: propose without a leader")
        elif word == "crash":
            for n in self.node(args[0]):
                sim.crash(n)
        elif word == "restart":
            for n in self.node(args[0]):
                sim.restart(n)
        elif word == "partition":
            groups = " ".join(args).split("|")
            sim.partition(*(set(self.node_list(g.split())) for g in groups))
        elif word == "heal":
            sim.heal()
        elif word == "resign":
            sim.resign()
        elif word == "expect":
            self.expect(args)
        else:
            raise ScriptError(f"unknown step {step!r}")

    def node_list(self, names: list[str]) -> list[int]:
        return [n for name in names for n in self.node(name)]

    def expect(self, args: list[str]) -> None:
        sim = self.sim
        what = args[0]
        if what == "leader":
            node = sim.leader()
            got = "none" if node is None else f"n{node.node_id}"
            want = args[1]
            if want == "any" and node is not None:
                self.last_leader = node.node_id
                return
            if got != want:
                raise ScriptError(f"t={sim.now}: expected leader {want}, got {got} "
                                  f"({sim.describe()})")
            self.last_leader = node.node_id if node else None
        elif what in ("epoch", "role"):
            node = sim.nodes[self.node(args[1])[0]]
            got = "dead" if node.core is None else str(
                node.core.epoch if what == "epoch" else node.core.role)
            if got != args[2]:
                raise ScriptError(f"t={sim.now}: expected {what} of {args[1]} = {args[2]}, "
                                  f"got {got}")
        elif what == "applied-all":
            want = int(args[1])
            for node in sim.nodes.values():
                if node.core is not None and len(node.applied) != want:
                    raise ScriptError(f"t={sim.now}: n{node.node_id} applied "
                                      f"{len(node.applied)} entries, expected {want}")
        elif what == "snapshot-installed":
            node_id = self.node(args[1])[0]
            if not any(f"n{node_id} installed snapshot" in line for line in sim.trace):
                raise ScriptError(f"n{node_id} never installed a snapshot")
        else:
            raise ScriptError(f"unknown expectation {args!r}")


def update_trace(path: Path, trace: list[str]) -> None:
    head = path.read_text().partition("--- trace")[0]
    path.write_text(head + "--- trace\n" + "\n".join(trace) + "\n")
