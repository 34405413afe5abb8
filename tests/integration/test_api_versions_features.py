"""The KIP-584 feature flags of ApiVersions v3/v4 over the wire (``broker.features``).

A default broker (consumer protocol and share groups on) advertises ``group.version`` and
``share.version`` at 1, with a supported minimum of 1 in v3 and 0 in v4 (KAFKA-17011), and
neither ``transaction.version`` (no KIP-890 part 2) nor ``kraft.version`` /
``metadata.version``; ``finalized_features_epoch`` is the metadata offset and grows when
the metadata log does. A broker with ``share.version=0`` and
``group.coordinator.rebalance.protocols=classic`` advertises no feature at all. kcat's
librdkafka 2.0.2 still reads the answer.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import Any

from kio.schema.api_versions.v3.request import ApiVersionsRequest as AV3
from kio.schema.api_versions.v4.request import ApiVersionsRequest as AV4
from kio.schema.errors import ErrorCode
from kio.schema.metadata.v4.request import MetadataRequest, MetadataRequestTopic

from net.wire import WireClient
from tests.support.fixtures import unique_topic

TIMEOUT = 10.0


def _api_versions(bootstrap: str, version: int) -> Any:
    host, _, port = bootstrap.rpartition(":")
    cls = AV3 if version == 3 else AV4
    with WireClient(host, int(port), timeout=TIMEOUT) as c:
        resp = c.request(cls(client_software_name="strom-test", client_software_version="1.0"))
    assert resp.error_code == ErrorCode.none
    return resp


def _supported(resp: Any) -> dict[str, tuple[int, int]]:
    return {f.name: (int(f.min_version), int(f.max_version)) for f in resp.supported_features}


def _finalized(resp: Any) -> dict[str, tuple[int, int]]:
    return {f.name: (int(f.min_version_level), int(f.max_version_level))
            for f in resp.finalized_features}


def test_default_broker_advertises_group_and_share_version(bootstrap: str) -> None:
    v3, v4 = _api_versions(bootstrap, 3), _api_versions(bootstrap, 4)
    assert _supported(v3) == {"group.version": (1, 1), "share.version": (1, 1)}
    assert _supported(v4) == {"group.version": (0, 1), "share.version": (0, 1)}
    for resp in (v3, v4):
        assert _finalized(resp) == {"group.version": (1, 1), "share.version": (1, 1)}
        assert resp.finalized_features_epoch >= 0
        assert resp.zk_migration_ready is False
    # what the levels promise is served
    keys = {int(k.api_key) for k in v4.api_keys}
    assert {68, 69} <= keys  # ConsumerGroupHeartbeat/Describe
    assert {76, 77, 78, 79} <= keys  # ShareGroupHeartbeat/Describe, ShareFetch/Acknowledge
    # EndTxn stops at v3 (transaction version 2 needs v5)
    end_txn = next(k for k in v4.api_keys if int(k.api_key) == 26)
    assert int(end_txn.max_version) < 5


def test_features_epoch_follows_the_metadata_log(bootstrap: str) -> None:
    before = _api_versions(bootstrap, 3).finalized_features_epoch
    name = unique_topic("features-epoch")
    host, _, port = bootstrap.rpartition(":")
    deadline = time.monotonic() + TIMEOUT
    with WireClient(host, int(port), timeout=TIMEOUT) as c:
        while True:  # auto-creation writes the topic to the metadata log
            t = c.request(MetadataRequest(topics=(MetadataRequestTopic(name=name),),
                                          allow_auto_topic_creation=True)).topics[0]
            if t.error_code == ErrorCode.none and t.partitions:
                break
            assert time.monotonic() < deadline, f"topic not created: {t}"
            time.sleep(0.1)
    assert _api_versions(bootstrap, 3).finalized_features_epoch > before


def test_kcat_reads_the_features(bootstrap: str) -> None:
    """librdkafka 2.0.2 (Debian's kcat) sends ApiVersions v3 and parses the tagged fields."""
    out = subprocess.run(["kcat", "-b", bootstrap, "-L", "-m", "10"], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "1 brokers" in out.stdout
    assert "underflow" not in out.stderr.lower()


def test_share_off_and_classic_only_advertise_no_feature(
        broker_factory: Callable[..., Any]) -> None:
    off = broker_factory({"share.version": "0",
                          "group.coordinator.rebalance.protocols": "classic"})
    for version in (3, 4):
        resp = _api_versions(off.bootstrap, version)
        assert _supported(resp) == {}
        assert _finalized(resp) == {}
        assert resp.finalized_features_epoch >= 0
        keys = {int(k.api_key) for k in resp.api_keys}
        assert not {68, 69, 76, 77, 78, 79} & keys
