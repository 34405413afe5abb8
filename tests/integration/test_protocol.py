"""Wire-level protocol tests against a real broker subprocess.

- ApiVersions at every supported version, and the KIP-511 fallback for a newer one.
- Every API and version the broker advertises round-trips a minimal valid request built
  from kio's schemas (so nothing advertised hangs or is answered in a wrong layout).
- Pipelined requests are answered in order; acks=0 produces no response.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from kio.index import load_request_schema
from kio.schema.api_versions.v0.request import ApiVersionsRequest as AV0
from kio.schema.api_versions.v3.request import ApiVersionsRequest as AV3
from kio.schema.errors import ErrorCode

from net.wire import WireClient
from protocol.build import build
from protocol.codec import encode_request
from protocol.records import Record, build_batch

TIMEOUT = 10.0


def _host_port(bootstrap: str) -> tuple[str, int]:
    host, _, port = bootstrap.rpartition(":")
    return host, int(port)


@pytest.fixture(scope="module")
def advertised(bootstrap: str) -> list[tuple[int, int, int]]:
    with WireClient(*_host_port(bootstrap), timeout=TIMEOUT) as c:
        resp = c.request(AV0())
    assert resp.error_code == ErrorCode.none
    return [(int(k.api_key), int(k.min_version), int(k.max_version)) for k in resp.api_keys]


@pytest.fixture(scope="module")
def topic(bootstrap: str) -> str:
    """A topic created through Metadata auto-creation."""
    from kio.schema.metadata.v4.request import MetadataRequest, MetadataRequestTopic

    name = "protocol-roundtrip"
    with WireClient(*_host_port(bootstrap), timeout=TIMEOUT) as c:
        deadline = time.monotonic() + TIMEOUT
        while True:
            resp = c.request(MetadataRequest(topics=(MetadataRequestTopic(name=name),),
                                             allow_auto_topic_creation=True))
            t = resp.topics[0]
            if t.error_code == ErrorCode.none and t.partitions:
                return name
            assert time.monotonic() < deadline, f"topic not created: {t}"


def test_api_versions_every_version(bootstrap: str) -> None:
    with WireClient(*_host_port(bootstrap), timeout=TIMEOUT) as c:
        for version in range(0, 5):
            cls = load_request_schema(18, version)
            body = build(cls, {"client_software_name": "strom-test",
                               "client_software_version": "1.0"})
            resp = c.request(body)
            assert resp.error_code == ErrorCode.none
            keys = {int(k.api_key) for k in resp.api_keys}
            assert {0, 1, 3, 18}.issubset(keys)
            if version >= 3:  # the feature flags (tests/integration/test_api_versions_features.py)
                names = {f.name for f in resp.supported_features}
                assert "transaction.version" not in names  # no KIP-890 part 2


def test_api_versions_fallback_for_newer_version(bootstrap: str) -> None:
    """KIP-511: an unknown ApiVersions version gets a v0 body with UNSUPPORTED_VERSION."""
    with WireClient(*_host_port(bootstrap), timeout=TIMEOUT) as c:
        body = AV3(client_software_name="future", client_software_version="9")
        c.send_raw(encode_request(18, 9, 77, "future-client", body))
        payload = c.recv_frame()
        assert payload[:4] == (77).to_bytes(4, "big")  # response header v0
        from kio.schema.api_versions.v0.response import ApiVersionsResponse
        from kio.serial import entity_reader

        resp, _ = entity_reader(ApiVersionsResponse)(payload, 4)
        assert resp.error_code == ErrorCode.unsupported_version
        assert any(int(k.api_key) == 18 and int(k.max_version) == 4 for k in resp.api_keys)
        # the connection stays usable, as clients retry on it
        assert c.request(AV0()).error_code == ErrorCode.none


def test_invalid_client_software_name_is_invalid_request(bootstrap: str) -> None:
    with WireClient(*_host_port(bootstrap), timeout=TIMEOUT) as c:
        resp = c.request(AV3(client_software_name="bad name!", client_software_version="1"))
        assert resp.error_code == ErrorCode.invalid_request


def _batch() -> bytes:
    return build_batch([Record(offset=0, timestamp=int(time.time() * 1000), key=b"k",
                               value=b"v", headers=[])])


def _request_values(api_key: int, topic: str) -> dict[str, Any]:
    """Minimal valid request field values per API (missing fields get zero values)."""
    part = {"partition": 0, "partition_index": 0, "index": 0, "fetch_offset": 0,
            "partition_max_bytes": 1 << 20, "timestamp": -1, "leader_epoch": 0,
            "current_leader_epoch": -1, "records": _batch()}
    topic_entry = {"name": topic, "topic": topic, "partitions": [part],
                   "partition_data": [part]}
    common = {"client_software_name": "strom-test", "client_software_version": "1.0"}
    per_api: dict[int, dict[str, Any]] = {
        0: {"acks": 1, "timeout": 5000, "topic_data": [topic_entry], "transactional_id": None},
        1: {"replica_id": -1, "max_wait": 0, "min_bytes": 0, "max_bytes": 1 << 20,
            "session_epoch": -1, "topics": [topic_entry], "forgotten_topics_data": []},
        2: {"replica_id": -1, "topics": [topic_entry]},
        3: {"topics": [{"name": topic}], "allow_auto_topic_creation": False},
        22: {"transactional_id": None, "transaction_timeout": 60000},
        23: {"replica_id": -1, "topics": [topic_entry]},
    }
    return {**common, **per_api.get(api_key, {})}


def test_every_advertised_api_and_version_round_trips(
    bootstrap: str, advertised: list[tuple[int, int, int]], topic: str
) -> None:
    """Each advertised (api, version) answers a minimal request, correlation id intact."""
    failures = []
    host, port = _host_port(bootstrap)
    checked = 0
    for api_key, low, high in advertised:
        if api_key == 0:
            low = 3  # v0-2 are advertised for KAFKA-18659 but rejected (tested separately)
        for version in range(low, high + 1):
            cls = load_request_schema(api_key, version)
            body = build(cls, _request_values(api_key, topic))
            try:
                with WireClient(host, port, timeout=TIMEOUT) as c:
                    resp = c.request(body)
            except Exception as exc:  # noqa: BLE001 - collected and reported below
                failures.append(f"api {api_key} v{version}: {exc!r}")
                continue
            assert type(resp).__name__.endswith("Response")
            checked += 1
    assert not failures, "\n".join(failures)
    assert checked >= 40


def test_produce_v0_to_v2_closes_connection_like_kafka(bootstrap: str) -> None:
    """KAFKA-18659: advertised from v0, but v0-2 requests are rejected by closing."""
    from kio.schema.produce.v3.request import ProduceRequest

    with WireClient(*_host_port(bootstrap), timeout=TIMEOUT) as c:
        body = ProduceRequest(transactional_id=None, acks=1, timeout=__import__(
            "datetime").timedelta(seconds=1), topic_data=())
        c.send_raw(encode_request(0, 2, 5, "old", body))
        assert c.is_closed_by_peer()


def test_pipelined_requests_answer_in_order(bootstrap: str, topic: str) -> None:
    from kio.schema.metadata.v1.request import MetadataRequest

    with WireClient(*_host_port(bootstrap), timeout=TIMEOUT) as c:
        ids = []
        for i in range(50):
            body = AV0() if i % 2 else MetadataRequest(topics=None)
            ids.append(c.send(body))
        for _ in ids:
            c.receive()  # raises if a correlation id arrives out of order


def test_acks_zero_sends_no_response(bootstrap: str, topic: str) -> None:
    from kio.schema.produce.v9.request import ProduceRequest

    with WireClient(*_host_port(bootstrap), timeout=TIMEOUT) as c:
        body = build(ProduceRequest, {**_request_values(0, topic), "acks": 0})
        c.send_raw(encode_request(0, 9, 1000, "acks0", body))
        # the next response on the connection is the ApiVersions one, not a Produce one
        resp = c.request(AV0(), correlation_id=1001)
        assert resp.error_code == ErrorCode.none
