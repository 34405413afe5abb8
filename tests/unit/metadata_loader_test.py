"""Raft + metadata together (both pure): a 3-node quorum replicates metadata batches,
every node builds the same MetadataImage, and a node that fell behind the leader's
snapshot catches up by installing the metadata snapshot."""

from __future__ import annotations

import random
import uuid

import pytest
from raft_harness import Net

from controller.metadata import Endpoint, MetadataError, RegisterBrokerRecord, encode_batch
from controller.metadata.loader import MetadataLoader
from controller.metadata.topic_control import create_topic
from controller.raft import Entry


def feed(net: Net, loaders: dict[int, MetadataLoader], seen: dict[int, int]) -> None:
    for i, readies in net.readies.items():
        for rd in readies[seen[i]:]:
            if rd.snapshot is not None and rd.snapshot_received:
                loaders[i].load_snapshot(rd.snapshot)
            loaders[i].apply_entries(rd.committed)
        seen[i] = len(readies)


def test_every_node_builds_the_same_image_and_snapshots_catch_up_a_lagger() -> None:
    net = Net([1, 2, 3])
    net.advance(400)
    leader = net.leader()
    assert leader is not None
    loaders = {i: MetadataLoader() for i in net.cores}
    seen = {i: 0 for i in net.cores}
    lagger = next(i for i in net.cores if i != leader)
    net.cut = {lagger}
    rng = random.Random(3)
    for b in (1, 2, 3):
        net[leader].propose([encode_batch([RegisterBrokerRecord(
            b, uuid.UUID(int=b), b, (Endpoint("PLAINTEXT", "h", 9000 + b),), None, False)])])
        net.settle()
        feed(net, loaders, seen)
    for n in range(5):
        decision = create_topic(loaders[leader].image, f"t{n}", num_partitions=3,
                                replication_factor=2, rng=rng)
        net[leader].propose([encode_batch(decision.records)])
        net.settle()
        feed(net, loaders, seen)
    # the leader snapshots its image and compacts its log
    net[leader].snapshot_taken(loaders[leader].snapshot())
    net.flush()
    feed(net, loaders, seen)
    net.cut = set()
    net.advance(300)
    feed(net, loaders, seen)
    assert any(rd.snapshot_received for rd in net.readies[lagger])
    images = [loaders[i].image for i in sorted(net.cores)]
    assert images[0] == images[1] == images[2]
    assert sorted(images[0].topic_ids) == ["t0", "t1", "t2", "t3", "t4"]
    assert len(images[0].brokers) == 3


def test_loader_refuses_gaps_and_garbage() -> None:
    loader = MetadataLoader()
    loader.apply_entries([Entry(0, 1, b"LC", control=True)])
    with pytest.raises(MetadataError, match="expected 1"):
        loader.apply_entries([Entry(5, 1, encode_batch([]))])
    with pytest.raises(MetadataError, match="not a metadata batch"):
        loader.apply_entries([Entry(1, 1, b"\x00\x00")])
