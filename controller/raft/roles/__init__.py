"""One module per KRaft role. Each module states, at its top, the rules of that role and
the transitions it allows; ``controller.raft.core`` does the bookkeeping shared by all
roles (epochs, votes, persistence, outbound messages)."""
