"""Resigned: the leader of this epoch gave up leadership (graceful shutdown via
``RaftCore.resign()``, lost contact with a majority for 1.5 fetch timeouts, or restarted
while its durable state said it led).

Rules
- Accepts no proposals and answers Fetch with NOT_LEADER_OR_FOLLOWER.
- Sends EndQuorumEpoch(leader_id=self, epoch, preferred_candidates) to every other voter
  until each acknowledges, so the most caught-up follower starts an election at once
  instead of waiting for its fetch timeout.
- Refuses real votes in its epoch (it was that epoch's leader) but grants pre-votes.

Transitions
- election timeout                            -> Prospective(epoch)
- higher epoch seen                           -> Follower / Unattached of that epoch
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from controller.raft.messages import EndQuorumEpochResponse

if TYPE_CHECKING:
    from controller.raft.core import RaftCore

ROLE = "resigned"


@dataclass(slots=True)
class ResignedState:
    epoch: int
    leader_id: int  # itself
    voted_for: int
    election_deadline: int
    preferred: tuple[int, ...] = ()
    unacked: set[int] = field(default_factory=set)
    outstanding: dict[int, int] = field(default_factory=dict)
    resend_at: int = 0

    role = ROLE


def start(core: RaftCore, st: ResignedState) -> None:
    st.unacked = set(core.other_voters())
    _send(core, st)


def on_tick(core: RaftCore, st: ResignedState) -> None:
    if core.now >= st.election_deadline:
        core.become_prospective()
    elif st.unacked and core.now >= st.resend_at:
        _send(core, st)


def on_end_quorum_epoch_response(core: RaftCore, st: ResignedState,
                                 m: EndQuorumEpochResponse) -> None:
    voter = st.outstanding.pop(m.correlation_id, None)
    if voter is not None and m.leader_epoch == st.epoch:
        st.unacked.discard(voter)


def _send(core: RaftCore, st: ResignedState) -> None:
    st.resend_at = core.now + core.config.request_timeout_ms
    st.outstanding = {c: v for c, v in st.outstanding.items() if v not in st.unacked}
    for voter in sorted(st.unacked):
        st.outstanding[core.send_end_quorum_epoch(voter, st.epoch, st.preferred)] = voter
