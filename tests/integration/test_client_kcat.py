"""kcat (Debian's build on librdkafka 2.0.2) as a subprocess against a real Strom broker.

kcat is the oldest client here (librdkafka 2.0.2), so it is the first to notice an
ApiVersions answer it cannot parse (feature flags included:
tests/integration/test_api_versions_features.py runs it against them).  Every call has
``-m`` (metadata timeout) and a subprocess timeout, consumers use ``-e`` (exit at the end
of the partition) and ``-c`` (count), so nothing can hang.

kcat has no admin API: topics are created by producing (``auto.create.topics.enable``,
the broker default) and listed with ``-L``; deletion is covered by the other clients.
kcat cannot set record timestamps, so timestamp preservation is checked on records
produced with explicit timestamps by confluent-kafka and read back by kcat.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from tests.support.fixtures import unique_topic

KCAT = shutil.which("kcat") or "/usr/bin/kcat"
MIB = 1024 * 1024
BROKER_OVERRIDES = {"message.max.bytes": str(2 * MIB)}

RUN_TIMEOUT_S = 60.0
METADATA_TIMEOUT = "10"  # seconds, kcat -m
BASE_TS = (int(time.time()) - 3600) * 1000


# ----------------------------------------------------------------------------- helpers
def kcat(
    bootstrap: str, *args: str, stdin: bytes | None = None, timeout: float = RUN_TIMEOUT_S
) -> subprocess.CompletedProcess[bytes]:
    """Run kcat with -b/-m, assert exit code 0, return the completed process."""
    cmd = [KCAT, "-b", bootstrap, "-m", METADATA_TIMEOUT, *args]
    proc = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout, check=False)
    assert proc.returncode == 0, (
        f"{' '.join(cmd)} exited {proc.returncode}\nstderr:\n"
        f"{proc.stderr.decode(errors='replace')[-4000:]}"
    )
    return proc


def produce_lines(bootstrap: str, topic: str, lines: list[str], *extra: str) -> None:
    """Produce one message per line to partition 0 (``-K:`` splits key:value if given)."""
    data = "".join(line + "\n" for line in lines).encode()
    kcat(bootstrap, "-P", "-t", topic, "-p", "0", *extra, stdin=data)


def consume_json(
    bootstrap: str, topic: str, count: int, *extra: str, offset: str = "beginning"
) -> list[dict[str, Any]]:
    """Partition 0 from ``offset`` to its end (``-e``): exactly ``count`` JSON envelopes."""
    proc = kcat(
        bootstrap, "-C", "-J", "-q", "-e", "-t", topic, "-p", "0", "-o", offset, *extra
    )  # fmt: skip
    msgs = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert len(msgs) == count, f"expected {count} messages, kcat printed {len(msgs)}"
    return msgs


def consume_all_json(bootstrap: str, topic: str, offset: str = "beginning") -> list[dict[str, Any]]:
    """Every message from ``offset`` to the end of partition 0 (``-e``, no count)."""
    proc = kcat(bootstrap, "-C", "-J", "-q", "-e", "-t", topic, "-p", "0", "-o", offset)
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def headers_of(msg: dict[str, Any]) -> list[tuple[str, str]]:
    flat = msg.get("headers") or []
    return list(zip(flat[0::2], flat[1::2], strict=True))


def metadata(bootstrap: str, topic: str | None = None) -> dict[str, Any]:
    args = ["-L", "-J"] + (["-t", topic] if topic else [])
    return json.loads(kcat(bootstrap, *args).stdout)


# ----------------------------------------------------------------------------- metadata
def test_metadata_list_and_auto_created_topic(bootstrap: str) -> None:
    topic = unique_topic("kcat-meta")
    produce_lines(bootstrap, topic, ["hello"])

    md = metadata(bootstrap, topic)
    assert md["brokers"], "no brokers listed"
    broker_ids = {b["id"] for b in md["brokers"]}
    (entry,) = [t for t in md["topics"] if t["topic"] == topic]
    assert "error" not in entry or not entry["error"]
    assert [p["partition"] for p in entry["partitions"]] == [0]  # num.partitions=1
    assert entry["partitions"][0]["leader"] in broker_ids

    all_topics = {t["topic"] for t in metadata(bootstrap)["topics"]}
    assert topic in all_topics


# ----------------------------------------------------------------------------- produce/consume
@pytest.mark.parametrize("acks", ["0", "1", "all"])
def test_produce_consume_acks_keys_headers(bootstrap: str, acks: str) -> None:
    topic = unique_topic(f"kcat-acks-{acks}")
    before = int(time.time() * 1000)
    produce_lines(
        bootstrap,
        topic,
        [f"key-{i}:value-{i}" for i in range(100)],
        "-K:", "-H", "h1=v1", "-H", "h2=", "-H", "h1=dup", "-X", f"acks={acks}",
    )  # fmt: skip
    after = int(time.time() * 1000)
    msgs = consume_json(bootstrap, topic, 100)
    assert [m["offset"] for m in msgs] == list(range(100))
    assert [m["key"] for m in msgs] == [f"key-{i}" for i in range(100)]
    assert [m["payload"] for m in msgs] == [f"value-{i}" for i in range(100)]
    for m in msgs:
        assert headers_of(m) == [("h1", "v1"), ("h2", ""), ("h1", "dup")]
        assert m["tstype"] == "create"
        assert before - 1000 <= m["ts"] <= after + 1000


def test_timestamps_from_another_client_preserved(bootstrap: str) -> None:
    topic = unique_topic("kcat-ts")
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(10):
        p.produce(topic, value=b"v%d" % i, partition=0, timestamp=BASE_TS + 1000 * i)
    assert p.flush(30) == 0
    msgs = consume_json(bootstrap, topic, 10)
    assert [(m["ts"], m["tstype"]) for m in msgs] == [
        (BASE_TS + 1000 * i, "create") for i in range(10)
    ]


def test_log_append_time_topic(bootstrap: str) -> None:
    topic = unique_topic("kcat-lat")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = NewTopic(topic, 1, 1, config={"message.timestamp.type": "LogAppendTime"})
    admin.create_topics([new], request_timeout=15)[topic].result(timeout=30)
    before = int(time.time() * 1000)
    produce_lines(bootstrap, topic, [f"v{i}" for i in range(5)], "-X", "acks=all")
    after = int(time.time() * 1000)
    for m in consume_json(bootstrap, topic, 5):
        assert m["tstype"] == "logappend", m
        assert before - 1000 <= m["ts"] <= after + 1000, m


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compression_codecs(bootstrap: str, codec: str) -> None:
    topic = unique_topic(f"kcat-{codec}")
    lines = [f"{codec}-{i}-" * 20 for i in range(500)]
    produce_lines(bootstrap, topic, lines, "-X", f"compression.codec={codec}", "-X", "linger.ms=50")
    msgs = consume_json(bootstrap, topic, len(lines))
    assert [m["payload"] for m in msgs] == lines


def test_ten_thousand_small_messages(bootstrap: str) -> None:
    topic = unique_topic("kcat-10k")
    lines = [f"m{i}" for i in range(10_000)]
    produce_lines(bootstrap, topic, lines, "-X", "acks=all")
    msgs = consume_json(bootstrap, topic, len(lines))
    assert [m["payload"] for m in msgs] == lines
    assert [m["offset"] for m in msgs] == list(range(len(lines)))


def test_idempotent_producer(bootstrap: str) -> None:
    """librdkafka 2.0.2's idempotent producer (InitProducerId + sequenced batches)."""
    topic = unique_topic("kcat-idem")
    lines = [f"i{i}" for i in range(2000)]
    produce_lines(
        bootstrap, topic, lines, "-X", "enable.idempotence=true", "-X", "linger.ms=5",
        "-X", "batch.num.messages=100",
    )  # fmt: skip
    msgs = consume_json(bootstrap, topic, len(lines))
    assert [m["payload"] for m in msgs] == lines


def test_one_mib_messages(bootstrap: str, tmp_path: Path) -> None:
    topic = unique_topic("kcat-1mib")
    files = []
    for i in range(4):
        f = tmp_path / f"msg{i}"
        f.write_bytes(bytes([ord("a") + i]) * MIB)  # whole file = one message
        files.append(str(f))
    kcat(
        bootstrap, "-P", "-t", topic, "-p", "0", "-X", "acks=all",
        "-X", f"message.max.bytes={3 * MIB}", *files,
    )  # fmt: skip
    proc = kcat(
        bootstrap, "-C", "-q", "-e", "-t", topic, "-p", "0", "-o", "beginning", "-c", "4",
        "-f", "%o %S %s\n",
    )  # fmt: skip
    lines = proc.stdout.splitlines()
    assert len(lines) == 4
    for i, line in enumerate(lines):
        offset, size, payload = line.split(b" ", 2)
        assert (int(offset), int(size)) == (i, MIB)
        assert payload == bytes([ord("a") + i]) * MIB


# ----------------------------------------------------------------------------- offsets
def test_seek_beginning_end_relative_absolute(bootstrap: str) -> None:
    topic = unique_topic("kcat-seek")
    produce_lines(bootstrap, topic, [f"v{i}" for i in range(10)], "-X", "acks=all")

    assert consume_all_json(bootstrap, topic, offset="end") == []
    assert [m["payload"] for m in consume_all_json(bootstrap, topic, "beginning")] == [
        f"v{i}" for i in range(10)
    ]
    assert [m["offset"] for m in consume_all_json(bootstrap, topic, "-3")] == [7, 8, 9]
    from_five = consume_json(bootstrap, topic, 5, offset="5")
    assert [m["payload"] for m in from_five] == [f"v{i}" for i in range(5, 10)]
    two = consume_json(bootstrap, topic, 2, "-c", "2", offset="5")
    assert [m["payload"] for m in two] == ["v5", "v6"]


def test_offsets_for_times(bootstrap: str) -> None:
    topic = unique_topic("kcat-times")
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "batch.num.messages": 1})
    for i in range(20):
        p.produce(topic, value=b"v%d" % i, partition=0, timestamp=BASE_TS + 1000 * i)
        p.flush(30)  # one batch per record: exact answers at record granularity
    assert p.flush(30) == 0

    def query(ts: int) -> int:
        out = kcat(bootstrap, "-Q", "-t", f"{topic}:0:{ts}").stdout.decode()
        # kcat prints e.g. "<topic> [0] offset 7"
        (line,) = [ln for ln in out.splitlines() if f"{topic} [0]" in ln]
        return int(line.rsplit("offset", 1)[1].split()[0])

    assert query(BASE_TS - 5000) == 0
    assert query(BASE_TS + 7000) == 7
    assert query(BASE_TS + 7500) == 8
    assert query(BASE_TS + 999_000) == -1

    msgs = consume_all_json(bootstrap, topic, offset=f"s@{BASE_TS + 15000}")
    assert [m["offset"] for m in msgs] == [15, 16, 17, 18, 19]
