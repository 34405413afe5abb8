"""Candidate: the node won a pre-vote, bumped its epoch, voted for itself (durably) and
asks every voter for a real vote.

Rules
- ``epoch`` is new; ``voted_for`` is itself; it persists that before any VoteRequest
  leaves. Refuses every other candidate's vote in its epoch.
- Counts grants only from responses to its own requests in its own epoch.
- Re-sends its VoteRequest to voters that have not answered after a request timeout.

Transitions
- a majority granted (itself included)        -> Leader(epoch)
- election timeout (randomized)               -> Prospective(epoch) (split vote or loss)
- learns the leader of its epoch / a higher
  epoch                                       -> Follower / Unattached
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from controller.raft import errors
from controller.raft.messages import VoteResponse

if TYPE_CHECKING:
    from controller.raft.core import RaftCore

ROLE = "candidate"


@dataclass(slots=True)
class CandidateState:
    epoch: int
    voted_for: int  # always the node itself
    election_deadline: int
    resend_at: int = 0
    outstanding: dict[int, int] = field(default_factory=dict)  # correlation id -> voter
    granted: set[int] = field(default_factory=set)
    rejected: set[int] = field(default_factory=set)

    role = ROLE
    leader_id = -1


def start(core: RaftCore, st: CandidateState) -> None:
    st.granted.add(core.node_id)
    _send_votes(core, st)
    _decide(core, st)


def on_vote_response(core: RaftCore, st: CandidateState, m: VoteResponse) -> None:
    if st.outstanding.pop(m.correlation_id, None) is None or m.leader_epoch != st.epoch:
        return
    if m.error_code == errors.NONE and m.vote_granted:
        st.granted.add(m.src)
    else:
        st.rejected.add(m.src)
    _decide(core, st)


def on_tick(core: RaftCore, st: CandidateState) -> None:
    if core.now >= st.election_deadline:
        core.become_prospective()
    elif core.now >= st.resend_at:
        _send_votes(core, st)


def _send_votes(core: RaftCore, st: CandidateState) -> None:
    st.resend_at = core.now + core.config.request_timeout_ms
    for voter in core.other_voters():
        if voter not in st.granted and voter not in st.rejected:
            st.outstanding[core.send_vote_request(voter, st.epoch, pre_vote=False)] = voter


def _decide(core: RaftCore, st: CandidateState) -> None:
    if len(st.granted) >= core.config.majority:
        core.become_leader()
