"""Follower: the node knows the leader of its epoch and pulls the log from it.

Rules
- Keeps one request in flight to the leader: a Fetch with ``fetch_offset`` = its log end
  offset and ``last_fetched_epoch`` = the epoch of its last entry (or of its snapshot), or,
  while downloading a snapshot, a FetchSnapshot for the next chunk. A new request goes out
  as soon as the previous response arrived (the response's entries are durable by then:
  the request is sent only after the Ready that holds them was persisted), or when the
  in-flight one is older than ``fetch_max_wait + request_timeout`` (lost).
- Only the response to the in-flight request (same correlation id) is acted on:
  * ``diverging_epoch`` set: truncate the log to min(leader's end offset for that epoch,
    own end offset for that epoch) and fetch again;
  * ``snapshot_id`` set: the leader no longer has the entries: download that snapshot
    chunk by chunk (FetchSnapshot), install it (the log restarts at its end), go on
    fetching;
  * otherwise append the entries (only if they start at the log end) and raise the high
    watermark to min(leader's high watermark, own log end); it never decreases.
- Every successful response restarts the fetch timer. The follower refuses real votes in
  its epoch (it has a leader) and refuses pre-votes while it fetched successfully from a
  leader that has not resigned within the fetch timeout.
- EndQuorumEpoch from its leader marks the leader resigned and shortens the fetch timer
  by the follower's rank in the preferred-successor list (the first one starts at once).

Transitions
- fetch timeout, voter                        -> Prospective(epoch, keeps leader_id)
- fetch timeout, observer                     -> Unattached(epoch)
- higher epoch seen                           -> Follower / Unattached of that epoch
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from controller.raft import errors
from controller.raft.messages import FetchResponse, FetchSnapshotResponse
from controller.raft.types import Snapshot, SnapshotId

if TYPE_CHECKING:
    from controller.raft.core import RaftCore

ROLE = "follower"
NEVER = -(1 << 62)


@dataclass(slots=True)
class FollowerState:
    epoch: int
    leader_id: int
    voted_for: int
    fetch_deadline: int
    last_fetch_ok_ms: int = NEVER
    leader_resigned: bool = False
    inflight: int | None = None  # correlation id of the request in flight
    inflight_expires: int = 0
    next_send_at: int = 0
    download_id: SnapshotId | None = None
    download: bytearray | None = None

    role = ROLE

    def fetched_recently(self, now: int, fetch_timeout_ms: int) -> bool:
        return not self.leader_resigned and now - self.last_fetch_ok_ms < fetch_timeout_ms


def start(core: RaftCore, st: FollowerState) -> None:
    send_next(core, st)


def on_tick(core: RaftCore, st: FollowerState) -> None:
    if core.now >= st.fetch_deadline:
        if core.config.is_voter:
            core.become_prospective()
        else:
            core.become_unattached(st.epoch, voted_for=st.voted_for)
        return
    if st.inflight is not None and core.now >= st.inflight_expires:
        st.inflight = None
    if st.inflight is None and core.now >= st.next_send_at:
        send_next(core, st)


def send_next(core: RaftCore, st: FollowerState) -> None:
    cfg = core.config
    if st.download_id is not None and st.download is not None:
        st.inflight = core.send_fetch_snapshot(st.leader_id, st.epoch, st.download_id,
                                               len(st.download))
        st.inflight_expires = core.now + cfg.request_timeout_ms
    else:
        st.inflight = core.send_fetch(st.leader_id, st.epoch)
        st.inflight_expires = core.now + cfg.fetch_max_wait_ms + cfg.request_timeout_ms


def _retry_later(core: RaftCore, st: FollowerState) -> None:
    st.inflight = None
    st.next_send_at = core.now + max(1, core.config.request_timeout_ms // 20)


def on_fetch_response(core: RaftCore, st: FollowerState, m: FetchResponse) -> None:
    if m.correlation_id != st.inflight:
        return
    st.inflight = None
    if m.error_code != errors.NONE:
        _retry_later(core, st)
        return
    st.fetch_deadline = core.now + core.config.fetch_timeout_ms
    st.last_fetch_ok_ms = core.now
    log = core.log
    if m.diverging_epoch >= 0:
        own = log.end_offset_for_epoch(m.diverging_epoch)
        target = m.diverging_end_offset if own is None else min(m.diverging_end_offset,
                                                                  own.offset)
        core.truncate_log(max(target, log.start_offset))
    elif m.snapshot_id is not None:
        st.download_id = m.snapshot_id
        st.download = bytearray()
    else:
        if m.records and m.records[0].offset == log.end_offset:
            core.append_as_follower(m.records)
        if m.high_watermark >= 0:
            core.update_high_watermark(min(m.high_watermark, log.end_offset))
    send_next(core, st)


def on_fetch_snapshot_response(core: RaftCore, st: FollowerState,
                               m: FetchSnapshotResponse) -> None:
    if m.correlation_id != st.inflight:
        return
    st.inflight = None
    if (
        m.error_code != errors.NONE
        or st.download is None
        or m.snapshot_id != st.download_id
        or m.position != len(st.download)
    ):
        st.download_id = st.download = None  # start over from a Fetch
        _retry_later(core, st)
        return
    st.fetch_deadline = core.now + core.config.fetch_timeout_ms
    st.last_fetch_ok_ms = core.now
    st.download += m.unaligned_records
    if len(st.download) >= m.size:
        snapshot = Snapshot(m.snapshot_id, bytes(st.download[: m.size]))
        st.download_id = st.download = None
        core.install_snapshot(snapshot)
    send_next(core, st)


def on_end_quorum_epoch(core: RaftCore, st: FollowerState, preferred: tuple[int, ...]) -> None:
    st.leader_resigned = True
    try:
        rank = preferred.index(core.node_id)
    except ValueError:
        rank = len(core.config.voters)
    backoff = rank * core.config.election_timeout_ms // max(1, len(core.config.voters))
    st.fetch_deadline = min(st.fetch_deadline, core.now + backoff)
