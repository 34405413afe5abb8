"""bench.limits helpers: they move the whole volume and leave nothing behind."""

from __future__ import annotations

from pathlib import Path

from bench.limits import MIB, loopback_mib_s, raw_write_mib_s


def test_raw_write_leaves_no_file(tmp_path: Path) -> None:
    assert raw_write_mib_s(tmp_path, 3 * MIB + 5, chunk_bytes=MIB, fsync=True) > 0
    assert list(tmp_path.iterdir()) == []


def test_loopback_moves_every_byte() -> None:
    assert loopback_mib_s(4 * MIB + 3, chunk_bytes=256 * 1024) > 0
