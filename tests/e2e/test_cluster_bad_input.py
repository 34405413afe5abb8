"""Bad input to a cluster node's metadata quorum state, on a real ``strom serve`` process.

- a stored voter set that disagrees with ``controller.quorum.voters`` → refuses to start,
  naming both sets;
- a corrupted quorum-state file → refuses, naming the file;
- a metadata log whose last record is torn (truncated mid-record, as after a crash) →
  recovers: the torn tail is cut, the node starts and serves the entries before it;
- a corrupted record with data after it → refuses, naming the segment and byte;
- inconsistent role/listener configuration → refuses with the property names;
- a fresh node whose voter set disagrees with the running cluster's stops as soon as it
  reads the cluster's log (the LeaderChange entry names the other voter set), naming both.
"""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path

import pytest

from broker.cluster.node import METADATA_DIR, METADATA_PARENT
from controller.metadata.codec import encode_batch
from controller.metadata.records import PartitionRecord, TopicRecord
from controller.raft import Entry, QuorumState, Ready, encode_leader_change
from controller.raft_store import RaftStore
from tests.e2e.test_cluster import free_ports, metadata, wait_until
from tests.support.broker import BrokerProcess, BrokerStartError

pytestmark = pytest.mark.timeout(60)
CLUSTER_ID = "bad-input-cluster"


def node(workdir: Path, voters: str, *, client: int, controller: int) -> BrokerProcess:
    return BrokerProcess(workdir, {
        "node.id": 1, "cluster.id": CLUSTER_ID, "controller.quorum.voters": voters,
        "listeners": f"PLAINTEXT://127.0.0.1:{client},CONTROLLER://127.0.0.1:{controller}",
    }, startup_timeout=15)


def store_dir(workdir: Path) -> Path:
    return workdir / "data" / METADATA_PARENT / METADATA_DIR


def prepared_store(workdir: Path, voters: frozenset[int], entries: tuple[Entry, ...] = ()
                   ) -> RaftStore:
    store = RaftStore.open(store_dir(workdir), cluster_id=CLUSTER_ID, voters=voters)
    store.persist(Ready(quorum_state=QuorumState(1, 1, 1), entries=entries))
    return store


def topic_entries() -> tuple[Entry, ...]:
    kept, torn = uuid.uuid4(), uuid.uuid4()
    return (
        Entry(0, 1, encode_leader_change(1, [1]), control=True),
        Entry(1, 1, encode_batch([TopicRecord("kept", kept),
                                  PartitionRecord(0, kept, (1,), (1,), 1)])),
        Entry(2, 1, encode_batch([TopicRecord("torn", torn),
                                  PartitionRecord(0, torn, (1,), (1,), 1)])),
    )


def refused(broker: BrokerProcess) -> str:
    with pytest.raises(BrokerStartError) as info:
        broker.start()
    broker.close()
    assert "exited with code 1" in str(info.value)
    return str(info.value)


def test_stored_voter_set_that_disagrees_is_refused(tmp_path: Path) -> None:
    client, controller = free_ports(2)
    prepared_store(tmp_path, frozenset({1, 2, 3}))
    text = refused(node(tmp_path, f"1@127.0.0.1:{controller}", client=client,
                        controller=controller))
    assert "voter set [1, 2, 3] on disk differs from controller.quorum.voters [1]" in text


def test_corrupted_quorum_state_is_refused(tmp_path: Path) -> None:
    client, controller = free_ports(2)
    prepared_store(tmp_path, frozenset({1}))
    (store_dir(tmp_path) / "quorum-state").write_bytes(b'{"leaderEpoch": 7, "crc": 1')
    text = refused(node(tmp_path, f"1@127.0.0.1:{controller}", client=client,
                        controller=controller))
    assert "quorum-state: corrupted quorum-state file" in text


def test_metadata_log_truncated_mid_record_recovers(tmp_path: Path) -> None:
    client, controller = free_ports(2)
    prepared_store(tmp_path, frozenset({1}), topic_entries())
    [segment] = store_dir(tmp_path).glob("*.log")
    segment.write_bytes(segment.read_bytes()[:-5])  # the last record loses its tail
    broker = node(tmp_path, f"1@127.0.0.1:{controller}", client=client, controller=controller)
    try:
        broker.start()
        wait_until(lambda: [t.name for t in metadata(client).topics] == ["kept"], 15,
                   "the entries before the torn record to be served")
        assert "cut torn tail" in broker.log_tail(max_bytes=1 << 26)
        broker.stop()
    finally:
        broker.close()


def test_corrupted_record_followed_by_data_is_refused(tmp_path: Path) -> None:
    client, controller = free_ports(2)
    prepared_store(tmp_path, frozenset({1}), topic_entries())
    [segment] = store_dir(tmp_path).glob("*.log")
    data = bytearray(segment.read_bytes())
    data[22] ^= 0xFF  # inside the first record's payload: its checksum no longer matches
    segment.write_bytes(bytes(data))
    text = refused(node(tmp_path, f"1@127.0.0.1:{controller}", client=client,
                        controller=controller))
    assert "corrupted record at byte 0 (checksum mismatch)" in text
    assert "refusing to start with a damaged metadata log" in text


@pytest.mark.parametrize(("overrides", "message"), [
    ({"controller.quorum.voters": "1@127.0.0.1"}, "is not id@host:port"),
    ({"controller.quorum.voters": "2@127.0.0.1:{controller}"},
     "has the controller role but is not in controller.quorum.voters"),
    ({"process.roles": "broker"}, "is in controller.quorum.voters but process.roles"),
    ({"controller.quorum.voters": "1@127.0.0.1:1"},
     "does not match this node's controller.quorum.voters entry"),
])
def test_inconsistent_cluster_configuration_is_refused(
        tmp_path: Path, overrides: dict[str, str], message: str) -> None:
    client, controller = free_ports(2)
    broker = node(tmp_path, f"1@127.0.0.1:{controller}", client=client, controller=controller)
    broker.overrides.update({k: v.format(controller=controller) for k, v in overrides.items()})
    assert message in refused(broker)


def test_fresh_node_with_a_voter_set_that_disagrees_with_the_cluster_stops(
        tmp_path: Path) -> None:
    client1, ctrl1, client2, ctrl2 = free_ports(4)
    cluster = node(tmp_path / "n1", f"1@127.0.0.1:{ctrl1}", client=client1, controller=ctrl1)
    intruder = BrokerProcess(tmp_path / "n2", {
        "node.id": 2, "cluster.id": CLUSTER_ID,
        "controller.quorum.voters": f"1@127.0.0.1:{ctrl1},2@127.0.0.1:{ctrl2}",
        "listeners": f"PLAINTEXT://127.0.0.1:{client2},CONTROLLER://127.0.0.1:{ctrl2}",
    }, startup_timeout=15)
    try:
        cluster.start()
        wait_until(lambda: [b.node_id for b in metadata(client1).brokers] == [1], 15,
                   "the one-voter cluster to serve")
        with contextlib.suppress(BrokerStartError):  # it may stop before it serves
            intruder.start()
        wait_until(lambda: intruder.returncode is not None, 20,
                   "the node with the other voter set to stop")
        assert intruder.returncode == 1
        text = intruder.log_tail()
        assert "a quorum with voters [1]" in text
        assert "but controller.quorum.voters says [1, 2]" in text
        # the cluster is unaffected
        assert [b.node_id for b in metadata(client1).brokers] == [1]
        cluster.stop()
    finally:
        intruder.close()
        cluster.close()
