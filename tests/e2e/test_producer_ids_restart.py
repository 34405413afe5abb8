"""A lone node (``make run`` shape) never hands out a producer id twice:

- after kill -9 and a restart its ids are above every id it handed out before (the
  blocks are in the metadata log, not in memory);
- upgraded from a version that kept a per-data-dir counter (``__strom_producer_ids``,
  ``next_block_start=N``), its first id is at or above N, and stays above it after a
  restart, even though the metadata log knows nothing of the old counter at first.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from kio.schema.init_producer_id.v4.request import InitProducerIdRequest

from net.wire import WireClient
from tests.support.broker import BrokerProcess
from tests.support.fixtures import BROKER_DEFAULT_OVERRIDES

pytestmark = pytest.mark.timeout(120)


def allocate(node: BrokerProcess) -> int:
    host, port = node.bootstrap.rsplit(":", 1)
    request = InitProducerIdRequest(transactional_id=None,
                                    transaction_timeout=datetime.timedelta(seconds=60))
    with WireClient(host, int(port), timeout=15) as client:
        response = client.request(request)
    assert int(response.error_code) == 0, response
    return int(response.producer_id)


def test_ids_after_kill_and_restart_are_above_all_earlier_ones(tmp_path: Path) -> None:
    node = BrokerProcess(tmp_path / "node", BROKER_DEFAULT_OVERRIDES)
    try:
        node.start()
        before = [allocate(node) for _ in range(5)]
        assert len(set(before)) == 5
        node.kill()
        node.start()
        after = [allocate(node) for _ in range(3)]
        assert min(after) > max(before), (before, after)
        node.restart()  # a clean stop too
        again = allocate(node)
        assert again > max(after)
    finally:
        node.close()


def test_upgrade_from_the_per_directory_counter_never_repeats_an_old_id(
        tmp_path: Path) -> None:
    node = BrokerProcess(tmp_path / "node", BROKER_DEFAULT_OVERRIDES)
    node.data_dir.mkdir(parents=True)
    # what an earlier version left: ids below 7000 may have been handed out
    (node.data_dir / "__strom_producer_ids").write_text("next_block_start=7000\n")
    try:
        node.start()
        first = [allocate(node) for _ in range(3)]
        assert min(first) >= 7000, first
        node.kill()
        node.start()
        assert allocate(node) > max(first)
    finally:
        node.close()
