"""The Kinesis API end to end: boto3 (and the AWS CLI) against a real broker's HTTP
listener, confluent-kafka on the same topics, and bad input answered with AWS's errors."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import cbor2
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from kinesis import iterators, sequence
from tests.support.fixtures import unique_topic
from tests.support.kinesis import OVERRIDES, client, kinesis_url, post, raw

SECRET = "kinesis-test-secret"
BROKER_OVERRIDES = {**OVERRIDES, "strom.kinesis.iterator.secret": SECRET,
                    "strom.kinesis.max.record.bytes": str(256 * 1024)}
pytestmark = pytest.mark.timeout(120)
MAX_HASH = (1 << 128) - 1


@pytest.fixture(scope="module")
def url(broker: Any) -> str:
    return kinesis_url(broker)


@pytest.fixture(scope="module")
def kin(url: str) -> Any:
    return client(url)


def _stream(kin: Any, shards: int = 1, prefix: str = "ks") -> str:
    name = unique_topic(prefix)
    kin.create_stream(StreamName=name, ShardCount=shards)
    return name


def _read_all(kin: Any, name: str, shard: str, kind: str = "TRIM_HORIZON",
              **kw: Any) -> list[dict[str, Any]]:
    it = kin.get_shard_iterator(StreamName=name, ShardId=shard, ShardIteratorType=kind,
                                **kw)["ShardIterator"]
    out: list[dict[str, Any]] = []
    while True:
        got = kin.get_records(ShardIterator=it)
        out += got["Records"]
        if not got["Records"]:
            return out
        it = got["NextShardIterator"]


def _shard_of(key: str, shards: int) -> int:
    h = int.from_bytes(hashlib.md5(key.encode()).digest(), "big")
    width = (MAX_HASH + 1) // shards
    return min(h // width, shards - 1)


def test_stream_lifecycle_and_listings(kin: Any) -> None:
    a = _stream(kin, 3, "life-a")
    b = unique_topic("life-b")
    kin.create_stream(StreamName=b, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    with pytest.raises(kin.exceptions.ResourceInUseException):
        kin.create_stream(StreamName=a, ShardCount=1)

    desc = kin.describe_stream(StreamName=a)["StreamDescription"]
    assert desc["StreamStatus"] == "ACTIVE" and desc["RetentionPeriodHours"] == 24
    assert desc["StreamARN"] == f"arn:aws:kinesis:us-east-1:000000000000:stream/{a}"
    shards = desc["Shards"]
    assert [s["ShardId"] for s in shards] == [f"shardId-{i:012d}" for i in range(3)]
    assert shards[0]["HashKeyRange"]["StartingHashKey"] == "0"
    assert shards[-1]["HashKeyRange"]["EndingHashKey"] == str(MAX_HASH)
    for left, right in zip(shards, shards[1:], strict=False):
        assert int(left["HashKeyRange"]["EndingHashKey"]) + 1 == \
            int(right["HashKeyRange"]["StartingHashKey"])
    page = kin.describe_stream(StreamName=a, Limit=2)["StreamDescription"]
    assert len(page["Shards"]) == 2 and page["HasMoreShards"] is True
    rest = kin.describe_stream(StreamName=a, ExclusiveStartShardId=page["Shards"][-1]["ShardId"])
    assert [s["ShardId"] for s in rest["StreamDescription"]["Shards"]] == ["shardId-000000000002"]

    summary = kin.describe_stream_summary(StreamName=b)["StreamDescriptionSummary"]
    assert summary["StreamModeDetails"]["StreamMode"] == "ON_DEMAND"
    assert summary["OpenShardCount"] == 4

    # ListShards: pages of one via NextToken, ShardFilter, by ARN
    first = kin.list_shards(StreamName=a, MaxResults=1)
    ids = [s["ShardId"] for s in first["Shards"]]
    token = first["NextToken"]
    while token:
        page = kin.list_shards(NextToken=token, MaxResults=1)
        ids += [s["ShardId"] for s in page["Shards"]]
        token = page.get("NextToken")
    assert ids == [s["ShardId"] for s in shards]
    paged_shards = [s["ShardId"] for page in kin.get_paginator("list_shards").paginate(
        StreamName=a, PaginationConfig={"PageSize": 1}) for s in page["Shards"]]
    assert paged_shards == ids
    with pytest.raises(kin.exceptions.InvalidArgumentException):
        kin.list_shards(NextToken=first["NextToken"], StreamName=b)
    after = kin.list_shards(StreamName=a, ShardFilter={"Type": "AFTER_SHARD_ID",
                                                       "ShardId": "shardId-000000000000"})
    assert [s["ShardId"] for s in after["Shards"]] == ids[1:]
    by_arn = kin.list_shards(StreamARN=desc["StreamARN"])
    assert len(by_arn["Shards"]) == 3

    # ListStreams pagination (Limit + NextToken, and the paginator boto3 ships)
    names: list[str] = []
    resp = kin.list_streams(Limit=1)
    names += resp["StreamNames"]
    while resp["HasMoreStreams"]:
        resp = kin.list_streams(Limit=1, NextToken=resp["NextToken"])
        names += resp["StreamNames"]
    assert a in names and b in names and names == sorted(names)
    paged = [n for p in kin.get_paginator("list_streams").paginate(
        PaginationConfig={"PageSize": 1}) for n in p["StreamNames"]]
    assert paged == names

    kin.delete_stream(StreamName=b)
    with pytest.raises(kin.exceptions.ResourceNotFoundException):
        kin.describe_stream(StreamName=b)
    assert b not in kin.list_streams()["StreamNames"]
    with pytest.raises(kin.exceptions.ResourceNotFoundException):
        kin.delete_stream(StreamName=b)


def test_put_routes_by_md5_and_every_iterator_type(kin: Any) -> None:
    name = _stream(kin, 2, "route")
    keys = [f"key-{i}" for i in range(20)]
    seqs: dict[str, tuple[str, str]] = {}
    for k in keys:
        r = kin.put_record(StreamName=name, PartitionKey=k, Data=k.encode())
        assert r["ShardId"] == f"shardId-{_shard_of(k, 2):012d}", k
        seqs[k] = (r["ShardId"], r["SequenceNumber"])
    # the explicit hash key wins over the partition key's MD5
    low = kin.put_record(StreamName=name, PartitionKey="key-any", Data=b"low",
                         ExplicitHashKey="0")
    high = kin.put_record(StreamName=name, PartitionKey="key-any", Data=b"high",
                          ExplicitHashKey=str(MAX_HASH))
    assert (low["ShardId"], high["ShardId"]) == ("shardId-000000000000", "shardId-000000000001")

    for shard in ("shardId-000000000000", "shardId-000000000001"):
        got = _read_all(kin, name, shard)
        expected = [k for k in keys if seqs[k][0] == shard]
        assert [r["PartitionKey"] for r in got][:len(expected)] == expected
        numbers = [int(r["SequenceNumber"]) for r in got]
        assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
        assert all(isinstance(r["ApproximateArrivalTimestamp"], datetime.datetime) for r in got)

    shard, seq = seqs[keys[0]]
    at = _read_all(kin, name, shard, "AT_SEQUENCE_NUMBER", StartingSequenceNumber=seq)
    assert at[0]["SequenceNumber"] == seq and at[0]["Data"] == keys[0].encode()
    after = _read_all(kin, name, shard, "AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=seq)
    assert after == at[1:]

    latest = kin.get_shard_iterator(StreamName=name, ShardId=shard,
                                    ShardIteratorType="LATEST")["ShardIterator"]
    empty = kin.get_records(ShardIterator=latest)
    assert empty["Records"] == [] and empty["MillisBehindLatest"] == 0
    mark = datetime.datetime.now(datetime.UTC) - datetime.timedelta(milliseconds=1)
    kin.put_record(StreamName=name, PartitionKey="late", Data=b"late",
                   ExplicitHashKey="0" if shard.endswith("0") else str(MAX_HASH))
    fresh = kin.get_records(ShardIterator=empty["NextShardIterator"])
    assert [r["Data"] for r in fresh["Records"]] == [b"late"]
    by_time = _read_all(kin, name, shard, "AT_TIMESTAMP", Timestamp=mark)
    assert [r["Data"] for r in by_time] == [b"late"]

    # Limit, then the next iterator continues where the page ended
    it = kin.get_shard_iterator(StreamName=name, ShardId=shard,
                                ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    one = kin.get_records(ShardIterator=it, Limit=1)
    assert len(one["Records"]) == 1 and one["MillisBehindLatest"] >= 0
    two = kin.get_records(ShardIterator=one["NextShardIterator"], Limit=2)
    everything = _read_all(kin, name, shard)
    assert one["Records"] + two["Records"] == everything[:3]


def test_put_records_batch(kin: Any) -> None:
    name = _stream(kin, 4, "batch")
    entries = [{"Data": f"r{i}".encode(), "PartitionKey": f"p{i}"} for i in range(500)]
    resp = kin.put_records(StreamName=name, Records=entries)
    assert resp["FailedRecordCount"] == 0 and len(resp["Records"]) == 500
    for i, r in enumerate(resp["Records"]):
        assert r["ShardId"] == f"shardId-{_shard_of(f'p{i}', 4):012d}"
    total = []
    for s in range(4):
        got = _read_all(kin, name, f"shardId-{s:012d}")
        mine = [r for r in resp["Records"] if r["ShardId"] == f"shardId-{s:012d}"]
        assert [g["SequenceNumber"] for g in got] == [m["SequenceNumber"] for m in mine]
        total += got
    assert sorted(r["Data"] for r in total) == sorted(e["Data"] for e in entries)


def _consumer(bootstrap: str) -> Consumer:
    return Consumer({"bootstrap.servers": bootstrap, "group.id": unique_topic("g"),
                     "enable.auto.commit": False, "auto.offset.reset": "earliest"})


def test_kinesis_to_kafka(kin: Any, bootstrap: str) -> None:
    name = _stream(kin, 1, "k2k")
    sent = [(f"user-{i % 3}", os.urandom(50)) for i in range(30)]
    kin.put_records(StreamName=name, Records=[{"PartitionKey": k, "Data": d}
                                              for k, d in sent[:20]])
    for k, d in sent[20:]:
        kin.put_record(StreamName=name, PartitionKey=k, Data=d)
    consumer = _consumer(bootstrap)
    try:
        consumer.assign([TopicPartition(name, 0, 0)])
        got: list[tuple[bytes, bytes, int]] = []
        deadline = time.monotonic() + 30
        while len(got) < len(sent) and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                got.append((msg.key(), msg.value(), msg.offset()))
    finally:
        consumer.close()
    assert [(k.decode(), v) for k, v, _ in got] == sent
    assert [o for _, _, o in got] == list(range(len(sent)))
    records = _read_all(kin, name, "shardId-000000000000")
    assert [sequence.decode(r["SequenceNumber"]) for r in records] == \
        [(0, o) for _, _, o in got]


def test_kafka_to_kinesis(kin: Any, bootstrap: str) -> None:
    name = _stream(kin, 1, "kafka2k")
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    sent = [(f"k{i}".encode(), f"value-{i}".encode()) for i in range(25)]
    for k, v in sent:
        producer.produce(name, key=k, value=v, partition=0)
    assert producer.flush(30) == 0
    records = _read_all(kin, name, "shardId-000000000000")
    assert [(r["PartitionKey"].encode(), r["Data"]) for r in records] == sent
    numbers = [int(r["SequenceNumber"]) for r in records]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)

    # a topic made by a Kafka client is a stream over its partitions too
    plain = unique_topic("plain")
    producer.produce(plain, key=b"x", value=b"from kafka")
    assert producer.flush(30) == 0
    shards = kin.list_shards(StreamName=plain)["Shards"]
    assert [s["ShardId"] for s in shards] == ["shardId-000000000000"]
    assert [r["Data"] for r in _read_all(kin, plain, "shardId-000000000000")] == [b"from kafka"]


def _high_watermark(bootstrap: str, topic: str) -> int:
    consumer = _consumer(bootstrap)
    try:
        return consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1]
    finally:
        consumer.close()


def _error(url: str, op: str, body: dict[str, Any] | str) -> tuple[int, str, str]:
    status, answer = raw(url, f"Kinesis_20131202.{op}",
                         body if isinstance(body, str) else json.dumps(body))
    return status, answer.get("__type", ""), answer.get("message", "")


def test_bad_input_gets_aws_errors_and_writes_nothing(url: str, kin: Any,
                                                      bootstrap: str) -> None:
    name = _stream(kin, 2, "bad")
    good = kin.put_record(StreamName=name, PartitionKey="a", Data=b"x",
                          ExplicitHashKey="0")
    data = base64.b64encode(b"d").decode()
    big = base64.b64encode(b"x" * (256 * 1024 + 1)).decode()
    shard0 = "shardId-000000000000"
    foreign = sequence.encode(1, 0)
    cases: list[tuple[str, Any, str, str]] = [
        ("NoSuchThing", {}, "UnknownOperationException", "NoSuchThing"),
        ("StartStreamEncryption", {"StreamName": name}, "UnknownOperationException",
         "StartStreamEncryption"),
        ("PutRecord", "{not json", "SerializationException", ""),
        ("PutRecord", {"StreamName": name, "Data": data}, "ValidationException",
         "partitionKey"),
        ("PutRecord", {"StreamName": name, "PartitionKey": 7, "Data": data},
         "SerializationException", "partitionKey"),
        ("PutRecords", {"StreamName": name, "Records": "nope"}, "SerializationException",
         "records"),
        ("PutRecord", {"StreamName": name, "PartitionKey": "a", "Data": big},
         "ValidationException", str(256 * 1024)),
        ("PutRecords", {"StreamName": name, "Records": [
            {"PartitionKey": "a", "Data": data}, {"PartitionKey": "b", "Data": big}]},
         "ValidationException", "records.2.member.data"),
        ("PutRecords", {"StreamName": name, "Records": [
            {"PartitionKey": "a", "Data": data}] * 501}, "ValidationException", "500"),
        ("PutRecord", {"StreamName": name, "PartitionKey": "a", "Data": data,
                       "ExplicitHashKey": str(MAX_HASH + 1)}, "InvalidArgumentException",
         "ExplicitHashKey"),
        ("PutRecord", {"StreamName": "no-such-stream", "PartitionKey": "a", "Data": data},
         "ResourceNotFoundException", "no-such-stream"),
        ("DescribeStream", {"StreamName": "no-such-stream"}, "ResourceNotFoundException",
         "no-such-stream"),
        ("GetShardIterator", {"StreamName": name, "ShardId": "shardId-000000000009",
                              "ShardIteratorType": "TRIM_HORIZON"},
         "ResourceNotFoundException", "shardId-000000000009"),
        ("GetShardIterator", {"StreamName": name, "ShardId": shard0,
                              "ShardIteratorType": "AT_SEQUENCE_NUMBER",
                              "StartingSequenceNumber": "12345"},
         "InvalidArgumentException", "12345"),
        ("GetShardIterator", {"StreamName": name, "ShardId": shard0,
                              "ShardIteratorType": "AT_SEQUENCE_NUMBER",
                              "StartingSequenceNumber": foreign},
         "InvalidArgumentException", "shardId-000000000001"),
        ("GetShardIterator", {"StreamName": name, "ShardId": shard0,
                              "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                              "StartingSequenceNumber": "abc"},
         "ValidationException", "startingSequenceNumber"),
        ("GetShardIterator", {"StreamName": name, "ShardId": shard0,
                              "ShardIteratorType": "AT_SEQUENCE_NUMBER"},
         "InvalidArgumentException", "StartingSequenceNumber"),
        ("GetRecords", {"ShardIterator": "Zm9yZ2VkIGl0ZXJhdG9yIHRoYXQgaXMgbG9uZyBlbm91Z2g="},
         "InvalidArgumentException", "ShardIterator"),
        ("GetRecords", {}, "ValidationException", "shardIterator"),
        ("CreateStream", {"StreamName": name, "ShardCount": "2"}, "SerializationException",
         "shardCount"),
        ("CreateStream", {"StreamName": unique_topic("x"), "ShardCount": 100_000},
         "LimitExceededException", "shard limit"),
    ]
    for op, body, kind, text in cases:
        status, got_type, message = _error(url, op, body)
        shown = body if len(str(body)) < 200 else ""
        assert (status, got_type) == (400, kind), (op, shown, message)
        assert text in message, (op, message)
    status, answer = raw(url, None, "{}")
    assert status == 400 and answer["__type"] == "UnknownOperationException"

    # a forged iterator: a real one with its offset changed
    it = kin.get_shard_iterator(StreamName=name, ShardId=shard0,
                                ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    raw_it = bytearray(base64.b64decode(it))
    raw_it[-17] ^= 0x01
    status, kind, _ = _error(url, "GetRecords",
                             {"ShardIterator": base64.b64encode(raw_it).decode()})
    assert (status, kind) == (400, "InvalidArgumentException")
    # an expired one: signed with the broker's key, issued six minutes ago
    key = hashlib.sha256(SECRET.encode()).digest()
    now = int(time.time() * 1000)
    pos = iterators.decode(key, it, now)
    old = iterators.encode(key, pos, now - 360_000)
    status, kind, message = _error(url, "GetRecords", {"ShardIterator": old})
    assert (status, kind) == (400, "ExpiredIteratorException") and "expired" in message

    # nothing was written by any of it; both listeners still serve
    records = _read_all(kin, name, shard0)
    assert [r["SequenceNumber"] for r in records] == [good["SequenceNumber"]]
    assert _read_all(kin, name, "shardId-000000000001") == []
    assert _high_watermark(bootstrap, name) == 1
    assert name in kin.list_streams(Limit=10_000)["StreamNames"]


def test_aws_cli_put_and_get(url: str, kin: Any, tmp_path: Path) -> None:
    name = _stream(kin, 1, "cli")
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": str(tmp_path / "none"),
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}
    aws = str(Path(sys.executable).parent / "aws")

    def run(*args: str) -> dict[str, Any]:
        done = subprocess.run([aws, "kinesis", *args, "--endpoint-url", url,
                               "--output", "json"], env=env, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else {}

    put = run("put-record", "--stream-name", name, "--partition-key", "cli-key",
              "--data", "hello from the cli")
    assert put["ShardId"] == "shardId-000000000000"
    it = run("get-shard-iterator", "--stream-name", name, "--shard-id", put["ShardId"],
             "--shard-iterator-type", "TRIM_HORIZON")["ShardIterator"]
    got = run("get-records", "--shard-iterator", it)
    [record] = got["Records"]
    assert record["SequenceNumber"] == put["SequenceNumber"]
    assert record["PartitionKey"] == "cli-key"
    assert base64.b64decode(record["Data"]) == b"hello from the cli"


def _cbor(url: str, op: str, body: dict[str, Any]) -> tuple[int, Any]:
    status, ctype, data = post(url, f"Kinesis_20131202.{op}", cbor2.dumps(body),
                               "application/x-amz-cbor-1.1")
    assert ctype.startswith("application/x-amz-cbor-1.1"), ctype
    return status, cbor2.loads(data, semantic_decoders={1: lambda v, _i: ("ms", v)})


def _json(url: str, op: str, body: dict[str, Any]) -> tuple[int, Any]:
    return raw(url, f"Kinesis_20131202.{op}", json.dumps(body))


def _from_json_record(r: dict[str, Any]) -> dict[str, Any]:
    return {**r, "Data": base64.b64decode(r["Data"]),
            "ApproximateArrivalTimestamp": ("ms", round(r["ApproximateArrivalTimestamp"] * 1000))}


def test_cbor_requests_get_cbor_answers_like_json(url: str, kin: Any) -> None:
    """Bodies as the AWS SDK for Java sends them: CBOR maps, byte strings for blobs, tag 1
    with epoch milliseconds for timestamps."""
    name = unique_topic("cbor")
    assert _cbor(url, "CreateStream", {"StreamName": name, "ShardCount": 2}) == (200, {})
    start_ms = int(time.time() * 1000) - 1
    status, put = _cbor(url, "PutRecord", {"StreamName": name, "PartitionKey": "k",
                                           "Data": b"\x00cbor\xff", "ExplicitHashKey": "0"})
    assert status == 200 and put["ShardId"] == "shardId-000000000000"
    for op, body in (("DescribeStreamSummary", {"StreamName": name}),
                     ("ListShards", {"StreamName": name})):
        status, c = _cbor(url, op, body)
        j = _json(url, op, body)[1]
        if op == "DescribeStreamSummary":
            cs, js = c["StreamDescriptionSummary"], j["StreamDescriptionSummary"]
            assert cs.pop("StreamCreationTimestamp")[1] == \
                round(js.pop("StreamCreationTimestamp") * 1000)
            c, j = cs, js
        assert (status, c) == (200, j), op
    body = {"StreamName": name, "ShardId": "shardId-000000000000",
            "ShardIteratorType": "AT_TIMESTAMP", "Timestamp": cbor2.CBORTag(1, start_ms)}
    status, it = _cbor(url, "GetShardIterator", body)
    assert status == 200
    status, c = _cbor(url, "GetRecords", {"ShardIterator": it["ShardIterator"]})
    j = _json(url, "GetRecords", {"ShardIterator": it["ShardIterator"]})[1]
    assert status == 200 and c.pop("NextShardIterator") and j.pop("NextShardIterator")
    assert c["Records"] == [_from_json_record(r) for r in j["Records"]]
    assert c["Records"][0]["Data"] == b"\x00cbor\xff"
    assert c["Records"][0]["SequenceNumber"] == put["SequenceNumber"]
    assert c["MillisBehindLatest"] == j["MillisBehindLatest"] == 0
    status, err = _cbor(url, "DescribeStream", {"StreamName": "no-such-cbor-stream"})
    assert status == 400 and err["__type"] == "ResourceNotFoundException"
    status, err = post(url, "Kinesis_20131202.ListStreams", b"\xff\x00",
                       "application/x-amz-cbor-1.1")[:2]
    assert status == 400


def test_tags_retention_mode_and_limits(kin: Any, bootstrap: str) -> None:
    from confluent_kafka.admin import AdminClient, ConfigResource

    name = unique_topic("tags")
    kin.create_stream(StreamName=name, ShardCount=2, Tags={"team": "a"})
    kin.add_tags_to_stream(StreamName=name, Tags={"env": "test", "team": "b"})
    tags = kin.list_tags_for_stream(StreamName=name)
    assert tags["Tags"] == [{"Key": "env", "Value": "test"}, {"Key": "team", "Value": "b"}]
    assert tags["HasMoreTags"] is False
    page = kin.list_tags_for_stream(StreamName=name, Limit=1)
    assert page["Tags"] == [{"Key": "env", "Value": "test"}] and page["HasMoreTags"]
    after = kin.list_tags_for_stream(StreamName=name, ExclusiveStartTagKey="env")
    assert after["Tags"] == [{"Key": "team", "Value": "b"}]
    kin.remove_tags_from_stream(StreamName=name, TagKeys=["team", "absent"])
    assert kin.list_tags_for_stream(StreamName=name)["Tags"] == [
        {"Key": "env", "Value": "test"}]
    with pytest.raises(kin.exceptions.LimitExceededException):
        kin.add_tags_to_stream(StreamName=name, Tags={f"k{i}": "v" for i in range(50)})

    # retention is the topic's retention.ms, as Kafka clients see it
    def retention_ms() -> str:
        admin = AdminClient({"bootstrap.servers": bootstrap})
        [future] = admin.describe_configs([ConfigResource("topic", name)]).values()
        return future.result(timeout=10)["retention.ms"].value

    assert retention_ms() == str(24 * 3_600_000)
    kin.increase_stream_retention_period(StreamName=name, RetentionPeriodHours=48)
    summary = kin.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert summary["RetentionPeriodHours"] == 48 and retention_ms() == str(48 * 3_600_000)
    with pytest.raises(kin.exceptions.InvalidArgumentException):
        kin.increase_stream_retention_period(StreamName=name, RetentionPeriodHours=30)
    with pytest.raises(kin.exceptions.InvalidArgumentException):
        kin.decrease_stream_retention_period(StreamName=name, RetentionPeriodHours=72)
    with pytest.raises(kin.exceptions.InvalidArgumentException):
        kin.decrease_stream_retention_period(StreamName=name, RetentionPeriodHours=1)
    kin.decrease_stream_retention_period(StreamName=name, RetentionPeriodHours=25)
    assert retention_ms() == str(25 * 3_600_000)

    arn = summary["StreamARN"]
    kin.update_stream_mode(StreamARN=arn, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    summary = kin.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
    assert summary["StreamModeDetails"]["StreamMode"] == "ON_DEMAND"
    # the tags survived the other changes of the stream document
    assert kin.list_tags_for_stream(StreamName=name)["Tags"] == [
        {"Key": "env", "Value": "test"}]

    limits = kin.describe_limits()
    assert limits["ShardLimit"] == 1000 and limits["OnDemandStreamCountLimit"] == 50
    assert limits["OnDemandStreamCount"] >= 1
    open_shards = sum(kin.describe_stream_summary(StreamName=n)["StreamDescriptionSummary"]
                      ["OpenShardCount"] for n in kin.list_streams(Limit=10_000)["StreamNames"])
    assert limits["OpenShardCount"] == open_shards
    with pytest.raises(kin.exceptions.LimitExceededException):
        kin.create_stream(StreamName=unique_topic("over"),
                          ShardCount=1000 - open_shards + 1)


def _follow_lineage(kin: Any, name: str) -> list[dict[str, Any]]:
    """Read a stream as KCL does: shards without parents from TRIM_HORIZON, a child only
    once its parents were read to their end (then from its TRIM_HORIZON)."""
    shards = {s["ShardId"]: s for s in kin.list_shards(StreamName=name)["Shards"]}
    done: set[str] = set()
    out: list[dict[str, Any]] = []
    ready = [sid for sid, s in shards.items() if "ParentShardId" not in s]
    while ready:
        sid = ready.pop(0)
        it = kin.get_shard_iterator(StreamName=name, ShardId=sid,
                                    ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while it:
            got = kin.get_records(ShardIterator=it)
            out += [{**r, "ShardId": sid} for r in got["Records"]]
            it = got.get("NextShardIterator")
            if "ChildShards" in got:
                assert it is None
                for child in got["ChildShards"]:
                    assert sid in child["ParentShards"]
            if not got["Records"] and it is not None:
                break  # an open shard read to its tip
        done.add(sid)
        for cid, s in shards.items():
            parents = {s.get("ParentShardId"), s.get("AdjacentParentShardId")} - {None}
            if cid not in done and cid not in ready and parents and parents <= done:
                ready.append(cid)
    return out


def test_split_merge_and_rescale_keep_every_record_once(kin: Any, bootstrap: str) -> None:
    name = _stream(kin, 2, "reshard")
    sent: list[bytes] = []

    def put(n: int) -> None:
        batch = [f"rec-{len(sent) + i}".encode() for i in range(n)]
        resp = kin.put_records(StreamName=name, Records=[
            {"Data": d, "PartitionKey": d.decode()} for d in batch])
        assert resp["FailedRecordCount"] == 0
        sent.extend(batch)

    put(40)
    shards = kin.list_shards(StreamName=name)["Shards"]
    lo = int(shards[0]["HashKeyRange"]["StartingHashKey"])
    hi = int(shards[0]["HashKeyRange"]["EndingHashKey"])
    kin.split_shard(StreamName=name, ShardToSplit="shardId-000000000000",
                    NewStartingHashKey=str((lo + hi) // 2))
    desc = kin.describe_stream(StreamName=name)["StreamDescription"]
    assert desc["StreamStatus"] == "ACTIVE"
    by_id = {s["ShardId"]: s for s in desc["Shards"]}
    assert set(by_id) == {f"shardId-{i:012d}" for i in range(4)}
    assert "EndingSequenceNumber" in by_id["shardId-000000000000"]["SequenceNumberRange"]
    assert by_id["shardId-000000000002"]["ParentShardId"] == "shardId-000000000000"
    assert by_id["shardId-000000000003"]["HashKeyRange"]["EndingHashKey"] == str(hi)
    put(40)  # none of these go to the closed shard
    assert kin.describe_stream_summary(StreamName=name)[
        "StreamDescriptionSummary"]["OpenShardCount"] == 3
    open_now = kin.list_shards(StreamName=name, ShardFilter={"Type": "AT_LATEST"})["Shards"]
    assert [s["ShardId"] for s in open_now] == [f"shardId-{i:012d}" for i in (1, 2, 3)]

    # a Kafka producer writing to the closed shard's partition: Kafka readers see it,
    # Kinesis readers stop at the shard's end
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce(name, key=b"kafka", value=b"after-close", partition=0)
    assert producer.flush(30) == 0

    kin.merge_shards(StreamName=name, ShardToMerge="shardId-000000000002",
                     AdjacentShardToMerge="shardId-000000000003")
    put(20)
    result = kin.update_shard_count(StreamName=name, TargetShardCount=4,
                                    ScalingType="UNIFORM_SCALING")
    assert (result["CurrentShardCount"], result["TargetShardCount"]) == (2, 4)
    put(30)
    shards = kin.list_shards(StreamName=name)["Shards"]
    assert len([s for s in shards
                if "EndingSequenceNumber" not in s["SequenceNumberRange"]]) == 4
    read = _follow_lineage(kin, name)
    assert sorted(r["Data"] for r in read) == sorted(sent)  # none lost, none twice
    assert b"after-close" not in [r["Data"] for r in read]
    # within a shard, in sequence order
    for sid in {r["ShardId"] for r in read}:
        mine = [int(r["SequenceNumber"]) for r in read if r["ShardId"] == sid]
        assert mine == sorted(mine)

    with pytest.raises(kin.exceptions.ResourceInUseException):
        kin.split_shard(StreamName=name, ShardToSplit="shardId-000000000000",
                        NewStartingHashKey="1")
    with pytest.raises(kin.exceptions.InvalidArgumentException):
        kin.update_shard_count(StreamName=name, TargetShardCount=9,
                               ScalingType="UNIFORM_SCALING")
    open_ids = [s["ShardId"] for s in shards
                if "EndingSequenceNumber" not in s["SequenceNumberRange"]]
    with pytest.raises(kin.exceptions.InvalidArgumentException):
        kin.merge_shards(StreamName=name, ShardToMerge=open_ids[0],
                         AdjacentShardToMerge=open_ids[2])


def test_stream_consumers(kin: Any) -> None:
    name = _stream(kin, 1, "consumers")
    arn = kin.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    made = [kin.register_stream_consumer(StreamARN=arn, ConsumerName=f"app-{i}")["Consumer"]
            for i in range(3)]
    assert all(c["ConsumerStatus"] == "ACTIVE" and c["ConsumerARN"].startswith(
        f"{arn}/consumer/app-") for c in made)
    with pytest.raises(kin.exceptions.ResourceInUseException):
        kin.register_stream_consumer(StreamARN=arn, ConsumerName="app-0")
    by_arn = kin.describe_stream_consumer(ConsumerARN=made[1]["ConsumerARN"])
    by_name = kin.describe_stream_consumer(StreamARN=arn, ConsumerName="app-1")
    assert by_arn["ConsumerDescription"] == by_name["ConsumerDescription"]
    assert by_arn["ConsumerDescription"]["StreamARN"] == arn
    first = kin.list_stream_consumers(StreamARN=arn, MaxResults=2)
    rest = kin.list_stream_consumers(StreamARN=arn, NextToken=first["NextToken"])
    assert [c["ConsumerName"] for c in first["Consumers"] + rest["Consumers"]] == [
        "app-0", "app-1", "app-2"]
    assert kin.describe_stream_summary(StreamName=name)[
        "StreamDescriptionSummary"]["ConsumerCount"] == 3
    kin.deregister_stream_consumer(ConsumerARN=made[0]["ConsumerARN"])
    kin.deregister_stream_consumer(StreamARN=arn, ConsumerName="app-2")
    with pytest.raises(kin.exceptions.ResourceNotFoundException):
        kin.describe_stream_consumer(StreamARN=arn, ConsumerName="app-0")
    assert [c["ConsumerName"] for c in kin.list_stream_consumers(StreamARN=arn)["Consumers"]] \
        == ["app-1"]
    with pytest.raises(kin.exceptions.ResourceInUseException):
        kin.delete_stream(StreamName=name)
    kin.delete_stream(StreamName=name, EnforceConsumerDeletion=True)
    with pytest.raises(kin.exceptions.ResourceNotFoundException):
        kin.list_stream_consumers(StreamARN=arn)


def test_subscribe_to_shard_pushes_records(kin: Any) -> None:
    name = _stream(kin, 1, "efo")
    arn = kin.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    consumer = kin.register_stream_consumer(StreamARN=arn, ConsumerName="pusher")["Consumer"]
    first = [b"old-%d" % i for i in range(5)]
    kin.put_records(StreamName=name, Records=[{"Data": d, "PartitionKey": "p"}
                                              for d in first])
    sub = kin.subscribe_to_shard(ConsumerARN=consumer["ConsumerARN"],
                                 ShardId="shardId-000000000000",
                                 StartingPosition={"Type": "TRIM_HORIZON"})
    stream = sub["EventStream"]
    got: list[bytes] = []
    continuation = None
    deadline = time.monotonic() + 30
    try:
        for event in stream:
            payload = event["SubscribeToShardEvent"]
            got += [r["Data"] for r in payload["Records"]]
            continuation = payload["ContinuationSequenceNumber"]
            assert payload["MillisBehindLatest"] >= 0
            if got == first:
                kin.put_record(StreamName=name, PartitionKey="p", Data=b"live")
            if len(got) > len(first) or time.monotonic() > deadline:
                break
    finally:
        stream.close()
    assert got == [*first, b"live"]
    last = kin.get_shard_iterator(StreamName=name, ShardId="shardId-000000000000",
                                  ShardIteratorType="AT_SEQUENCE_NUMBER",
                                  StartingSequenceNumber=continuation)["ShardIterator"]
    assert [r["Data"] for r in kin.get_records(ShardIterator=last)["Records"]] == [b"live"]
    unknown = consumer["ConsumerARN"].replace("pusher", "nobody")
    with pytest.raises(kin.exceptions.ResourceNotFoundException):
        kin.subscribe_to_shard(ConsumerARN=unknown, ShardId="shardId-000000000000",
                               StartingPosition={"Type": "LATEST"})


def test_stream_metadata_survives_a_restart(fresh_broker: Any) -> None:
    kin = client(kinesis_url(fresh_broker))
    name = _stream(kin, 1, "restart")
    kin.add_tags_to_stream(StreamName=name, Tags={"kept": "yes"})
    kin.put_records(StreamName=name, Records=[{"Data": b"a", "PartitionKey": "a"}])
    kin.split_shard(StreamName=name, ShardToSplit="shardId-000000000000",
                    NewStartingHashKey=str(1 << 127))
    kin.put_records(StreamName=name, Records=[{"Data": b"b", "PartitionKey": "b"},
                                              {"Data": b"c", "PartitionKey": "c"}])
    arn = kin.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    kin.register_stream_consumer(StreamARN=arn, ConsumerName="survivor")
    before = kin.describe_stream(StreamName=name)["StreamDescription"]["Shards"]
    fresh_broker.restart(clean=False)  # kill -9
    kin = client(kinesis_url(fresh_broker))
    after = kin.describe_stream(StreamName=name)["StreamDescription"]["Shards"]
    assert after == before
    assert kin.list_tags_for_stream(StreamName=name)["Tags"] == [{"Key": "kept", "Value": "yes"}]
    assert [c["ConsumerName"] for c in kin.list_stream_consumers(StreamARN=arn)["Consumers"]] \
        == ["survivor"]
    assert sorted(r["Data"] for r in _follow_lineage(kin, name)) == [b"a", b"b", b"c"]


def test_sequence_numbers_name_their_records_under_concurrent_large_puts(url: str) -> None:
    """A PutRecords larger than one batch is appended as several; with other clients
    appending to the same shard in between, each answer still names its own record."""
    from concurrent.futures import ThreadPoolExecutor

    kin = client(url)
    name = _stream(kin, 1, "bigputs")

    def put(worker: int) -> list[tuple[str, bytes]]:
        mine = client(url)
        done = []
        for round_ in range(3):
            batch = [b"%d-%d-%d-" % (worker, round_, i) + os.urandom(60_000)
                     for i in range(24)]
            resp = mine.put_records(StreamName=name, Records=[
                {"Data": d, "PartitionKey": "same"} for d in batch])
            assert resp["FailedRecordCount"] == 0
            done += [(r["SequenceNumber"], d) for r, d in zip(resp["Records"], batch,
                                                              strict=True)]
        return done

    with ThreadPoolExecutor(3) as pool:
        answers = [pair for part in pool.map(put, range(3)) for pair in part]
    stored = {r["SequenceNumber"]: r["Data"] for r in _read_all(kin, name,
                                                                "shardId-000000000000")}
    assert len(stored) == len(answers) == 3 * 3 * 24
    assert all(stored[seq] == data for seq, data in answers)


def test_trimmed_records_move_the_trim_horizon(kin: Any, bootstrap: str) -> None:
    """Records deleted from the log (as retention deletes old segments; here Kafka's
    DeleteRecords moves the log start) are gone for Kinesis readers too: an iterator
    issued before continues at the new trim horizon."""
    from confluent_kafka.admin import AdminClient

    name = _stream(kin, 1, "trim")
    shard = "shardId-000000000000"
    kin.put_records(StreamName=name, Records=[{"Data": b"r%d" % i, "PartitionKey": "k"}
                                              for i in range(5)])
    early = kin.get_shard_iterator(StreamName=name, ShardId=shard,
                                   ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    first_seq = kin.get_records(ShardIterator=early, Limit=1)["Records"][0]["SequenceNumber"]
    tp = TopicPartition(name, 0, 3)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    assert admin.delete_records([tp], request_timeout=10)[tp].result(10).low_watermark == 3
    assert [r["Data"] for r in kin.get_records(ShardIterator=early)["Records"]] == [
        b"r3", b"r4"]
    assert [r["Data"] for r in _read_all(kin, name, shard)] == [b"r3", b"r4"]
    at_gone = _read_all(kin, name, shard, "AT_SEQUENCE_NUMBER", StartingSequenceNumber=first_seq)
    assert [r["Data"] for r in at_gone] == [b"r3", b"r4"]
