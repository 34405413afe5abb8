"""Leader: won a majority of votes in its epoch; the only node that accepts proposals.

Rules
- On election it persists (epoch, leader=self), appends a LeaderChange control entry in the
  new epoch, and sends BeginQuorumEpoch to every other voter. Every request timeout it
  re-sends it to voters that have neither answered nor fetched, and to voters that have
  not fetched within the fetch timeout: a voter stuck in a higher epoch (it campaigned
  and lost while cut off) answers FENCED_LEADER_EPOCH with that epoch, and the leader
  moves up to it, so the quorum re-forms instead of leaving that voter out forever.
- Answers Fetch from voters and observers (followers pull; the leader never pushes):
  * fetch_offset below the log start, or last_fetched_epoch older than anything left in
    the log -> ``snapshot_id`` of the latest snapshot (the follower uses FetchSnapshot);
  * (last_fetched_epoch, fetch_offset) not on the leader's log -> ``diverging_epoch`` =
    the largest epoch <= last_fetched_epoch and that epoch's end offset;
  * otherwise the follower's log matches up to fetch_offset: record it as the follower's
    end offset, return entries from there. With nothing to return and the follower already
    knowing the high watermark (the request carries the follower's, as KIP-1166 added to
    Fetch) the request is parked until new entries arrive, the high watermark moves, or
    ``max_wait_ms`` passes.
- High watermark = the largest offset that a majority of voters (the leader counting its
  own *persisted* end offset) have, but only once that includes an entry of the current
  epoch (offset > the LeaderChange entry's offset). It never decreases.
- Check quorum: if fewer than a majority (itself included) fetched within 1.5 fetch
  timeouts, the leader resigns (a leader cut off by a partition steps down by itself).
- Refuses votes in its epoch and pre-votes in any epoch.

Transitions
- ``resign()`` or check-quorum expiry         -> Resigned(epoch)
- higher epoch seen                           -> Follower / Unattached of that epoch
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from controller.raft import errors
from controller.raft.messages import (
    BeginQuorumEpochResponse,
    FetchRequest,
    FetchSnapshotRequest,
)

if TYPE_CHECKING:
    from controller.raft.core import RaftCore

ROLE = "leader"


@dataclass(slots=True)
class ReplicaProgress:
    end_offset: int = -1
    last_fetch_ms: int = -1
    last_caught_up_ms: int = -1


@dataclass(slots=True)
class LeaderState:
    epoch: int
    leader_id: int  # itself
    voted_for: int
    epoch_start_offset: int
    check_quorum_deadline: int
    voters: dict[int, ReplicaProgress] = field(default_factory=dict)
    observers: dict[int, ReplicaProgress] = field(default_factory=dict)
    fetched_voters: set[int] = field(default_factory=set)
    begin_unacked: set[int] = field(default_factory=set)
    begin_outstanding: dict[int, int] = field(default_factory=dict)
    begin_resend_at: int = 0
    parked: dict[int, tuple[FetchRequest, int]] = field(default_factory=dict)

    role = ROLE


def start(core: RaftCore, st: LeaderState) -> None:
    st.voters = {v: ReplicaProgress() for v in core.config.voters}
    st.begin_unacked = set(core.other_voters())
    _send_begin(core, st)


def check_quorum_window(core: RaftCore) -> int:
    return core.config.fetch_timeout_ms * 3 // 2


def on_tick(core: RaftCore, st: LeaderState) -> None:
    now = core.now
    if now >= st.check_quorum_deadline:
        if core.config.majority > 1:
            core.resign()
            return
        st.check_quorum_deadline = now + check_quorum_window(core)
    for replica, (req, expires) in list(st.parked.items()):
        if now >= expires:
            del st.parked[replica]
            _answer_fetch(core, st, req)
    if now >= st.begin_resend_at:
        _send_begin(core, st)


def _send_begin(core: RaftCore, st: LeaderState) -> None:
    now = core.now
    st.begin_resend_at = now + core.config.request_timeout_ms
    silent = {v for v, p in st.voters.items() if v != core.node_id
              and now - p.last_fetch_ms >= core.config.fetch_timeout_ms}
    targets = st.begin_unacked | silent
    # a new request supersedes the unanswered one to the same voter
    st.begin_outstanding = {c: v for c, v in st.begin_outstanding.items() if v not in targets}
    for voter in sorted(targets):
        st.begin_outstanding[core.send_begin_quorum_epoch(voter, st.epoch)] = voter


def on_begin_quorum_epoch_response(core: RaftCore, st: LeaderState,
                                   m: BeginQuorumEpochResponse) -> None:
    voter = st.begin_outstanding.pop(m.correlation_id, None)
    if voter is not None and m.error_code == errors.NONE and m.leader_epoch == st.epoch:
        st.begin_unacked.discard(voter)


def _note_fetch(core: RaftCore, st: LeaderState, replica_id: int) -> ReplicaProgress:
    if replica_id in st.voters:
        st.begin_unacked.discard(replica_id)
        if replica_id != core.node_id:
            st.fetched_voters.add(replica_id)
        if len(st.fetched_voters) + 1 >= core.config.majority:
            st.fetched_voters.clear()
            st.check_quorum_deadline = core.now + check_quorum_window(core)
        progress = st.voters[replica_id]
    else:
        progress = st.observers.setdefault(replica_id, ReplicaProgress())
    progress.last_fetch_ms = core.now
    return progress


def on_fetch_request(core: RaftCore, st: LeaderState, m: FetchRequest) -> None:
    progress = _note_fetch(core, st, m.replica_id)
    st.parked.pop(m.replica_id, None)
    log = core.log
    if m.fetch_offset < log.start_offset:
        core.respond_fetch(m, snapshot_id=log.snapshot_id)
        return
    if m.last_fetched_epoch >= 0 or m.fetch_offset > 0:
        found = log.end_offset_for_epoch(m.last_fetched_epoch)
        if found is None:
            if log.snapshot_id is None:
                core.respond_fetch(m, error=errors.INVALID_REQUEST)
            else:
                core.respond_fetch(m, snapshot_id=log.snapshot_id)
            return
        if found.epoch != m.last_fetched_epoch or found.offset < m.fetch_offset:
            core.respond_fetch(m, diverging=found)
            return
    # the follower's log matches ours up to fetch_offset
    if m.fetch_offset > progress.end_offset:
        progress.end_offset = m.fetch_offset
    if m.fetch_offset >= log.end_offset:
        progress.last_caught_up_ms = core.now
    maybe_update_high_watermark(core, st)
    if (m.fetch_offset >= log.end_offset and m.max_wait_ms > 0
            and m.high_watermark >= core.high_watermark):
        st.parked[m.replica_id] = (m, core.now + m.max_wait_ms)
        return
    _answer_fetch(core, st, m)


def _answer_fetch(core: RaftCore, st: LeaderState, m: FetchRequest) -> None:
    records = core.log.read(m.fetch_offset, m.partition_max_bytes)
    core.respond_fetch(m, records=records)


def complete_parked(core: RaftCore, st: LeaderState) -> None:
    """New entries or a new high watermark: answer every parked Fetch now."""
    parked, st.parked = st.parked, {}
    for req, _ in parked.values():
        _answer_fetch(core, st, req)


def on_fetch_snapshot_request(core: RaftCore, st: LeaderState, m: FetchSnapshotRequest) -> None:
    _note_fetch(core, st, m.replica_id)
    snapshot = core.latest_snapshot
    if snapshot is None or snapshot.snapshot_id != m.snapshot_id:
        core.respond_fetch_snapshot(m, error=errors.SNAPSHOT_NOT_FOUND)
        return
    size = len(snapshot.data)
    if m.position < 0 or m.position > size:
        core.respond_fetch_snapshot(m, error=errors.POSITION_OUT_OF_RANGE, size=size)
        return
    chunk = min(m.max_bytes, core.config.snapshot_chunk_bytes)
    core.respond_fetch_snapshot(
        m, size=size, data=snapshot.data[m.position : m.position + max(1, chunk)]
    )


def maybe_update_high_watermark(core: RaftCore, st: LeaderState) -> None:
    ends = sorted(
        (core.persisted_end_offset if v == core.node_id else p.end_offset
         for v, p in st.voters.items()),
        reverse=True,
    )
    candidate = ends[core.config.majority - 1]
    if candidate > st.epoch_start_offset and candidate > core.high_watermark:
        core.update_high_watermark(candidate)
        complete_parked(core, st)
