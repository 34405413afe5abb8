"""SigV4 on the Kinesis API when access keys are configured: boto3 signing with a
configured key and secret is served; a wrong secret, an unknown key and an unsigned
request get AWS's errors (400) and write nothing; the Kafka listener is unaffected."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from confluent_kafka.admin import AdminClient

from tests.support.fixtures import unique_topic
from tests.support.kinesis import OVERRIDES, client, kinesis_url, raw

KEY, SECRET = "AKIDSTROMTEST", "right-secret"
BROKER_OVERRIDES = {**OVERRIDES, "strom.kinesis.access.keys": f"{KEY}:{SECRET},OTHER:x"}
pytestmark = pytest.mark.timeout(60)


def _code(call: Any) -> tuple[str, int]:
    with pytest.raises(ClientError) as exc:
        call()
    err = exc.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]


def test_signatures_are_verified(broker: Any, bootstrap: str) -> None:
    url = kinesis_url(broker)
    good = client(url, key=KEY, secret=SECRET)
    name = unique_topic("sig")
    good.create_stream(StreamName=name, ShardCount=1)
    good.put_record(StreamName=name, PartitionKey="k", Data=b"signed")

    wrong = client(url, key=KEY, secret="wrong-secret")
    assert _code(lambda: wrong.put_record(StreamName=name, PartitionKey="k", Data=b"x")) \
        == ("InvalidSignatureException", 400)
    assert _code(lambda: wrong.create_stream(StreamName=unique_topic("no"), ShardCount=1)) \
        == ("InvalidSignatureException", 400)
    stranger = client(url, key="NOSUCHKEY", secret=SECRET)
    assert _code(lambda: stranger.list_streams()) == ("UnrecognizedClientException", 400)
    status, answer = raw(url, "Kinesis_20131202.ListStreams", "{}")
    assert (status, answer["__type"]) == (400, "MissingAuthenticationTokenException")

    it = good.get_shard_iterator(StreamName=name, ShardId="shardId-000000000000",
                                 ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    assert [r["Data"] for r in good.get_records(ShardIterator=it)["Records"]] == [b"signed"]
    assert good.list_streams()["StreamNames"] == [name]
    # the Kafka side keeps serving and sees the one stream created
    topics = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics
    assert name in topics
