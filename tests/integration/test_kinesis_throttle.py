"""Per-shard write limits (off by default): a broker started with
``strom.kinesis.shard.write.records.per.second`` refuses writes over it as Kinesis does,
PutRecord with ProvisionedThroughputExceededException (HTTP 400) and PutRecords per entry,
keeping what it admitted; the default broker in test_kinesis_api.py enforces none."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.fixtures import unique_topic
from tests.support.kinesis import OVERRIDES, client, kinesis_url

RATE = 5  # records per second and shard (slow refill: a loaded box still drains it)
BROKER_OVERRIDES = {**OVERRIDES,
                    "strom.kinesis.shard.write.records.per.second": str(RATE)}
pytestmark = pytest.mark.timeout(90)


def _active(kin: Any, name: str) -> None:
    deadline = time.monotonic() + 30
    while kin.describe_stream_summary(StreamName=name)[
            "StreamDescriptionSummary"]["StreamStatus"] != "ACTIVE":
        assert time.monotonic() < deadline, "stream never became ACTIVE"
        time.sleep(0.1)


def test_writes_over_a_shards_limit_are_refused_as_kinesis_does(broker: Any) -> None:
    kin = client(kinesis_url(broker))
    name = unique_topic("throttle")
    kin.create_stream(StreamName=name, ShardCount=1)
    _active(kin, name)

    # 100 records at once: one second's burst (RATE) is admitted, the rest refused
    answer = kin.put_records(StreamName=name, Records=[
        {"Data": b"r%d" % i, "PartitionKey": f"k{i}"} for i in range(100)])
    entries = answer["Records"]
    ok = [e for e in entries if "SequenceNumber" in e]
    refused = [e for e in entries if "ErrorCode" in e]
    assert answer["FailedRecordCount"] == len(refused) > 0
    assert RATE <= len(ok) < 50  # a second's worth, plus what refilled meanwhile
    assert {e["ErrorCode"] for e in refused} == {"ProvisionedThroughputExceededException"}
    assert refused[0]["ErrorMessage"] == (
        f"Rate exceeded for shard shardId-000000000000 in stream {name} "
        f"under account 000000000000.")

    # the bucket is empty now: PutRecord is refused with AWS's error and status
    with pytest.raises(ClientError) as exc:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            kin.put_record(StreamName=name, Data=b"x", PartitionKey="p")
    error = exc.value.response
    assert error["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400

    # only admitted records were written, and the limit refills with time
    time.sleep(1.2)
    kin.put_record(StreamName=name, Data=b"later", PartitionKey="p")
    it = kin.get_shard_iterator(StreamName=name, ShardId="shardId-000000000000",
                                ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    got = kin.get_records(ShardIterator=it, Limit=10_000)["Records"]
    assert [r["SequenceNumber"] for r in got[:len(ok)]] == [e["SequenceNumber"] for e in ok]
    assert [r["Data"] for r in got[:len(ok)]] == [
        b"r%d" % i for i, e in enumerate(entries) if "SequenceNumber" in e]
    assert got[-1]["Data"] == b"later"
