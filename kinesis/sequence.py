"""Sequence numbers: decimal strings that name a (shard, offset) pair.

Layout of the integer: ``49 * 10**40 + shard * 10**20 + offset`` (42 digits, starting
``49`` like Kinesis' own), so numbers increase with the offset within a shard, and a
number used on another shard is recognised as foreign. ``offset < 10**20`` and
``shard < 10**20``.
"""

from __future__ import annotations

import re

_BASE = 49 * 10**40
_SCALE = 10**20
_DECIMAL = re.compile(r"0|[1-9]\d{0,128}")


class BadSequenceNumber(ValueError):
    """Not a sequence number this facade issued; the message says why."""


def encode(shard: int, offset: int) -> str:
    if not (0 <= shard < _SCALE and 0 <= offset < _SCALE):
        raise ValueError(f"shard {shard} / offset {offset} out of range")
    return str(_BASE + shard * _SCALE + offset)


def decode(text: str) -> tuple[int, int]:
    """``(shard, offset)``; BadSequenceNumber when ``text`` is not a decimal string of
    this layout."""
    if not _DECIMAL.fullmatch(text):
        raise BadSequenceNumber(f"{text!r} is not a decimal sequence number")
    value = int(text) - _BASE
    if not 0 <= value < _SCALE * _SCALE:
        raise BadSequenceNumber(f"{text} was not issued by this stream")
    return value // _SCALE, value % _SCALE
