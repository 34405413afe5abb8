"""Per-shard write limits (``strom.kinesis.shard.write.records.per.second`` and
``strom.kinesis.shard.write.bytes.per.second``; 0 = not enforced, the default).

Kinesis limits each shard's writes to 1,000 records and 1 MiB (data plus partition keys)
per second and refuses what is over with ProvisionedThroughputExceededException. Strom
serves far more by default; these limits exist to reproduce Kinesis' behaviour for
clients that must handle throttling (backoff, retries of failed PutRecords entries).

Each shard has a token bucket per limit, refilled continuously at the limit's rate and
holding at most one second's worth (Kinesis' burst); a record is admitted when both
buckets hold enough for it, and then takes from both. Pure: the caller passes the clock
(seconds, monotonic). Buckets live in the leader's memory (a new leader starts full).
"""

from __future__ import annotations

from collections.abc import Hashable


class ShardWriteLimits:
    """Admission of records to shards under per-shard records/s and bytes/s limits."""

    def __init__(self, records_per_s: int = 0, bytes_per_s: int = 0) -> None:
        if records_per_s < 0 or bytes_per_s < 0:
            raise ValueError("shard write limits must be >= 0 (0 = not enforced)")
        self.records_per_s = records_per_s
        self.bytes_per_s = bytes_per_s
        #: shard key -> [record tokens, byte tokens, time of the last refill]
        self._buckets: dict[Hashable, list[float]] = {}

    @property
    def enforced(self) -> bool:
        return bool(self.records_per_s or self.bytes_per_s)

    def admit(self, shard: Hashable, size: int, now_s: float) -> bool:
        """Whether one record of ``size`` bytes may be written to ``shard`` now (it is
        then counted); always True when no limit is enforced."""
        if not self.enforced:
            return True
        bucket = self._buckets.get(shard)
        if bucket is None:
            bucket = self._buckets[shard] = [float(self.records_per_s),
                                             float(self.bytes_per_s), now_s]
        elapsed = max(now_s - bucket[2], 0.0)
        bucket[2] = now_s
        if self.records_per_s:
            bucket[0] = min(bucket[0] + elapsed * self.records_per_s, self.records_per_s)
            if bucket[0] < 1:
                return False
        if self.bytes_per_s:
            bucket[1] = min(bucket[1] + elapsed * self.bytes_per_s, self.bytes_per_s)
            # a record larger than a second's worth passes once the bucket is full
            if bucket[1] < min(size, self.bytes_per_s):
                return False
            bucket[1] -= size
        if self.records_per_s:
            bucket[0] -= 1
        return True
