"""Record-batch compression codecs (attribute bits 0-2 of a RecordBatch v2).

| id | name   | wire format                                                             |
|----|--------|-------------------------------------------------------------------------|
| 0  | none   | records stored as is                                                    |
| 1  | gzip   | RFC 1952 gzip member(s) (zlib, wbits=31 to write, 47 auto-detect read)  |
| 2  | snappy | xerial "snappy-java" framing (what the Java client writes) or one raw   |
|    |        | snappy block (what librdkafka may write); both are accepted on decode   |
| 3  | lz4    | LZ4 frame format (magic 0x184D2204), independent 64 KiB blocks, no      |
|    |        | content size (what Kafka's KafkaLZ4BlockOutputStream writes)            |
| 4  | zstd   | one or more zstd frames; content size may be absent (streaming writers) |

xerial framing, byte by byte::

    0   8  magic      0x82 'S' 'N' 'A' 'P' 'P' 'Y' 0x00
    8   4  version    int32 big-endian (1)
    12  4  compatible int32 big-endian (1)
    16  .. blocks     repeated [int32 big-endian length][raw snappy block of that length]

Compression levels (KIP-390; ``level`` None = the codec's default):

| codec | levels             | default | applied as                                               |
|-------|--------------------|---------|----------------------------------------------------------|
| gzip  | 1..9, or -1        | -1      | zlib level (-1 = zlib's default, 6)                      |
| lz4   | 1..17              | 9       | 9: LZ4's fast compressor (Kafka's default does the same);|
|       |                    |         | others: LZ4HC at that level (liblz4 caps it at its max)  |
| zstd  | -131072..22        | 3       | zstd level (negative: zstd's fast modes, 0: zstd default)|
| snappy| (none)             |         | level ignored                                            |

Every failure (corrupt stream, unknown codec, output over ``max_output``) raises
:class:`CompressionError`, a ``ValueError``; no codec library exception leaks out.
"""

from __future__ import annotations

import struct
import zlib

import cramjam
import lz4.frame
import zstandard

NONE = 0
GZIP = 1
SNAPPY = 2
LZ4 = 3
ZSTD = 4
CODEC_NAMES = {NONE: "none", GZIP: "gzip", SNAPPY: "snappy", LZ4: "lz4", ZSTD: "zstd"}

XERIAL_MAGIC = b"\x82SNAPPY\x00"
_XERIAL_HEADER = XERIAL_MAGIC + struct.pack(">ii", 1, 1)
_XERIAL_BLOCK = 32 * 1024  # uncompressed bytes per xerial block (snappy-java's default)
_INT32 = struct.Struct(">i")

#: Default level per codec (Kafka's compression.<codec>.level defaults).
DEFAULT_LEVELS = {GZIP: -1, LZ4: 9, ZSTD: 3}
#: Legal levels per codec, inclusive (gzip also takes -1).
LEVEL_RANGES = {GZIP: (1, 9), LZ4: (1, 17), ZSTD: (-131072, 22)}

#: Upper bound on decompressed size; guards against decompression bombs.
DEFAULT_MAX_OUTPUT = 256 * 1024 * 1024


class CompressionError(ValueError):
    """A payload could not be compressed or decompressed with the named codec."""


def compress(
    codec: int, data: bytes | bytearray | memoryview, level: int | None = None
) -> bytes:
    """Compress ``data`` with codec id ``codec`` in the wire format Kafka clients read.

    ``level``: see the module table (None: the codec's default; ignored for none/snappy).
    """
    if level is not None and codec in LEVEL_RANGES:
        low, high = LEVEL_RANGES[codec]
        if not (low <= level <= high or (codec == GZIP and level == -1)):
            raise CompressionError(f"{CODEC_NAMES[codec]} level {level} is out of range")
    if codec == NONE:
        return bytes(data)
    if codec == GZIP:
        c = zlib.compressobj(-1 if level is None else level, zlib.DEFLATED, 31)
        return c.compress(data) + c.flush()
    if codec == SNAPPY:
        view = memoryview(data)
        parts = [_XERIAL_HEADER]
        for start in range(0, len(view), _XERIAL_BLOCK):
            block = bytes(cramjam.snappy.compress_raw(view[start : start + _XERIAL_BLOCK]))
            parts.append(_INT32.pack(len(block)))
            parts.append(block)
        return b"".join(parts)
    if codec == LZ4:
        return lz4.frame.compress(
            bytes(data),
            block_size=lz4.frame.BLOCKSIZE_MAX64KB,
            block_linked=False,
            content_checksum=False,
            store_size=False,  # like Kafka's own writer: no content-size field
            # Kafka's default level 9 uses LZ4's fast compressor; others are LZ4HC levels
            compression_level=0 if level is None or level == DEFAULT_LEVELS[LZ4] else level,
        )
    if codec == ZSTD:
        return zstandard.ZstdCompressor(level=3 if level is None else level).compress(
            bytes(data)
        )
    raise CompressionError(f"unknown compression codec {codec}")


def decompress(
    codec: int, data: bytes | bytearray | memoryview, *, max_output: int = DEFAULT_MAX_OUTPUT
) -> bytes:
    """Decompress ``data`` written with codec ``codec``; raise CompressionError on any damage."""
    try:
        out = _decompress(codec, data, max_output)
    except CompressionError:
        raise
    except Exception as exc:  # codec libraries raise assorted types; normalise them
        name = CODEC_NAMES.get(codec, codec)
        raise CompressionError(f"{name} payload is corrupt: {exc}") from exc
    if len(out) > max_output:
        raise CompressionError(f"decompressed payload exceeds {max_output} bytes")
    return out


def _decompress(codec: int, data: bytes | bytearray | memoryview, max_output: int) -> bytes:
    if codec == NONE:
        return bytes(data)
    if codec == GZIP:
        d = zlib.decompressobj(47)
        out = d.decompress(data, max_output + 1)
        if d.unconsumed_tail:
            raise CompressionError(f"decompressed payload exceeds {max_output} bytes")
        if not d.eof:
            raise CompressionError("gzip payload is truncated")
        return out
    if codec == SNAPPY:
        return _snappy_decompress(bytes(data), max_output)
    if codec == LZ4:
        d = lz4.frame.LZ4FrameDecompressor()
        out = d.decompress(bytes(data), max_length=max_output + 1)
        if not d.eof:
            raise CompressionError("lz4 frame is truncated or exceeds the size limit")
        return out
    if codec == ZSTD:
        raw = bytes(data)
        parts: list[bytes] = []
        total = 0
        while raw:
            obj = zstandard.ZstdDecompressor().decompressobj()
            chunk = obj.decompress(raw)
            if not obj.eof:
                raise CompressionError("zstd frame is truncated")
            parts.append(chunk)
            total += len(chunk)
            if total > max_output:
                raise CompressionError(f"decompressed payload exceeds {max_output} bytes")
            raw = obj.unused_data
        if not parts:
            raise CompressionError("zstd payload is empty")
        return b"".join(parts)
    raise CompressionError(f"unknown compression codec {codec}")


def _snappy_decompress(raw: bytes, max_output: int) -> bytes:
    if not raw.startswith(XERIAL_MAGIC):
        if len(raw) == 0:
            raise CompressionError("snappy payload is empty")
        if cramjam.snappy.decompress_raw_len(raw) > max_output:
            raise CompressionError(f"decompressed payload exceeds {max_output} bytes")
        return bytes(cramjam.snappy.decompress_raw(raw))
    if len(raw) < 16:
        raise CompressionError("xerial snappy header is truncated")
    pos = 16
    parts: list[bytes] = []
    total = 0
    while pos < len(raw):
        if pos + 4 > len(raw):
            raise CompressionError("xerial snappy block length is truncated")
        (n,) = _INT32.unpack_from(raw, pos)
        pos += 4
        if n < 0 or pos + n > len(raw):
            raise CompressionError("xerial snappy block is truncated")
        block = raw[pos : pos + n]
        pos += n
        total += cramjam.snappy.decompress_raw_len(block)
        if total > max_output:
            raise CompressionError(f"decompressed payload exceeds {max_output} bytes")
        parts.append(bytes(cramjam.snappy.decompress_raw(block)))
    return b"".join(parts)
