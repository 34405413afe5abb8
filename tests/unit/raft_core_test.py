"""Role transitions and protocol rules of the pure Raft core, one behaviour per test."""

from __future__ import annotations

import random

import pytest
from raft_harness import Net

from controller.raft import (
    DurableState,
    Entry,
    InconsistentVoterSetError,
    NotLeaderError,
    QuorumState,
    RaftConfig,
    RaftCore,
    Ready,
    Snapshot,
    SnapshotId,
)
from controller.raft import errors as E
from controller.raft.messages import (
    BeginQuorumEpochRequest,
    EndQuorumEpochRequest,
    FetchRequest,
    FetchResponse,
    FetchSnapshotRequest,
    FetchSnapshotResponse,
    VoteRequest,
    VoteResponse,
)


def elected(n: int = 3, **config: object) -> Net:
    net = Net(range(1, n + 1), **config)
    net.advance(400)
    assert net.leader() is not None
    return net


def entries(start: int, count: int, epoch: int) -> tuple[Entry, ...]:
    return tuple(Entry(o, epoch, b"e%d" % o) for o in range(start, start + count))


def test_single_voter_elects_itself_and_commits() -> None:
    net = Net([1])
    net.advance(10)
    assert net[1].is_leader and net[1].epoch == 1
    net[1].propose([b"a"])
    net.flush()
    assert [e.payload for e in net.committed[1]][-1] == b"a"
    assert net[1].high_watermark == 2  # LeaderChange + a


def test_election_goes_prospective_candidate_leader_and_persists_the_vote_first() -> None:
    net = Net([1, 2, 3])
    # node 1 times out first (seeded): pre-vote does not bump the epoch
    first = min(net.cores, key=lambda i: net[i].next_deadline())
    net.now = net[first].next_deadline()
    net[first].tick(net.now)
    assert net[first].role == "prospective" and net[first].epoch == 0
    pre = [m for m in net.deliver() if isinstance(m, VoteRequest)]
    assert pre and all(m.pre_vote and m.replica_epoch == 1 for m in pre)
    assert all(c.epoch == 0 for c in net.cores.values())  # granting a pre-vote changes nothing
    net.deliver()  # pre-vote grants arrive: candidate in epoch 1
    assert net[first].role == "candidate" and net[first].epoch == 1
    rd = net.readies[first][-1]
    assert rd.quorum_state == QuorumState(1, -1, first)
    assert any(isinstance(m, VoteRequest) and not m.pre_vote for m in rd.messages)
    net.deliver()  # votes: each granting voter's Ready carries its vote AND the response
    for i in net.cores:
        if i == first:
            continue
        rd = next(r for r in net.readies[i] if any(
            isinstance(m, VoteResponse) and m.vote_granted and m.leader_epoch == 1
            for m in r.messages))
        assert rd.quorum_state is not None and rd.quorum_state.voted_for == first
    net.settle()
    assert net.leader() == first
    assert all(c.epoch == 1 and c.leader_id == first for c in net.cores.values())
    # the LeaderChange control entry is committed everywhere
    assert all(net.committed[i] and net.committed[i][0].control for i in net.cores)


def test_a_node_never_votes_twice_in_one_epoch() -> None:
    core = RaftCore(RaftConfig(node_id=1, voters=frozenset({1, 2, 3}), cluster_id="t"),
                    random.Random(0))

    def vote(candidate: int, epoch: int) -> VoteResponse:
        core.step(VoteRequest(candidate, 1, candidate * 10 + epoch, "t", epoch, candidate,
                              0, 0, False))
        rd = core.ready()
        core.advance(rd)
        return rd.messages[-1]

    assert vote(2, 5).vote_granted
    assert core.quorum_state() == QuorumState(5, -1, 2)
    assert not vote(3, 5).vote_granted
    assert vote(2, 5).vote_granted  # a retry from the same candidate is fine
    assert vote(3, 6).vote_granted  # a new epoch is a new vote


def test_vote_refused_to_a_candidate_with_a_shorter_or_older_log() -> None:
    durable = DurableState(QuorumState(2, -1, -1), None, entries(0, 3, 2))
    core = RaftCore(RaftConfig(node_id=1, voters=frozenset({1, 2, 3}), cluster_id="t"),
                    random.Random(0), durable)
    core.step(VoteRequest(2, 1, 1, "t", 3, 2, 2, 2, False))  # same epoch, shorter
    core.step(VoteRequest(3, 1, 2, "t", 3, 3, 1, 9, False))  # longer but older epoch
    rd = core.ready()
    assert [m.vote_granted for m in rd.messages] == [False, False]
    assert rd.quorum_state == QuorumState(3, -1, -1)  # the epoch moved, no vote was cast


def test_prevote_protects_a_healthy_leader_from_a_rejoining_node() -> None:
    net = elected()
    leader = net.leader()
    outsider = next(i for i in net.cores if i != leader)
    net.cut = {outsider}
    net.advance(600)  # the outsider's fetches time out, its pre-votes go nowhere
    assert net[outsider].role in ("prospective", "unattached", "follower")
    epoch = net[leader].epoch
    assert net[outsider].epoch == epoch  # pre-vote never bumped it
    net.cut = set()
    net.advance(300)
    assert net.leader() == leader and net[leader].epoch == epoch
    assert net[outsider].role == "follower" and net[outsider].leader_id == leader


def test_followers_refuse_prevotes_while_the_leader_is_alive() -> None:
    net = elected()
    leader = net.leader()
    a, b = (i for i in net.cores if i != leader)
    net[b].step(VoteRequest(a, b, 99, "t", net[b].epoch + 1, a,
                            net[a].log.last_epoch, net[a].log.end_offset, True), net.now)
    net.flush()
    resp = next(m for m in reversed(net.outbox) if isinstance(m, VoteResponse))
    assert not resp.vote_granted and resp.leader_id == leader


def test_leader_crash_elects_a_new_leader_in_a_higher_epoch() -> None:
    net = elected()
    old = net.leader()
    net[old].propose([b"x"])
    net.settle()
    net.cut = {old}
    net.advance(600)
    new = next(i for i, c in net.cores.items() if c.is_leader and i != old)
    assert net[new].epoch > net[old].epoch
    assert any(e.payload == b"x" for e in net.committed[new])


def test_divergent_follower_truncates_to_the_leader_epoch_end() -> None:
    # n1 and n3: epoch 1 [0..4) + epoch 3 [4..6); n2: epoch 1 [0..4) + epoch 2 [4..7)
    good = entries(0, 4, 1) + entries(4, 2, 3)
    bad = entries(0, 4, 1) + tuple(Entry(o, 2, b"stale%d" % o) for o in range(4, 7))
    durable = {1: DurableState(QuorumState(3), None, good),
               2: DurableState(QuorumState(3), None, bad),
               3: DurableState(QuorumState(3), None, good)}
    net = Net([1, 2, 3], durable=durable)
    net.advance(600)
    leader = net.leader()
    assert leader in (1, 3)
    truncations = [rd.truncate_to for rd in net.readies[2] if rd.truncate_to is not None]
    assert truncations == [4]
    assert [e.payload for e in net[2].log.slice(0, 6)] == [e.payload for e in good]
    assert net[2].log.entry(6).control  # the new leader's LeaderChange


def test_high_watermark_waits_for_an_entry_of_the_current_epoch() -> None:
    """Raft's figure 8: entries of older epochs are committed only indirectly."""
    old = entries(0, 4, 1)
    durable = {1: DurableState(QuorumState(1), None, old),
               2: DurableState(QuorumState(1), None, old[:1]),
               3: DurableState(QuorumState(1), None, old[:1])}
    net = Net([1, 2, 3], durable=durable, fetch_max_bytes=1)  # one entry per Fetch
    net.now = net[1].next_deadline()  # node 1 campaigns first (its log is the longest)
    net[1].tick(net.now)
    net.settle()
    hws = []
    for _ in range(80):
        net.advance(10)
        if net.leader() == 1:
            hws.append(net[1].high_watermark)
    assert net.leader() == 1
    assert all(hw == 0 or hw >= 5 for hw in hws)  # never 2..4 before the LeaderChange at 4
    assert hws[-1] == 5


def test_follower_far_behind_downloads_the_snapshot_in_chunks() -> None:
    net = elected(snapshot_chunk_bytes=7)
    leader = net.leader()
    lagger = next(i for i in net.cores if i != leader)
    net.cut = {lagger}
    for k in range(10):
        net[leader].propose([b"v%d" % k])
        net.settle()
    hw = net[leader].high_watermark
    sid = SnapshotId(hw, net[leader].log.entry(hw - 1).epoch)
    net[leader].snapshot_taken(Snapshot(sid, b"state-after-all-ten"))
    net.flush()
    assert net[leader].log.start_offset == hw
    net.cut = set()
    net.advance(300)
    chunks = net.sent(lagger, FetchSnapshotRequest)
    assert len(chunks) >= 3 and [c.position for c in chunks[:3]] == [0, 7, 14]
    installed = [rd for rd in net.readies[lagger] if rd.snapshot is not None]
    assert installed and installed[0].snapshot_received
    assert installed[0].snapshot == Snapshot(sid, b"state-after-all-ten")
    assert net[lagger].log.start_offset == hw and net[lagger].high_watermark >= hw
    net[leader].propose([b"after"])
    net.settle()
    assert net.committed[lagger][-1].payload == b"after"


def test_snapshot_must_not_pass_the_committed_offset() -> None:
    net = elected()
    core = net[net.leader()]
    with pytest.raises(ValueError, match="beyond the committed offset"):
        core.snapshot_taken(Snapshot(SnapshotId(core.high_watermark + 1, core.epoch), b""))


def test_graceful_resignation_hands_over_quickly() -> None:
    net = elected(5)
    old = net.leader()
    net[old].resign()
    net.flush()
    ends = net.sent(old, EndQuorumEpochRequest)
    assert {m.dst for m in ends} == set(net.cores) - {old}
    assert ends[0].preferred_candidates and old not in ends[0].preferred_candidates
    with pytest.raises(NotLeaderError):
        net[old].propose([b"x"])
    start = net.now
    while net.leader() in (None, old) and net.now - start < 1000:
        net.advance(10)
    # faster than a fetch timeout (200) plus an election timeout (100..200)
    assert net.leader() not in (None, old) and net.now - start <= 200


def test_isolated_leader_resigns_after_check_quorum_expires() -> None:
    net = elected()
    leader = net.leader()
    net.cut = {leader}
    net.advance(200)
    assert net[leader].is_leader
    net.advance(200)  # 1.5 x fetch timeout (300) without fetches from a majority
    assert net[leader].role in ("resigned", "prospective", "unattached")


def test_describe_quorum_reports_each_voter() -> None:
    net = elected()
    leader = net.leader()
    net[leader].propose([b"a", b"b"])
    net.settle()
    info = net[leader].describe_quorum()
    assert info is not None
    assert info.leader_id == leader and info.high_watermark == 3
    assert [v.replica_id for v in info.current_voters] == [1, 2, 3]
    assert all(v.log_end_offset == 3 for v in info.current_voters)
    assert all(v.last_fetch_timestamp >= 0 for v in info.current_voters)
    follower = next(i for i in net.cores if i != leader)
    assert net[follower].describe_quorum() is None


def test_observer_follows_but_never_campaigns() -> None:
    net = Net([1, 2, 3, 4], voters=[1, 2, 3])
    net.advance(1500)
    leader = net.leader()
    assert leader in (1, 2, 3)
    assert net[4].role == "follower" and net[4].leader_id == leader
    assert not net.sent(4, VoteRequest)
    net[leader].propose([b"o"])
    net.settle()
    assert net.committed[4][-1].payload == b"o"
    info = net[leader].describe_quorum()
    assert info is not None and [o.replica_id for o in info.observers] == [4]


def test_fetch_errors_name_the_leader() -> None:
    net = elected()
    leader = net.leader()
    follower = next(i for i in net.cores if i != leader)
    epoch = net[leader].epoch

    def fetch(dst: int, epoch: int, cluster: str = "t") -> FetchResponse:
        net[dst].step(FetchRequest(9, dst, 1, cluster, 9, 0, epoch, 0, -1, 0, 100, -1), net.now)
        rd = net[dst].ready()
        net[dst].advance(rd)
        return next(m for m in rd.messages if isinstance(m, FetchResponse))

    assert fetch(leader, epoch - 1).error_code == E.FENCED_LEADER_EPOCH
    assert fetch(leader, epoch + 1).error_code == E.UNKNOWN_LEADER_EPOCH
    assert fetch(leader, epoch, "other").error_code == E.INCONSISTENT_CLUSTER_ID
    resp = fetch(follower, epoch)
    assert resp.error_code == E.NOT_LEADER_OR_FOLLOWER and resp.leader_id == leader
    ok = fetch(leader, epoch)
    assert ok.error_code == E.NONE and ok.records[0].offset == 0


def test_fetch_snapshot_errors() -> None:
    net = elected()
    leader = net.leader()
    epoch = net[leader].epoch
    net[leader].step(FetchSnapshotRequest(2, leader, 1, "t", 2, 100, epoch, SnapshotId(1, 1),
                                          0), net.now)
    rd = net[leader].ready()
    net[leader].advance(rd)
    resp = next(m for m in rd.messages if isinstance(m, FetchSnapshotResponse))
    assert resp.error_code == E.SNAPSHOT_NOT_FOUND


def test_votes_outside_the_voter_set_are_refused() -> None:
    core = RaftCore(RaftConfig(node_id=1, voters=frozenset({1, 2, 3}), cluster_id="t"),
                    random.Random(0))
    core.step(VoteRequest(7, 1, 1, "t", 5, 7, 9, 99, False))
    core.step(BeginQuorumEpochRequest(7, 1, 2, "t", 7, 5))
    rd = core.ready()
    assert [m.error_code for m in rd.messages] == [E.INCONSISTENT_VOTER_SET] * 2
    assert core.epoch == 0 and rd.quorum_state is None


def test_propose_on_a_follower_names_the_leader() -> None:
    net = elected()
    leader = net.leader()
    follower = next(i for i in net.cores if i != leader)
    with pytest.raises(NotLeaderError) as info:
        net[follower].propose([b"x"])
    assert info.value.leader_id == leader


def test_restart_takes_the_epoch_from_the_log_when_the_state_file_lags() -> None:
    durable = DurableState(QuorumState(2, -1, -1), None, entries(0, 2, 4))
    core = RaftCore(RaftConfig(node_id=1, voters=frozenset({1, 2, 3}), cluster_id="t"),
                    random.Random(0), durable)
    assert core.epoch == 4 and core.role == "unattached"
    assert core.ready().quorum_state == QuorumState(4, -1, -1)


def test_restarted_leader_comes_back_resigned() -> None:
    durable = DurableState(QuorumState(3, 1, 1), None, entries(0, 2, 3))
    core = RaftCore(RaftConfig(node_id=1, voters=frozenset({1, 2, 3}), cluster_id="t"),
                    random.Random(0), durable)
    assert core.role == "resigned" and core.epoch == 3
    assert {m.dst for m in core.ready().messages if isinstance(m, EndQuorumEpochRequest)} \
        == {2, 3}


def test_ready_must_be_advanced_before_the_next_one() -> None:
    net = elected()
    core = net[net.leader()]
    core.propose([b"x"])
    core.ready()
    with pytest.raises(RuntimeError):
        core.ready()


def test_a_node_with_a_different_voter_set_refuses_to_follow_the_log() -> None:
    net = elected()
    leader = net.leader()
    assert leader is not None
    other = next(i for i in net.cores if i != leader)

    def stranger(voters: set[int]) -> tuple[RaftCore, Ready]:
        core = RaftCore(RaftConfig(node_id=4, voters=frozenset(voters), cluster_id="t"),
                        random.Random(4))
        core.step(BeginQuorumEpochRequest(leader, 4, 1, "t", leader, net[leader].epoch))
        rd = core.ready()
        core.advance(rd)
        return core, rd

    # a leader outside its voter set is refused, not followed
    core, rd = stranger({other, 4, 9})
    assert rd.messages[0].error_code == E.INCONSISTENT_VOTER_SET and core.leader_id == -1
    # a leader inside it: the first LeaderChange entry shows the quorum differs -> stop
    core, rd = stranger({leader, other, 4})
    fetch = next(m for m in rd.messages if isinstance(m, FetchRequest))
    net[leader].step(fetch, net.now)
    reply = net[leader].ready()
    net[leader].advance(reply)
    resp = next(m for m in reply.messages if isinstance(m, FetchResponse) and m.dst == 4)
    with pytest.raises(InconsistentVoterSetError, match=r"voters \[1, 2, 3\]"):
        core.step(resp)
