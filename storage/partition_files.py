"""Names and small files of a partition directory (formats, parsing, atomic writes).

``<topic>-<partition>/`` holds, besides the segments (storage/segment.py)::

    partition.checkpoint      line 1: CRC-32C (decimal) of line 2; line 2: JSON
                              {"log_start_offset", "recovery_point", "high_watermark",
                               "clean": null | {"leo", "base", "size"}}
                              "clean" is written only by a clean close: the log end offset
                              and the active segment (base offset, byte size) it belongs to
    leader-epoch-checkpoint   Kafka's text format: "0\\n<count>\\n<epoch> <start_offset>\\n..."
    <offset:020d>.snapshot    producer state as of that offset (storage/producer_state.py)
    cleaner-offset-checkpoint compacted topics only, same text format with one row
                              "<first dirty offset> <earliest pending delete horizon|-1>"
                              (storage/cleaner.py)

Readers treat damaged files as absent (the log then recovers more, never trusts garbage).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from crc32c import crc32c

from storage.checkpoint import CheckpointError, read_lines, write_atomic, write_lines

CHECKPOINT_FILE = "partition.checkpoint"
LEADER_EPOCH_FILE = "leader-epoch-checkpoint"
CLEANER_FILE = "cleaner-offset-checkpoint"
SNAPSHOT_SUFFIX = ".snapshot"


@dataclass(frozen=True, slots=True)
class CleanMark:
    """What a clean close saw: log end offset and the active segment's base and size."""

    leo: int
    base: int
    size: int


@dataclass(frozen=True, slots=True)
class PartitionCheckpoint:
    log_start_offset: int
    recovery_point: int
    high_watermark: int
    clean: CleanMark | None = None


def parse_partition_dir(name: str) -> tuple[str, int]:
    """Split ``<topic>-<partition>`` at the last '-'; ValueError if it is not one."""
    topic, sep, part = name.rpartition("-")
    if not sep or not topic or not part.isdigit():
        raise ValueError(f"{name!r} is not a <topic>-<partition> directory name")
    return topic, int(part)


def iter_partition_dirs(log_dir: Path) -> Iterable[tuple[str, int, Path]]:
    """(topic, partition, path) for each partition directory under ``log_dir``.

    Entries starting with '.' or '__strom' are not partitions.
    """
    for p in sorted(log_dir.iterdir()):
        if not p.is_dir() or p.name.startswith((".", "__strom")):
            continue
        try:
            topic, partition = parse_partition_dir(p.name)
        except ValueError:
            continue
        yield topic, partition, p


def parse_base(name: str, suffix: str) -> int | None:
    """The offset in ``<offset:020d><suffix>``, None for any other name."""
    if not name.endswith(suffix):
        return None
    stem = name[: -len(suffix)]
    if len(stem) != 20 or not stem.isdigit():
        return None
    return int(stem)


def read_partition_checkpoint(directory: Path) -> PartitionCheckpoint | None:
    """The checkpoint, or None if absent or damaged (then the log recovers fully)."""
    try:
        data = (directory / CHECKPOINT_FILE).read_bytes()
    except FileNotFoundError:
        return None
    try:
        head, body = data.split(b"\n", 1)
        if int(head) != crc32c(body):
            raise CheckpointError("checksum mismatch")
        doc = json.loads(body)
        values = [doc[k] for k in ("log_start_offset", "recovery_point", "high_watermark")]
        if not all(isinstance(v, int) and v >= 0 for v in values):
            raise CheckpointError("bad offsets")
        clean = doc.get("clean")
        mark = None
        if clean is not None:
            parts = [clean[k] for k in ("leo", "base", "size")]
            if not all(isinstance(v, int) and v >= 0 for v in parts):
                raise CheckpointError("bad clean record")
            mark = CleanMark(*parts)
        return PartitionCheckpoint(*values, clean=mark)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def write_partition_checkpoint(
    directory: Path, ckpt: PartitionCheckpoint, *, sync: bool = True
) -> None:
    clean = ckpt.clean
    doc = {
        "log_start_offset": ckpt.log_start_offset,
        "recovery_point": ckpt.recovery_point,
        "high_watermark": ckpt.high_watermark,
        "clean": None if clean is None else
        {"leo": clean.leo, "base": clean.base, "size": clean.size},
    }
    body = json.dumps(doc, separators=(",", ":")).encode()
    write_atomic(directory / CHECKPOINT_FILE, str(crc32c(body)).encode() + b"\n" + body,
                 sync=sync)


def read_leader_epochs(directory: Path) -> list[tuple[int, int]]:
    """[(epoch, start offset)] from leader-epoch-checkpoint; [] if absent or damaged."""
    try:
        rows = read_lines(directory / LEADER_EPOCH_FILE, 0, 2)
        return [(int(a), int(b)) for a, b in rows or []]
    except (CheckpointError, ValueError):
        return []


def write_leader_epochs(
    directory: Path, epochs: list[tuple[int, int]], *, sync: bool = True
) -> None:
    write_lines(directory / LEADER_EPOCH_FILE, 0, list(epochs), sync=sync)


def snapshot_path(directory: Path, offset: int) -> Path:
    return directory / f"{offset:020d}{SNAPSHOT_SUFFIX}"


def snapshot_offsets(directory: Path) -> list[int]:
    """Offsets of the producer snapshots present, ascending."""
    out = []
    for p in directory.iterdir():
        b = parse_base(p.name, SNAPSHOT_SUFFIX)
        if b is not None:
            out.append(b)
    return sorted(out)


def delete_snapshots(directory: Path, offsets: Iterable[int]) -> None:
    for b in offsets:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(snapshot_path(directory, b))


def read_cleaner_checkpoint(directory: Path) -> tuple[int, int] | None:
    """(first dirty offset, earliest pending delete horizon or -1); None if absent or
    damaged (the cleaner then treats the whole log as dirty)."""
    try:
        rows = read_lines(directory / CLEANER_FILE, 0, 2)
        if not rows or len(rows) != 1:
            return None
        return int(rows[0][0]), int(rows[0][1])
    except (CheckpointError, ValueError):
        return None


def write_cleaner_checkpoint(
    directory: Path, first_dirty: int, horizon: int, *, sync: bool = True
) -> None:
    write_lines(directory / CLEANER_FILE, 0, [(first_dirty, horizon)], sync=sync)
