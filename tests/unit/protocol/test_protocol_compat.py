"""contains_zstd reads batch headers only, and tolerates malformed tails."""

from __future__ import annotations

from protocol.compat import contains_zstd
from protocol.records import Record, build_batch


def _batch(codec: int) -> bytes:
    return build_batch([Record(offset=0, timestamp=1, key=None, value=b"v" * 50, headers=[])],
                       compression=codec)


def test_detects_zstd_in_any_batch() -> None:
    assert contains_zstd(_batch(4))
    assert contains_zstd(_batch(0) + _batch(1) + _batch(4))
    assert not contains_zstd(_batch(0) + _batch(2) + _batch(3))


def test_malformed_or_short_input_is_not_zstd() -> None:
    assert not contains_zstd(b"")
    assert not contains_zstd(b"\xff" * 100)
    assert not contains_zstd(_batch(0)[:30])
