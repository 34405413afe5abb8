"""Pure decisions of the ``strom`` tools: consumer lag, offset-reset plans, config pairs
and cluster health findings. No I/O: the command modules fetch, these decide."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

TopicPartition = tuple[str, int]


def parse_pairs(items: Iterable[str], what: str = "config") -> dict[str, str]:
    """``["k=v", ...]`` → dict; ValueError naming the bad item."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"bad {what} {item!r}: expected KEY=VALUE")
        out[key.strip()] = value
    return out


@dataclass(frozen=True, slots=True)
class LagRow:
    topic: str
    partition: int
    committed: int | None
    log_end: int
    lag: int | None
    member: str | None


def lag_rows(committed: Mapping[TopicPartition, int], log_end: Mapping[TopicPartition, int],
             owners: Mapping[TopicPartition, str]) -> list[LagRow]:
    """One row per partition that has a commit or an owner: lag = log end - committed
    (never negative; None without a commit), as kafka-consumer-groups.sh shows it."""
    rows = []
    for tp in sorted(set(committed) | set(owners)):
        end = log_end.get(tp, -1)
        offset = committed.get(tp)
        lag = None if offset is None or end < 0 else max(end - offset, 0)
        rows.append(LagRow(tp[0], tp[1], offset, end, lag, owners.get(tp)))
    return rows


@dataclass(frozen=True, slots=True)
class ResetRow:
    topic: str
    partition: int
    current: int | None
    new: int


def reset_plan(partitions: Sequence[TopicPartition], current: Mapping[TopicPartition, int],
               earliest: Mapping[TopicPartition, int], latest: Mapping[TopicPartition, int],
               target: Mapping[TopicPartition, int]) -> list[ResetRow]:
    """New offsets for ``partitions``: ``target`` clamped into [earliest, latest] as
    kafka-consumer-groups.sh does (a target of -1, a timestamp past the end, is latest)."""
    rows = []
    for tp in sorted(partitions):
        lo, hi = earliest[tp], latest[tp]
        want = target[tp]
        new = hi if want < 0 else min(max(want, lo), hi)
        rows.append(ResetRow(tp[0], tp[1], current.get(tp), new))
    return rows


def shifted(current: Mapping[TopicPartition, int], partitions: Sequence[TopicPartition],
            latest: Mapping[TopicPartition, int], by: int) -> dict[TopicPartition, int]:
    """Targets for ``--shift-by``: committed + by (partitions without a commit start at the
    log end, like Kafka's tool)."""
    return {tp: current.get(tp, latest[tp]) + by for tp in partitions}


@dataclass(frozen=True, slots=True)
class PartitionState:
    topic: str
    partition: int
    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


def health_findings(*, brokers: Sequence[int], unreachable: Mapping[int, str],
                    partitions: Sequence[PartitionState], quorum_leader: int | None,
                    voter_fetch_age_ms: Mapping[int, int | None], max_voter_age_ms: int,
                    fenced: Sequence[int] = ()) -> list[str]:
    """Everything wrong with the cluster, one sentence each (empty: healthy).

    ``voter_fetch_age_ms``: per quorum voter other than the leader, how long ago it last
    fetched from the leader (None: never)."""
    problems = []
    if not brokers:
        problems.append("no broker is registered")
    for node, why in sorted(unreachable.items()):
        problems.append(f"broker {node} does not answer: {why}")
    for node in sorted(fenced):
        problems.append(f"broker {node} is fenced")
    if quorum_leader is None or quorum_leader < 0:
        problems.append("the metadata quorum has no leader")
    for voter, age in sorted(voter_fetch_age_ms.items()):
        if age is None:
            problems.append(f"quorum voter {voter} has never fetched from the leader")
        elif age > max_voter_age_ms:
            problems.append(f"quorum voter {voter} last fetched {age} ms ago "
                            f"(more than {max_voter_age_ms} ms)")
    offline = [p for p in partitions if p.leader < 0]
    under = [p for p in partitions if p.leader >= 0 and len(p.isr) < len(p.replicas)]
    if offline:
        problems.append(f"{len(offline)} offline partition(s): " + _names(offline))
    if under:
        problems.append(f"{len(under)} under-replicated partition(s): " + _names(under))
    return problems


def _names(parts: Sequence[PartitionState], limit: int = 10) -> str:
    names = [f"{p.topic}-{p.partition}" for p in parts[:limit]]
    return ", ".join(names) + (f" and {len(parts) - limit} more" if len(parts) > limit else "")
