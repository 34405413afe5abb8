"""kafkajs 2.2.4 transactional producer (InitProducerId v1, AddPartitionsToTxn v1,
AddOffsetsToTxn v1, TxnOffsetCommit, EndTxn v1): commit and abort (read_committed sees
committed records only, read_uncommitted both), offsets sent with a transaction
committed with it, and a second producer with the same transactionalId fencing the
first (the zombie's commit fails). Skipped, with the reason, only without node/npm."""

from __future__ import annotations

import pytest

from tests.integration.test_txn_clients import (
    COMMITTED,
    DEADLINE_S,
    EVERYTHING,
    committed_offset,
    read_all,
)
from tests.support.kafkajs import KafkajsUnavailable, kafkajs_env, run_node

pytestmark = pytest.mark.timeout(180)

PROGRAM = r"""
const { Kafka, logLevel } = require('kafkajs')
const spec = JSON.parse(require('fs').readFileSync(0, 'utf8'))
const kafka = new Kafka({ clientId: 'strom-kafkajs-txn', brokers: [spec.broker],
  logLevel: logLevel.NOTHING, retry: { retries: 8 } })
const txnProducer = () => kafka.producer({ transactionalId: spec.tid, idempotent: true,
  maxInFlightRequests: 1 })
const main = async () => {
  const p = txnProducer()
  await p.connect()
  let t = await p.transaction()
  await t.send({ topic: spec.topic, messages: [{ value: 'c0' }, { value: 'c1' },
    { value: 'c2' }] })
  await t.commit()
  t = await p.transaction()
  await t.send({ topic: spec.topic, messages: [{ value: 'a0' }, { value: 'a1' }] })
  await t.abort()
  t = await p.transaction()
  await t.send({ topic: spec.topic, messages: [{ value: 'c-last' }] })
  await t.sendOffsets({ consumerGroupId: spec.group,
    topics: [{ topic: spec.topic, partitions: [{ partition: 0, offset: '4' }] }] })
  await t.commit()
  // a second producer with the same id fences this one
  t = await p.transaction()
  await t.send({ topic: spec.topic, messages: [{ value: 'zombie' }] })
  const fresh = txnProducer()
  await fresh.connect()
  await fresh.transaction()  // kafkajs asks for the transactional producer id here
  await fresh.disconnect()
  let zombieError = null
  try { await t.commit() } catch (e) { zombieError = e.type || e.name || String(e) }
  await p.disconnect().catch(() => {})
  console.log(JSON.stringify({ zombieError }))
}
main().catch(e => { console.error(e); process.exit(1) })
"""


def test_kafkajs_commit_abort_offsets_and_fencing(bootstrap: str, topic_name: str) -> None:
    try:
        env = kafkajs_env()
    except KafkajsUnavailable as exc:
        pytest.skip(str(exc))
    group = f"js-g-{topic_name}"
    out = run_node(PROGRAM, {"broker": bootstrap, "topic": topic_name, "group": group,
                             "tid": f"js-{topic_name}"}, env, timeout=DEADLINE_S * 3)
    assert out["zombieError"] is not None, "the fenced producer's commit succeeded"
    assert "FENCED" in out["zombieError"].upper() or "EPOCH" in out["zombieError"].upper(), out
    # the zombie's record was written, then aborted by the fencing producer
    assert read_all(bootstrap, topic_name, "read_committed", 4) == COMMITTED
    assert read_all(bootstrap, topic_name, "read_uncommitted", 7) == EVERYTHING + [b"zombie"]
    assert committed_offset(bootstrap, group, topic_name) == 4
