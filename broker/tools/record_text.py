"""Records as text lines and back (pure), for ``strom produce`` and ``strom consume``.

Input lines (``parse_line``): with a header separator, a line is
``HEADERS <hsep> rest``, HEADERS being ``k=v`` pairs joined by ``,`` (empty: none);
with a key separator, ``rest`` is ``KEY <ksep> VALUE`` (split at the first separator; a
line without it is a value with no key). Without separators the whole line is the value.

Output (``render_template``) fills a template: ``%t`` topic, ``%p`` partition, ``%o``
offset, ``%T`` timestamp (ms), ``%k`` key, ``%v`` value, ``%h`` headers as ``k=v,k=v``,
``%%`` a percent sign; escapes ``\\n``, ``\\t``, ``\\0`` and ``\\\\``. So
``--key-separator '\\t'`` on produce and ``-f '%k\\t%v\\n'`` on consume round-trip.
``record_json`` is one JSON object per record.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from broker.tools.render import bytes_json
from net.consumer import ConsumedRecord

_ESCAPES = {"n": "\n", "t": "\t", "0": "\0", "\\": "\\", "r": "\r"}


def unescape(text: str) -> str:
    """``\\t`` → tab etc. (for separators and templates typed in a shell)."""
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in _ESCAPES:
            out.append(_ESCAPES[text[i + 1]])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def parse_headers(text: bytes) -> list[tuple[str, bytes | None]]:
    if not text:
        return []
    out: list[tuple[str, bytes | None]] = []
    for item in text.split(b","):
        key, sep, value = item.partition(b"=")
        if not key:
            raise ValueError(f"bad header {item!r}: expected KEY=VALUE")
        out.append((key.decode("utf-8"), value if sep else None))
    return out


def parse_line(line: bytes, key_sep: bytes | None = None, header_sep: bytes | None = None
               ) -> tuple[list[tuple[str, bytes | None]], bytes | None, bytes]:
    """(headers, key, value) of one input line (without its line delimiter)."""
    headers: list[tuple[str, bytes | None]] = []
    rest = line
    if header_sep:
        head, sep, rest = line.partition(header_sep)
        if not sep:
            raise ValueError(f"line {line[:40]!r} has no header separator {header_sep!r}")
        headers = parse_headers(head)
    key: bytes | None = None
    if key_sep:
        k, sep, v = rest.partition(key_sep)
        if sep:
            key, rest = k, v
    return headers, key, rest


def headers_text(headers: Sequence[tuple[str, bytes | None]]) -> bytes:
    return b",".join(k.encode() + (b"=" + v if v is not None else b"") for k, v in headers)


def render_template(template: str, rec: ConsumedRecord) -> bytes:
    """``template`` (already unescaped) filled with ``rec``'s fields, as bytes."""
    out = bytearray()
    i = 0
    while i < len(template):
        ch = template[i]
        if ch == "%" and i + 1 < len(template):
            code = template[i + 1]
            i += 2
            if code == "k":
                out += rec.key or b""
            elif code == "v":
                out += rec.value or b""
            elif code == "h":
                out += headers_text(rec.headers)
            elif code == "t":
                out += rec.topic.encode()
            elif code == "p":
                out += str(rec.partition).encode()
            elif code == "o":
                out += str(rec.offset).encode()
            elif code == "T":
                out += str(rec.timestamp).encode()
            elif code == "%":
                out += b"%"
            else:
                raise ValueError(f"unknown field %{code} in format {template!r}")
        else:
            out += ch.encode()
            i += 1
    return bytes(out)


def record_json(rec: ConsumedRecord) -> str:
    """One JSON object: topic, partition, offset, timestamp, timestamp_type, key, value,
    headers (list of {key, value}); bytes as UTF-8 text or {"base64": ...}."""
    return json.dumps({
        "topic": rec.topic, "partition": rec.partition, "offset": rec.offset,
        "timestamp": rec.timestamp, "timestamp_type": rec.timestamp_type,
        "key": bytes_json(rec.key), "value": bytes_json(rec.value),
        "headers": [{"key": k, "value": bytes_json(v)} for k, v in rec.headers],
    }, ensure_ascii=False)
