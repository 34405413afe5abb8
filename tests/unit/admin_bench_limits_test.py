"""bench.limits helpers: they move the whole volume and leave nothing behind."""

from __future__ import annotations

from pathlib import Path

from bench.limits import MIB, loopback_mib_s, raw_write_mib_s


def test_raw_write_leaves_no_file(tmp_path: Path) -> None:
    assert raw_write_mib_s(tmp_path, 3 * MIB + 5, chunk_bytes=MIB, fsync=True) > 0
    assert list(tmp_path.iterdir()) == []


def test_loopback_moves_every_byte() -> None:
    assert loopback_mib_s(4 * MIB + 3, chunk_bytes=256 * 1024) > 0


def test_percentile_and_cpu_seconds() -> None:
    import os

    from bench.produce_consume import cpu_seconds, percentile

    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 99), percentile(values, 100)) == (
        50.0, 99.0, 100.0,
    )
    assert percentile([], 50) != percentile([], 50)  # NaN for no samples
    sum(range(200_000))  # spend a little CPU
    assert cpu_seconds(os.getpid()) > 0
    assert cpu_seconds(2**22 + 12345) == 0.0  # no such process
