"""Small files written atomically: temp file, fsync, rename, fsync the directory.

Text checkpoint format (Kafka's shape)::

    <version>\\n
    <count>\\n
    <count lines of space-separated fields>\\n

Readers validate version, count and field shapes and raise CheckpointError on garbage.
"""

from __future__ import annotations

import os
from pathlib import Path


class CheckpointError(ValueError):
    """A checkpoint file exists but cannot be parsed."""


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, *, sync: bool = True) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves the old or the new file."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if sync:
        fsync_dir(path.parent)


def write_lines(
    path: Path, version: int, rows: list[tuple[object, ...]], *, sync: bool = True
) -> None:
    lines = [str(version), str(len(rows))] + [" ".join(str(x) for x in row) for row in rows]
    write_atomic(path, ("\n".join(lines) + "\n").encode(), sync=sync)


def read_lines(path: Path, version: int, width: int) -> list[list[str]] | None:
    """Rows of a checkpoint, None if the file is absent; CheckpointError if malformed."""
    try:
        text = path.read_bytes().decode("ascii")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: unreadable: {exc}") from exc
    lines = text.split("\n")
    if not lines or lines[-1] != "":
        raise CheckpointError(f"{path}: not newline-terminated")
    lines.pop()
    try:
        if int(lines[0]) != version:
            raise CheckpointError(f"{path}: unsupported version {lines[0]!r}")
        count = int(lines[1])
    except (IndexError, ValueError) as exc:
        raise CheckpointError(f"{path}: bad header") from exc
    rows = [line.split(" ") for line in lines[2:]]
    if len(rows) != count or any(len(r) != width for r in rows):
        raise CheckpointError(f"{path}: expected {count} rows of {width} fields")
    return rows
