"""The broker's feature table (KIP-584 feature flags), as Kafka 4.x names them. Pure.

One row per feature Strom knows: the range of levels this broker's code can run
(``min_supported``..``max_supported``) and the level in force (``finalized``). Strom has
no UpdateFeatures: the finalized level follows the broker's own settings, and every node
of a cluster is meant to run the same ones.

===================== ========= =========== ==============================================
feature               supported finalized   what a level means in Strom
===================== ========= =========== ==============================================
group.version         0-1 / 0   1 / 0       1: KIP-848 consumer groups (ConsumerGroup-
                                            Heartbeat/Describe); 0 when
                                            ``group.coordinator.rebalance.protocols``
                                            lacks ``consumer``
share.version         0-1 / 0   1 / 0       1: KIP-932 share groups; ``share.version``
transaction.version   0         0           0: the transaction protocol of KIP-98 with
                                            KIP-890 part 1 verification; no part 2
                                            (level 2: epoch bump per transaction,
                                            EndTxn v5, partitions implied by Produce)
kraft.version         0         0           0: a static voter set
                                            (``controller.quorum.voters``); no KIP-853
===================== ========= =========== ==============================================

``metadata.version`` is left out on purpose: its levels name Kafka's metadata record
formats and inter-broker protocol revisions (3.3-IV3 ... 4.x), which Strom's
``__cluster_metadata`` log does not follow level by level (it has no FeatureLevelRecord
and no bootstrap metadata version), so no level would be true.

Wire rules of Kafka's ApiVersions response (``supported_feature_keys``,
``finalized_feature_keys``): a feature whose highest supported level is 0 is not listed
as supported (Kafka's BrokerFeatures lists a feature only if its latest level is above
0); a finalized level of 0 is not listed (Kafka removes a feature finalized at 0); in
ApiVersions v0-3 a supported minimum of 0 reads as 1 (KAFKA-17011: older clients cannot
parse a minimum of 0), v4 gives it as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from broker.group.consumer_config import consumer_config_from
from broker.share.config import share_config_from

GROUP_VERSION = "group.version"
SHARE_VERSION = "share.version"
TRANSACTION_VERSION = "transaction.version"
KRAFT_VERSION = "kraft.version"

#: the first ApiVersions version whose supported features may have a minimum of 0
ZERO_MIN_API_VERSION = 4


@dataclass(frozen=True, slots=True)
class Feature:
    """One feature: supported levels ``min_supported..max_supported``, level in force
    ``finalized`` (0: off)."""

    name: str
    min_supported: int
    max_supported: int
    finalized: int


def broker_features(*, consumer_protocol: bool, share_groups: bool) -> tuple[Feature, ...]:
    """The table for a broker with the KIP-848 consumer protocol and share groups on or
    off, sorted by name."""
    group = 1 if consumer_protocol else 0
    share = 1 if share_groups else 0
    return (
        Feature(GROUP_VERSION, 0, group, group),
        Feature(KRAFT_VERSION, 0, 0, 0),
        Feature(SHARE_VERSION, 0, share, share),
        Feature(TRANSACTION_VERSION, 0, 0, 0),
    )


def features_from_config(broker_config: Any) -> tuple[Feature, ...]:
    """The table for the broker's settings (``group.coordinator.rebalance.protocols``,
    ``share.version``)."""
    return broker_features(
        consumer_protocol=consumer_config_from(broker_config).consumer_enabled,
        share_groups=share_config_from(broker_config).enabled)


def finalized_level(features: tuple[Feature, ...], name: str) -> int:
    """The finalized level of ``name`` (0 for a feature not in the table)."""
    return next((f.finalized for f in features if f.name == name), 0)


def supported_feature_keys(features: tuple[Feature, ...],
                           api_version: int) -> list[dict[str, Any]]:
    """ApiVersions ``supported_features`` entries (``name``, ``min_version``,
    ``max_version``) for a response at ``api_version``."""
    out = []
    for f in features:
        if f.max_supported <= 0:
            continue
        low = f.min_supported
        if low == 0 and api_version < ZERO_MIN_API_VERSION:
            low = 1
        out.append({"name": f.name, "min_version": low, "max_version": f.max_supported})
    return out


def finalized_feature_keys(features: tuple[Feature, ...]) -> list[dict[str, Any]]:
    """ApiVersions ``finalized_features`` entries (``name``, ``min_version_level``,
    ``max_version_level``, both the level in force, as Kafka 4.x answers)."""
    return [{"name": f.name, "min_version_level": f.finalized,
             "max_version_level": f.finalized}
            for f in features if f.finalized > 0]
