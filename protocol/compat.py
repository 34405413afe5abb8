"""Version rules that depend on record batch contents (pure).

Kafka refuses ZStandard where the API version predates it (KIP-110): a Produce request
below v7 carrying a zstd batch, and a Fetch response below v10 that would carry one, get
UNSUPPORTED_COMPRESSION_TYPE (clients that cannot decode zstd never see it). Only batch
headers are read (no decompression, no per-record work).
"""

from __future__ import annotations

from protocol.records import HEADER_SIZE, InvalidRecordBatch, parse_header

ZSTD = 4
PRODUCE_ZSTD_MIN_VERSION = 7
FETCH_ZSTD_MIN_VERSION = 10


def contains_zstd(records: bytes | bytearray | memoryview) -> bool:
    """True if any complete batch header in ``records`` says zstd. A truncated or
    malformed tail is ignored here (validation reports it elsewhere)."""
    pos = 0
    end = len(records)
    while end - pos >= HEADER_SIZE:
        try:
            header = parse_header(records, pos)
        except InvalidRecordBatch:
            return False
        if header.compression == ZSTD:
            return True
        pos += header.size_in_bytes
    return False
