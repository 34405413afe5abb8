"""Golden scenarios (``tests/sim/golden/*.txt``): classic Raft situations as small scripts
whose expectations and full event trace must hold exactly (see ``golden_script``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from golden_script import run_script, update_trace

GOLDEN = Path(__file__).parent / "golden"
SCRIPTS = sorted(GOLDEN.glob("*.txt"))


def test_there_are_golden_scenarios() -> None:
    names = {p.stem for p in SCRIPTS}
    assert {"election", "leader_crash", "split_vote", "partitioned_old_leader",
            "snapshot_catch_up"} <= names


@pytest.mark.timeout(30)
@pytest.mark.parametrize("path", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_golden_scenario(path: Path) -> None:
    outcome = run_script(path.read_text())
    if os.environ.get("SIM_GOLDEN_UPDATE"):
        update_trace(path, outcome.trace)
        return
    assert outcome.trace == outcome.expected, (
        f"trace of {path.name} changed; if intended, rerun with SIM_GOLDEN_UPDATE=1")
