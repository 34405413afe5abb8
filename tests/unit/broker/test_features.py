"""broker.features: the KIP-584 feature table against the broker's settings, and the wire
rules of Kafka's ApiVersions answer (levels 0 left out, minimum 0 read as 1 before v4)."""

from __future__ import annotations

import pytest

from broker.config import BrokerConfig
from broker.features import (
    GROUP_VERSION,
    KRAFT_VERSION,
    SHARE_VERSION,
    TRANSACTION_VERSION,
    features_from_config,
    finalized_feature_keys,
    finalized_level,
    supported_feature_keys,
)


def _config(**overrides: object) -> BrokerConfig:
    return BrokerConfig(**overrides)  # type: ignore[arg-type]


def test_default_broker_finalizes_group_and_share_version_1() -> None:
    table = features_from_config(_config())
    assert [f.name for f in table] == sorted(f.name for f in table)
    assert finalized_level(table, GROUP_VERSION) == 1
    assert finalized_level(table, SHARE_VERSION) == 1
    # no KIP-890 part 2, no KIP-853 dynamic quorum
    assert finalized_level(table, TRANSACTION_VERSION) == 0
    assert finalized_level(table, KRAFT_VERSION) == 0
    assert "metadata.version" not in {f.name for f in table}


@pytest.mark.parametrize(("protocols", "share", "group_level", "share_level"), [
    ("classic,consumer", 1, 1, 1),
    ("classic", 1, 0, 1),
    ("classic,consumer", 0, 1, 0),
    ("classic", 0, 0, 0),
])
def test_levels_follow_rebalance_protocols_and_share_version(
        protocols: str, share: int, group_level: int, share_level: int) -> None:
    table = features_from_config(_config(group_coordinator_rebalance_protocols=protocols,
                                         share_version=share))
    by_name = {f.name: f for f in table}
    assert by_name[GROUP_VERSION].finalized == group_level
    assert by_name[GROUP_VERSION].max_supported == group_level
    assert by_name[SHARE_VERSION].finalized == share_level
    assert by_name[SHARE_VERSION].max_supported == share_level
    assert all(f.min_supported == 0 for f in table)
    assert all(f.finalized <= f.max_supported for f in table)


def test_wire_keys_leave_out_level_0_and_raise_min_0_before_v4() -> None:
    table = features_from_config(_config())
    v3 = supported_feature_keys(table, 3)
    v4 = supported_feature_keys(table, 4)
    assert v3 == [{"name": GROUP_VERSION, "min_version": 1, "max_version": 1},
                  {"name": SHARE_VERSION, "min_version": 1, "max_version": 1}]
    assert v4 == [{"name": GROUP_VERSION, "min_version": 0, "max_version": 1},
                  {"name": SHARE_VERSION, "min_version": 0, "max_version": 1}]
    assert finalized_feature_keys(table) == [
        {"name": GROUP_VERSION, "min_version_level": 1, "max_version_level": 1},
        {"name": SHARE_VERSION, "min_version_level": 1, "max_version_level": 1}]


def test_everything_off_advertises_nothing() -> None:
    table = features_from_config(_config(group_coordinator_rebalance_protocols="classic",
                                         share_version=0))
    assert supported_feature_keys(table, 3) == []
    assert supported_feature_keys(table, 4) == []
    assert finalized_feature_keys(table) == []
