"""kafkajs 2.2.4 (Node.js) against a real Strom broker on 127.0.0.1.

kafkajs negotiates ApiVersions v2→v1→v0, then uses min(its max, broker max) per API and
never looks at the broker's minimum (its maxima: Produce 7, Fetch 11, Metadata 6,
ListOffsets 3, CreateTopics 3, InitProducerId 1) — so this suite keeps the broker's
old versions honest.  kafkajs has no ``assign()``: its consumer always joins a group,
so consumption here relies on the consumer-group APIs too.  kafkajs ships only the gzip
codec (snappy/lz4/zstd need plugins that are not installed), so gzip and none are tested.

Each test runs one small node program (stdin: a JSON spec, stdout: a JSON result),
bounded by a subprocess timeout.  Skipped, with the reason, only when node/npm are
missing.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from tests.support.fixtures import unique_topic
from tests.support.kafkajs import KafkajsUnavailable, kafkajs_env, run_node

BROKER_OVERRIDES = {"group.initial.rebalance.delay.ms": "0"}
BASE_TS = (int(time.time()) - 3600) * 1000

PROGRAM = r"""
const { Kafka, logLevel, CompressionTypes } = require('kafkajs')
const spec = JSON.parse(require('fs').readFileSync(0, 'utf8'))
const kafka = new Kafka({ clientId: 'strom-kafkajs', brokers: [spec.broker],
  logLevel: logLevel.NOTHING, retry: { retries: 5 } })
const messagesOf = (spec) => spec.messages || Array.from({ length: spec.generate },
  (_, i) => ({ value: `m${i}`, partition: 0 }))
const main = async () => {
  let out
  if (spec.op === 'admin') {
    const admin = kafka.admin()
    await admin.connect()
    const created = await admin.createTopics({ waitForLeaders: true,
      topics: [{ topic: spec.topic, numPartitions: spec.partitions }] })
    const listed = (await admin.listTopics()).includes(spec.topic)
    const meta = await admin.fetchTopicMetadata({ topics: [spec.topic] })
    const offsets = await admin.fetchTopicOffsets(spec.topic)
    await admin.deleteTopics({ topics: [spec.topic], timeout: 10000 })
    const afterDelete = (await admin.listTopics()).includes(spec.topic)
    await admin.disconnect()
    out = { created, listed, afterDelete, offsets,
      partitions: meta.topics[0].partitions.map(p => p.partitionId).sort() }
  } else if (spec.op === 'produce') {
    const producer = kafka.producer(spec.idempotent
      ? { idempotent: true, maxInFlightRequests: 1 } : {})
    await producer.connect()
    const messages = messagesOf(spec)
    const results = []
    for (let i = 0; i < messages.length; i += spec.batch) {
      const r = await producer.send({ topic: spec.topic, acks: spec.acks,
        compression: spec.gzip ? CompressionTypes.GZIP : CompressionTypes.None,
        messages: messages.slice(i, i + spec.batch) })
      results.push(...r)
    }
    await producer.disconnect()
    out = results
  } else if (spec.op === 'consume') {
    const consumer = kafka.consumer({ groupId: spec.group, maxWaitTimeInMs: 100 })
    await consumer.connect()
    await consumer.subscribe({ topic: spec.topic, fromBeginning: true })
    const seen = []
    await new Promise((resolve) => {
      consumer.run({ autoCommit: false, eachMessage: async ({ partition, message }) => {
        const headers = {}
        for (const [k, v] of Object.entries(message.headers || {})) headers[k] = v.toString()
        seen.push({ partition, offset: Number(message.offset), headers,
          key: message.key === null ? null : message.key.toString(),
          value: message.value === null ? null : message.value.toString(),
          timestamp: Number(message.timestamp) })
        if (seen.length >= spec.count) resolve()
      } })
    })
    await consumer.disconnect()
    out = seen
  } else if (spec.op === 'offsets') {
    const admin = kafka.admin()
    await admin.connect()
    out = { latest: await admin.fetchTopicOffsets(spec.topic), byTime: {} }
    for (const ts of spec.timestamps) {
      out.byTime[ts] = await admin.fetchTopicOffsetsByTimestamp(spec.topic, ts)
    }
    await admin.disconnect()
  }
  console.log(JSON.stringify(out))
}
main().catch(e => { console.error(e); process.exit(1) })
"""


@pytest.fixture(scope="module")
def node_env() -> dict[str, str]:
    try:
        return kafkajs_env()
    except KafkajsUnavailable as e:
        pytest.skip(str(e))


def js(env: dict[str, str], bootstrap: str, op: str, **spec: Any) -> Any:
    return run_node(PROGRAM, {"broker": bootstrap, "op": op, **spec}, env)


def read_with_librdkafka(bootstrap: str, topic: str, n: int) -> list[Any]:
    """Cross-check what kafkajs wrote with another client (partition 0, exactly n)."""
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"assign-only-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 100,
        }
    )
    got: list[Any] = []
    try:
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        deadline = time.monotonic() + 30
        while len(got) < n:
            assert time.monotonic() < deadline, f"read {len(got)} of {n}"
            for m in c.consume(num_messages=n - len(got), timeout=0.5):
                if m.error() is None:
                    got.append(m)
                else:
                    assert m.error().code() == KafkaError._PARTITION_EOF, m.error()
        assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10) == (0, n)
    finally:
        c.close()
    return got


def test_admin_create_list_delete_topics(bootstrap: str, node_env: dict[str, str]) -> None:
    topic = unique_topic("js-admin")
    out = js(node_env, bootstrap, "admin", topic=topic, partitions=3)
    assert out["created"] is True
    assert out["listed"] is True
    assert out["partitions"] == [0, 1, 2]
    assert sorted((o["partition"], o["low"], o["high"]) for o in out["offsets"]) == [
        (0, "0", "0"),
        (1, "0", "0"),
        (2, "0", "0"),
    ]
    assert out["afterDelete"] is False


@pytest.mark.parametrize(("acks", "gzip"), [(-1, False), (1, True), (0, False)])
def test_produce_consume_keys_headers_timestamps(
    bootstrap: str, node_env: dict[str, str], acks: int, gzip: bool
) -> None:
    topic = unique_topic(f"js-acks{acks}")
    messages = [
        {
            "key": f"k{i}",
            "value": f"v{i}",
            "partition": 0,
            "timestamp": str(BASE_TS + i),
            "headers": {"h1": f"x{i}", "h2": ""},
        }
        for i in range(50)
    ]
    results = js(
        node_env, bootstrap, "produce", topic=topic, messages=messages, batch=10, acks=acks,
        gzip=gzip,
    )  # fmt: skip
    if acks != 0:
        assert [(r["errorCode"], r["baseOffset"]) for r in results] == [
            (0, str(b)) for b in range(0, 50, 10)
        ]

    # what kafkajs wrote, as librdkafka sees it
    msgs = read_with_librdkafka(bootstrap, topic, 50)
    assert [(m.key(), m.value()) for m in msgs] == [
        (f"k{i}".encode(), f"v{i}".encode()) for i in range(50)
    ]
    assert [m.timestamp()[1] for m in msgs] == [BASE_TS + i for i in range(50)]
    assert [m.headers() for m in msgs] == [
        [("h1", f"x{i}".encode()), ("h2", b"")] for i in range(50)
    ]

    # and as kafkajs itself reads it (through a consumer group)
    seen = js(node_env, bootstrap, "consume", topic=topic, group=unique_topic("g"), count=50)
    assert [(s["offset"], s["key"], s["value"]) for s in seen] == [
        (i, f"k{i}", f"v{i}") for i in range(50)
    ]
    assert [s["timestamp"] for s in seen] == [BASE_TS + i for i in range(50)]
    assert all(s["headers"] == {"h1": f"x{i}", "h2": ""} for i, s in enumerate(seen))


def test_ten_thousand_messages_idempotent_gzip(bootstrap: str, node_env: dict[str, str]) -> None:
    topic = unique_topic("js-10k")
    results = js(
        node_env, bootstrap, "produce", topic=topic, generate=10_000, batch=1000, acks=-1,
        gzip=True, idempotent=True,
    )  # fmt: skip
    assert [r["baseOffset"] for r in results] == [str(b) for b in range(0, 10_000, 1000)]
    assert all(r["errorCode"] == 0 for r in results)
    seen = js(node_env, bootstrap, "consume", topic=topic, group=unique_topic("g"), count=10_000)
    assert [s["value"] for s in seen] == [f"m{i}" for i in range(10_000)]
    assert [s["offset"] for s in seen] == list(range(10_000))


def test_offsets_latest_and_by_timestamp(bootstrap: str, node_env: dict[str, str]) -> None:
    topic = unique_topic("js-times")
    messages = [
        {"value": f"v{i}", "partition": 0, "timestamp": str(BASE_TS + 1000 * i)} for i in range(20)
    ]
    js(node_env, bootstrap, "produce", topic=topic, messages=messages, batch=1, acks=-1)
    out = js(
        node_env, bootstrap, "offsets", topic=topic,
        timestamps=[BASE_TS - 5000, BASE_TS + 7000, BASE_TS + 7500],
    )  # fmt: skip
    assert [(o["partition"], o["low"], o["high"]) for o in out["latest"]] == [(0, "0", "20")]
    by_time = {int(ts): [o["offset"] for o in offs] for ts, offs in out["byTime"].items()}
    assert by_time == {BASE_TS - 5000: ["0"], BASE_TS + 7000: ["7"], BASE_TS + 7500: ["8"]}
