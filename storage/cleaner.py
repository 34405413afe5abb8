"""Log compaction (cleanup.policy=compact). Placeholder replaced by the real cleaner."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from storage.partition_log import PartitionLog


def compact_log(log: PartitionLog, now_ms: int) -> int:
    return 0
