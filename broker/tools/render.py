"""Output formatting for the ``strom`` tools (pure: values in, text out).

``table(headers, rows)``: left-aligned columns separated by two spaces, header first,
``-`` for None; ``to_json(value)``: dataclasses, mappings, tuples and bytes made JSON
(bytes as UTF-8 text, or ``{"base64": ...}`` when not UTF-8), sorted keys, one line.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple, set, frozenset)):
        return ",".join(cell(v) for v in value) if value else "-"
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table; an empty ``rows`` gives the header line only."""
    text = [[str(h) for h in headers]] + [[cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in text) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in text)


def key_values(pairs: Sequence[tuple[str, Any]]) -> str:
    """``Name:  value`` lines, names padded to one column."""
    width = max((len(k) for k, _ in pairs), default=0) + 1
    return "\n".join(f"{(k + ':').ljust(width)}  {cell(v)}" for k, v in pairs)


def jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return bytes_json(bytes(value))
    return value


def bytes_json(data: bytes | None) -> Any:
    """UTF-8 text when ``data`` decodes, else ``{"base64": "..."}``; None stays None."""
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode()}


def to_json(value: Any) -> str:
    return json.dumps(jsonable(value), sort_keys=True, ensure_ascii=False)
