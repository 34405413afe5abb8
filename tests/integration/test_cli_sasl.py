"""The ``strom`` tools against a broker whose only listener needs SASL/PLAIN: credentials
from the flags, the environment or a profile; a wrong password or missing credentials
are one-line errors with exit code 1."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from tests.support.broker import BrokerProcess
from tests.support.strom_cli import one_line_error, strom

pytestmark = pytest.mark.timeout(120)
JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
        'username="admin" password="admin-secret" user_alice="alice-secret";')
ALICE = ["--sasl-username", "alice", "--sasl-password", "alice-secret"]


@pytest.fixture(scope="module")
def sasl_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    proc = BrokerProcess(tmp_path_factory.mktemp("sasl-cli"), {
        "listeners": "SASL_PLAINTEXT://127.0.0.1:0",
        "sasl.enabled.mechanisms": "PLAIN",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS,
        "num.partitions": "1",
    })
    proc.start()
    try:
        yield proc.bootstrap
    finally:
        proc.close()


def _ok(proc) -> bytes:  # type: ignore[no-untyped-def]
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout


def test_topics_data_and_groups_over_sasl(sasl_bootstrap: str, topic_name: str,
                                          tmp_path: Path) -> None:
    b = ["-b", sasl_bootstrap, *ALICE]
    _ok(strom("topic", "create", topic_name, "-p", "2", "-c", "retention.ms=600000", *b))
    desc = json.loads(_ok(strom("topic", "describe", topic_name, "--format", "json", *b)))
    assert len(desc["partitions"]) == 2
    assert {"name": "retention.ms", "value": "600000", "source": "DYNAMIC_TOPIC_CONFIG",
            "sensitive": False} in desc["configs"]
    data = b"".join(b"k%d=v%d\n" % (i, i) for i in range(50))
    _ok(strom("produce", topic_name, "-K", "=", "-p", "1", *b, input=data))
    # credentials from the environment this time
    env = {"STROM_BROKERS": sasl_bootstrap, "STROM_SASL_USERNAME": "alice",
           "STROM_SASL_PASSWORD": "alice-secret"}
    back = strom("consume", topic_name, "-o", "earliest", "-e", "-f", "%k=%v\\n",
                 "-g", f"{topic_name}-g", env=env)
    assert _ok(back) == data
    lag = json.loads(_ok(strom("group", "describe", f"{topic_name}-g", "--format", "json",
                               *b)))
    assert [(o["partition"], o["committed"], o["lag"]) for o in lag["offsets"]] == [
        (0, 0, 0), (1, 50, 0)]
    # a real client agrees on the committed offset
    consumer = Consumer({"bootstrap.servers": sasl_bootstrap, "group.id": f"{topic_name}-g",
                         "security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "PLAIN",
                         "sasl.username": "alice", "sasl.password": "alice-secret"})
    try:
        [tp] = consumer.committed([TopicPartition(topic_name, 1)], timeout=20)
    finally:
        consumer.close()
    assert tp.offset == 50
    t = int(time.time() * 1000) - 3_600_000
    _ok(strom("group", "seek", f"{topic_name}-g", "--topic", topic_name, "--to-datetime",
              str(t), *b))
    profile = tmp_path / "profile.toml"
    profile.write_text(f'[default]\nbrokers = "{sasl_bootstrap}"\nsasl_username = "alice"\n'
                       'sasl_password = "alice-secret"\n')
    health = strom("cluster", "health", env={"STROM_PROFILE_FILE": str(profile)})
    assert health.returncode == 0, health.stdout.decode() + health.stderr.decode()


def test_wrong_or_missing_credentials(sasl_bootstrap: str) -> None:
    wrong = strom("topic", "list", "-b", sasl_bootstrap, "--sasl-username", "alice",
                  "--sasl-password", "nope")
    assert wrong.returncode == 1
    assert "authentication as 'alice' failed" in one_line_error(wrong)
    missing = strom("topic", "list", "-b", sasl_bootstrap)
    assert missing.returncode == 1
    assert "needs SASL" in one_line_error(missing)
