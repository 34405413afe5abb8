"""The Kinesis API on a 3-broker cluster (RF 3): puts and reads through one broker's HTTP
listener reach shards led by the others (forwarded to the leader's listener), every
broker describes the same stream, and puts keep working across a kill -9 of a shard's
leader with no acknowledged record lost or read twice. SigV4 keys are configured: relayed
requests are trusted by the leader (their proof of the first broker's check), clients
sign once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config

from tests.e2e.test_cluster import Cluster, wait_until
from tests.support.fixtures import unique_topic
from tests.support.kinesis import OVERRIDES, client, kinesis_url

pytestmark = pytest.mark.timeout(150)
MAX_HASH = (1 << 128) - 1
KEY, SECRET = "AKIDE2ECLUSTER", "cluster-secret"


def _read_shard(kin: Any, name: str, shard: str) -> list[dict[str, Any]]:
    it = kin.get_shard_iterator(StreamName=name, ShardId=shard,
                                ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    out: list[dict[str, Any]] = []
    while it:
        got = kin.get_records(ShardIterator=it)
        out += got["Records"]
        if not got["Records"]:
            break
        it = got.get("NextShardIterator")  # none at a closed shard's end
    return out


def _read_all(kin: Any, name: str, shards: int) -> list[bytes]:
    return [r["Data"] for s in range(shards)
            for r in _read_shard(kin, name, f"shardId-{s:012d}")]


def test_one_brokers_api_serves_every_shard_across_a_leader_kill(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, overrides={**OVERRIDES, "default.replication.factor": "3",
                                           "min.insync.replicas": "2",
                                           "strom.kinesis.access.keys": f"{KEY}:{SECRET}"})
    try:
        cluster.start()
        urls = {i: kinesis_url(n) for i, n in cluster.nodes.items()}
        kin = client(urls[1], key=KEY, secret=SECRET)
        name = unique_topic("kc")
        kin.create_stream(StreamName=name, ShardCount=3)

        def all_led() -> dict[int, int] | None:
            found = {p: lead for p, (lead, code) in cluster.leaders(1, name).items()
                     if code == 0 and lead > 0}
            return found if len(found) == 3 else None

        leaders = wait_until(all_led, 30, "a leader for each shard")
        assert {2, 3} & set(leaders.values()), f"every shard led by node 1: {leaders}"

        # PutRecords through node 1 spans shards led by all brokers; reads via node 2
        sent = [f"r{i}".encode() for i in range(60)]
        resp = kin.put_records(StreamName=name, Records=[
            {"Data": d, "PartitionKey": f"key-{i}"} for i, d in enumerate(sent)])
        assert resp["FailedRecordCount"] == 0, resp["Records"]
        assert {r["ShardId"] for r in resp["Records"]} == {f"shardId-{s:012d}" for s in range(3)}
        for i in range(6):
            kin.put_record(StreamName=name, PartitionKey=f"single-{i}", Data=b"s%d" % i)
        sent += [b"s%d" % i for i in range(6)]
        other = client(urls[2], key=KEY, secret=SECRET)
        assert sorted(_read_all(other, name, 3)) == sorted(sent)
        for url in urls.values():
            desc = client(url, key=KEY, secret=SECRET).describe_stream(
                StreamName=name)["StreamDescription"]
            assert len(desc["Shards"]) == 3

        # document changes through every broker at once: serialized on one, none lost
        clients = {i: client(url, key=KEY, secret=SECRET) for i, url in urls.items()}
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(lambda i: clients[i].add_tags_to_stream(
                StreamName=name, Tags={f"from-{i}": "x"}), clients))
        tags = clients[3].list_tags_for_stream(StreamName=name)["Tags"]
        assert [t["Key"] for t in tags] == ["from-1", "from-2", "from-3"]
        # a split asked of node 3: the parent's end comes from its leader
        clients[3].split_shard(StreamName=name, ShardToSplit="shardId-000000000001",
                               NewStartingHashKey=str(MAX_HASH // 2))
        # SplitShard is asynchronous (UPDATING until done); node 2 says ACTIVE once its
        # metadata image holds the parent's end, as Kinesis clients wait for
        wait_until(lambda: clients[2].describe_stream_summary(StreamName=name)[
            "StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE", 15, "ACTIVE on node 2")
        shards = {s["ShardId"]: s for s in clients[2].list_shards(StreamName=name)["Shards"]}
        assert len(shards) == 5
        assert "EndingSequenceNumber" in shards["shardId-000000000001"]["SequenceNumberRange"]
        kin.put_records(StreamName=name, Records=[
            {"Data": b"post-split-%d" % i, "PartitionKey": f"ps-{i}"} for i in range(20)])
        sent += [b"post-split-%d" % i for i in range(20)]
        assert sorted(_read_all(other, name, 5)) == sorted(sent)

        # kill -9 the leader of a shard that node 1 does not lead; keep putting via node 1
        victim = next(lead for lead in leaders.values() if lead != 1)
        cluster.nodes[victim].kill()
        acked: list[bytes] = []
        kin_retry = _retrying_client(urls[1])
        for i in range(30):
            data = b"after-%d" % i
            out = kin_retry.put_records(StreamName=name, Records=[
                {"Data": data, "PartitionKey": f"after-key-{i}"}])
            if out["FailedRecordCount"] == 0:
                acked.append(data)
        assert acked, "no put succeeded after the leader was killed"
        everything = wait_until(lambda: _complete(kin_retry, name, sent + acked), 60,
                                "every acknowledged record readable")
        # records put before the kill were each sent once: each is read once
        before = [d for d in everything if d in set(sent)]
        assert sorted(before) == sorted(sent), "a record was lost or read twice"
    finally:
        cluster.close()


def _retrying_client(url: str) -> Any:
    import boto3

    return boto3.client("kinesis", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id=KEY, aws_secret_access_key=SECRET,
                        config=Config(retries={"max_attempts": 20, "mode": "standard"},
                                      connect_timeout=5, read_timeout=40))


def _complete(kin: Any, name: str, wanted: list[bytes]) -> list[bytes] | None:
    got = _read_all(kin, name, 5)
    return got if set(wanted) <= set(got) else None
