"""Topic administration with kafkajs 2.2.4 (Node.js): the old, non-flexible admin versions.

kafkajs uses min(its max, broker max) per API: CreateTopics v3, CreatePartitions v1,
DescribeConfigs v2, AlterConfigs v1, DeleteRecords v1, DeleteTopics v1 — so this module
exercises encodings no Python client sends.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.fixtures import unique_topic
from tests.support.kafkajs import KafkajsUnavailable, kafkajs_env, run_node

PROGRAM = r"""
const { Kafka, logLevel, ConfigResourceTypes } = require('kafkajs')
const spec = JSON.parse(require('fs').readFileSync(0, 'utf8'))
const kafka = new Kafka({ clientId: 'strom-kafkajs-admin', brokers: [spec.broker],
  logLevel: logLevel.NOTHING, retry: { retries: 2 } })
const errorOf = async (promise) => {
  try { await promise; return null } catch (e) {
    const inner = (e.errors && e.errors[0]) || (e.originalError) || e
    return { type: inner.type || e.type || e.name, message: String(inner.message || e.message) }
  }
}
const configsOf = async (admin, topic, names) => {
  const r = await admin.describeConfigs({ includeSynonyms: false, resources: [
    { type: ConfigResourceTypes.TOPIC, name: topic, configNames: names }] })
  const out = {}
  for (const e of r.resources[0].configEntries) {
    out[e.configName] = { value: e.configValue, isDefault: e.isDefault,
      source: e.configSource, readOnly: e.readOnly }
  }
  return out
}
const main = async () => {
  const admin = kafka.admin()
  await admin.connect()
  const t = spec.topic
  const out = {}
  out.created = await admin.createTopics({ waitForLeaders: true, topics: [
    { topic: t, numPartitions: 1, configEntries: [{ name: 'retention.ms', value: '86400000' }] }] })
  // false: it already exists
  out.again = await admin.createTopics({ waitForLeaders: false, topics: [{ topic: t }] })
  out.badConfig = await errorOf(admin.createTopics({ waitForLeaders: false, topics: [
    { topic: t + '-bad', configEntries: [{ name: 'cleanup.policy', value: 'shred' }] }] }))
  out.badRf = await errorOf(admin.createTopics({ waitForLeaders: false, topics: [
    { topic: t + '-rf', numPartitions: 1, replicationFactor: 3 }] }))
  out.validateOnly = await admin.createTopics({ validateOnly: true, waitForLeaders: false,
    topics: [{ topic: t + '-vo', numPartitions: 2 }] })
  await admin.createPartitions({ topicPartitions: [{ topic: t, count: 3 }] })
  out.shrink = await errorOf(admin.createPartitions({ topicPartitions: [{ topic: t, count: 2 }] }))
  out.partitions = (await admin.fetchTopicMetadata({ topics: [t] })).topics[0].partitions.length
  out.before = await configsOf(admin, t, ['retention.ms', 'cleanup.policy'])
  await admin.alterConfigs({ validateOnly: false, resources: [{ type: ConfigResourceTypes.TOPIC,
    name: t, configEntries: [{ name: 'cleanup.policy', value: 'compact,delete' }] }] })
  out.after = await configsOf(admin, t, ['retention.ms', 'cleanup.policy'])
  out.badAlter = await errorOf(admin.alterConfigs({ resources: [{
    type: ConfigResourceTypes.TOPIC, name: t,
    configEntries: [{ name: 'segment.bytes', value: 'big' }] }] }))
  const producer = kafka.producer()
  await producer.connect()
  await producer.send({ topic: t, messages: Array.from({ length: 6 },
    (_, i) => ({ key: `k${i}`, value: `v${i}`, partition: 0 })) })
  await producer.disconnect()
  await admin.deleteTopicRecords({ topic: t, partitions: [{ partition: 0, offset: '4' }] })
  out.offsets = await admin.fetchTopicOffsets(t)
  out.topicsBefore = (await admin.listTopics()).filter(n => n.startsWith(t))
  await admin.deleteTopics({ topics: [t], timeout: 10000 })
  out.topicsAfter = (await admin.listTopics()).filter(n => n.startsWith(t))
  await admin.disconnect()
  console.log(JSON.stringify(out))
}
main().catch(e => { console.error(e); process.exit(1) })
"""


@pytest.fixture(scope="module")
def node_env() -> dict[str, str]:
    try:
        return kafkajs_env()
    except KafkajsUnavailable as e:
        pytest.skip(str(e))  # same rule as tests/integration/test_client_kafkajs.py


def test_kafkajs_admin_round(bootstrap: str, node_env: dict[str, str]) -> None:
    topic = unique_topic("js-admin")
    out: dict[str, Any] = run_node(PROGRAM, {"broker": bootstrap, "topic": topic}, node_env,
                                   timeout=90)
    assert out["created"] is True and out["again"] is False
    assert out["badConfig"]["type"] == "INVALID_CONFIG"
    assert out["badRf"]["type"] == "INVALID_REPLICATION_FACTOR"
    assert out["validateOnly"] is True
    assert out["shrink"]["type"] == "INVALID_PARTITIONS"
    assert out["partitions"] == 3
    assert out["before"]["retention.ms"]["value"] == "86400000"
    assert out["before"]["retention.ms"]["source"] == 1  # DYNAMIC_TOPIC_CONFIG
    assert out["before"]["cleanup.policy"] == {"value": "delete", "isDefault": True,
                                               "source": 5, "readOnly": False}
    assert out["after"]["cleanup.policy"]["value"] == "compact,delete"
    assert out["after"]["retention.ms"]["source"] == 5  # legacy Alter replaced the set
    assert out["badAlter"]["type"] == "INVALID_CONFIG"
    offsets = {o["partition"]: o for o in out["offsets"]}
    assert (offsets[0]["low"], offsets[0]["high"]) == ("4", "6")
    assert out["topicsBefore"] == [topic]  # nothing of -bad, -rf or -vo was created
    assert out["topicsAfter"] == []
