"""A broker that serves its Prometheus metrics, for tests that read them (the quota tests).

- ``metered_broker(workdir, overrides)``: a generator for a pytest fixture
  (``yield from metered_broker(...)``): starts :class:`BrokerProcess` with ``overrides``
  plus ``strom.metrics.address`` on a free 127.0.0.1 port, yields it, closes it (SIGKILL)
  when the fixture ends.
- ``metrics_text(broker)``: the body of ``GET /metrics`` (bounded by ``timeout``).
"""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

from tests.support.broker import BrokerProcess

METRICS_ADDRESS = "strom.metrics.address"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def metered_broker(workdir: Path, overrides: Mapping[str, str]) -> Iterator[BrokerProcess]:
    """See the module doc."""
    proc = BrokerProcess(workdir, {**overrides,
                                   METRICS_ADDRESS: f"127.0.0.1:{_free_port()}"})
    proc.start()
    try:
        yield proc
    finally:
        proc.close()


def metrics_text(broker: BrokerProcess, timeout: float = 10.0) -> str:
    """The Prometheus text the broker serves now."""
    url = f"http://{broker.overrides[METRICS_ADDRESS]}/metrics"
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.read().decode()
