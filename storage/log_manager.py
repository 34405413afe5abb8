"""All partition logs of one log directory (``log.dirs`` entry).

``<log_dir>/<topic>-<partition>/`` per partition (topic names may contain '-': the
partition number follows the last '-'). Entries starting with '.' or '__strom' are not
partitions. ``<log_dir>/.strom_clean_shutdown`` is written by :meth:`shutdown` and removed
by :meth:`startup` (informational; each partition's own checkpoint decides recovery).

Synchronous; the broker calls the periodic methods (``run_retention``, ``run_cleaner``,
``flush_due``) from a worker thread or its scheduler.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
from collections.abc import Iterable
from pathlib import Path

from storage.checkpoint import write_atomic
from storage.errors import LogDirectoryError
from storage.file_cache import FileCache
from storage.log_config import LogConfig
from storage.partition_files import iter_partition_dirs
from storage.partition_log import PartitionLog

CLEAN_SHUTDOWN_FILE = ".strom_clean_shutdown"
BATCHED_SHUTDOWN_THRESHOLD = 16


def sync_filesystem(path: Path) -> None:
    """syncfs(2) on the file system holding ``path`` (os.sync() if unavailable)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            if libc.syncfs(fd) == 0:
                return
        finally:
            os.close(fd)
    except (OSError, AttributeError):
        pass
    os.sync()


class LogManager:
    """Opens, creates, deletes and maintains the partition logs under ``log_dir``."""

    def __init__(
        self,
        log_dir: Path,
        default_config: LogConfig,
        *,
        max_open_files: int = 512,
        checkpoint_interval_ms: int = 60_000,
    ) -> None:
        self.log_dir = Path(log_dir)
        self.default_config = default_config
        self.file_cache = FileCache(max_open_files)
        self.checkpoint_interval_ms = checkpoint_interval_ms
        self._logs: dict[tuple[str, int], PartitionLog] = {}
        self._topic_configs: dict[str, LogConfig] = {}
        self._lock = threading.RLock()
        self._last_checkpoint_ms = 0
        self.had_clean_shutdown = False

    def config_for(self, topic: str) -> LogConfig:
        return self._topic_configs.get(topic, self.default_config)

    def startup(self, now_ms: int) -> list[str]:
        """Open every partition directory; returns messages for damaged, skipped ones."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        marker = self.log_dir / CLEAN_SHUTDOWN_FILE
        self.had_clean_shutdown = marker.exists()
        with contextlib.suppress(FileNotFoundError):
            marker.unlink()
        errors: list[str] = []
        for topic, partition, path in iter_partition_dirs(self.log_dir):
            try:
                log = PartitionLog.open(path, self.config_for(topic), now_ms=now_ms,
                                        file_cache=self.file_cache)
            except Exception as exc:  # a damaged partition must not stop the others
                errors.append(f"{path.name}: skipped, cannot open: {exc!r}")
                continue
            with self._lock:
                self._logs[(topic, partition)] = log
        self._last_checkpoint_ms = now_ms
        return errors

    def get(self, topic: str, partition: int) -> PartitionLog | None:
        return self._logs.get((topic, partition))

    def create(
        self, topic: str, partition: int, config: LogConfig | None = None, *, now_ms: int = 0
    ) -> PartitionLog:
        """Open or create the partition's log (existing logs are returned as they are)."""
        with self._lock:
            log = self._logs.get((topic, partition))
            if log is not None:
                return log
            if config is not None:
                self._topic_configs[topic] = config
            if not topic or "/" in topic or topic.startswith(".") or partition < 0:
                raise LogDirectoryError(f"invalid partition name {topic!r}-{partition}")
            log = PartitionLog.open(self.log_dir / f"{topic}-{partition}",
                                    self.config_for(topic), now_ms=now_ms,
                                    file_cache=self.file_cache)
            self._logs[(topic, partition)] = log
            return log

    def delete(self, topic: str, partition: int) -> None:
        with self._lock:
            log = self._logs.pop((topic, partition), None)
        if log is not None:
            log.delete()

    def update_config(self, topic: str, config: LogConfig) -> None:
        with self._lock:
            self._topic_configs[topic] = config
            logs = [log for (t, _), log in self._logs.items() if t == topic]
        for log in logs:
            log.update_config(config)

    def partitions(self) -> Iterable[tuple[str, int]]:
        with self._lock:
            return list(self._logs)

    def logs(self) -> list[PartitionLog]:
        with self._lock:
            return list(self._logs.values())

    def run_retention(self, now_ms: int) -> int:
        """Time-roll active segments and delete expired segments; returns segments deleted."""
        deleted = 0
        for log in self.logs():
            try:
                log.maybe_roll(now_ms)
                deleted += log.enforce_retention(now_ms)
            except LogDirectoryError:
                continue
        return deleted

    def run_cleaner(self, now_ms: int) -> int:
        """Compact logs with cleanup.policy containing compact; returns records removed."""
        removed = 0
        for log in self.logs():
            if log.config.compact:
                try:
                    removed += log.compact(now_ms)
                except LogDirectoryError:
                    continue
        return removed

    def flush_due(self, now_ms: int) -> int:
        """Flush logs due by flush.ms or after a roll; checkpoint changed logs periodically."""
        flushed = 0
        for log in self.logs():
            if log.flush_if_due(now_ms):
                flushed += 1
        if now_ms - self._last_checkpoint_ms >= self.checkpoint_interval_ms:
            self._last_checkpoint_ms = now_ms
            written = 0
            for log in self.logs():
                with contextlib.suppress(OSError):
                    written += log.checkpoint_if_changed(sync=False)
            if written:
                sync_filesystem(self.log_dir)
        return flushed

    def shutdown(self) -> None:
        """Close every log (flush + clean checkpoints), then write the clean marker."""
        with self._lock:
            logs = list(self._logs.values())
            self._logs.clear()
        dirty = [log for log in logs if log._dirty]
        if len(dirty) <= BATCHED_SHUTDOWN_THRESHOLD:
            for log in logs:
                with contextlib.suppress(LogDirectoryError, OSError):
                    log.close()
        else:
            # many partitions: one file-system sync instead of ~6 fsyncs per partition.
            # Data, indexes and snapshots are made durable before any checkpoint claims
            # recovery_point = log end; then the checkpoints themselves are synced.
            for log in dirty:
                with contextlib.suppress(LogDirectoryError, OSError):
                    log.prepare_close()
            sync_filesystem(self.log_dir)
            for log in logs:
                with contextlib.suppress(LogDirectoryError, OSError):
                    log.close(sync=False)
            sync_filesystem(self.log_dir)
        self.file_cache.close_all()
        if self.log_dir.exists():
            write_atomic(self.log_dir / CLEAN_SHUTDOWN_FILE, b"")
