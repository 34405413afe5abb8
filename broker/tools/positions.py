"""Parsing of positions, durations and timestamps given on the command line (pure).

A position (``strom consume --offset``, ``strom group seek --to``) is one of:

- ``earliest`` (also ``beginning``, ``start``, ``oldest``), ``latest`` (also ``end``,
  ``newest``);
- ``N``: an absolute offset (N >= 0);
- ``@T``: the first record at or after time T, where T is epoch milliseconds or an ISO-8601
  date-time (``2026-01-31T12:00:00Z``; without a zone it is UTC);
- ``-D``: a duration ago, ``D`` as ``90s``, ``15m``, ``1h30m``, ``2d``, ``500ms`` or ISO-8601
  ``PT1H30M`` / ``P1DT2H``.

``parse_position(text, now_ms)`` returns a ``Position``; anything else is a
``ValueError`` whose message names the accepted forms.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

EARLIEST, LATEST, OFFSET, TIMESTAMP = "earliest", "latest", "offset", "timestamp"
FORMS = "earliest, latest, an offset N, @TIMESTAMP (epoch ms or ISO-8601) or -DURATION (e.g. -1h)"

_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000,
             "w": 7 * 86_400_000}
_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w)")
_ISO_DURATION = re.compile(
    r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?", re.IGNORECASE)
_ALIASES = {"earliest": EARLIEST, "beginning": EARLIEST, "start": EARLIEST,
            "oldest": EARLIEST, "latest": LATEST, "end": LATEST, "newest": LATEST}


@dataclass(frozen=True, slots=True)
class Position:
    kind: str  # EARLIEST | LATEST | OFFSET | TIMESTAMP
    value: int = 0  # the offset, or the timestamp in epoch ms


def parse_duration_ms(text: str) -> int:
    """``1h30m`` / ``PT1H30M`` → milliseconds; ValueError when malformed or zero."""
    t = text.strip()
    if t[:1] in "Pp":
        m = _ISO_DURATION.fullmatch(t)
        if not m or not any(m.groups()):
            raise ValueError(f"bad duration {text!r}: expected e.g. 15m, 1h30m, 2d or PT1H")
        d, h, mi, s = m.groups()
        ms = ((int(d or 0) * 24 + int(h or 0)) * 60 + int(mi or 0)) * 60_000
        return ms + int(float(s or 0) * 1000)
    pos, total = 0, 0
    for m in _DURATION.finditer(t):
        if m.start() != pos:
            break
        total += int(m.group(1)) * _UNITS_MS[m.group(2)]
        pos = m.end()
    if not t or pos != len(t):
        raise ValueError(f"bad duration {text!r}: expected e.g. 15m, 1h30m, 2d or PT1H")
    return total


def parse_timestamp_ms(text: str) -> int:
    """Epoch milliseconds or an ISO-8601 date-time (UTC unless a zone is given)."""
    t = text.strip()
    if t.isdigit():
        return int(t)
    try:
        when = datetime.datetime.fromisoformat(t.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"bad timestamp {text!r}: expected epoch milliseconds or "
                         "ISO-8601 like 2026-01-31T12:00:00Z") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return int(when.timestamp() * 1000)


def parse_position(text: str, now_ms: int) -> Position:
    t = text.strip()
    low = t.lower()
    if low in _ALIASES:
        return Position(_ALIASES[low])
    try:
        if t.isdigit():
            return Position(OFFSET, int(t))
        if t.startswith("@"):
            return Position(TIMESTAMP, parse_timestamp_ms(t[1:]))
        if t.startswith("-") and len(t) > 1:
            return Position(TIMESTAMP, now_ms - parse_duration_ms(t[1:]))
    except ValueError as exc:
        raise ValueError(f"bad position {text!r}: {exc}") from None
    raise ValueError(f"bad position {text!r}: expected {FORMS}")
