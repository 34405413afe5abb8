"""Unattached: the node knows an epoch but no leader for it.

Rules
- Holds ``epoch`` and ``voted_for`` (the candidate it voted for in this epoch, or -1).
- Grants a real vote in its epoch to a candidate whose log is at least as up to date as its
  own, if it has not voted for someone else in this epoch; the vote is persisted before
  the response is sent, and granting resets the election timer.
- Grants pre-votes (it has no leader to protect).
- A voter that hears nothing for a randomized election timeout
  (``[election_timeout, 2 * election_timeout)``) starts a pre-vote.
- An observer (not in the voter set) never campaigns: it asks a random voter for the log
  (a Fetch) every request timeout, and the answer tells it who leads.

Transitions
- election timeout (voter)                    -> Prospective(epoch)
- learns the leader of epoch >= its epoch     -> Follower
- sees a higher epoch without a leader        -> Unattached(higher epoch)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from controller.raft.core import RaftCore

ROLE = "unattached"


@dataclass(slots=True)
class UnattachedState:
    epoch: int
    voted_for: int
    election_deadline: int
    probe_at: int = 0  # observers: next time to ask a voter who leads

    role = ROLE
    leader_id = -1


def on_tick(core: RaftCore, st: UnattachedState) -> None:
    if core.config.is_voter:
        if core.now >= st.election_deadline:
            core.become_prospective()
    elif core.now >= st.probe_at:
        st.probe_at = core.now + core.config.request_timeout_ms
        core.send_probe_fetch()


def grant_vote(core: RaftCore, st: UnattachedState, candidate_id: int) -> None:
    st.voted_for = candidate_id
    st.election_deadline = core.random_election_deadline()
