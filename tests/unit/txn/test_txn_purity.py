"""The transaction coordinator's core stays pure (DESIGN.md section 1): its state machine,
record format and the group's transactional offsets import no event loop, socket, clock
or process I/O (the same check as tests/unit/test_layering.py, for these modules)."""

from __future__ import annotations

import pytest

from tests.unit.test_layering import IMPURE_MODULES, ROOT, _imports

PURE_MODULES = ["broker/txn/state.py", "broker/txn/log_format.py", "broker/txn/metadata.py",
                "broker/txn/coordinator.py", "broker/group/txn_offsets.py"]


@pytest.mark.parametrize("module", PURE_MODULES)
def test_txn_core_does_no_io(module: str) -> None:
    path = ROOT / module
    assert path.is_file()
    bad = _imports(path) & IMPURE_MODULES
    assert not bad, f"{module} is pure but imports {sorted(bad)}"
