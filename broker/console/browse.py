"""The message browser's reading and decoding.

``read_records(plog, start, limit)`` returns up to ``limit`` records of a partition
replica from offset ``start`` (clamped into [log start, high watermark]), never past the
high watermark — what a read_uncommitted consumer may see; control batches (transaction
markers) are left out. ``start_offset`` turns the page's query (an offset, a timestamp
in ms, or neither: the last ``limit`` records) into that offset. ``decode`` shows bytes
as UTF-8, JSON (indented) or hex; bytes that are not valid in the chosen form fall back
(JSON to UTF-8, UTF-8 to hex), and the caller is told so.
"""

from __future__ import annotations

import json
from typing import Any

from protocol.records import Record, decode_batch_records, iter_batches

DECODERS = ("utf8", "json", "hex")
#: bytes read from the log per step while collecting records
READ_BYTES = 1 << 20


def start_offset(plog: Any, offset: int | None, timestamp_ms: int | None, limit: int) -> int:
    hw = plog.high_watermark
    if timestamp_ms is not None:
        found = plog.offset_for_timestamp(timestamp_ms)
        return hw if found is None else min(found[0], hw)
    if offset is None:
        return max(plog.log_start_offset, hw - limit)
    return min(max(offset, plog.log_start_offset), hw)


def read_records(plog: Any, start: int, limit: int) -> list[Record]:
    hw = plog.high_watermark
    out: list[Record] = []
    position = start
    while len(out) < limit and position < hw:
        data = plog.read(position, READ_BYTES, max_offset=hw)
        if not data.records:
            break
        last = position
        for pos, header in iter_batches(data.records):
            last = header.base_offset + header.last_offset_delta + 1
            if header.is_control:
                continue
            for record in decode_batch_records(data.records, pos):
                if position <= record.offset < hw and len(out) < limit:
                    out.append(record)
        if last <= position:
            break
        position = last
    return out


def decode(data: bytes | None, how: str) -> tuple[str, bool]:
    """(text shown, whether it fell back to hex); None shows as ``null``."""
    if data is None:
        return "null", False
    if how == "hex":
        return data.hex(" "), False
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return data.hex(" "), True
    if how == "json":
        try:
            return json.dumps(json.loads(text), indent=2, ensure_ascii=False), False
        except ValueError:
            return text, True
    return text, False
