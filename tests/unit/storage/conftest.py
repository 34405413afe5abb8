"""Helpers for storage unit tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from protocol.records import Record, build_batch
from storage.log_config import LogConfig
from storage.partition_log import PartitionLog


def batch(n: int = 1, *, ts: int = 1_000, key: bytes | None = b"k", size: int = 10,
          **kw: object) -> bytes:
    return build_batch([Record(-1, ts, key, b"v" * size) for _ in range(n)], **kw)  # type: ignore[arg-type]


@pytest.fixture
def open_log(tmp_path: Path):
    opened: list[PartitionLog] = []

    def _open(config: LogConfig | None = None, name: str = "t-0", now_ms: int = 0) -> PartitionLog:
        log = PartitionLog.open(tmp_path / name, config or LogConfig(), now_ms=now_ms)
        opened.append(log)
        return log

    yield _open
    for log in opened:
        log.close()
