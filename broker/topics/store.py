"""Durable storage of ``__strom_topics.json`` (a broker's dynamic broker configs; the
topic part is written empty — topics live in the metadata log): one JSON file replaced
atomically.

Write protocol (survives kill -9 and power loss at any instant): write
``<file>.tmp``, fsync it, ``os.replace`` onto ``<file>``, fsync the directory. A reader therefore
sees either the old or the new table, never a mix. A stale ``.tmp`` left by a crash is ignored
and overwritten by the next save.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from common.topics.model import (
    BrokerConfigs,
    TopicFileError,
    TopicInfo,
    decode_table,
    encode_topics,
)

TOPICS_FILE = "__strom_topics.json"


class TopicStore:
    """Loads and saves ``<log_dir>/__strom_topics.json``."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = Path(log_dir)
        self.path = self.log_dir / TOPICS_FILE

    def load(self) -> tuple[dict[str, TopicInfo], BrokerConfigs] | None:
        """The saved (topics, broker_configs), or None when no table was ever saved.
        TopicFileError if damaged."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            return decode_table(data)
        except TopicFileError as exc:
            raise TopicFileError(f"{self.path}: {exc}") from None

    def save(
        self, topics: Mapping[str, TopicInfo],
        broker_configs: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        """Replace the saved table atomically and durably."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        data = encode_topics(topics, broker_configs)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dir_fd = os.open(self.log_dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
