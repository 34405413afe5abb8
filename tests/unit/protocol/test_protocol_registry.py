"""ApiRegistry and the version-agnostic entity builder."""

from __future__ import annotations

import datetime

import pytest
from kio.schema.errors import ErrorCode
from kio.schema.metadata.v0.response import MetadataResponse as M0
from kio.schema.metadata.v12.response import MetadataResponse as M12

from protocol.api_registry import ApiRegistry, ApiSpec, RegistryError
from protocol.build import build


def _noop() -> None:
    return None


def test_advertised_is_sorted_and_uses_advertised_min() -> None:
    reg: ApiRegistry = ApiRegistry([
        ApiSpec(18, 0, 4, _noop),
        ApiSpec(0, 3, 12, _noop, advertised_min=0),
    ])
    assert reg.advertised() == [(0, 0, 12), (18, 0, 4)]
    assert reg.lookup(0, 2) is None
    assert reg.lookup(0, 3) is not None
    assert reg.lookup(5, 0) is None
    assert len(reg) == 2 and 18 in reg


def test_versions_kio_lacks_are_refused() -> None:
    reg: ApiRegistry = ApiRegistry()
    with pytest.raises(RegistryError, match="no kio schema"):
        reg.register(ApiSpec(0, 2, 12, _noop))  # kio has Produce from v3 only


def test_duplicate_registration_is_refused() -> None:
    reg: ApiRegistry = ApiRegistry([ApiSpec(18, 0, 4, _noop)])
    with pytest.raises(RegistryError, match="twice"):
        reg.register(ApiSpec(18, 0, 3, _noop))


def test_build_keeps_only_fields_of_the_version() -> None:
    values = {
        "throttle_time": 5,
        "brokers": [{"node_id": 1, "host": "h", "port": 9092, "rack": None}],
        "cluster_id": "c",
        "controller_id": 1,
        "topics": [{"error_code": 3, "name": "t", "is_internal": False,
                    "partitions": [{"error_code": 0, "partition_index": 0, "leader_id": 1,
                                    "leader_epoch": 0, "replica_nodes": [1],
                                    "isr_nodes": [1]}]}],
    }
    r0 = build(M0, values)
    assert not hasattr(r0, "cluster_id")
    assert r0.topics[0].error_code == ErrorCode.unknown_topic_or_partition
    r12 = build(M12, values)
    assert r12.cluster_id == "c"
    assert r12.throttle_time == datetime.timedelta(milliseconds=5)
    assert r12.topics[0].partitions[0].isr_nodes == (1,)
    assert r12.topics[0].partitions[0].offline_replicas == ()  # zero value filled in
