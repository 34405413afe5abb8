"""The startup banner of ``strom serve`` (``broker.banner``), read the way a person reads
it: the broker runs with its stderr on a pseudo-terminal (``pty``), and the test reads
what that terminal shows. The banner names the version, the node id, the listener with
the bootstrap string (the ready file's address), a metrics URL that answers, the data
directory, the console's URL (its own port here), and a kcat line that, pasted into a
shell, produces a record and reads it back. ``log.format=console`` prints it on a pipe
too. ``log.format=json`` keeps a terminal's output JSON: every line one object, the
banner's facts in the one ``strom_started`` event."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from broker.cli import strom_version
from tests.e2e.test_metrics import free_port

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 30.0
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@contextlib.contextmanager
def running_broker(tmp_path: Path, log_format: str, *, tty: bool) -> Iterator[tuple[str, str]]:
    """Start a broker (stderr and stdout on a pty or a pipe), read its output until the
    ready file exists and the output has settled, and yield (output without colours,
    ready-file address) while it runs; then stop it with SIGTERM."""
    ready = tmp_path / "ready"
    argv = [sys.executable, "-m", "broker", "serve",
            "--override", f"log.dirs={tmp_path / 'data'}",
            "--override", "listeners=PLAINTEXT://127.0.0.1:0",
            "--override", "strom.metrics.address=127.0.0.1:0",
            "--override", f"strom.console.address=127.0.0.1:{free_port()}",
            "--override", f"log.format={log_format}",
            "--ready-file", str(ready)]
    if tty:
        reader, writer = pty.openpty()
    else:
        reader, writer = os.pipe()
    proc = subprocess.Popen(argv, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=writer,
                            stderr=writer, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    os.close(writer)
    out = b""
    try:
        deadline = time.monotonic() + TIMEOUT
        quiet_since = None
        while time.monotonic() < deadline:
            if select.select([reader], [], [], 0.2)[0]:
                try:
                    chunk = os.read(reader, 65536)
                except OSError:  # the pty closed
                    break
                if not chunk:
                    break
                out += chunk
                quiet_since = None
            elif ready.exists():
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since > 0.5:
                    break
            assert proc.poll() is None, out.decode(errors="replace")
        assert ready.exists(), out.decode(errors="replace")
        address = ready.read_text().strip()
        yield _ANSI.sub("", out.decode(errors="replace")).replace("\r\n", "\n"), address
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
            os.close(reader)


def banner_rows(text: str) -> dict[str, str]:
    """The banner's ``label  value`` rows, from its title line on."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Strom "))
    rows = {}
    for line in lines[start + 1:]:
        if not line.startswith("  "):
            break
        label, value = re.split(r"\s{2,}", line.strip(), maxsplit=1)
        rows[label] = value
    return rows


def test_banner_on_a_terminal_says_how_to_connect(tmp_path: Path) -> None:
    with running_broker(tmp_path / "b", "auto", tty=True) as (text, address):
        title = f"Strom {strom_version()} · node 1 · broker,controller · cluster "
        assert any(line.startswith(title) for line in text.splitlines()), text
        rows = banner_rows(text)
        assert rows["listener PLAINTEXT"] == f"{address}  (bound {address}, PLAINTEXT)"
        assert rows["bootstrap"] == address
        assert rows["data"] == str((tmp_path / "b" / "data").resolve())
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/metrics", rows["metrics"])
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", rows["console"])
        assert rows["console"] != rows["metrics"].removesuffix("metrics")  # its own port
        assert rows["try"] == (f"echo hello | kcat -b {address} -t demo -P && "
                               f"kcat -b {address} -t demo -C -e")
        # the URLs answer, and the kcat line, pasted into a shell, reads back what it wrote
        with urllib.request.urlopen(rows["metrics"], timeout=TIMEOUT) as resp:
            assert resp.status == 200 and b"strom_requests_total" in resp.read()
        with urllib.request.urlopen(rows["console"], timeout=TIMEOUT) as resp:
            assert b"<title>Cluster \xc2\xb7 Strom</title>" in resp.read()
        done = subprocess.run(["bash", "-c", rows["try"]], capture_output=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == [b"hello"]


def test_console_format_prints_the_banner_on_a_pipe(tmp_path: Path) -> None:
    with running_broker(tmp_path / "c", "console", tty=False) as (text, address):
        assert banner_rows(text)["bootstrap"] == address


def test_json_logs_stay_json_on_a_terminal(tmp_path: Path) -> None:
    with running_broker(tmp_path / "j", "json", tty=True) as (text, address):
        pass
    events = [json.loads(line) for line in text.splitlines() if line.strip()]
    started = [e for e in events if e["event"] == "strom_started"]
    assert len(started) == 1
    event = started[0]
    assert event["bootstrap"] == address
    assert event["node_id"] == 1 and event["version"] == strom_version()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/metrics", event["metrics_url"])
    assert event["console_url"].startswith("http://127.0.0.1:")
    assert event["try"].startswith(f"echo hello | kcat -b {address} ")
    assert event["data_dir"] == str((tmp_path / "j" / "data").resolve())
