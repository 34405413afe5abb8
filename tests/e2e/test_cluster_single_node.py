"""A node started without ``controller.quorum.voters`` (``make run``) is a one-voter quorum
of itself, on the same code path as a cluster node:

- its client listener advertises no controller-to-controller or broker-to-controller RPC
  (Vote, BeginQuorumEpoch, EndQuorumEpoch, FetchSnapshot, BrokerRegistration,
  BrokerHeartbeat) but answers DescribeQuorum, as Kafka brokers do: ``strom quorum
  describe`` shows the node as the one voter and leader;
- topics live in the metadata log (``__strom_metadata/__cluster_metadata-0``), not in the
  local ``__strom_topics.json`` table, and survive kill -9 with their topic id;
- a produced batch carries the leader epoch Metadata reports, before and after a restart.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.structs import OffsetAndMetadata
from kio.schema.errors import ErrorCode

from common.topics.model import TopicInfo, encode_topics
from net.wire import WireClient
from protocol.build import build
from protocol.codec import request_type
from protocol.records import Record, build_batch, iter_batches
from tests.support.broker import REPO_ROOT, BrokerProcess
from tests.support.fixtures import BROKER_DEFAULT_OVERRIDES

TIMEOUT = 10.0
CONTROLLER_RPCS = {52, 53, 54, 59, 62, 63}


def req(api_key: int, version: int, **values: Any) -> Any:
    return build(request_type(api_key, version), values)


def client(node: BrokerProcess) -> WireClient:
    host, _, port = node.bootstrap.rpartition(":")
    return WireClient(host, int(port), timeout=TIMEOUT)


def metadata(c: WireClient, topic: str) -> Any:
    resp = c.request(req(3, 12, topics=[{"name": topic, "topic_id": uuid.UUID(int=0)}],
                         allow_auto_topic_creation=False,
                         include_topic_authorized_operations=False))
    return resp.topics[0]


def produce_one(c: WireClient, topic: str) -> None:
    records = build_batch([Record(offset=0, timestamp=int(time.time() * 1000), key=b"k",
                                  value=b"v", headers=[])])
    resp = c.request(req(0, 9, acks=-1, timeout=5000, transactional_id=None,
                         topic_data=[{"name": topic, "partition_data": [
                             {"index": 0, "records": records}]}]))
    assert resp.responses[0].partition_responses[0].error_code == ErrorCode.none


def batch_epochs(c: WireClient, topic: str) -> list[int]:
    resp = c.request(req(1, 12, replica_id=-1, max_wait=0, min_bytes=0, max_bytes=1 << 20,
                         isolation_level=0, session_id=0, session_epoch=-1,
                         forgotten_topics_data=[], topics=[{"topic": topic, "partitions": [
                             {"partition": 0, "fetch_offset": 0, "partition_max_bytes": 1 << 20,
                              "current_leader_epoch": -1}]}]))
    part = resp.responses[0].partitions[0]
    assert part.error_code == ErrorCode.none
    return [h.partition_leader_epoch for _, h in iter_batches(bytes(part.records or b""))]


def local_topic_table(data_dir: Path) -> dict[str, Any]:
    path = data_dir / "__strom_topics.json"
    return json.loads(path.read_text()).get("topics", {}) if path.exists() else {}


def test_a_lone_node_is_a_one_voter_quorum_of_itself(tmp_path: Path) -> None:
    node = BrokerProcess(tmp_path / "node", {"listeners": "PLAINTEXT://127.0.0.1:0"})
    node.start()
    try:
        topic = f"lone-{uuid.uuid4().hex[:8]}"
        with client(node) as c:
            versions = c.request(req(18, 3, client_software_name="t",
                                     client_software_version="1"))
            advertised = {int(k.api_key) for k in versions.api_keys}
            assert advertised.isdisjoint(CONTROLLER_RPCS), advertised & CONTROLLER_RPCS
            resp = c.request(req(19, 5, topics=[{
                "name": topic, "num_partitions": 1, "replication_factor": 1,
                "assignments": [], "configs": []}], timeout=10000))
            assert resp.topics[0].error_code == ErrorCode.none
            produce_one(c, topic)
            before = metadata(c, topic)
            epoch = before.partitions[0].leader_epoch
            assert before.partitions[0].leader_id == 1
            assert batch_epochs(c, topic) == [epoch]
        out = subprocess.run(
            [sys.executable, "-m", "broker", "quorum", "describe", "--bootstrap-server",
             node.bootstrap], cwd=REPO_ROOT, capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "LeaderId:              1" in out.stdout, out.stdout
        assert "CurrentVoters:         [1]" in out.stdout, out.stdout
        assert (node.data_dir / "__strom_metadata" / "__cluster_metadata-0").is_dir()
        assert topic not in local_topic_table(node.data_dir)

        node.kill()
        node.start()
        with client(node) as c:
            after = metadata(c, topic)
            assert after.error_code == ErrorCode.none
            assert after.topic_id == before.topic_id
            assert after.partitions[0].leader_id == 1
            produce_one(c, topic)
            assert batch_epochs(c, topic) == [epoch, after.partitions[0].leader_epoch]
    finally:
        node.close()


def test_topics_of_the_table_before_the_metadata_log_are_adopted(tmp_path: Path) -> None:
    """A data directory of a Strom from before the metadata log (topics in
    ``__strom_topics.json``, no ``__strom_metadata``) keeps every topic, record and
    committed offset: the topics come back with their ids, partitions and configs."""
    node = BrokerProcess(tmp_path / "node", BROKER_DEFAULT_OVERRIDES)
    node.start()
    topic, group = f"old-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    tps = [TopicPartition(topic, p) for p in range(2)]
    try:
        admin = KafkaAdminClient(bootstrap_servers=node.bootstrap)
        admin.create_topics([NewTopic(topic, 2, 1, topic_configs={"retention.ms": "86400000"})])
        admin.close()
        producer = KafkaProducer(bootstrap_servers=node.bootstrap, acks="all")
        for i in range(20):
            producer.send(topic, b"v%d" % i, partition=i % 2)
        producer.flush(TIMEOUT)
        producer.close()
        consumer = KafkaConsumer(bootstrap_servers=node.bootstrap, group_id=group,
                                 enable_auto_commit=False)
        consumer.commit({tp: OffsetAndMetadata(4, "", -1) for tp in tps})
        consumer.close()
        with client(node) as c:
            before = {name: metadata(c, name) for name in (topic, "__consumer_offsets")}
        node.stop()

        # what an earlier version left: the topic table, and no metadata log
        shutil.rmtree(node.data_dir / "__strom_metadata")
        (node.data_dir / "__strom_topics.json").write_bytes(encode_topics({
            name: TopicInfo(name, t.topic_id, len(t.partitions),
                            configs=configs_of(name)) for name, t in before.items()}))

        node.start()
        with client(node) as c:
            for name, t in before.items():
                after = metadata(c, name)
                assert after.error_code == ErrorCode.none, name
                assert after.topic_id == t.topic_id, name
                assert len(after.partitions) == len(t.partitions), name
        assert local_topic_table(node.data_dir) == {}
        node.restart(clean=False)  # kill -9: adopted once, kept
        consumer = KafkaConsumer(bootstrap_servers=node.bootstrap, group_id=group,
                                 enable_auto_commit=False, auto_offset_reset="earliest")
        try:
            assert {tp: consumer.committed(tp) for tp in tps} == {tp: 4 for tp in tps}
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            got: list[bytes] = []
            deadline = time.monotonic() + TIMEOUT
            while len(got) < 20 and time.monotonic() < deadline:
                for records in consumer.poll(timeout_ms=500).values():
                    got += [r.value for r in records]
            assert sorted(got) == sorted(b"v%d" % i for i in range(20))
        finally:
            consumer.close()
        admin = KafkaAdminClient(bootstrap_servers=node.bootstrap)
        try:
            described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
            assert described["topic"][topic]["retention.ms"]["value"] == "86400000"
        finally:
            admin.close()
    finally:
        node.close()


def configs_of(name: str) -> dict[str, str]:
    if name == "__consumer_offsets":
        return {"cleanup.policy": "compact", "compression.type": "producer"}
    return {"retention.ms": "86400000"}
