"""pytest fixtures around :class:`tests.support.broker.BrokerProcess`.

Import them into a conftest (``tests/integration/conftest.py`` does) or a test module:

- ``broker`` (module scope): one broker shared by all tests of a module, default config
  plus ``BROKER_DEFAULT_OVERRIDES``; stopped with SIGTERM at module end (exit code 0
  asserted).  Tests on it must use their own topics (``topic_name``).
- ``bootstrap`` (module scope): ``broker.bootstrap``.
- ``fresh_broker`` (function scope): a broker of its own for tests that restart, kill or
  reconfigure it.
- ``broker_factory`` (function scope): ``broker_factory(overrides=None, **kw)`` starts
  another broker (own data dir); all are closed at test end.
- ``topic_name`` (function scope): a unique, legal topic name for this test;
  ``unique_topic(prefix)`` makes more.

A test module may override the shared broker's config by defining
``BROKER_OVERRIDES = {...}`` at module level.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.broker import BrokerProcess

# Small, test-friendly settings every test broker gets (a module may add its own).
BROKER_DEFAULT_OVERRIDES: dict[str, str] = {
    "num.partitions": "1",
}

_TOPIC_SAFE = re.compile(r"[^a-zA-Z0-9._-]+")


def unique_topic(prefix: str = "t") -> str:
    """A fresh legal topic name: ``<prefix>-<12 hex>``, at most 100 characters."""
    clean = _TOPIC_SAFE.sub("-", prefix).strip("-._") or "t"
    return f"{clean[:80]}-{uuid.uuid4().hex[:12]}"


def _module_overrides(request: pytest.FixtureRequest) -> dict[str, str]:
    extra = getattr(request.module, "BROKER_OVERRIDES", None) or {}
    return {**BROKER_DEFAULT_OVERRIDES, **{k: str(v) for k, v in extra.items()}}


@pytest.fixture(scope="module")
def broker(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BrokerProcess]:
    """One broker per test module (stopped cleanly at the end, exit code 0 asserted)."""
    proc = BrokerProcess(tmp_path_factory.mktemp("broker"), _module_overrides(request))
    proc.start()
    try:
        yield proc
        if proc.running:
            proc.stop()
    finally:
        proc.close()


@pytest.fixture(scope="module")
def bootstrap(broker: BrokerProcess) -> str:
    return broker.bootstrap


@pytest.fixture
def broker_factory(
    tmp_path: Path,
) -> Iterator[Callable[..., BrokerProcess]]:
    """Start extra brokers with their own data dirs; all are SIGKILLed at test end."""
    made: list[BrokerProcess] = []

    def make(overrides: dict[str, str | int] | None = None, **kwargs: object) -> BrokerProcess:
        workdir = tmp_path / f"broker{len(made)}"
        proc = BrokerProcess(
            workdir,
            {**BROKER_DEFAULT_OVERRIDES, **(overrides or {})},
            **kwargs,  # type: ignore[arg-type]
        )
        made.append(proc)
        return proc.start()

    try:
        yield make
    finally:
        for proc in made:
            proc.close()


@pytest.fixture
def fresh_broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BrokerProcess]:
    """A broker for this test only (restart/kill freely); closed at test end."""
    proc = BrokerProcess(tmp_path / "broker", _module_overrides(request))
    proc.start()
    try:
        yield proc
    finally:
        proc.close()


@pytest.fixture
def topic_name(request: pytest.FixtureRequest) -> str:
    """A unique topic name derived from the test's name."""
    return unique_topic(request.node.name)
