"""A replica fetch from beyond the leader's log end (no last fetched epoch, so no
divergence answer) is OFFSET_OUT_OF_RANGE and does not count as that follower's log end
offset: it must not move the high watermark past records the follower lacks (found by
tests/e2e/test_replication_bad_input.py)."""

from __future__ import annotations

from pathlib import Path

from protocol.errors import ErrorCode
from replication.partition import Assignment
from tests.unit.replication.test_replication_replica_manager import (
    TP,
    assign,
    batch,
    fetch,
    manager,
)


async def test_a_fetch_past_the_log_end_moves_nothing(tmp_path: Path) -> None:
    rm, logs = manager(tmp_path)
    assign(rm, Assignment(1, 0, 0, (1, 2, 3), (1, 2, 3)))
    await rm.append_records([(TP, batch(b"a", b"b", b"c"))], acks=1, timeout_ms=50)
    fetch(rm, 2, 3)
    fetch(rm, 3, 1)  # replica 3 holds the high watermark at 1
    assert logs.get(*TP).high_watermark == 1  # type: ignore[union-attr]
    beyond = fetch(rm, 3, 103)
    assert beyond.error_code == ErrorCode.offset_out_of_range  # type: ignore[attr-defined]
    assert beyond.records == b""  # type: ignore[attr-defined]
    assert logs.get(*TP).high_watermark == 1  # type: ignore[union-attr]
    assert rm.partition(*TP).followers[3].log_end_offset == 1  # type: ignore[union-attr]
    fetch(rm, 3, 3)
    assert logs.get(*TP).high_watermark == 3  # type: ignore[union-attr]
    await rm.close()
    logs.shutdown()
