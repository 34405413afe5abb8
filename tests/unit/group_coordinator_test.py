"""The pure group coordinator, driven without sockets: Kafka's classic protocol flows and
error codes."""

from __future__ import annotations

from group_harness import Driver, MemoryStore
from kio.schema.errors import ErrorCode as E

from broker.group.config import GroupConfig
from broker.group.coordinator import JoinResult, OffsetCommit, SyncResult
from broker.group.state import GroupState


def _stable_group(d: Driver, n: int, group: str = "g") -> list[JoinResult]:
    """n dynamic members join and sync; returns their final JoinResults (leader first)."""
    tokens = [d.join(group) for _ in range(n)]
    member_ids = [d.result(t).member_id for t in tokens]
    assert all(d.result(t).error == E.member_id_required for t in tokens)
    joins = [d.join(group, mid) for mid in member_ids]
    # with delay 0 the first join completes alone; later joins force another rebalance
    for _ in range(5):
        pending = [t for t in joins if d.result(t) is None]
        if not pending:
            break
        # earlier members learn of the rebalance and rejoin
        for t in joins:
            r = d.result(t)
            if r is not None and r.error == E.none:
                g = d.coord.groups[group]
                if g.is_(GroupState.PREPARING_REBALANCE):
                    joins[joins.index(t)] = d.join(group, r.member_id)
    results = [d.result(t) for t in joins]
    assert all(r is not None and r.error == E.none for r in results), results
    gen = results[0].generation_id
    assert all(r.generation_id == gen for r in results)
    leader = next(r for r in results if r.member_id == r.leader_id)
    syncs = {}
    for r in results:
        if r is not leader:
            syncs[r.member_id] = d.sync(group, r.member_id, gen)
    assignment = {r.member_id: f"a-{r.member_id}".encode() for r in results}
    syncs[leader.member_id] = d.sync(group, leader.member_id, gen, assignment)
    for mid, t in syncs.items():
        s = d.result(t)
        assert isinstance(s, SyncResult) and s.error == E.none
        assert s.assignment == assignment[mid]
    assert d.coord.groups[group].is_(GroupState.STABLE)
    return [leader] + [r for r in results if r is not leader]


def test_first_join_requires_member_id_then_single_member_becomes_stable() -> None:
    d = Driver()
    t = d.join("g")
    r = d.result(t)
    assert r.error == E.member_id_required and r.member_id.startswith("c-")
    t2 = d.join("g", r.member_id, protocols=[("range", b"sub")])
    r2 = d.result(t2)
    assert r2.error == E.none
    assert r2.generation_id == 1 and r2.leader_id == r.member_id
    assert r2.protocol_name == "range" and r2.protocol_type == "consumer"
    assert r2.members == ((r.member_id, None, b"sub"),)
    s = d.result(d.sync("g", r.member_id, 1, {r.member_id: b"A"}))
    assert s.error == E.none and s.assignment == b"A"
    assert d.heartbeat("g", r.member_id, 1) == E.none


def test_old_join_versions_get_member_id_without_round_trip() -> None:
    d = Driver()
    r = d.result(d.join("g", require_known=False))
    assert r.error == E.none and r.member_id and r.generation_id == 1


def test_three_members_leader_gets_all_metadata_and_others_none() -> None:
    d = Driver()
    results = _stable_group(d, 3)
    leader, *followers = results
    assert len(leader.members) == 3
    assert all(f.members == () for f in followers)
    assert len({r.member_id for r in results}) == 3


def test_new_member_triggers_rebalance_seen_through_heartbeat() -> None:
    d = Driver()
    (a,) = _stable_group(d, 1)
    t = d.join_new("g")
    assert d.result(t) is None  # waits for the existing member to rejoin
    assert d.heartbeat("g", a.member_id, a.generation_id) == E.rebalance_in_progress
    ta = d.join("g", a.member_id)
    ra, rb = d.result(ta), d.result(t)
    assert ra.error == rb.error == E.none and ra.generation_id == rb.generation_id == 2
    assert ra.leader_id == a.member_id and len(ra.members) == 2


def test_stale_generation_and_unknown_member_errors() -> None:
    d = Driver()
    (a,) = _stable_group(d, 1)
    assert d.heartbeat("g", a.member_id, a.generation_id + 7) == E.illegal_generation
    assert d.heartbeat("g", "nobody", a.generation_id) == E.unknown_member_id
    assert d.heartbeat("nope", "nobody", 1) == E.unknown_member_id
    assert d.heartbeat("", "x", 1) == E.invalid_group_id
    s = d.result(d.sync("g", a.member_id, 99))
    assert s.error == E.illegal_generation
    assert d.result(d.sync("g", "ghost", 1)).error == E.unknown_member_id
    assert d.result(d.join("g", "ghost")).error == E.unknown_member_id
    assert d.result(d.join("other", "ghost")).error == E.unknown_member_id
    assert "other" not in d.coord.groups
    errs = d.coord.commit_offsets(
        d.now,
        group_id="g",
        generation_id=99,
        member_id=a.member_id,
        group_instance_id=None,
        offsets=[OffsetCommit("t", 0, 5)],
    )
    assert errs == {("t", 0): E.illegal_generation}
    errs = d.coord.commit_offsets(
        d.now,
        group_id="g",
        generation_id=1,
        member_id="ghost",
        group_instance_id=None,
        offsets=[OffsetCommit("t", 0, 5)],
    )
    assert errs == {("t", 0): E.unknown_member_id}


def test_inconsistent_protocols_are_rejected() -> None:
    d = Driver()
    _stable_group(d, 1)
    r = d.result(d.join("g", protocols=[("roundrobin", b"")]))
    assert r.error == E.inconsistent_group_protocol
    r = d.result(d.join("g", protocol_type="connect"))
    assert r.error == E.inconsistent_group_protocol
    r = d.result(d.join("empty", protocols=[]))
    assert r.error == E.inconsistent_group_protocol
    assert "empty" not in d.coord.groups


def test_common_protocol_selected_by_votes() -> None:
    d = Driver()
    pa = [("cooperative-sticky", b"x"), ("range", b"y")]
    pb = [("range", b"y"), ("cooperative-sticky", b"x")]
    ta = d.join_new("g", protocols=pa)
    a = d.result(ta)
    tb = d.join_new("g", protocols=pb)
    d.join("g", a.member_id, protocols=pa)
    rb = d.result(tb)
    assert rb.error == E.none
    # one vote each; tie broken by the leader's preference
    assert rb.protocol_name == "cooperative-sticky"
    tc = d.join_new("g", protocols=[("range", b"z")])
    assert d.result(tc) is None
    d.join("g", a.member_id, protocols=pa)
    d.join("g", rb.member_id, protocols=pb)
    assert d.result(tc).protocol_name == "range"


def test_invalid_session_timeout() -> None:
    d = Driver()
    assert d.result(d.join("g", session_ms=10)).error == E.invalid_session_timeout
    assert d.result(d.join("g", session_ms=10**8)).error == E.invalid_session_timeout


def test_leave_group_rebalances_survivors_and_batched_errors() -> None:
    d = Driver()
    a, b = _stable_group(d, 2)
    top, per = d.coord.leave_group(
        d.now, group_id="g", members=[(b.member_id, None), ("ghost", None)]
    )
    assert top == E.none
    assert per == [(b.member_id, None, E.none), ("ghost", None, E.unknown_member_id)]
    assert d.heartbeat("g", a.member_id, a.generation_id) == E.rebalance_in_progress
    r = d.result(d.join("g", a.member_id))
    assert r.error == E.none and r.generation_id == a.generation_id + 1
    top, per = d.coord.leave_group(d.now, group_id="g", members=[(a.member_id, None)])
    assert d.coord.groups["g"].is_(GroupState.EMPTY)
    top, per = d.coord.leave_group(d.now, group_id="nope", members=[("x", None)])
    assert top == E.none and per == [("x", None, E.unknown_member_id)]


def test_session_timeout_expels_silent_member() -> None:
    d = Driver()
    a, b = _stable_group(d, 2)
    for _ in range(4):
        d.advance(4_000)
        assert d.heartbeat("g", a.member_id, a.generation_id) in (E.none, E.rebalance_in_progress)
    g = d.coord.groups["g"]
    assert not g.has(b.member_id)
    assert g.is_(GroupState.PREPARING_REBALANCE)
    r = d.result(d.join("g", a.member_id))
    assert r.error == E.none and len(r.members) == 1


def test_rebalance_timeout_removes_members_that_do_not_rejoin() -> None:
    d = Driver()
    a, b = _stable_group(d, 2)
    ta = d.join("g", a.member_id)  # leader forces a rebalance; b never rejoins
    assert d.result(ta) is None
    for _ in range(6):  # b keeps heartbeating (told to rejoin) but never rejoins
        d.advance(4_900)
        assert d.heartbeat("g", b.member_id, b.generation_id) == E.rebalance_in_progress
    assert d.result(ta) is None
    d.advance(700)  # rebalance timeout is 30 s
    r = d.result(ta)
    assert r.error == E.none and [m[0] for m in r.members] == [a.member_id]
    assert not d.coord.groups["g"].has(b.member_id)


def test_initial_rebalance_delay_collects_members() -> None:
    d = Driver(GroupConfig(initial_rebalance_delay_ms=3_000))
    t1 = d.join_new("g")
    d.advance(2_000)
    t2 = d.join_new("g")
    assert d.result(t1) is None and d.result(t2) is None
    d.advance(1_000)  # first delay over but a member was added: wait another delay
    assert d.result(t1) is None
    d.advance(3_000)
    r1, r2 = d.result(t1), d.result(t2)
    assert r1.error == r2.error == E.none and r1.generation_id == 1
    assert len(r1.members) + len(r2.members) == 2


def test_pending_member_expires_after_session_timeout() -> None:
    d = Driver()
    r = d.result(d.join("g"))
    assert r.error == E.member_id_required
    d.advance(10_001)
    assert "g" not in d.coord.groups
    assert d.result(d.join("g", r.member_id)).error == E.unknown_member_id


def test_sync_while_preparing_gets_rebalance_in_progress() -> None:
    d = Driver()
    a, b = _stable_group(d, 2)
    d.join("g", a.member_id)
    assert d.result(d.sync("g", b.member_id, b.generation_id)).error == E.rebalance_in_progress


def test_follower_sync_waits_for_leader_and_new_join_cancels_it() -> None:
    d = Driver()
    ta = d.join_new("g")
    a = d.result(ta)
    tb = d.join_new("g")
    d.join("g", a.member_id)
    b = d.result(tb)
    ts = d.sync("g", b.member_id, b.generation_id)
    assert d.result(ts) is None
    d.join_new("g")  # third member: pending syncs are told to rejoin
    assert d.result(ts).error == E.rebalance_in_progress


def test_static_member_restart_gets_assignment_back_without_rebalance() -> None:
    d = Driver()
    ta = d.join("g", instance_id="i-a")  # static members skip MEMBER_ID_REQUIRED
    a = d.result(ta)
    assert a.error == E.none
    tb = d.join("g", instance_id="i-b")
    assert d.result(tb) is None
    d.join("g", a.member_id, instance_id="i-a")
    b = d.result(tb)
    gen = b.generation_id
    d.sync("g", b.member_id, gen, instance_id="i-b")
    d.sync("g", a.member_id, gen, {a.member_id: b"A", b.member_id: b"B"}, instance_id="i-a")
    # b restarts: new process, no member id, same instance id
    tb2 = d.join("g", instance_id="i-b")
    b2 = d.result(tb2)
    assert b2.error == E.none and b2.member_id != b.member_id
    assert b2.generation_id == gen  # no rebalance
    assert d.coord.groups["g"].is_(GroupState.STABLE)
    s = d.result(d.sync("g", b2.member_id, gen, instance_id="i-b"))
    assert s.error == E.none and s.assignment == b"B"
    # the old incarnation is fenced
    assert d.heartbeat("g", b.member_id, gen, instance_id="i-b") == E.fenced_instance_id
    errs = d.coord.commit_offsets(
        d.now,
        group_id="g",
        generation_id=gen,
        member_id=b.member_id,
        group_instance_id="i-b",
        offsets=[OffsetCommit("t", 0, 1)],
    )
    assert errs == {("t", 0): E.fenced_instance_id}
    assert d.heartbeat("g", a.member_id, gen, instance_id="i-a") == E.none


def test_static_leader_restart_v9_skips_assignment() -> None:
    d = Driver()
    a = d.result(d.join("g", instance_id="i-a", version=9))
    d.sync("g", a.member_id, a.generation_id, {a.member_id: b"A"}, instance_id="i-a")
    a2 = d.result(d.join("g", instance_id="i-a", version=9))
    assert a2.error == E.none and a2.skip_assignment and a2.leader_id == a2.member_id
    a3 = d.result(d.join("g", instance_id="i-a", version=5))
    assert not a3.skip_assignment and a3.leader_id == a2.member_id != a3.member_id


def test_static_member_leave_by_instance_id() -> None:
    d = Driver()
    assert d.result(d.join("g", instance_id="i-a")).error == E.none
    top, per = d.coord.leave_group(d.now, group_id="g", members=[("", "i-a")])
    assert per == [("", "i-a", E.none)]
    assert not d.coord.groups["g"].members


def test_commit_and_fetch_offsets_with_metadata_and_leader_epoch() -> None:
    d = Driver()
    (a,) = _stable_group(d, 1)
    errs = d.coord.commit_offsets(
        d.now,
        group_id="g",
        generation_id=a.generation_id,
        member_id=a.member_id,
        group_instance_id=None,
        offsets=[OffsetCommit("t", 0, 42, 3, "meta"), OffsetCommit("t", 1, 7, -1, None)],
    )
    assert errs == {("t", 0): E.none, ("t", 1): E.none}
    err, got = d.coord.fetch_offsets("g", [("t", 0), ("t", 1), ("t", 2)])
    assert err == E.none
    assert (got[("t", 0)].offset, got[("t", 0)].leader_epoch, got[("t", 0)].metadata) == (
        42,
        3,
        "meta",
    )
    assert got[("t", 1)].metadata == "" and got[("t", 2)] is None
    err, everything = d.coord.fetch_offsets("g", None)
    assert set(everything) == {("t", 0), ("t", 1)}
    assert d.coord.fetch_offsets("unknown", [("t", 0)]) == (E.none, {("t", 0): None})


def test_simple_commit_without_group_management() -> None:
    d = Driver()
    errs = d.coord.commit_offsets(
        d.now,
        group_id="simple",
        generation_id=-1,
        member_id="",
        group_instance_id=None,
        offsets=[OffsetCommit("t", 0, 10)],
    )
    assert errs == {("t", 0): E.none}
    assert d.coord.fetch_offsets("simple", [("t", 0)])[1][("t", 0)].offset == 10
    # a generation >= 0 for an unknown group is a stale member
    errs = d.coord.commit_offsets(
        d.now,
        group_id="nope",
        generation_id=3,
        member_id="m",
        group_instance_id=None,
        offsets=[OffsetCommit("t", 0, 10)],
    )
    assert errs == {("t", 0): E.illegal_generation}
    # simple commits into an active group are refused
    (a,) = _stable_group(d, 1, "busy")
    errs = d.coord.commit_offsets(
        d.now,
        group_id="busy",
        generation_id=-1,
        member_id="",
        group_instance_id=None,
        offsets=[OffsetCommit("t", 0, 10)],
    )
    assert errs == {("t", 0): E.unknown_member_id}


def test_commit_rejections_metadata_too_large_and_rebalance() -> None:
    d = Driver(GroupConfig(initial_rebalance_delay_ms=0, offset_metadata_max_bytes=10))
    a, b = _stable_group(d, 2)
    errs = d.coord.commit_offsets(
        d.now,
        group_id="g",
        generation_id=a.generation_id,
        member_id=a.member_id,
        group_instance_id=None,
        offsets=[OffsetCommit("t", 0, 1, -1, "x" * 11), OffsetCommit("t", 1, 1)],
    )
    assert errs == {("t", 0): E.offset_metadata_too_large, ("t", 1): E.none}
    # PreparingRebalance: commits from the current generation still succeed
    d.join("g", a.member_id)
    errs = d.coord.commit_offsets(
        d.now,
        group_id="g",
        generation_id=b.generation_id,
        member_id=b.member_id,
        group_instance_id=None,
        offsets=[OffsetCommit("t", 2, 1)],
    )
    assert errs == {("t", 2): E.none}
    tb = d.join("g", b.member_id)
    nb = d.result(tb)
    errs = d.coord.commit_offsets(
        d.now,
        group_id="g",
        generation_id=nb.generation_id,
        member_id=b.member_id,
        group_instance_id=None,
        offsets=[OffsetCommit("t", 2, 1)],
    )
    assert errs == {("t", 2): E.rebalance_in_progress}  # CompletingRebalance


def test_storage_failure_maps_to_kafka_errors() -> None:
    d = Driver()
    (a,) = _stable_group(d, 1)
    d.store.fail_with = E.not_leader_or_follower
    errs = d.coord.commit_offsets(
        d.now,
        group_id="g",
        generation_id=a.generation_id,
        member_id=a.member_id,
        group_instance_id=None,
        offsets=[OffsetCommit("t", 0, 1)],
    )
    assert errs == {("t", 0): E.not_coordinator}
    assert d.coord.fetch_offsets("g", [("t", 0)])[1][("t", 0)] is None
    d.store.fail_with = E.unknown_topic_or_partition
    ta = d.join("g", a.member_id)
    ra = d.result(ta)
    s = d.result(d.sync("g", a.member_id, ra.generation_id, {a.member_id: b"x"}))
    assert s.error == E.coordinator_not_available
    assert d.coord.groups["g"].is_(GroupState.PREPARING_REBALANCE)


def test_delete_groups_and_offset_delete() -> None:
    d = Driver()
    (a,) = _stable_group(d, 1)
    d.coord.commit_offsets(
        d.now,
        group_id="g",
        generation_id=a.generation_id,
        member_id=a.member_id,
        group_instance_id=None,
        offsets=[OffsetCommit("t", 0, 1), OffsetCommit("u", 0, 1)],
    )
    assert d.coord.delete_groups(d.now, ["g", "missing"]) == {
        "g": E.non_empty_group,
        "missing": E.group_id_not_found,
    }
    # subscription metadata b"m" is not a ConsumerProtocolSubscription: "subscribed" to all
    top, per = d.coord.delete_offsets(d.now, group_id="g", partitions=[("u", 0)])
    assert (top, per) == (E.none, {("u", 0): E.group_subscribed_to_topic})
    d.coord.leave_group(d.now, group_id="g", members=[(a.member_id, None)])
    top, per = d.coord.delete_offsets(d.now, group_id="g", partitions=[("u", 0)])
    assert (top, per) == (E.none, {("u", 0): E.none})
    assert d.coord.delete_offsets(d.now, group_id="zz", partitions=[])[0] == E.group_id_not_found
    assert d.coord.delete_groups(d.now, ["g"]) == {"g": E.none}
    assert "g" not in d.coord.groups
    assert d.coord.fetch_offsets("g", [("t", 0)])[1] == {("t", 0): None}


def test_describe_and_list_groups() -> None:
    d = Driver()
    (a,) = _stable_group(d, 1)
    err, summary = d.coord.describe_group("g")
    assert err == E.none and summary.state is GroupState.STABLE
    assert summary.protocol_name == "range" and summary.members[0].assignment == b"a-" + (
        a.member_id.encode()
    )
    assert d.coord.describe_group("nope") == (E.none, None)
    d.coord.commit_offsets(
        d.now,
        group_id="s",
        generation_id=-1,
        member_id="",
        group_instance_id=None,
        offsets=[OffsetCommit("t", 0, 1)],
    )
    err, groups = d.coord.list_groups()
    assert {(g.group_id, g.protocol_type, g.state) for g in groups} == {
        ("g", "consumer", GroupState.STABLE),
        ("s", "", GroupState.EMPTY),
    }
    _, only_empty = d.coord.list_groups([GroupState.EMPTY])
    assert [g.group_id for g in only_empty] == ["s"]


def test_offsets_expire_only_after_group_is_empty_for_retention() -> None:
    cfg = GroupConfig(
        initial_rebalance_delay_ms=0,
        offsets_retention_minutes=1,
        offsets_retention_check_interval_ms=1_000,
    )
    d = Driver(cfg)
    (a,) = _stable_group(d, 1)
    d.coord.commit_offsets(
        d.now,
        group_id="g",
        generation_id=a.generation_id,
        member_id=a.member_id,
        group_instance_id=None,
        offsets=[OffsetCommit("t", 0, 1)],
    )
    for _ in range(20):  # 100 s with a live member: nothing expires
        d.advance(5_000)
        d.heartbeat("g", a.member_id, a.generation_id)
    assert ("t", 0) in d.coord.groups["g"].offsets
    d.coord.leave_group(d.now, group_id="g", members=[(a.member_id, None)])
    d.advance(59_000)
    assert ("t", 0) in d.coord.groups["g"].offsets
    d.advance(2_000)
    assert "g" not in d.coord.groups  # expired, then the empty group became Dead
    # simple consumer offsets expire from their commit time
    d.coord.commit_offsets(
        d.now,
        group_id="s",
        generation_id=-1,
        member_id="",
        group_instance_id=None,
        offsets=[OffsetCommit("t", 0, 1)],
    )
    d.advance(61_000)
    assert "s" not in d.coord.groups


def test_replay_restores_groups_offsets_and_members() -> None:
    store = MemoryStore()
    d = Driver(store=store)
    a, b = _stable_group(d, 2)
    d.coord.commit_offsets(
        d.now,
        group_id="g",
        generation_id=a.generation_id,
        member_id=a.member_id,
        group_instance_id=None,
        offsets=[OffsetCommit("t", 3, 99, 2, "m")],
    )
    d.coord.commit_offsets(
        d.now,
        group_id="s",
        generation_id=-1,
        member_id="",
        group_instance_id=None,
        offsets=[OffsetCommit("t", 0, 5)],
    )
    d.coord.commit_offsets(
        d.now,
        group_id="gone",
        generation_id=-1,
        member_id="",
        group_instance_id=None,
        offsets=[OffsetCommit("t", 0, 5)],
    )
    d.coord.delete_groups(d.now, ["gone"])
    d2 = Driver(store=store)  # a "restarted broker" on the same log
    d2.coord.groups.clear()
    store.replay_into(d2.coord, 0)
    g = d2.coord.groups["g"]
    assert g.is_(GroupState.STABLE) and g.generation_id == a.generation_id
    assert set(g.members) == {a.member_id, b.member_id} and g.leader_id == a.member_id
    assert g.members[b.member_id].assignment == b"a-" + b.member_id.encode()
    assert g.offsets[("t", 3)].offset == 99 and g.offsets[("t", 3)].leader_epoch == 2
    assert d2.coord.groups["s"].offsets[("t", 0)].offset == 5
    assert "gone" not in d2.coord.groups
    # members keep heartbeating with their generation after the restart
    assert d2.heartbeat("g", b.member_id, b.generation_id) == E.none


def test_inactive_coordinator_answers_coordinator_not_available() -> None:
    d = Driver()
    d.coord.active = False
    assert d.result(d.join("g")).error == E.coordinator_not_available
    assert d.heartbeat("g", "m", 1) == E.coordinator_not_available
    d.coord.active = True
    d.coord.loading = True
    assert d.heartbeat("g", "m", 1) == E.none
    assert d.result(d.sync("g", "m", 1)).error == E.rebalance_in_progress


def test_shutdown_answers_every_waiting_request() -> None:
    d = Driver()
    (a,) = _stable_group(d, 1)
    t = d.join_new("g")
    d.coord.shutdown()
    d.collect()
    assert d.result(t).error == E.not_coordinator


def test_deleted_topic_offsets_are_removed() -> None:
    d = Driver()
    for topic in ("gone", "kept"):
        d.coord.commit_offsets(
            d.now,
            group_id="s",
            generation_id=-1,
            member_id="",
            group_instance_id=None,
            offsets=[OffsetCommit(topic, 0, 1), OffsetCommit(topic, 1, 2)],
        )
    assert d.coord.delete_topic_offsets(d.now, "gone") == 2
    assert set(d.coord.groups["s"].offsets) == {("kept", 0), ("kept", 1)}
    tombstones = [v for _, v in d.store.log[d.coord.partition_for("s")] if v is None]
    assert len(tombstones) == 2


def test_group_max_size() -> None:
    d = Driver(GroupConfig(initial_rebalance_delay_ms=0, max_size=2))
    a, b = _stable_group(d, 2)
    assert d.result(d.join("g")).error == E.group_max_size_reached
    # existing members may still rejoin
    assert d.result(d.join("g", a.member_id)) is None
    assert d.result(d.join("g", b.member_id)).error == E.none


def test_members_that_never_sync_are_removed_after_the_rebalance_timeout() -> None:
    d = Driver()
    ta = d.join_new("g")
    a = d.result(ta)
    tb = d.join_new("g")
    d.join("g", a.member_id)
    b = d.result(tb)
    # the leader keeps heartbeating but never sends SyncGroup; b waits for it
    ts = d.sync("g", b.member_id, b.generation_id)
    for _ in range(7):
        d.advance(4_500)
        if d.result(ts) is None:
            assert d.heartbeat("g", a.member_id, b.generation_id) == E.none
    assert d.result(ts).error == E.rebalance_in_progress  # 30 s rebalance timeout passed
    g = d.coord.groups["g"]
    assert not g.has(a.member_id) and g.has(b.member_id)
    assert g.is_(GroupState.PREPARING_REBALANCE)


def test_stable_consumer_group_expires_only_offsets_of_unsubscribed_topics() -> None:
    import struct

    sub = struct.pack(">hih1si", 0, 1, 1, b"a", -1)  # ConsumerProtocolSubscription ["a"]
    cfg = GroupConfig(
        initial_rebalance_delay_ms=0,
        offsets_retention_minutes=1,
        offsets_retention_check_interval_ms=1_000,
    )
    d = Driver(cfg)
    r = d.result(d.join_new("g", protocols=[("range", sub)]))
    d.sync("g", r.member_id, r.generation_id, {r.member_id: b""})
    d.coord.commit_offsets(
        d.now,
        group_id="g",
        generation_id=r.generation_id,
        member_id=r.member_id,
        group_instance_id=None,
        offsets=[OffsetCommit("a", 0, 1), OffsetCommit("b", 0, 1)],
    )
    for _ in range(14):  # 70 s, heartbeating
        d.advance(5_000)
        assert d.heartbeat("g", r.member_id, r.generation_id) == E.none
    assert set(d.coord.groups["g"].offsets) == {("a", 0)}
    assert d.coord.groups["g"].subscribed_topics == {"a"}


def test_groups_of_partitions_led_elsewhere_answer_not_coordinator() -> None:
    d = Driver()
    (a,) = _stable_group(d, 1)
    d.store.foreign.add(d.coord.partition_for("g"))
    assert d.heartbeat("g", a.member_id, a.generation_id) == E.not_coordinator
    assert d.result(d.join("g", a.member_id)).error == E.not_coordinator
    assert d.coord.fetch_offsets("g", None)[0] == E.not_coordinator
    assert d.coord.list_groups() == (E.none, [])


def test_unload_and_reload_a_partition() -> None:
    store = MemoryStore()
    d = Driver(store=store)
    a, b = _stable_group(d, 2)
    t = d.join_new("g")  # waiting for the others to rejoin
    p = d.coord.partition_for("g")
    assert d.coord.unload_partition(p) == 1
    d.collect()
    assert d.result(t).error == E.not_coordinator
    assert "g" not in d.coord.groups
    # leadership comes back: replay that partition only
    for key, value in store.log[p]:
        d.coord.load_record(key, value, d.now)
    d.coord.complete_partition_load(p, d.now)
    g = d.coord.groups["g"]
    assert set(g.members) == {a.member_id, b.member_id} and g.is_(GroupState.STABLE)
    assert d.heartbeat("g", a.member_id, a.generation_id) == E.none
