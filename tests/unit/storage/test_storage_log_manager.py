"""LogManager: naming, startup with damaged partitions, flush policy, many partitions."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from protocol.records import iter_batches
from storage.log_config import LogConfig
from storage.log_manager import CLEAN_SHUTDOWN_FILE, LogManager
from tests.unit.storage.conftest import batch


def test_create_get_delete_and_names(tmp_path: Path) -> None:
    lm = LogManager(tmp_path, LogConfig())
    assert lm.startup(0) == []
    log = lm.create("my-topic-with-dashes", 3, now_ms=0)
    assert (log.topic, log.partition) == ("my-topic-with-dashes", 3)
    assert lm.get("my-topic-with-dashes", 3) is log
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "__strom_meta").mkdir()
    log.append_as_leader(batch(2), leader_epoch=0, now_ms=0)
    lm.shutdown()
    assert (tmp_path / CLEAN_SHUTDOWN_FILE).exists()
    lm = LogManager(tmp_path, LogConfig())
    assert lm.startup(0) == []
    assert lm.had_clean_shutdown
    assert list(lm.partitions()) == [("my-topic-with-dashes", 3)]
    assert lm.get("my-topic-with-dashes", 3).log_end_offset == 2
    lm.delete("my-topic-with-dashes", 3)
    assert not (tmp_path / "my-topic-with-dashes-3").exists()
    lm.shutdown()


def test_damaged_partitions_are_recovered_or_skipped(tmp_path: Path) -> None:
    lm = LogManager(tmp_path, LogConfig(index_interval_bytes=50))
    lm.startup(0)
    for name in ("a", "b", "c", "d"):
        log = lm.create(name, 0, now_ms=0)
        for _ in range(10):
            log.append_as_leader(batch(1, size=40), leader_epoch=0, now_ms=0)
    lm.shutdown()
    one = len(batch(1, size=40))
    seg = "0" * 20
    # a: flipped byte in the middle of the log, and a garbage checkpoint -> full recovery
    p = tmp_path / "a-0" / f"{seg}.log"
    data = bytearray(p.read_bytes())
    data[one * 5 + 30] ^= 0xFF
    p.write_bytes(bytes(data))
    (tmp_path / "a-0" / "partition.checkpoint").write_bytes(b"\x00garbage")
    # b: truncated index
    ix = tmp_path / "b-0" / f"{seg}.index"
    ix.write_bytes(ix.read_bytes()[:5])
    # c: the partition directory is unreadable as a log (a file where the log should be)
    (tmp_path / "c-0" / f"{seg}.log").unlink()
    (tmp_path / "c-0" / f"{seg}.log").mkdir()
    lm = LogManager(tmp_path, LogConfig(index_interval_bytes=50))
    errors = lm.startup(0)
    assert len(errors) == 1 and errors[0].startswith("c-0")
    assert lm.get("a", 0).log_end_offset == 5  # cut at the corrupt batch
    b = lm.get("b", 0)
    assert b.log_end_offset == 10
    assert [h.base_offset for _, h in iter_batches(b.read(7, 1).records)] == [7]
    assert lm.get("d", 0).log_end_offset == 10
    lm.shutdown()


def test_flush_messages_and_flush_ms(tmp_path: Path) -> None:
    lm = LogManager(tmp_path, LogConfig())
    lm.startup(0)
    log = lm.create("f", 0, LogConfig(flush_messages=3), now_ms=0)
    log.append_as_leader(batch(2), leader_epoch=0, now_ms=0)
    assert log.recovery_point == 0
    log.append_as_leader(batch(1), leader_epoch=0, now_ms=0)
    assert log.recovery_point == 3
    lm.update_config("f", LogConfig(flush_ms=100))
    log.append_as_leader(batch(1), leader_epoch=0, now_ms=10)
    assert lm.flush_due(50) == 0 and log.recovery_point == 3
    assert lm.flush_due(200) == 1 and log.recovery_point == 4
    lm.shutdown()


def test_ten_thousand_partitions_with_ulimit_1024(tmp_path: Path) -> None:
    """Create, write, close, reopen and read 10,000 partitions with RLIMIT_NOFILE=1024.

    Descriptor limits are the point, not disk speed: the log dir goes on tmpfs when the
    machine has one (file creation on the CI disk costs ~0.5 ms each).
    """
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > 512 << 20:
        tmp_path = Path(tempfile.mkdtemp(prefix="strom-10k-", dir=shm))
    script = textwrap.dedent(
        f"""
        import resource, time
        from pathlib import Path
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))
        from protocol.records import Record, build_batch
        from storage.log_config import LogConfig
        from storage.log_manager import LogManager
        b = build_batch([Record(-1, 0, b"k", b"v")])
        lm = LogManager(Path({str(tmp_path)!r}), LogConfig(), max_open_files=256)
        lm.startup(0)
        for p in range(10_000):
            lm.create("t", p, now_ms=0).append_as_leader(b, leader_epoch=0, now_ms=0)
        assert len(lm.file_cache) <= 256
        lm.shutdown()
        t0 = time.monotonic()
        lm = LogManager(Path({str(tmp_path)!r}), LogConfig(), max_open_files=256)
        assert lm.startup(0) == []
        opened = time.monotonic() - t0
        for p in range(10_000):
            log = lm.get("t", p)
            assert log.log_end_offset == 1
            assert log.read(0, 1000).records[16:] == b[16:]
        assert len(lm.file_cache) <= 256
        t1 = time.monotonic()
        lm.shutdown()
        print("reopen_s", round(opened, 2), "idle_shutdown_s", round(time.monotonic() - t1, 2))
        """
    )
    try:
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                             timeout=240, cwd=Path(__file__).resolve().parents[3])
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "reopen_s" in out.stdout
    print(out.stdout)


def test_periodic_checkpoint_survives_a_crash(tmp_path: Path) -> None:
    lm = LogManager(tmp_path, LogConfig(), checkpoint_interval_ms=1000)
    lm.startup(0)
    log = lm.create("h", 0, now_ms=0)
    log.append_as_leader(batch(5), leader_epoch=0, now_ms=0)
    log.high_watermark = 5
    log.delete_records_before(2)
    log.flush()
    lm.flush_due(2000)  # writes the changed checkpoint
    log.append_as_leader(batch(5), leader_epoch=0, now_ms=0)  # not flushed
    # crash: no shutdown; reopen from what is on disk
    lm.file_cache.close_all()
    lm2 = LogManager(tmp_path, LogConfig())
    assert lm2.startup(0) == []
    again = lm2.get("h", 0)
    assert (again.log_start_offset, again.high_watermark) == (2, 5)
    assert again.recovery_point >= 5 and again.log_end_offset == 10  # page cache kept it
    lm2.shutdown()
