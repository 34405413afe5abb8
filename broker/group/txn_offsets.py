"""Transactional offset commits (KIP-98 TxnOffsetCommit, KIP-447 require_stable). Pure.

A TxnOffsetCommit writes ordinary OffsetCommit records to the group's
``__consumer_offsets`` partition, but inside a transactional batch of the producer
(producer id and epoch in the batch header, the transactional bit set). Those offsets are
*pending*: OffsetFetch does not return them (and answers UNSTABLE_OFFSET_COMMIT for their
partitions when the fetch sets ``require_stable``) until the transaction coordinator's
marker reaches that partition: COMMIT makes them the committed offsets, ABORT drops
them. Replay at load does the same from the log: records of transactional batches wait
for their producer's marker (``load_txn_offset_record`` / ``load_txn_marker``).

Pending offsets are keyed ``producer_id -> group_id -> (topic, partition)``.
"""

from __future__ import annotations

from collections.abc import Sequence

from kio.schema.errors import ErrorCode

from broker.group.base import CoordinatorBase
from broker.group.events import STORE_OFFSET_ERRORS, OffsetCommit, TopicPartition
from broker.group.group import ClassicGroup, CommittedOffset
from broker.group.log_format import (
    OffsetKey,
    OffsetValue,
    decode_key,
    decode_offset_value,
    encode_offset_key,
    encode_offset_value,
)
from broker.group.state import GroupState

E = ErrorCode
Pending = dict[int, dict[str, dict[TopicPartition, CommittedOffset]]]


class TxnOffsetsMixin(CoordinatorBase):
    @property
    def pending_txn_offsets(self) -> Pending:
        pending = self.__dict__.get("_pending_txn_offsets")
        if pending is None:
            pending = self.__dict__["_pending_txn_offsets"] = {}
        return pending

    def commit_txn_offsets(
        self,
        now_ms: int,
        *,
        group_id: str,
        producer_id: int,
        producer_epoch: int,
        generation_id: int,
        member_id: str,
        group_instance_id: str | None,
        offsets: Sequence[OffsetCommit],
    ) -> dict[TopicPartition, ErrorCode]:
        """TxnOffsetCommit (Kafka's handleTxnCommitOffsets): v3 member fields are checked
        when given; the offsets stay pending until the transaction's marker."""
        def all_(err: ErrorCode) -> dict[TopicPartition, ErrorCode]:
            return {(o.topic, o.partition): err for o in offsets}

        error = self._validate(group_id, allow_empty=False)
        if error is not None:
            return all_(error)
        group = self.groups.get(group_id)
        created = group is None
        if group is None:
            group = self.groups[group_id] = ClassicGroup(group_id, now_ms)
        if group.is_(GroupState.DEAD):
            return all_(E.coordinator_not_available)
        if generation_id >= 0 or member_id or group_instance_id is not None:
            if group.is_static_member_fenced(member_id, group_instance_id):
                return all_(E.fenced_instance_id)
            if member_id and not group.has(member_id):
                return all_(E.unknown_member_id)
            if generation_id >= 0 and generation_id != group.generation_id:
                return all_(E.illegal_generation)
        result: dict[TopicPartition, ErrorCode] = {}
        accepted: dict[TopicPartition, CommittedOffset] = {}
        records = []
        for o in offsets:
            tp = (o.topic, o.partition)
            metadata = o.metadata or ""
            if len(metadata.encode()) > self.config.offset_metadata_max_bytes:
                result[tp] = E.offset_metadata_too_large
                continue
            accepted[tp] = CommittedOffset(o.offset, o.leader_epoch, metadata, now_ms, None)
            records.append((encode_offset_key(OffsetKey(group_id, o.topic, o.partition)),
                            encode_offset_value(OffsetValue(o.offset, o.leader_epoch,
                                                            metadata, now_ms, None))))
        if records:
            try:
                error = self.store.append_txn(  # type: ignore[attr-defined]
                    self.partition_for(group_id), records, producer_id, producer_epoch)
            except Exception:  # the port must not take the coordinator down
                error = E.unknown_server_error
            if error != E.none:
                mapped = STORE_OFFSET_ERRORS.get(error, error)
                result.update(dict.fromkeys(accepted, mapped))
                if created:
                    self._forget_if_unused(group)
                return result
            pending = self.pending_txn_offsets.setdefault(producer_id, {})
            pending.setdefault(group_id, {}).update(accepted)
            result.update(dict.fromkeys(accepted, E.none))
        return result

    def has_pending_txn_offset(self, group_id: str, tp: TopicPartition) -> bool:
        """Whether an open transaction holds an offset for ``tp`` of the group (OffsetFetch
        with ``require_stable`` answers UNSTABLE_OFFSET_COMMIT then)."""
        return any(tp in groups.get(group_id, {}) for groups in self.pending_txn_offsets.values())

    def complete_txn_offsets(self, producer_id: int, commit: bool,
                             partition: int | None = None) -> int:
        """The producer's marker reached ``__consumer_offsets`` partition ``partition``
        (None: every partition): its pending offsets of groups there become committed
        (COMMIT) or are dropped (ABORT). Returns how many offsets were settled."""
        groups = self.pending_txn_offsets.get(producer_id)
        if not groups:
            return 0
        settled = 0
        for group_id in list(groups):
            if partition is not None and self.partition_for(group_id) != partition:
                continue
            offsets = groups.pop(group_id)
            settled += len(offsets)
            if commit:
                group = self.groups.get(group_id)
                if group is None:
                    group = self.groups[group_id] = ClassicGroup(group_id, 0)
                group.offsets.update(offsets)
        if not groups:
            del self.pending_txn_offsets[producer_id]
        return settled

    # ---- replay ---------------------------------------------------------------------------
    def load_txn_offset_record(self, producer_id: int, key: bytes | None,
                               value: bytes | None, now_ms: int) -> None:
        """A record of a transactional batch, in log order: pending until its marker."""
        if key is None or value is None:
            return
        decoded = decode_key(key)
        if not isinstance(decoded, OffsetKey):
            return
        v = decode_offset_value(value)
        pending = self.pending_txn_offsets.setdefault(producer_id, {})
        pending.setdefault(decoded.group_id, {})[(decoded.topic, decoded.partition)] = \
            CommittedOffset(v.offset, v.leader_epoch, v.metadata, v.commit_timestamp,
                            v.expire_timestamp)

    def load_txn_marker(self, producer_id: int, commit: bool, partition: int) -> None:
        """A COMMIT/ABORT marker of ``producer_id`` found in ``partition`` at replay."""
        self.complete_txn_offsets(producer_id, commit, partition)
