"""Consumer groups with kafkajs 2.2.4 (Node.js), installed by npm into a test-local
``tests/integration/js/node_modules`` on first use. Skipped, with the reason, only when
node/npm are missing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
from test_group_support import (
    GROUP_OVERRIDES,
    SESSION_MS,
    ChildConsumer,
    create_topic,
    is_split,
    produce,
    wait_until,
)

from tests.support.fixtures import unique_topic
from tests.support.kafkajs import KafkajsUnavailable, kafkajs_env

BROKER_OVERRIDES = GROUP_OVERRIDES
pytestmark = pytest.mark.timeout(120)


#: one group member per process: prints its assignment (JSON list) after each join,
#: leaves the group cleanly on SIGTERM (consumer.disconnect) and then exits. kafkajs only
#: heartbeats between fetches, so the fetch wait must stay well below the session timeout.
JS_MEMBER = """
const { Kafka, logLevel } = require('kafkajs')
const [, broker, group, topic, session, instanceId] = process.argv
const kafka = new Kafka({ clientId: 'kafkajs-member', brokers: [broker],
  logLevel: logLevel.NOTHING })
const consumer = kafka.consumer({ groupId: group, sessionTimeout: Number(session),
  heartbeatInterval: 300, rebalanceTimeout: 10000, maxWaitTimeInMs: 200 })
consumer.on(consumer.events.GROUP_JOIN, e => {
  const parts = (e.payload.memberAssignment[topic] || []).slice().sort((a, b) => a - b)
  console.log(JSON.stringify(parts))
})
process.on('SIGTERM', async () => { await consumer.disconnect(); process.exit(0) })
const main = async () => {
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  await consumer.run({ eachMessage: async () => {} })
}
main().catch(e => { console.error(e); process.exit(1) })
"""

#: consume ``count`` messages without auto-commit, commit offset ``commit`` with metadata,
#: disconnect; print {"offsets": [...]} of what was consumed
JS_CONSUME_AND_COMMIT = """
const { Kafka, logLevel } = require('kafkajs')
const [, broker, group, topic, count, commit] = process.argv
const kafka = new Kafka({ clientId: 'kafkajs-commit', brokers: [broker],
  logLevel: logLevel.NOTHING })
const consumer = kafka.consumer({ groupId: group, sessionTimeout: 6000, heartbeatInterval: 300,
  maxWaitTimeInMs: 200 })
const seen = []
const main = async () => {
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  await new Promise((resolve) => {
    consumer.run({ autoCommit: false, eachMessage: async ({ message }) => {
      if (seen.length < Number(count)) seen.push(Number(message.offset))
      if (seen.length === Number(count)) resolve()
    } })
  })
  if (Number(commit) >= 0) {
    await consumer.commitOffsets([{ topic, partition: 0, offset: String(commit) }])
  }
  await consumer.disconnect()
  console.log(JSON.stringify({ offsets: seen }))
}
main().catch(e => { console.error(e); process.exit(1) })
"""

#: admin calls; prints one JSON object
JS_ADMIN = """
const { Kafka, logLevel } = require('kafkajs')
const [, broker, op, ...args] = process.argv
const kafka = new Kafka({ clientId: 'kafkajs-admin', brokers: [broker],
  logLevel: logLevel.NOTHING })
const admin = kafka.admin()
const main = async () => {
  await admin.connect()
  let out
  if (op === 'list') out = await admin.listGroups()
  else if (op === 'describe') out = await admin.describeGroups(args)
  else if (op === 'delete') {
    try { out = await admin.deleteGroups(args) }
    catch (e) { out = { error: e.name, groups: e.groups } }
  }
  else if (op === 'offsets') {
    out = await admin.fetchOffsets({ groupId: args[0], topics: [args[1]] })
  }
  await admin.disconnect()
  const plain = (k, v) => (Buffer.isBuffer(v) || (v && v.type === 'Buffer')) ? null : v
  console.log(JSON.stringify(out, plain))
}
main().catch(e => { console.error(e); process.exit(1) })
"""


@pytest.fixture(scope="module")
def node_env() -> dict[str, str]:
    try:
        return kafkajs_env()
    except KafkajsUnavailable as e:
        pytest.skip(str(e))


def _node(program: str, args: list[str], env: dict[str, str], timeout: float = 30) -> dict:
    proc = subprocess.run(
        ["node", "-e", program, *args],
        capture_output=True,
        timeout=timeout,
        env={**os.environ, **env},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    return json.loads(proc.stdout.decode().strip().splitlines()[-1])


def test_members_split_leave_and_kill(bootstrap: str, node_env: dict[str, str]) -> None:
    topic, group = unique_topic("js-split"), unique_topic("g")
    create_topic(bootstrap, topic, 6)
    members: list[ChildConsumer] = []
    try:
        for _ in range(2):
            members.append(
                ChildConsumer(
                    JS_MEMBER, [bootstrap, group, topic, str(SESSION_MS)], node=True, env=node_env
                )
            )
        wait_until(lambda: is_split([m.current() for m in members], 6), 40, what="2-way split")
        members.append(
            ChildConsumer(
                JS_MEMBER, [bootstrap, group, topic, str(SESSION_MS)], node=True, env=node_env
            )
        )
        wait_until(lambda: is_split([m.current() for m in members], 6), 40, what="3-way split")
        leaver = members.pop()
        leaver.proc.send_signal(signal.SIGTERM)  # consumer.disconnect() -> LeaveGroup
        assert leaver.proc.wait(15) == 0
        wait_until(lambda: is_split([m.current() for m in members], 6), 20, what="after leave")
        members.pop().kill()
        t0 = time.monotonic()
        wait_until(
            lambda: members[0].current() == list(range(6)),
            SESSION_MS / 1000 + 15,
            what="takeover after kill",
        )
        print(f"kafkajs takeover after kill: {time.monotonic() - t0:.2f} s")
    finally:
        for m in members:
            m.close()


def test_commit_restart_resume_and_broker_kill9(fresh_broker, node_env) -> None:  # type: ignore[no-untyped-def]
    bootstrap = fresh_broker.bootstrap
    topic, group = unique_topic("js-resume"), unique_topic("g")
    create_topic(bootstrap, topic, 1)
    produce(bootstrap, topic, 10, 1)
    first = _node(JS_CONSUME_AND_COMMIT, [bootstrap, group, topic, "5", "5"], node_env)
    assert first["offsets"] == [0, 1, 2, 3, 4]
    second = _node(JS_CONSUME_AND_COMMIT, [bootstrap, group, topic, "2", "-1"], node_env)
    assert second["offsets"] == [5, 6]  # resumed exactly after the commit
    fresh_broker.restart(clean=False)  # kill -9
    offsets = _node(JS_ADMIN, [bootstrap, "offsets", group, topic], node_env)
    assert offsets[0]["partitions"] == [{"partition": 0, "offset": "5", "metadata": None}]


def test_admin_list_describe_delete(bootstrap: str, node_env: dict[str, str]) -> None:
    topic, active = unique_topic("js-admin"), unique_topic("act")
    idle = unique_topic("idle")
    create_topic(bootstrap, topic, 2)
    produce(bootstrap, topic, 4, 2)
    member = ChildConsumer(
        JS_MEMBER, [bootstrap, active, topic, str(SESSION_MS)], node=True, env=node_env
    )
    try:
        wait_until(lambda: member.current() == [0, 1], 40, what="member assigned")
        _node(JS_CONSUME_AND_COMMIT, [bootstrap, idle, topic, "1", "1"], node_env)
        listed = {
            g["groupId"]: g["protocolType"]
            for g in _node(JS_ADMIN, [bootstrap, "list"], node_env)["groups"]
        }
        assert listed[active] == "consumer" and listed[idle] == "consumer"
        described = _node(JS_ADMIN, [bootstrap, "describe", active], node_env)["groups"][0]
        assert described["state"] == "Stable" and described["protocol"] == "RoundRobinAssigner"
        assert [m["clientId"] for m in described["members"]] == ["kafkajs-member"]
        refused = _node(JS_ADMIN, [bootstrap, "delete", active], node_env)
        assert refused["error"] == "KafkaJSDeleteGroupsError"
        assert refused["groups"][0]["errorCode"] == 68  # NON_EMPTY_GROUP
        deleted = _node(JS_ADMIN, [bootstrap, "delete", idle], node_env)
        assert deleted == [{"groupId": idle, "errorCode": 0}]
        listed = {g["groupId"] for g in _node(JS_ADMIN, [bootstrap, "list"], node_env)["groups"]}
        assert idle not in listed and active in listed
    finally:
        member.close()
