"""The e2e fixtures shared by several modules: ``cluster``, a started 3-node
combined-mode cluster with the short timeouts of ``tests.e2e.test_cluster.FAST``
(modules that need other settings define their own ``cluster``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_cluster import Cluster


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path)
    try:
        yield c.start()
    finally:
        c.close()
