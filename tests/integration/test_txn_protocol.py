"""Transaction APIs over the wire (issue 10): Kafka's error codes for bad input, the
coordinator lookup, the broker-side checks a normal client never trips, and the admin
views (DescribeTransactions, ListTransactions, DescribeProducers) of an open
transaction. One broker for the module; every request bounded by the wire timeout."""

from __future__ import annotations

import datetime
import time
import uuid

import pytest
from kio.schema.add_offsets_to_txn.v3.request import AddOffsetsToTxnRequest
from kio.schema.add_partitions_to_txn.v3 import request as apt
from kio.schema.describe_producers.v0 import request as dp
from kio.schema.describe_transactions.v0.request import DescribeTransactionsRequest
from kio.schema.end_txn.v1.request import EndTxnRequest as EndTxnV1
from kio.schema.end_txn.v3.request import EndTxnRequest
from kio.schema.errors import ErrorCode as E
from kio.schema.find_coordinator.v4.request import FindCoordinatorRequest
from kio.schema.init_producer_id.v4.request import InitProducerIdRequest
from kio.schema.list_transactions.v1.request import ListTransactionsRequest
from kio.schema.produce.v9 import request as pr
from kio.schema.txn_offset_commit.v3 import request as toc

from net.wire import WireClient
from protocol.records import Record, build_batch
from tests.integration.test_txn_clients import produce_plain

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def wire(bootstrap: str):
    host, _, port = bootstrap.rpartition(":")
    with WireClient(host, int(port), timeout=20.0) as client:
        yield client


def init(wire: WireClient, tid: str, timeout_ms: int = 60_000) -> tuple[int, int, int]:
    """FindCoordinator (creates ``__transaction_state`` on first use), InitProducerId."""
    [found] = wire.request(FindCoordinatorRequest(key_type=1,
                                                  coordinator_keys=(tid,))).coordinators
    assert found.error_code == E.none, found
    r = wire.request(InitProducerIdRequest(
        transactional_id=tid, transaction_timeout=datetime.timedelta(milliseconds=timeout_ms),
        producer_id=-1, producer_epoch=-1))
    return r.error_code, r.producer_id, r.producer_epoch


def add_partitions(wire: WireClient, tid: str, pid: int, epoch: int,
                   topics: dict[str, list[int]]) -> dict[tuple[str, int], E]:
    r = wire.request(apt.AddPartitionsToTxnRequest(
        v3_and_below_transactional_id=tid, v3_and_below_producer_id=pid,
        v3_and_below_producer_epoch=epoch,
        v3_and_below_topics=tuple(apt.AddPartitionsToTxnTopic(name=t, partitions=tuple(ps))
                                  for t, ps in topics.items())))
    return {(t.name, p.partition_index): p.partition_error_code
            for t in r.results_by_topic_v3_and_below for p in t.results_by_partition}


def end(wire: WireClient, tid: str, pid: int, epoch: int, commit: bool) -> E:
    return wire.request(EndTxnRequest(transactional_id=tid, producer_id=pid,
                                      producer_epoch=epoch, committed=commit)).error_code


def produce_txn(wire: WireClient, tid: str, topic: str, pid: int, epoch: int, seq: int,
                value: bytes, partition: int = 0) -> E:
    # a current timestamp: one from 1970 is past any retention.ms, and a broker checking
    # retention often (test_txn_index's) deletes the record before it is read
    batch = build_batch([Record(timestamp=int(time.time() * 1000), key=None, value=value)],
                        producer_id=pid, producer_epoch=epoch, base_sequence=seq,
                        is_transactional=True)
    r = wire.request(pr.ProduceRequest(
        transactional_id=tid, acks=-1, timeout=datetime.timedelta(seconds=10),
        topic_data=(pr.TopicProduceData(name=topic, partition_data=(
            pr.PartitionProduceData(index=partition, records=batch),)),)))
    return r.responses[0].partition_responses[0].error_code


def ready_topic(bootstrap: str) -> str:
    topic = f"txp-{uuid.uuid4().hex[:10]}"
    produce_plain(bootstrap, topic, [b"seed"])
    return topic


def test_api_versions_advertise_transaction_version_1(wire: WireClient) -> None:
    from kio.schema.api_versions.v3.request import ApiVersionsRequest

    r = wire.request(ApiVersionsRequest(client_software_name="strom-test",
                                        client_software_version="1"))
    ranges = {int(k.api_key): (int(k.min_version), int(k.max_version)) for k in r.api_keys}
    assert {key: ranges.get(key) for key in (22, 24, 25, 26, 27, 28, 65, 66)} == {
        22: (0, 5), 24: (0, 5), 25: (0, 3), 26: (0, 3), 27: (1, 1), 28: (0, 3),
        65: (0, 0), 66: (0, 1)}
    # no transaction.version feature (KIP-890 part 2 is not served)
    assert all(f.name != "transaction.version" for f in r.supported_features)


def test_find_coordinator_for_a_transactional_id(wire: WireClient, bootstrap: str) -> None:
    r = wire.request(FindCoordinatorRequest(key_type=1, coordinator_keys=("some-txn", "")))
    ok, empty = r.coordinators
    assert ok.error_code == E.none and f"{ok.host}:{ok.port}" == bootstrap
    assert empty.error_code == E.invalid_request


def test_bad_input_gets_kafkas_error_codes(wire: WireClient, bootstrap: str) -> None:
    topic = ready_topic(bootstrap)
    tid = f"bad-{uuid.uuid4().hex[:8]}"
    assert init(wire, tid, timeout_ms=15 * 60_000 + 1)[0] == E.invalid_transaction_timeout
    assert end(wire, "never-seen", 1, 0, True) == E.invalid_producer_id_mapping
    code, pid, epoch = init(wire, tid)
    assert code == E.none and epoch == 0
    assert end(wire, tid, pid + 1, epoch, True) == E.invalid_producer_id_mapping
    assert end(wire, tid, pid, epoch + 1, True) == E.producer_fenced
    old = wire.request(EndTxnV1(transactional_id=tid, producer_id=pid,
                                producer_epoch=epoch + 1, committed=True))
    assert old.error_code == E.invalid_producer_epoch  # before KIP-588's PRODUCER_FENCED
    assert end(wire, tid, pid, epoch, True) == E.invalid_txn_state  # nothing ongoing
    got = add_partitions(wire, tid, pid, epoch, {topic: [0], "no-such-topic-x": [0]})
    assert got == {(topic, 0): E.operation_not_attempted,
                   ("no-such-topic-x", 0): E.unknown_topic_or_partition}
    assert add_partitions(wire, tid, pid, epoch, {topic: [7]}) == {
        (topic, 7): E.unknown_topic_or_partition}
    # produce to a partition outside the transaction is refused; inside, accepted
    assert produce_txn(wire, tid, topic, pid, epoch, 0, b"x") == E.invalid_txn_state
    assert add_partitions(wire, tid, pid, epoch, {topic: [0]}) == {(topic, 0): E.none}
    assert produce_txn(wire, tid, topic, pid, epoch, 0, b"x") == E.none
    # offsets of a group whose AddOffsetsToTxn never came
    r = wire.request(toc.TxnOffsetCommitRequest(
        transactional_id=tid, group_id="g-outside", producer_id=pid, producer_epoch=epoch,
        generation_id=-1, member_id="", group_instance_id=None,
        topics=(toc.TxnOffsetCommitRequestTopic(name=topic, partitions=(
            toc.TxnOffsetCommitRequestPartition(partition_index=0, committed_offset=1,
                                                committed_leader_epoch=-1,
                                                committed_metadata=""),)),)))
    assert r.topics[0].partitions[0].error_code == E.invalid_txn_state
    # a second incarnation fences this one: the old epoch is refused everywhere
    assert init(wire, tid)[0] == E.concurrent_transactions  # aborting the open txn
    assert end(wire, tid, pid, epoch, True) == E.producer_fenced
    assert produce_txn(wire, tid, topic, pid, epoch, 1, b"zombie") in (
        E.invalid_producer_epoch, E.producer_fenced)
    # the coordinator stays consistent: the next incarnation works end to end
    for _ in range(100):
        code, pid2, epoch2 = init(wire, tid)
        if code != E.concurrent_transactions:
            break
    assert code == E.none and (pid2, epoch2) == (pid, epoch + 2)
    assert add_partitions(wire, tid, pid2, epoch2, {topic: [0]}) == {(topic, 0): E.none}
    assert end(wire, tid, pid2, epoch2, False) == E.none


def test_verify_only_batch_of_kip890_part1(wire: WireClient, bootstrap: str) -> None:
    """AddPartitionsToTxn v4 as partition leaders send it: verify_only transactions say
    whether partitions are in the ongoing transaction; others are added (as v3)."""
    from kio.schema.add_partitions_to_txn.v4 import request as apt4

    topic = ready_topic(bootstrap)
    tid = f"ver-{uuid.uuid4().hex[:8]}"
    _, pid, epoch = init(wire, tid)

    def batch(verify: bool, epoch_: int, partitions: tuple[int, ...]) -> dict:
        r = wire.request(apt4.AddPartitionsToTxnRequest(transactions=(
            apt4.AddPartitionsToTxnTransaction(
                transactional_id=tid, producer_id=pid, producer_epoch=epoch_,
                verify_only=verify, topics=(apt4.AddPartitionsToTxnTopic(
                    name=topic, partitions=partitions),)),)))
        assert r.error_code == E.none
        [result] = r.results_by_transaction
        return {p.partition_index: p.partition_error_code
                for t in result.topic_results for p in t.results_by_partition}

    assert batch(True, epoch, (0,)) == {0: E.invalid_txn_state}  # nothing ongoing
    assert batch(False, epoch, (0,)) == {0: E.none}  # added on the producer's behalf
    assert batch(True, epoch, (0,)) == {0: E.none}
    assert batch(True, epoch + 1, (0,)) == {0: E.producer_fenced}
    assert end(wire, tid, pid, epoch, False) == E.none


def test_admin_views_of_an_open_transaction(wire: WireClient, bootstrap: str) -> None:
    topic = ready_topic(bootstrap)
    tid = f"adm-{uuid.uuid4().hex[:8]}"
    _, pid, epoch = init(wire, tid)
    assert add_partitions(wire, tid, pid, epoch, {topic: [0]}) == {(topic, 0): E.none}
    assert wire.request(AddOffsetsToTxnRequest(transactional_id=tid, producer_id=pid,
                                               producer_epoch=epoch,
                                               group_id="adm-group")).error_code == E.none
    assert produce_txn(wire, tid, topic, pid, epoch, 0, b"open") == E.none

    [state] = wire.request(
        DescribeTransactionsRequest(transactional_ids=(tid,))).transaction_states
    assert (state.error_code, state.transaction_state, state.producer_id) == \
        (E.none, "Ongoing", pid)
    assert state.transaction_timeout == datetime.timedelta(seconds=60)
    assert {(t.topic, tuple(t.partitions)) for t in state.topics} >= {(topic, (0,))}
    assert any(t.topic == "__consumer_offsets" for t in state.topics)
    # an unknown id: Kafka's -1 start time (kio cannot decode it, so read the bytes:
    # correlation id, header tags, throttle time, array length, then the error code)
    wire.send(DescribeTransactionsRequest(transactional_ids=("nobody",)))
    wire._pending.pop(0)
    frame = wire.recv_frame()
    assert int.from_bytes(frame[10:12], "big") == E.transactional_id_not_found

    listed = wire.request(ListTransactionsRequest(state_filters=("Ongoing", "Bogus"),
                                                  producer_id_filters=(), duration_filter=-1))
    assert listed.unknown_state_filters == ("Bogus",)
    assert (tid, pid, "Ongoing") in {(s.transactional_id, s.producer_id, s.transaction_state)
                                     for s in listed.transaction_states}

    producers = wire.request(dp.DescribeProducersRequest(topics=(
        dp.TopicRequest(name=topic, partition_indexes=(0,)),)))
    [active] = [a for a in producers.topics[0].partitions[0].active_producers
                if a.producer_id == pid]
    assert active.current_txn_start_offset == 1  # after the seed record

    assert end(wire, tid, pid, epoch, True) == E.none
    for _ in range(200):
        [state] = wire.request(
            DescribeTransactionsRequest(transactional_ids=(tid,))).transaction_states
        if state.transaction_state == "CompleteCommit":
            break
    assert state.transaction_state == "CompleteCommit" and state.topics == ()


def test_hanging_transaction_is_visible_and_can_be_aborted(wire: WireClient,
                                                            bootstrap: str) -> None:
    """A partition holding a transaction no coordinator will finish (here: a transactional
    batch of an idempotent producer id) keeps its LSO; DescribeProducers shows it and a
    WriteTxnMarkers ABORT for that producer (what ``kafka-transactions.sh abort`` sends)
    ends it, so read_committed readers move on."""
    from kio.schema.init_producer_id.v4.request import InitProducerIdRequest as Init
    from kio.schema.write_txn_markers.v1 import request as wtm

    from tests.integration.test_txn_clients import read_all

    topic = ready_topic(bootstrap)
    r = wire.request(Init(transactional_id=None, transaction_timeout=datetime.timedelta(
        milliseconds=60_000), producer_id=-1, producer_epoch=-1))
    pid, epoch = r.producer_id, r.producer_epoch
    assert produce_txn(wire, None, topic, pid, epoch, 0, b"hanging") == E.none  # type: ignore[arg-type]
    [active] = [a for a in wire.request(dp.DescribeProducersRequest(topics=(
        dp.TopicRequest(name=topic, partition_indexes=(0,)),))).topics[0].partitions[0]
        .active_producers if a.producer_id == pid]
    assert active.current_txn_start_offset == 1
    assert read_all(bootstrap, topic, "read_committed", 1) == [b"seed"]
    answer = wire.request(wtm.WriteTxnMarkersRequest(markers=(wtm.WritableTxnMarker(
        producer_id=pid, producer_epoch=epoch, transaction_result=False,
        coordinator_epoch=0, topics=(wtm.WritableTxnMarkerTopic(
            name=topic, partition_indexes=(0, 9)),)),)))
    errors = {p.partition_index: p.error_code for p in answer.markers[0].topics[0].partitions}
    assert errors == {0: E.none, 9: E.unknown_topic_or_partition}
    [after] = [a for a in wire.request(dp.DescribeProducersRequest(topics=(
        dp.TopicRequest(name=topic, partition_indexes=(0,)),))).topics[0].partitions[0]
        .active_producers if a.producer_id == pid]
    assert after.current_txn_start_offset == -1
    produce_plain(bootstrap, topic, [b"after"])
    assert read_all(bootstrap, topic, "read_committed", 2) == [b"seed", b"after"]


def test_next_transaction_pipelined_behind_end_txn(wire: WireClient, bootstrap: str) -> None:
    """EndTxn answers once PrepareCommit is written; the markers follow (as in Kafka). An
    AddPartitionsToTxn for the next transaction sent right behind it on the same
    connection (handled before the markers could be written) is answered once they are,
    NONE rather than CONCURRENT_TRANSACTIONS (which librdkafka retries after 20 ms), and
    every transaction's records are committed."""
    from tests.integration.test_txn_clients import read_all

    topic = ready_topic(bootstrap)
    tid = f"pipe-{uuid.uuid4().hex[:8]}"
    _, pid, epoch = init(wire, tid)
    adds = apt.AddPartitionsToTxnRequest(
        v3_and_below_transactional_id=tid, v3_and_below_producer_id=pid,
        v3_and_below_producer_epoch=epoch,
        v3_and_below_topics=(apt.AddPartitionsToTxnTopic(name=topic, partitions=(0,)),))
    commit = EndTxnRequest(transactional_id=tid, producer_id=pid, producer_epoch=epoch,
                           committed=True)
    assert add_partitions(wire, tid, pid, epoch, {topic: [0]}) == {(topic, 0): E.none}
    transactions = 20
    for i in range(transactions):
        assert produce_txn(wire, tid, topic, pid, epoch, i, b"%d" % i) == E.none
        wire.send(commit)
        if i + 1 < transactions:
            wire.send(adds)
        assert wire.receive().error_code == E.none
        if i + 1 < transactions:
            added = wire.receive().results_by_topic_v3_and_below[0].results_by_partition[0]
            assert added.partition_error_code == E.none, (i, added)
    want = [b"seed", *(b"%d" % i for i in range(transactions))]
    assert read_all(bootstrap, topic, "read_committed", len(want)) == want
