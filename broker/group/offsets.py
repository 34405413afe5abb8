"""Committed offsets: OffsetCommit (member and simple commits), OffsetFetch,
OffsetDelete (KIP-496), retention (KIP-211) and offsets of deleted topics. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from kio.schema.errors import ErrorCode

from broker.group.base import CoordinatorBase
from broker.group.events import (
    STORE_OFFSET_ERRORS,
    KeyValue,
    OffsetCommit,
    TopicPartition,
)
from broker.group.group import ClassicGroup, CommittedOffset
from broker.group.log_format import (
    GroupKey,
    OffsetKey,
    OffsetValue,
    encode_group_key,
    encode_offset_key,
    encode_offset_value,
)
from broker.group.state import GroupState

E = ErrorCode


class OffsetsMixin(CoordinatorBase):
    def commit_offsets(
        self,
        now_ms: int,
        *,
        group_id: str,
        generation_id: int,
        member_id: str,
        group_instance_id: str | None,
        offsets: Sequence[OffsetCommit],
    ) -> dict[TopicPartition, ErrorCode]:
        """OffsetCommit. generation -1 with an empty member id is a "simple" commit from a
        consumer that does not use group management (allowed while the group is Empty)."""
        result = self._commit_offsets(
            now_ms, group_id, generation_id, member_id, group_instance_id, offsets
        )
        self.tick(now_ms)
        return result

    def _commit_offsets(
        self,
        now_ms: int,
        group_id: str,
        generation_id: int,
        member_id: str,
        instance_id: str | None,
        offsets: Sequence[OffsetCommit],
    ) -> dict[TopicPartition, ErrorCode]:
        def all_(err: ErrorCode) -> dict[TopicPartition, ErrorCode]:
            return {(o.topic, o.partition): err for o in offsets}

        error = self._validate(group_id, allow_empty=True)
        if error is not None:
            return all_(error)
        group = self.groups.get(group_id)
        if group is None:
            if generation_id >= 0:
                return all_(E.illegal_generation)
            group = ClassicGroup(group_id, now_ms)
            self.groups[group_id] = group
            result = self._store_offsets(group, offsets, now_ms)
            self._forget_if_unused(group)
            return result
        if group.is_(GroupState.DEAD):
            return all_(E.coordinator_not_available)
        if group.is_static_member_fenced(member_id, instance_id):
            return all_(E.fenced_instance_id)
        if generation_id < 0 and group.is_(GroupState.EMPTY):
            return self._store_offsets(group, offsets, now_ms)
        if (
            group.is_(GroupState.COMPLETING_REBALANCE)
            and group.has(member_id)
            and (generation_id == group.generation_id)
        ):
            return all_(E.rebalance_in_progress)
        if not group.has(member_id):
            return all_(E.unknown_member_id)
        if generation_id != group.generation_id:
            return all_(E.illegal_generation)
        if group.is_(GroupState.EMPTY):
            return all_(E.unknown_member_id)
        # Stable or PreparingRebalance: commits of the current generation are allowed
        self._schedule_heartbeat(group, group.members[member_id], now_ms)
        return self._store_offsets(group, offsets, now_ms)

    def _store_offsets(
        self, group: ClassicGroup, offsets: Sequence[OffsetCommit], now_ms: int
    ) -> dict[TopicPartition, ErrorCode]:
        result: dict[TopicPartition, ErrorCode] = {}
        accepted: dict[TopicPartition, CommittedOffset] = {}
        records: list[KeyValue] = []
        limit = self.config.offset_metadata_max_bytes
        for o in offsets:
            tp = (o.topic, o.partition)
            metadata = o.metadata or ""
            if len(metadata.encode()) > limit:
                result[tp] = E.offset_metadata_too_large
                continue
            committed = CommittedOffset(
                o.offset, o.leader_epoch, metadata, now_ms, o.expire_timestamp
            )
            try:
                key = encode_offset_key(OffsetKey(group.group_id, o.topic, o.partition))
            except ValueError:
                result[tp] = E.invalid_topic_exception
                continue
            accepted[tp] = committed
            records.append(
                (
                    key,
                    encode_offset_value(
                        OffsetValue(o.offset, o.leader_epoch, metadata, now_ms, o.expire_timestamp)
                    ),
                )
            )
        if records:
            error = self._append(group.group_id, records)
            if error is not E.none:
                mapped = STORE_OFFSET_ERRORS.get(error, error)
                for tp in accepted:
                    result[tp] = mapped
                return result
            group.offsets.update(accepted)
            for tp in accepted:
                result[tp] = E.none
        return result

    def fetch_offsets(
        self, group_id: str, partitions: Iterable[TopicPartition] | None
    ) -> tuple[ErrorCode, dict[TopicPartition, CommittedOffset | None]]:
        """OffsetFetch, regardless of group state. ``partitions=None`` = all committed."""
        error = self._validate(group_id, allow_empty=True)
        if error is not None:
            return error, {}
        group = self.groups.get(group_id)
        offsets = group.offsets if group is not None else {}
        if partitions is None:
            return E.none, dict(offsets)
        return E.none, {tp: offsets.get(tp) for tp in partitions}

    def delete_offsets(
        self, now_ms: int, *, group_id: str, partitions: Sequence[TopicPartition]
    ) -> tuple[ErrorCode, dict[TopicPartition, ErrorCode]]:
        """OffsetDelete (KIP-496): only offsets of topics the group does not consume."""
        error = self._validate(group_id, allow_empty=True)
        if error is not None:
            return error, {}
        group = self.groups.get(group_id)
        if group is None or group.is_(GroupState.DEAD):
            return E.group_id_not_found, {}
        result: dict[TopicPartition, ErrorCode] = {}
        if group.is_(GroupState.EMPTY):
            deletable = list(partitions)
        elif group.protocol_type == "consumer":
            deletable = []
            for tp in partitions:
                if group.is_subscribed_to(tp[0]):
                    result[tp] = E.group_subscribed_to_topic
                else:
                    deletable.append(tp)
        else:
            return E.non_empty_group, {}
        present = [tp for tp in deletable if tp in group.offsets]
        if present:
            records = [
                (encode_offset_key(OffsetKey(group.group_id, t, p)), None) for t, p in present
            ]
            append_error = self._append(group.group_id, records)
            if append_error is not E.none:
                mapped = STORE_OFFSET_ERRORS.get(append_error, append_error)
                return mapped, {}
            for tp in present:
                del group.offsets[tp]
        for tp in deletable:
            result[tp] = E.none
        self.tick(now_ms)
        return E.none, result

    def expire_offsets(self, now_ms: int) -> int:
        """Kafka's cleanupGroupMetadata: drop expired offsets (empty groups: retention
        counted from when the group became empty; simple groups: from the commit; stable
        consumer groups: offsets of unsubscribed topics), then groups left empty and
        offset-less become Dead. Returns the number of offsets removed."""
        retention = self.config.offsets_retention_ms
        removed = 0
        for group in list(self.groups.values()):
            expired = self._expired_offsets(group, now_ms, retention)
            records: list[KeyValue] = [
                (encode_offset_key(OffsetKey(group.group_id, t, p)), None) for t, p in expired
            ]
            dead = (
                group.is_(GroupState.EMPTY)
                and not group.members
                and (not (group.offsets.keys() - set(expired)))
                and not group.pending_members
            )
            if dead and group.generation_id > 0:
                records.append((encode_group_key(GroupKey(group.group_id)), None))
            if records and self._append(group.group_id, records) is not E.none:
                continue
            for tp in expired:
                del group.offsets[tp]
            removed += len(expired)
            if dead:
                group.transition_to(GroupState.DEAD, now_ms)
                del self.groups[group.group_id]
        return removed

    def delete_topic_offsets(self, now_ms: int, topic: str) -> int:
        """Drop every group's offsets of a deleted topic (tombstones written); returns how
        many were removed."""
        removed = 0
        for group in list(self.groups.values()):
            gone = [tp for tp in group.offsets if tp[0] == topic]
            if not gone:
                continue
            records: list[KeyValue] = [
                (encode_offset_key(OffsetKey(group.group_id, t, p)), None) for t, p in gone
            ]
            if self._append(group.group_id, records) is not E.none:
                continue
            for tp in gone:
                del group.offsets[tp]
            removed += len(gone)
        self.tick(now_ms)
        return removed

    @staticmethod
    def _expired_offsets(group: ClassicGroup, now_ms: int, retention: int) -> list[TopicPartition]:
        def is_expired(c: CommittedOffset, base: int) -> bool:
            if c.expire_timestamp is not None:
                return now_ms >= c.expire_timestamp
            return now_ms - base >= retention

        if group.protocol_type is None or group.protocol_type == "":
            return [tp for tp, c in group.offsets.items() if is_expired(c, c.commit_timestamp)]
        if group.is_(GroupState.EMPTY):
            return [tp for tp, c in group.offsets.items() if is_expired(c, group.state_timestamp)]
        if (
            group.protocol_type == "consumer"
            and group.is_(GroupState.STABLE)
            and group.subscribed_topics is not None
        ):
            return [
                tp
                for tp, c in group.offsets.items()
                if tp[0] not in group.subscribed_topics and is_expired(c, c.commit_timestamp)
            ]
        return []
