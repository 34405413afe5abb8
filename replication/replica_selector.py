"""Which replica a consumer should fetch from (KIP-392), as a pure choice.

Kafka's ``replica.selector.class`` plug-in, with the one implementation Kafka ships
(``org.apache.kafka.common.replica.RackAwareReplicaSelector``). No selector (Kafka's
default): the leader always serves. With the rack-aware selector, a leader answering a
consumer Fetch (v11+, ``rack_id`` set) names a ``preferred_read_replica`` when it is not
in the client's rack and a candidate is:

- candidates are the leader and the followers in the ISR, on unfenced brokers, whose log
  end offset (as the leader last saw it) is at or past the fetch offset and whose log
  start offset is at or below it (``ReplicaManager`` filters; ``select`` only chooses);
- no rack from the client, or no candidate in its rack: the leader;
- the leader in the client's rack: the leader;
- else the most caught-up candidate of that rack: the largest log end offset, then the
  shortest time since it was last caught up, then the largest broker id (Kafka's
  ``ReplicaView.comparator``, so the answer is deterministic).

Racks compare exactly (Kafka's current selector uses ``equals``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

#: Kafka's class name, the canonical value of ``replica.selector.class``
RACK_AWARE = "org.apache.kafka.common.replica.RackAwareReplicaSelector"
_NAMES = {RACK_AWARE: RACK_AWARE, "RackAwareReplicaSelector": RACK_AWARE}


def canonical_selector(value: str | None) -> str | None:
    """``replica.selector.class`` → the canonical selector name, or None (leader only).

    Accepts Kafka's class name and its short form ``RackAwareReplicaSelector``; None or
    blank means no selector. Raises ValueError for anything else (another plug-in class
    cannot run here)."""
    if value is None or not value.strip():
        return None
    name = _NAMES.get(value.strip())
    if name is None:
        raise ValueError(f"unsupported replica selector {value!r}: only {RACK_AWARE} "
                         "(or RackAwareReplicaSelector) is available; leave it unset to "
                         "serve consumers from the leader only")
    return name


@dataclass(frozen=True, slots=True)
class ReplicaView:
    """One candidate replica as the leader sees it."""

    broker_id: int
    rack: str | None
    log_end_offset: int
    #: 0 for the leader
    time_since_caught_up_ms: int = 0


def _rank(r: ReplicaView) -> tuple[int, int, int]:
    return r.log_end_offset, -r.time_since_caught_up_ms, r.broker_id


def rack_aware_select(client_rack: str | None, leader: ReplicaView,
                      followers: Iterable[ReplicaView]) -> ReplicaView:
    """The replica a client in ``client_rack`` should read from (see the module doc).

    ``followers`` are the eligible followers only (the caller filters by ISR, fencing
    and offsets); the result is ``leader`` or one of them."""
    if not client_rack:
        return leader
    if leader.rack == client_rack:
        return leader
    same_rack = [r for r in followers if r.rack == client_rack]
    if not same_rack:
        return leader
    return max(same_rack, key=_rank)
