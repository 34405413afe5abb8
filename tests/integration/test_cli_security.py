"""``strom user`` and ``strom acl`` against a broker with SCRAM and the StandardAuthorizer
(``super.users`` = User:admin; the tools log in as admin with SCRAM-SHA-512): a user
created with ``strom user create`` logs in with confluent-kafka at once and is described
without secrets; an ACL created with ``strom acl create`` lets it produce, listing finds
it by filter, deleting it stops the produce again; a deleted user can no longer log in.
Bad input is a one-line error with exit code 2."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from tests.support.broker import BrokerProcess
from tests.support.strom_cli import one_line_error, strom

pytestmark = pytest.mark.timeout(120)
TIMEOUT = 20.0
ADMIN = ["--sasl-mechanism", "SCRAM-SHA-512", "--sasl-username", "admin",
         "--sasl-password", "admin-secret"]


@pytest.fixture(scope="module")
def bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    proc = BrokerProcess(tmp_path_factory.mktemp("cli-security"), {
        "listeners": "SASL_PLAINTEXT://127.0.0.1:0",
        "sasl.enabled.mechanisms": "SCRAM-SHA-256,SCRAM-SHA-512",
        "strom.add.scram": "SCRAM-SHA-512=[name=admin,password=admin-secret]",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": "User:admin",
        "num.partitions": "1", "offsets.topic.num.partitions": "1",
    })
    proc.start()
    try:
        deadline = time.monotonic() + TIMEOUT  # the bootstrap user lands just after startup
        while strom("cluster", "info", "-b", proc.bootstrap, *ADMIN).returncode != 0:
            assert time.monotonic() < deadline, "admin never logged in"
            time.sleep(0.2)
        yield proc.bootstrap
    finally:
        proc.close()


def cfl(bootstrap: str, user: str, password: str, mech: str) -> dict[str, Any]:
    return {"bootstrap.servers": bootstrap, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": mech, "sasl.username": user, "sasl.password": password}


def ok(*args: str) -> bytes:
    proc = strom(*args)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout


def produce(config: dict[str, Any], topic: str) -> str | None:
    """Produce one record; None when it was written, else the error's name."""
    producer = Producer({**config, "message.timeout.ms": 5000, "retries": 0})
    outcome: list[str | None] = []
    producer.produce(topic, b"x", on_delivery=lambda err, _m: outcome.append(
        err.name() if err else None))
    producer.flush(TIMEOUT)
    return outcome[0] if outcome else "NO_DELIVERY_REPORT"


def test_a_created_user_logs_in_and_acls_decide_what_it_may_do(bootstrap: str) -> None:
    b = ["-b", bootstrap, *ADMIN]
    user, password = f"u{uuid.uuid4().hex[:6]}", "pw-" + uuid.uuid4().hex[:8]
    topic = f"sec-{uuid.uuid4().hex[:6]}"
    ok("topic", "create", topic, *b)
    ok("user", "create", user, "--password", password, "--mechanism", "SCRAM-SHA-256",
       "--iterations", "8192", *b)
    described = json.loads(ok("user", "describe", user, "--format", "json", *b))
    assert described == [{"user": user, "credentials": [
        {"mechanism": "SCRAM-SHA-256", "iterations": 8192}]}]
    config = cfl(bootstrap, user, password, "SCRAM-SHA-256")
    admin = AdminClient(config)
    assert admin.list_topics(timeout=TIMEOUT).topics is not None  # the login works
    assert produce(config, topic) == "TOPIC_AUTHORIZATION_FAILED"  # no ACL yet

    ok("acl", "create", "--principal", f"User:{user}", "--operation", "write",
       "--resource-type", "topic", "--resource-name", topic[:4], "--pattern-type",
       "prefixed", *b)
    listed = json.loads(ok("acl", "list", "--principal", f"User:{user}", "--format", "json",
                           *b))
    assert listed == [{"principal": f"User:{user}", "host": "*", "resource_type": "TOPIC",
                       "resource_name": topic[:4], "pattern_type": "PREFIXED",
                       "operation": "WRITE", "permission": "ALLOW"}]
    match = json.loads(ok("acl", "list", "--type", "topic", "--name", topic,
                          "--pattern-type", "match", "--format", "json", *b))
    assert [a["resource_name"] for a in match] == [topic[:4]]
    assert produce(config, topic) is None  # WRITE on the prefix lets it produce

    deleted = json.loads(ok("acl", "delete", "--principal", f"User:{user}", "--type", "topic",
                            "--format", "json", *b))
    assert [a["operation"] for a in deleted["deleted"]] == ["WRITE"]
    assert json.loads(ok("acl", "list", "--principal", f"User:{user}", "--format", "json",
                         *b)) == []
    assert produce(config, topic) == "TOPIC_AUTHORIZATION_FAILED"

    ok("user", "delete", user, *b)
    assert json.loads(ok("user", "describe", "--format", "json", *b)) == [
        {"user": "admin", "credentials": [{"mechanism": "SCRAM-SHA-512", "iterations": 4096}]}]
    refused = strom("topic", "list", "-b", bootstrap, "--sasl-mechanism", "SCRAM-SHA-256",
                    "--sasl-username", user, "--sasl-password", password)
    assert refused.returncode == 1
    assert "authentication as" in one_line_error(refused)


def test_a_user_without_alter_acls_is_refused(bootstrap: str) -> None:
    b = ["-b", bootstrap, *ADMIN]
    made = strom("user", "create", "mallory", *b, input=b"m-secret\n")  # from stdin
    assert made.returncode == 0, made.stderr.decode()
    as_mallory = ["-b", bootstrap, "--sasl-mechanism", "SCRAM-SHA-256", "--sasl-username",
                  "mallory", "--sasl-password", "m-secret"]
    proc = strom("acl", "create", "--principal", "User:mallory", "--operation", "all",
                 "--resource-name", "*", *as_mallory)
    assert proc.returncode == 1
    assert "CLUSTER_AUTHORIZATION_FAILED" in one_line_error(proc)
    proc = strom("user", "create", "other", "--password", "x", *as_mallory)
    assert proc.returncode == 1
    assert "CLUSTER_AUTHORIZATION_FAILED" in one_line_error(proc)
    ok("user", "delete", "mallory", "--mechanism", "SCRAM-SHA-256", *b)


@pytest.mark.parametrize(("args", "message"), [
    (["acl", "create", "--principal", "alice", "--operation", "read", "--name", "t"],
     "bad principal 'alice'"),
    (["acl", "create", "--principal", "User:a", "--name", "t"], "at least one --operation"),
    (["acl", "create", "--principal", "User:a", "--operation", "read", "--name", "t",
      "--pattern-type", "match"], "bad pattern type 'match'"),
    (["acl", "list", "--type", "planet"], "bad resource type 'planet'"),
    (["acl", "delete"], "at least one filter"),
    (["user", "create", "a", "--password", "p", "--iterations", "10"], "bad --iterations 10"),
])
def test_bad_input_is_one_line_and_exit_2(bootstrap: str, args: list[str],
                                          message: str) -> None:
    proc = strom(*args, "-b", bootstrap, *ADMIN)
    assert proc.returncode == 2
    assert message in one_line_error(proc)


def test_unknown_user_described_is_an_error(bootstrap: str) -> None:
    proc = strom("user", "describe", "nobody-here", "-b", bootstrap, *ADMIN)
    assert proc.returncode == 1
    assert "RESOURCE_NOT_FOUND" in one_line_error(proc)


