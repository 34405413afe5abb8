"""A classic group's generation survives the loss of its coordinator right after the
leader's SyncGroup is answered (3-node cluster, RF 3 ``__consumer_offsets``).

Contract: a SyncGroup answer means the generation's assignment record is on the in-sync
replicas of the group's ``__consumer_offsets`` partition (Kafka's storeGroup appends with
acks=all and answers in its callback). Checked as:

- two members join one generation with raw JoinGroup v9 (session and rebalance timeouts
  60 s: nobody expires during the failover);
- the two other nodes are paused (SIGSTOP, under 1 s, less than
  ``broker.session.timeout.ms``) once their in-flight replica fetches are answered, the
  leader sends its SyncGroup with a distinct assignment per member, and the coordinator
  is SIGKILLed as soon as that SyncGroup is answered: at once if it was answered while the
  others were paused (its record then exists on the coordinator alone), else right after;
- on the next coordinator (the new leader of the partition, once loaded) the follower's
  SyncGroup at that generation answers NONE with exactly the bytes the leader assigned
  it, and a Heartbeat of each member at that generation answers NONE.

Every wait is bounded; nothing sleeps as an assertion.
"""

from __future__ import annotations

import datetime
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_cluster import Cluster, wait_until
from tests.e2e.test_replication import REPLICATED, coordinator_of, full_isr, live

pytestmark = pytest.mark.timeout(240)

RETRY = {"not_coordinator", "coordinator_not_available", "coordinator_load_in_progress"}
PROTOCOL_TYPE, PROTOCOL = "sync-failover", "only"
#: members outlive the failover without heartbeating; the join waits at most this long
MEMBER_TIMEOUT_MS = 60_000
#: the followers' long-poll replica fetches (``replica.fetch.wait.max.ms``) are answered
#: before the assignment is written: a fetch parked at the leader while they are paused
#: would otherwise carry the record into their socket buffers
FETCH_WAIT_MS = 200
#: how long the two other nodes stay paused at most (REPLICATED fences after 2000 ms)
PAUSE_S = 1.0


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path, overrides={**REPLICATED,
                                     "replica.fetch.wait.max.ms": str(FETCH_WAIT_MS)})
    try:
        yield c.start()
    finally:
        c.close()


def send(c: Cluster, node: int, request: Any, timeout: float = 10) -> Any:
    from net.wire import WireClient

    with WireClient("127.0.0.1", c.client_ports[node], timeout=timeout) as client:
        return client.request(request)


def join(c: Cluster, node: int, group: str, member_id: str) -> Any:
    from kio.schema.join_group.v9.request import JoinGroupRequest, JoinGroupRequestProtocol
    from kio.static.primitive import i32Timedelta

    timeout = i32Timedelta.parse(datetime.timedelta(milliseconds=MEMBER_TIMEOUT_MS))
    return send(c, node, JoinGroupRequest(
        group_id=group, session_timeout=timeout, rebalance_timeout=timeout,
        member_id=member_id, protocol_type=PROTOCOL_TYPE,
        protocols=(JoinGroupRequestProtocol(name=PROTOCOL, metadata=member_id.encode()),)),
        timeout=MEMBER_TIMEOUT_MS / 1000 + 10)


def sync(c: Cluster, node: int, group: str, generation: int, member_id: str,
         assignments: dict[str, bytes]) -> Any:
    from kio.schema.sync_group.v5.request import SyncGroupRequest, SyncGroupRequestAssignment
    from kio.static.primitive import i32

    return send(c, node, SyncGroupRequest(
        group_id=group, generation_id=i32(generation), member_id=member_id,
        protocol_type=PROTOCOL_TYPE, protocol_name=PROTOCOL,
        assignments=tuple(SyncGroupRequestAssignment(member_id=m, assignment=a)
                          for m, a in assignments.items())), timeout=30)


def heartbeat(c: Cluster, node: int, group: str, generation: int, member_id: str) -> Any:
    from kio.schema.heartbeat.v4.request import HeartbeatRequest
    from kio.static.primitive import i32

    return send(c, node, HeartbeatRequest(
        group_id=group, generation_id=i32(generation), member_id=member_id))


def describe(c: Cluster, node: int, group: str) -> Any:
    from kio.schema.describe_groups.v5.request import DescribeGroupsRequest

    [entry] = send(c, node, DescribeGroupsRequest(
        groups=(group,), include_authorized_operations=False)).groups
    return entry


def served(c: Cluster, group: str, call: Callable[[int], Any], what: str) -> Any:
    """``call(coordinator)`` on the group's current coordinator until its answer is not
    'not (yet) the coordinator'."""
    def attempt() -> Any:
        try:
            r = call(coordinator_of(c, group))
        except OSError:  # the node just died
            return None
        return None if r.error_code.name in RETRY else r

    return wait_until(attempt, 60, what)


def join_one_generation(c: Cluster, node: int, group: str, a: str, b: str
                        ) -> tuple[Any, Any]:
    """Both members' JoinGroup answers of one generation. Their joins are in flight
    together; a member answered alone (the other arrived after that generation formed, and
    waits for it to rejoin) or at an older generation joins again."""
    with ThreadPoolExecutor(2) as pool:
        joins = {m: pool.submit(join, c, node, group, m) for m in (a, b)}
        since = {m: time.monotonic() for m in (a, b)}

        def settled() -> tuple[Any, Any] | None:
            done = {m: f.result() for m, f in joins.items() if f.done()}
            ok = {m: r for m, r in done.items() if r.error_code.name == "none"}
            if len(ok) == 2 and ok[a].generation_id == ok[b].generation_id:
                return ok[a], ok[b]
            for m, r in done.items():
                other = b if m == a else a
                behind = (r.error_code.name != "none" or other not in ok
                          or ok[other].generation_id > r.generation_id)
                if behind and time.monotonic() - since[m] > 0.5:
                    joins[m], since[m] = pool.submit(join, c, node, group, m), time.monotonic()
            return None

        return wait_until(settled, 60, "both members in one generation")


def test_follower_gets_its_assignment_from_the_next_coordinator(cluster: Cluster) -> None:
    group = "sync-failover-group"
    coordinator_of(cluster, group)  # creates __consumer_offsets
    wait_until(lambda: full_isr(cluster, "__consumer_offsets"), 60,
               "__consumer_offsets fully replicated")
    old = coordinator_of(cluster, group)

    ids = []
    for _ in range(2):  # KIP-394: the first join only gets a member id
        first = served(cluster, group, lambda n: join(cluster, n, group, ""), "a member id")
        assert first.error_code.name == "member_id_required", first
        ids.append(first.member_id)
    a, b = ids

    ra, rb = join_one_generation(cluster, old, group, a, b)
    generation = int(ra.generation_id)
    assert ra.leader == rb.leader and ra.leader in (a, b)
    leader, follower = (a, b) if ra.leader == a else (b, a)
    assert sorted(m.member_id for m in (ra if leader == a else rb).members) == sorted(ids)
    assignments = {leader: f"for-leader-{leader}".encode(),
                   follower: f"for-follower-{follower}".encode()}

    others = [n.pid for i, n in cluster.nodes.items() if i != old and n.pid is not None]
    assert len(others) == 2
    answered = threading.Event()
    answers: list[Any] = []

    def leader_sync() -> None:
        try:
            answers.append(sync(cluster, old, group, generation, leader, assignments))
        except Exception as exc:  # reported by the assertions below
            answers.append(exc)
        answered.set()

    syncer = threading.Thread(target=leader_sync, daemon=True)
    for pid in others:
        os.kill(pid, signal.SIGSTOP)
    paused = time.monotonic()
    try:
        # their fetches in flight are answered empty; no new one arrives while paused
        time.sleep(2 * FETCH_WAIT_MS / 1000)
        syncer.start()
        if answered.wait(max(0.0, PAUSE_S - (time.monotonic() - paused))):
            cluster.nodes[old].kill()
    finally:
        for pid in others:
            os.kill(pid, signal.SIGCONT)
        syncer.join(30)
    assert not syncer.is_alive(), "the leader's SyncGroup was not answered"
    if cluster.nodes[old].running:
        cluster.nodes[old].kill()
    [answer] = answers
    assert not isinstance(answer, Exception), answer
    assert (answer.error_code.name, answer.assignment) == ("none", assignments[leader]), answer

    wait_until(lambda: coordinator_of(cluster, group) != old and live(cluster) != old, 60,
               "a new coordinator")
    # SyncGroup answers a load in progress as REBALANCE_IN_PROGRESS: wait it out first
    served(cluster, group, lambda n: describe(cluster, n, group), "the group loaded")
    r = served(cluster, group, lambda n: sync(cluster, n, group, generation, follower, {}),
               "the follower's SyncGroup")
    assert (r.error_code.name, r.assignment) == ("none", assignments[follower]), r
    for member in (leader, follower):
        hb = served(cluster, group,
                    lambda n, m=member: heartbeat(cluster, n, group, generation, m),
                    f"a heartbeat of {member}")
        assert hb.error_code.name == "none", (member, hb)
