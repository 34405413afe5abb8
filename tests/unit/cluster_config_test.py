"""Cluster configuration parsing and the quorum CLI's table (pure parts)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from broker.cluster.node import ClusterConfigError, ClusterNode, derived_cluster_id
from broker.cluster.quorum_cli import format_replication, format_status
from broker.config import load_config
from controller.quorum import VoterConfigError, parse_voters


def test_parse_voters() -> None:
    assert parse_voters("1@127.0.0.1:19092, 2@strom-2:19093,3@[::1]:19094") == {
        1: ("127.0.0.1", 19092), 2: ("strom-2", 19093), 3: ("::1", 19094)}
    for bad, words in [("", "empty"), ("1@host", "id@host:port"), ("x@h:1", "id@host:port"),
                       ("1@h:0", "id@host:port"), ("1@h:1,1@h:2", "twice"),
                       ("-1@h:1", "id@host:port")]:
        with pytest.raises(VoterConfigError, match=words):
            parse_voters(bad)


def test_derived_cluster_id_is_stable_and_depends_on_the_voters() -> None:
    a = derived_cluster_id("1@h:1,2@h:2")
    assert a == derived_cluster_id("1@h:1, 2@h:2") and a != derived_cluster_id("1@h:1")
    assert len(a) == 22


def _config(**props: str):  # type: ignore[no-untyped-def]
    base = {"node.id": "1", "controller.quorum.voters": "1@127.0.0.1:19092",
            "listeners": "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:19092",
            "log.dirs": "/tmp/strom-unused"}
    config, _ = load_config(None, {**base, **props}, environ={})
    return config


def test_cluster_node_roles_and_listeners() -> None:
    node = ClusterNode(_config())
    assert node.is_broker and node.is_controller and node.client_listener == "PLAINTEXT"
    assert node.cluster_id == derived_cluster_id("1@127.0.0.1:19092")
    assert ClusterNode(_config(**{"cluster.id": "given"})).cluster_id == "given"
    with pytest.raises(ClusterConfigError, match="process.roles must be"):
        ClusterNode(_config(**{"process.roles": "broker,zookeeper"}))
    with pytest.raises(ClusterConfigError, match="needs a listener named in"):
        ClusterNode(_config(listeners="PLAINTEXT://127.0.0.1:9092"))
    with pytest.raises(ClusterConfigError, match="needs a client listener"):
        ClusterNode(_config(listeners="CONTROLLER://127.0.0.1:19092"))
    controller_only = ClusterNode(_config(**{"process.roles": "controller",
                                             "listeners": "CONTROLLER://127.0.0.1:19092"}))
    assert not controller_only.is_broker


def test_quorum_table_shows_lag_per_replica() -> None:
    def replica(rid: int, end: int, ts: int) -> SimpleNamespace:
        return SimpleNamespace(replica_id=rid, log_end_offset=end, last_fetch_timestamp=ts,
                               last_caught_up_timestamp=ts)

    part = SimpleNamespace(leader_id=2, leader_epoch=5, high_watermark=40,
                           current_voters=[replica(1, 37, 900), replica(2, 42, 1000),
                                           replica(3, 42, -1)],
                           observers=[replica(7, 30, 950)])
    lines = format_status(part, 1000)
    assert lines[:5] == ["LeaderId:              2", "LeaderEpoch:           5",
                         "HighWatermark:         40", "CurrentVoters:         [1, 2, 3]",
                         "CurrentObservers:      [7]"]
    rows = [line.split() for line in format_replication(part, 1000)[1:]]
    assert [(r[0], r[1], r[2], r[-1]) for r in rows] == [
        ("1", "37", "5", "Follower"), ("2", "42", "0", "Leader"), ("3", "42", "0", "Follower"),
        ("7", "30", "12", "Observer")]
    assert rows[2][3] == "-"  # never fetched
