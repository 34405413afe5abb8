"""ActiveController: decisions see uncommitted proposals; commits complete requests;
losing leadership fails the rest."""

from __future__ import annotations

import random
import uuid

from controller.metadata import Endpoint, RegisterBrokerRecord, encode_batch
from controller.metadata.active import ActiveController
from controller.metadata.loader import MetadataLoader
from controller.metadata.topic_control import create_topic
from controller.raft import Entry
from protocol.errors import ErrorCode


def test_back_to_back_decisions_see_pending_proposals() -> None:
    loader = MetadataLoader()
    loader.apply_entries([Entry(0, 1, b"LC", control=True)])
    active = ActiveController(loader, epoch_start_offset=0)
    assert active.ready
    rng = random.Random(1)
    # no brokers yet: placement is refused
    refused = create_topic(active.image, "t", rng=rng)
    assert refused.error_code == ErrorCode.invalid_replication_factor.value
    register = [RegisterBrokerRecord(1, uuid.UUID(int=1), 1, (Endpoint("PLAINTEXT", "h", 1),),
                                     None, fenced=False)]
    active.propose(register, 1, "register")
    created = create_topic(active.image, "t", rng=rng)  # sees the pending broker
    assert created.ok
    active.propose(created.records, 2, "create-t")
    again = create_topic(active.image, "t", rng=rng)  # sees the pending topic
    assert again.error_code == ErrorCode.topic_already_exists.value
    # the first batch commits
    loader.apply_entries([Entry(1, 1, encode_batch(register))])
    assert active.committed() == ["register"]
    assert loader.image.topic("t") is None and active.image.topic("t") is not None
    # the second one too
    loader.apply_entries([Entry(2, 1, encode_batch(list(created.records)))])
    assert active.committed() == ["create-t"]
    assert active.image == loader.image


def test_not_ready_until_the_leader_change_entry_is_applied() -> None:
    loader = MetadataLoader()
    active = ActiveController(loader, epoch_start_offset=3)
    loader.apply_entries([Entry(i, 1, encode_batch([])) for i in range(3)])
    assert not active.ready
    loader.apply_entries([Entry(3, 2, b"LC", control=True)])
    assert active.ready


def test_abandon_returns_every_pending_token() -> None:
    loader = MetadataLoader()
    active = ActiveController(loader, 0)
    active.propose([], 1, "a")
    active.propose([], 2, "b")
    assert active.abandon() == ["a", "b"]
    assert active.committed() == []
