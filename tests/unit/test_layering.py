"""The dependency rules of DESIGN.md section 1, checked by walking imports with ``ast``.

protocol <- storage <- {replication, controller} <- broker (net serves replication,
controller and broker); nothing imports broker;
pure packages import no asyncio, socket or os-level I/O.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# package -> top-level project packages it may import
ALLOWED: dict[str, set[str]] = {
    "common": set(),
    "protocol": {"common"},
    "storage": {"common", "protocol"},
    "replication": {"common", "protocol", "storage", "net"},
    "controller": {"common", "protocol", "storage", "net"},
    "net": {"common", "protocol"},
    "kinesis": {"common", "protocol", "storage", "replication", "net"},
    "broker": {"common", "protocol", "storage", "replication", "controller", "net", "kinesis"},
    "bench": {"common", "protocol", "storage", "replication", "controller", "net", "broker",
              "kinesis"},
}
PROJECT = set(ALLOWED)

# modules that must stay pure: no event loop, sockets, clock or process I/O
PURE_DIRS = ["protocol", "controller/raft", "controller/metadata", "common/security",
             "replication/partition.py",
             "replication/replica_selector.py",
             *(f"broker/share/{m}.py" for m in ("partition", "group", "sessions",
                                                "state_format", "config")),
             *(f"broker/tools/{m}.py" for m in ("positions", "plans", "render", "record_text")),
             "net/partitioner.py",
             *(f"kinesis/{m}.py" for m in ("errors", "hashing", "sequence", "iterators",
                                           "metadata", "validation", "records", "codec",
                                           "sigv4", "cluster", "eventstream", "throttle"))]
IMPURE_MODULES = {"asyncio", "socket", "uvloop", "selectors", "threading", "subprocess", "time"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def _modules(package: str) -> list[Path]:
    base = ROOT / package
    if base.is_file():
        return [base]
    return sorted(base.rglob("*.py")) if base.is_dir() else []


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_dependencies_point_one_way(package: str) -> None:
    for path in _modules(package):
        bad = (_imports(path) & PROJECT) - ALLOWED[package] - {package}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


@pytest.mark.parametrize("pure_dir", PURE_DIRS)
def test_pure_tier_does_no_io(pure_dir: str) -> None:
    for path in _modules(pure_dir):
        bad = _imports(path) & IMPURE_MODULES
        assert not bad, f"{path.relative_to(ROOT)} is pure but imports {sorted(bad)}"
