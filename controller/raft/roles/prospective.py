"""Prospective (KIP-996 pre-vote): the node suspects the leader is gone and asks the
voters whether they *would* vote for it, without bumping its epoch.

Rules
- Keeps ``epoch``, ``voted_for`` and the leader it last followed (``last_leader_id``, -1
  if none) so it can fall back to following it; it reports no leader to others.
- Sends ``VoteRequest(pre_vote=True, replica_epoch=epoch + 1)`` to every other voter and
  counts itself as granted. A pre-vote changes no durable state anywhere, so a node cut off
  by a partition cannot inflate epochs and cannot disrupt a healthy leader when it rejoins:
  voters that fetched from the leader within the fetch timeout refuse.
- Only responses to its own outstanding requests (by correlation id) are counted.
- Votes in its own epoch like Unattached when it followed no leader; otherwise refuses.
- A granted pre-vote response does not make it follow the leader the voter names (the
  voter has given up on that leader); a refusal naming a leader of its epoch does.

Transitions
- a majority granted                          -> Candidate(epoch + 1)
- a majority refused, or election timeout     -> Follower(epoch, leader_id) if it knew a
                                                 leader, else Unattached(epoch)
- learns a leader / a higher epoch            -> Follower / Unattached
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from controller.raft import errors
from controller.raft.messages import VoteResponse

if TYPE_CHECKING:
    from controller.raft.core import RaftCore

ROLE = "prospective"


@dataclass(slots=True)
class ProspectiveState:
    epoch: int
    last_leader_id: int
    voted_for: int
    election_deadline: int
    outstanding: set[int] = field(default_factory=set)
    granted: set[int] = field(default_factory=set)
    rejected: set[int] = field(default_factory=set)

    role = ROLE
    leader_id = -1


def start(core: RaftCore, st: ProspectiveState) -> None:
    st.granted.add(core.node_id)
    for voter in core.other_voters():
        st.outstanding.add(core.send_vote_request(voter, st.epoch + 1, pre_vote=True))
    _decide(core, st)


def on_vote_response(core: RaftCore, st: ProspectiveState, m: VoteResponse) -> None:
    if m.correlation_id not in st.outstanding:
        return
    st.outstanding.discard(m.correlation_id)
    if m.error_code == errors.NONE and m.vote_granted:
        st.granted.add(m.src)
    else:
        st.rejected.add(m.src)
    _decide(core, st)


def on_tick(core: RaftCore, st: ProspectiveState) -> None:
    if core.now >= st.election_deadline:
        _fall_back(core, st)


def _decide(core: RaftCore, st: ProspectiveState) -> None:
    if len(st.granted) >= core.config.majority:
        core.become_candidate()
    elif len(st.rejected) >= core.config.majority:
        _fall_back(core, st)


def _fall_back(core: RaftCore, st: ProspectiveState) -> None:
    if st.last_leader_id >= 0:
        core.become_follower(st.epoch, st.last_leader_id)
    else:
        core.become_unattached(st.epoch, voted_for=st.voted_for)
