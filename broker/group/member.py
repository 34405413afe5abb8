"""One member of a classic group, as the coordinator tracks it."""

from __future__ import annotations

from dataclasses import dataclass, field

#: opaque handle the shell attaches to a delayed JoinGroup/SyncGroup response
Token = int


@dataclass(slots=True, eq=False)
class Member:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_timeout_ms: int
    protocol_type: str
    #: (protocol name, metadata) in the member's order of preference
    protocols: list[tuple[str, bytes]]
    assignment: bytes = b""
    #: token of a JoinGroup waiting for the rebalance to complete
    awaiting_join: Token | None = None
    #: token of a SyncGroup waiting for the leader's assignment
    awaiting_sync: Token | None = None
    #: joined during the current rebalance and never received a JoinGroup response
    is_new: bool = False
    #: ApiVersion of the member's pending JoinGroup (KIP-814 skip_assignment needs v9)
    join_version: int = 0
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def is_static(self) -> bool:
        return self.group_instance_id is not None

    def protocol_names(self) -> set[str]:
        return {name for name, _ in self.protocols}

    def metadata_for(self, protocol: str | None) -> bytes:
        for name, meta in self.protocols:
            if name == protocol:
                return meta
        return b""

    def matches(self, protocols: list[tuple[str, bytes]]) -> bool:
        """Same protocols, same order, same metadata (Kafka's MemberMetadata.matches)."""
        return self.protocols == protocols

    def vote(self, candidates: set[str]) -> str | None:
        """The member's most preferred protocol among ``candidates``."""
        for name, _ in self.protocols:
            if name in candidates:
                return name
        return None
