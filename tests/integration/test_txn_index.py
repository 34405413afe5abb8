"""Aborted-transaction indexes on a real broker (issue 10, partition side).

Two confluent-kafka transactional producers run overlapping transactions, some
committed and some aborted, on a topic with small segments. Then, each time:

- every ``<base>.txnindex`` file holds Kafka's 34-byte entries exactly as a model over
  the ``.log`` files says (an entry per ABORT marker in the segment holding it; LSO =
  first offset of the oldest transaction still open of another producer, else the
  marker + 1), and segments without an aborted marker have none;
- read_committed consumers (confluent-kafka and kafka-python) starting at several
  offsets get exactly the committed records from there on.

Situations: segment rolls, kill -9 with the active segment's index lost and a closed
one damaged, DeleteRecords and retention.ms deleting segments (their index files go
too), compaction (the cleaned segment's index keeps the entries of its sources; markers
whose transactions were cleaned away go after delete.retention.ms); and a
WriteTxnMarkers of a stale coordinator epoch refused TRANSACTION_COORDINATOR_FENCED with
nothing appended.
"""

from __future__ import annotations

import random
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourceType,
)
from kio.schema.describe_producers.v0 import request as dp
from kio.schema.errors import ErrorCode as E
from kio.schema.write_txn_markers.v1 import request as wtm

from net.wire import WireClient
from protocol.records import (
    CONTROL_ABORT,
    control_batch_type,
    decode_batch_records,
    iter_batches,
)
from storage.txn_index import AbortedTxn, decode_entries, encode_entries
from tests.integration.test_txn_protocol import add_partitions, end, init, produce_txn
from tests.support.broker import BrokerProcess
from tests.support.fixtures import unique_topic
from tests.support.polling import read_until_quiet, wait_for
from tests.support.stable_offsets import stable_and_end_offsets

pytestmark = pytest.mark.timeout(240)
BROKER_OVERRIDES = {"log.retention.check.interval.ms": "200",
                    "log.cleaner.backoff.ms": "200"}
DEADLINE_S = 30.0
SEGMENT_BYTES = 1500


# ---------------------------------------------------------------------- helpers


def wire_to(bootstrap: str) -> WireClient:
    host, _, port = bootstrap.rpartition(":")
    return WireClient(host, int(port), timeout=20.0)


def create_topic(bootstrap: str, topic: str, config: dict[str, str]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for fut in admin.create_topics([NewTopic(topic, 1, 1, config=config)]).values():
        fut.result(DEADLINE_S)


def alter_topic(bootstrap: str, topic: str, name: str, value: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
        ConfigEntry(name, value, incremental_operation=AlterConfigOpType.SET)])
    for fut in admin.incremental_alter_configs([resource]).values():
        fut.result(DEADLINE_S)


#: (last stable offset, log end offset) of partition 0
offsets = stable_and_end_offsets


class Transactions:
    """Two transactional producers whose transactions overlap: A begins, B begins, then
    each ends (commit or abort, seeded); values are unique and remembered."""

    def __init__(self, bootstrap: str, topic: str, seed: int, keys: int = 0) -> None:
        self.bootstrap, self.topic = bootstrap, topic
        self.rng = random.Random(seed)
        self.seed = seed
        self.keys = keys
        self.producers = []
        for name in ("a", "b"):
            p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0,
                          "transactional.id": f"{topic}-{name}"})
            p.init_transactions(DEADLINE_S)
            self.producers.append(p)
        self.committed: set[bytes] = set()
        self.aborted: set[bytes] = set()
        self.n = 0

    def _produce(self, p: Producer, count: int) -> list[bytes]:
        values = []
        for _ in range(count):
            self.n += 1
            value = f"{self.seed}-{self.n:05d}-".encode() + b"x" * 80
            key = f"k{self.rng.randrange(self.keys)}".encode() if self.keys else None
            p.produce(self.topic, value, key=key)
            values.append(value)
        assert p.flush(DEADLINE_S) == 0  # on the log before the other producer's turn
        return values

    def run(self, rounds: int, *, last_aborts: bool = True) -> None:
        a, b = self.producers
        for i in range(rounds):
            a.begin_transaction()
            va = self._produce(a, self.rng.randint(1, 3))
            b.begin_transaction()
            vb = self._produce(b, self.rng.randint(1, 3))
            va += self._produce(a, 1)
            last = i == rounds - 1
            for p, values in ((a, va), (b, vb)):
                commit = self.rng.random() < 0.5 and not (last and last_aborts)
                if commit:
                    p.commit_transaction(DEADLINE_S)
                    self.committed.update(values)
                else:
                    p.abort_transaction(DEADLINE_S)
                    self.aborted.update(values)
        # EndTxn may answer before the markers are written (as Kafka's): wait for them
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            lso, end_offset = offsets(self.bootstrap, self.topic)
            if lso == end_offset:
                return
            time.sleep(0.05)
        raise AssertionError(f"markers not written: LSO {lso}, log end {end_offset}")


def on_disk(directory: Path) -> list[tuple[int, bytes]]:
    """(offset, value) of every data record in the partition's .log files (the oracle
    the consumers' reads are checked against)."""
    out: list[tuple[int, bytes]] = []
    for log in sorted(directory.glob("*.log")):
        data = log.read_bytes()
        for pos, h in iter_batches(data):
            if not h.is_control:
                out += [(r.offset, r.value) for r in decode_batch_records(data, pos)]
    return out


def settle(directory: Path) -> None:
    """Wait until the cleaner leaves the partition's files alone for a second."""
    deadline = time.monotonic() + DEADLINE_S
    last = on_disk(directory), txn_files(directory)
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = on_disk(directory), txn_files(directory)
        if now != last:
            last, quiet_since = now, time.monotonic()
        elif time.monotonic() - quiet_since >= 1.0:
            return
    raise AssertionError("the cleaner kept rewriting the partition")


def confluent_committed(bootstrap: str, topic: str, start: int, expect: int) -> list[bytes]:
    """read_committed from ``start``: polls until ``expect`` records came, then half a
    second more (anything extra is a failure the caller sees)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"c-{uuid.uuid4().hex}",
                  "enable.auto.commit": False, "isolation.level": "read_committed",
                  "fetch.wait.max.ms": 50, "fetch.max.bytes": 2048,
                  "message.max.bytes": 2048,
                  "max.partition.fetch.bytes": 700})

    def poll() -> list[bytes]:
        msg = c.poll(0.1)
        return [msg.value()] if msg is not None and msg.error() is None else []

    try:
        c.assign([TopicPartition(topic, 0, start)])
        return read_until_quiet(poll, expect, DEADLINE_S)
    finally:
        c.close()


def kafka_python_committed(bootstrap: str, topic: str, start: int,
                           expect: int) -> list[bytes]:
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTP

    c = KafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed",
                      enable_auto_commit=False, max_partition_fetch_bytes=700,
                      fetch_max_wait_ms=50)
    try:
        tp = KTP(topic, 0)
        c.assign([tp])
        c.seek(tp, start)
        return read_until_quiet(lambda: [r.value for records in c.poll(timeout_ms=100).values()
                                         for r in records], expect, DEADLINE_S)
    finally:
        c.close()


def partition_dir(broker: BrokerProcess, topic: str) -> Path:
    return broker.data_dir / f"{topic}-0"


def txn_files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.glob("*.txnindex"))}


def model_txn_files(directory: Path) -> dict[str, bytes]:
    """The .txnindex files Kafka's rules give for the .log files (read from offset 0)."""
    first_of: dict[int, int] = {}
    files: dict[str, list[AbortedTxn]] = {}
    for log in sorted(directory.glob("*.log")):
        data = log.read_bytes()
        for pos, h in iter_batches(data):
            if not h.is_transactional:
                continue
            if not h.is_control:
                first_of.setdefault(h.producer_id, h.base_offset)
                continue
            start = first_of.pop(h.producer_id, None)
            if start is not None and control_batch_type(data, pos) == CONTROL_ABORT:
                lso = min(first_of.values(), default=h.base_offset + 1)
                files.setdefault(log.stem + ".txnindex", []).append(
                    AbortedTxn(h.producer_id, start, h.base_offset, lso))
    return {name: encode_entries(entries) for name, entries in files.items()}


def transactions_topic(broker: BrokerProcess, prefix: str, seed: int, rounds: int,
                       config: dict[str, str] | None = None,
                       keys: int = 0) -> tuple[str, Transactions, Path]:
    """A new 1-partition topic of ``SEGMENT_BYTES`` segments (and ``config``) holding
    ``rounds`` of two producers' overlapping transactions (``Transactions``, ``keys``
    distinct keys, none if 0); (topic, its Transactions, the partition's directory)."""
    topic = unique_topic(prefix)
    create_topic(broker.bootstrap, topic, {"segment.bytes": str(SEGMENT_BYTES),
                                           **(config or {})})
    txns = Transactions(broker.bootstrap, topic, seed=seed, keys=keys)
    txns.run(rounds)
    return topic, txns, partition_dir(broker, topic)


def check_reads(bootstrap: str, topic: str, directory: Path, committed: set[bytes], *,
                kafka_python: bool = False) -> None:
    """read_committed from several offsets == the committed records on disk from there.

    On a compacted topic the cleaner may rewrite segments meanwhile: when the files
    changed during the reads, they are checked again against the new contents."""
    for _attempt in range(5):
        view = on_disk(directory)
        lso, end_offset = offsets(bootstrap, topic)
        assert lso == end_offset
        step = max(1, len(view) // 4)
        positions = sorted({view[0][0], *(view[k][0] for k in range(0, len(view), step)),
                            view[-1][0]})
        reads = []
        for start in positions:
            want = [v for o, v in view if o >= start and v in committed]
            reads.append((start, want, confluent_committed(bootstrap, topic, start,
                                                           len(want))))
        if kafka_python:
            start = positions[len(positions) // 2]
            want = [v for o, v in view if o >= start and v in committed]
            reads.append((start, want, kafka_python_committed(bootstrap, topic, start,
                                                              len(want))))
        if on_disk(directory) == view:
            break
    for start, want, got in reads:
        assert got == want, start


# ---------------------------------------------------------------------- tests


def test_indexes_across_rolls_and_kill_9(fresh_broker: BrokerProcess) -> None:
    broker = fresh_broker
    topic, txns, directory = transactions_topic(broker, "txi-roll", 5, 14)
    files = txn_files(directory)
    logs = sorted(directory.glob("*.log"))
    assert len(logs) > 6 and 3 <= len(files) < len(logs)
    assert files == model_txn_files(directory)
    active = logs[-1].stem + ".txnindex"
    assert active in files  # the last round aborted both transactions
    check_reads(broker.bootstrap, topic, directory, txns.committed, kafka_python=True)

    broker.kill()  # kill -9: the active segment is past the recovery point
    (directory / active).unlink()
    closed = sorted(n for n in files if n != active)[0]
    (directory / closed).write_bytes(files[closed][:-5])  # a torn file
    broker.start()
    assert txn_files(directory) == files
    check_reads(broker.bootstrap, topic, directory, txns.committed)

    # the producer state after the restart still computes the same LSOs
    txns2 = Transactions(broker.bootstrap, topic, seed=6)
    txns2.run(3)
    assert txn_files(directory) == model_txn_files(directory)
    check_reads(broker.bootstrap, topic, directory, txns.committed | txns2.committed)


def test_deleted_segments_take_their_index_along(broker: BrokerProcess) -> None:
    topic, txns, directory = transactions_topic(broker, "txi-ret", 8, 12)
    files = txn_files(directory)
    assert files == model_txn_files(directory) and len(files) >= 3
    # DeleteRecords to the base of the second segment holding an index: whole
    # segments below it go, with their .txnindex
    cut = int(sorted(files)[1][:20])
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    tp = TopicPartition(topic, 0, cut)
    assert admin.delete_records([tp])[tp].result(DEADLINE_S).low_watermark == cut
    wait_for(lambda: min(int(p.stem) for p in directory.glob("*.log")) >= cut, DEADLINE_S)
    assert txn_files(directory) == {n: b for n, b in files.items() if int(n[:20]) >= cut}
    check_reads(broker.bootstrap, topic, directory, txns.committed)
    # retention.ms: every closed segment is past it
    txns.run(2, last_aborts=True)  # the active segment gets an index of its own
    before = txn_files(directory)
    active = sorted(directory.glob("*.log"))[-1].stem
    alter_topic(broker.bootstrap, topic, "retention.ms", "1")
    wait_for(lambda: len(list(directory.glob("*.log"))) <= 1, DEADLINE_S)
    assert [p.stem for p in directory.glob("*.log")] == [active]
    assert txn_files(directory) == {n: b for n, b in before.items() if n[:20] == active}
    assert txn_files(directory)  # the active segment's index stays
    check_reads(broker.bootstrap, topic, directory, txns.committed)


def test_compaction_writes_the_cleaned_segments_index(broker: BrokerProcess) -> None:
    # written under cleanup.policy=delete, then compacted once: one cleaner pass
    topic, txns, directory = transactions_topic(
        broker, "txi-compact", 13, 12, {"min.cleanable.dirty.ratio": "0.01"}, keys=200)
    before = txn_files(directory)
    assert before == model_txn_files(directory) and len(before) >= 3
    entries = [t for b in before.values() for t in decode_entries(b)]
    # plain keyed records roll the transactional segments out of the active one
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0})
    for i in range(20):
        p.produce(topic, b"p" * 100, key=f"plain{i}".encode())
    assert p.flush(DEADLINE_S) == 0
    alter_topic(broker.bootstrap, topic, "cleanup.policy", "compact")
    wait_for(lambda: not any(v in txns.aborted for _, v in on_disk(directory)), DEADLINE_S,
             0.3)
    assert not any(v in txns.aborted for _, v in on_disk(directory))  # cleaner removed
    time.sleep(0.5)  # the pass's last index writes follow its last log swap
    # the cleaned segments' indexes: the original entries (their data was read by this
    # pass), each in the segment that now holds its marker
    bases = sorted(int(p.stem) for p in directory.glob("*.log"))
    want: dict[str, list[AbortedTxn]] = {}
    for t in entries:
        base = max(b for b in bases if b <= t.last_offset)
        want.setdefault(f"{base:020d}.txnindex", []).append(t)
    assert txn_files(directory) == {n: encode_entries(ts) for n, ts in want.items()}
    committed = txns.committed | {b"p" * 100}
    check_reads(broker.bootstrap, topic, directory, committed)
    # more aborted transactions after compaction, read across the cleaned part
    txns.run(3)
    settle(directory)
    check_reads(broker.bootstrap, topic, directory, committed | txns.committed)


def markers(directory: Path) -> tuple[int, list[tuple[int, str]]]:
    """(control batches on disk, those that no rule keeps), over the .log files: a marker
    stays while a batch of its transaction is on disk, when it is its producer's last
    batch, when it ends its file, or while it waits for its delete horizon."""
    batches = []
    for log in sorted(directory.glob("*.log")):
        data = log.read_bytes()
        heads = [h for _, h in iter_batches(data)]
        batches += [(h, log.stem, i == len(heads) - 1) for i, h in enumerate(heads)]
    last = {h.producer_id: h.base_offset for h, _, _ in batches if h.producer_id >= 0}
    with_data: set[int] = set()
    count, unkept = 0, []
    for h, name, final in batches:
        if not h.is_control:
            if h.is_transactional:
                with_data.add(h.producer_id)
            continue
        count += 1
        if not (h.producer_id in with_data or last.get(h.producer_id) == h.base_offset
                or final or h.has_delete_horizon):
            unkept.append((h.base_offset, name))
        with_data.discard(h.producer_id)
    return count, unkept


def test_compaction_removes_the_markers_of_cleaned_away_transactions(
        broker: BrokerProcess) -> None:
    # few keys: committed records supersede each other, so whole transactions go
    topic, txns, directory = transactions_topic(
        broker, "txi-markers", 21, 12, {"min.cleanable.dirty.ratio": "0.01",
                                        "delete.retention.ms": "1000"}, keys=3)
    before, _ = markers(directory)
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0})
    for i in range(20):  # keyed plain records roll the transactions out of the active one
        p.produce(topic, b"p" * 100, key=f"plain{i}".encode())
    assert p.flush(DEADLINE_S) == 0
    alter_topic(broker.bootstrap, topic, "cleanup.policy", "compact")
    # a first pass stamps the markers whose transactions are gone, one a second later
    # removes them; after every pass no marker is left that no rule keeps
    assert wait_for(lambda: markers(directory)[0] < before // 2 and not markers(directory)[1],
                    DEADLINE_S, 0.3), (before, markers(directory))
    assert not any(v in txns.aborted for _, v in on_disk(directory))
    check_reads(broker.bootstrap, topic, directory, txns.committed | {b"p" * 100},
                kafka_python=True)


def test_stale_coordinator_epoch_marker_is_fenced(broker: BrokerProcess) -> None:
    topic = unique_topic("txi-fence")
    create_topic(broker.bootstrap, topic, {})
    tid = f"fence-{uuid.uuid4().hex[:8]}"

    def producer_view(wire: WireClient, pid: int):
        r = wire.request(dp.DescribeProducersRequest(topics=(
            dp.TopicRequest(name=topic, partition_indexes=(0,)),)))
        [entry] = [a for a in r.topics[0].partitions[0].active_producers
                   if a.producer_id == pid]
        return entry

    with wire_to(broker.bootstrap) as wire:
        code, pid, epoch = init(wire, tid)
        assert code == E.none
        assert add_partitions(wire, tid, pid, epoch, {topic: [0]}) == {(topic, 0): E.none}
        assert produce_txn(wire, tid, topic, pid, epoch, 0, b"first") == E.none
        assert end(wire, tid, pid, epoch, True) == E.none  # the coordinator's marker
        wait_for(lambda: offsets(broker.bootstrap, topic)[0] >= 2, DEADLINE_S, 0.05)
        recorded = producer_view(wire, pid).coordinator_epoch
        assert recorded >= 0
        # a second transaction, then a marker from a coordinator of an older epoch
        for _ in range(100):  # the coordinator completes the first one
            if add_partitions(wire, tid, pid, epoch, {topic: [0]}) == {(topic, 0): E.none}:
                break
            time.sleep(0.05)
        assert produce_txn(wire, tid, topic, pid, epoch, 1, b"second") == E.none
        lso, leo = offsets(broker.bootstrap, topic)
        assert (lso, leo) == (2, 3)
        answer = wire.request(wtm.WriteTxnMarkersRequest(markers=(wtm.WritableTxnMarker(
            producer_id=pid, producer_epoch=epoch, transaction_result=False,
            coordinator_epoch=recorded - 1, topics=(wtm.WritableTxnMarkerTopic(
                name=topic, partition_indexes=(0,)),)),)))
        [result] = answer.markers
        assert result.topics[0].partitions[0].error_code == E.transaction_coordinator_fenced
        assert offsets(broker.bootstrap, topic) == (2, 3)  # nothing appended
        view = producer_view(wire, pid)
        assert view.current_txn_start_offset == 2 and view.coordinator_epoch == recorded
        # the current coordinator still ends it
        assert end(wire, tid, pid, epoch, True) == E.none
    wait_for(lambda: offsets(broker.bootstrap, topic)[0] >= 4, DEADLINE_S, 0.05)
    assert offsets(broker.bootstrap, topic) == (4, 4)
    assert confluent_committed(broker.bootstrap, topic, 0, 2) == [b"first", b"second"]
