"""Transactions survive kill -9 of the broker (issue 10): the coordinator replays
``__transaction_state`` at start.

- Ongoing at the kill: after the restart the coordinator still knows the transaction and
  aborts it once ``transaction.timeout.ms`` has passed (ABORT markers; read_committed
  sees nothing of it, the last stable offset moves to the log end).
- PrepareCommit at the kill: the transaction completes after the restart (COMMIT markers
  on every partition). To hold it in PrepareCommit deterministically, one partition's
  topic gets ``max.message.bytes`` below a marker's size before the commit, so its marker
  is refused (MESSAGE_TOO_LARGE, retried); once the limit is raised again the restarted
  coordinator writes it and completes the transaction.
"""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)
from kio.schema.describe_transactions.v0.request import DescribeTransactionsRequest
from kio.schema.errors import ErrorCode as E

from net.wire import WireClient
from tests.integration.test_txn_clients import produce_plain, read_all
from tests.integration.test_txn_protocol import add_partitions, end, init, produce_txn
from tests.support.broker import BrokerProcess
from tests.support.stable_offsets import stable_and_end_offsets

pytestmark = pytest.mark.timeout(180)
BROKER_OVERRIDES = {"transaction.abort.timed.out.transaction.cleanup.interval.ms": "300"}
DEADLINE_S = 40.0


def wire_to(broker: BrokerProcess) -> WireClient:
    host, _, port = broker.bootstrap.rpartition(":")
    return WireClient(host, int(port), timeout=20.0)


def txn_state(broker: BrokerProcess, tid: str) -> str:
    with wire_to(broker) as wire:
        [state] = wire.request(
            DescribeTransactionsRequest(transactional_ids=(tid,))).transaction_states
        return state.transaction_state


def wait_state(broker: BrokerProcess, tid: str, wanted: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    state = None
    while time.monotonic() < deadline:
        try:
            state = txn_state(broker, tid)
        except (OSError, ConnectionError):
            state = "unreachable"
        if state == wanted:
            return
        time.sleep(0.2)
    raise AssertionError(f"{tid} is {state}, not {wanted}, after {DEADLINE_S} s")


def lso_and_end(broker: BrokerProcess, topic: str) -> tuple[int, int]:
    return stable_and_end_offsets(broker.bootstrap, topic)


def set_max_message_bytes(bootstrap: str, topic: str, value: str | None) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    op = AlterConfigOpType.SET if value is not None else AlterConfigOpType.DELETE
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry("max.message.bytes", value or "", incremental_operation=op)])
    for fut in admin.incremental_alter_configs([resource]).values():
        fut.result(DEADLINE_S)


def test_ongoing_transaction_is_aborted_on_timeout_after_kill(broker: BrokerProcess) -> None:
    topic = f"crash-ongoing-{uuid.uuid4().hex[:8]}"
    produce_plain(broker.bootstrap, topic, [b"before"])
    tid = f"crash-ongoing-{uuid.uuid4().hex[:8]}"
    with wire_to(broker) as wire:
        code, pid, epoch = init(wire, tid, timeout_ms=3000)
        assert code == E.none
        assert add_partitions(wire, tid, pid, epoch, {topic: [0]}) == {(topic, 0): E.none}
        assert produce_txn(wire, tid, topic, pid, epoch, 0, b"in-flight") == E.none
    assert txn_state(broker, tid) == "Ongoing"
    assert lso_and_end(broker, topic) == (1, 2)  # the open transaction holds the LSO
    broker.restart(clean=False)  # kill -9
    wait_state(broker, tid, "CompleteAbort")
    lso, end_offset = lso_and_end(broker, topic)
    assert lso == end_offset == 3  # record, marker
    assert read_all(broker.bootstrap, topic, "read_committed", 1) == [b"before"]
    assert read_all(broker.bootstrap, topic, "read_uncommitted", 2) == [b"before", b"in-flight"]


def test_prepare_commit_completes_after_kill(broker: BrokerProcess) -> None:
    stuck, other = (f"crash-{n}-{uuid.uuid4().hex[:8]}" for n in ("stuck", "other"))
    produce_plain(broker.bootstrap, stuck, [b"s-before"])
    produce_plain(broker.bootstrap, other, [b"o-before"])
    tid = f"crash-prepare-{uuid.uuid4().hex[:8]}"
    with wire_to(broker) as wire:
        code, pid, epoch = init(wire, tid, timeout_ms=60_000)
        assert add_partitions(wire, tid, pid, epoch, {stuck: [0], other: [0]}) == {
            (stuck, 0): E.none, (other, 0): E.none}
        assert produce_txn(wire, tid, stuck, pid, epoch, 0, b"s-txn") == E.none
        assert produce_txn(wire, tid, other, pid, epoch, 0, b"o-txn") == E.none
        set_max_message_bytes(broker.bootstrap, stuck, "20")  # no marker fits
        assert end(wire, tid, pid, epoch, True) == E.none
    time.sleep(1.0)  # several marker attempts
    assert txn_state(broker, tid) == "PrepareCommit"
    assert read_all(broker.bootstrap, other, "read_committed", 2) == [b"o-before", b"o-txn"]
    broker.restart(clean=False)  # kill -9 in PrepareCommit
    wait_state(broker, tid, "PrepareCommit")  # replayed; still cannot write the marker
    set_max_message_bytes(broker.bootstrap, stuck, None)
    wait_state(broker, tid, "CompleteCommit")
    assert read_all(broker.bootstrap, stuck, "read_committed", 2) == [b"s-before", b"s-txn"]
    assert read_all(broker.bootstrap, other, "read_committed", 2) == [b"o-before", b"o-txn"]
    with wire_to(broker) as wire:  # the id is usable again: a bump, not a new producer id
        code, pid2, epoch2 = init(wire, tid)
        assert (code, pid2, epoch2) == (E.none, pid, epoch + 1)
