"""A Strom broker as a real subprocess, for integration and end-to-end tests.

Contract
--------
``BrokerProcess(workdir, overrides={...}).start()`` runs::

    [sys.executable, "-m", "broker", "serve",
     "--override", "log.dirs=<workdir>/data",
     "--override", "listeners=PLAINTEXT://127.0.0.1:<port>",
     "--ready-file", "<workdir>/ready",
     "--override", "k=v", ...]           # the extra overrides, in the order given

with the repository root as working directory, and waits (bounded by ``startup_timeout``,
default 20 s) until the broker has written ``"host:port\\n"`` to the ready file.  The
first start uses port 0 (the broker picks a free port); every later start of the same
``BrokerProcess`` (``restart()``, or ``start()`` after ``stop()``/``kill()``) reuses the
port learned from the first ready file, so ``.bootstrap`` stays valid across restarts
and clients may keep their configuration.  An explicit ``listeners`` override wins.

- ``.bootstrap``: ``"127.0.0.1:PORT"`` as read from the ready file.
- ``.stop()``: SIGTERM, wait up to ``stop_timeout`` (default 20 s), and raise
  ``AssertionError`` (with the log tail) unless the exit code is 0.  A broker that does
  not exit in time is SIGKILLed before the error is raised.
- ``.kill()``: SIGKILL and reap (the page cache survives, as after ``kill -9``).
- ``.restart(clean=True)``: ``stop()`` (or ``kill()`` when ``clean=False``), then
  ``start()`` on the same data directory and port.
- ``.close()``: idempotent teardown: SIGKILL if still running (never raises).  Brokers
  never closed are SIGKILLed when the test process exits (``atexit``).
- stdout and stderr of every run are appended to ``<workdir>/broker.log``; ``log_tail()``
  returns its end.  Start failures raise :class:`BrokerStartError` carrying the log tail;
  :mod:`tests.support.pytest_plugin` prints live brokers' logs under failed tests.

Every wait here is bounded; nothing sleeps as an assertion.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import sys
import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import IO

REPO_ROOT = Path(__file__).resolve().parents[2]

DEFAULT_STARTUP_TIMEOUT_S = 20.0
DEFAULT_STOP_TIMEOUT_S = 20.0
LOG_TAIL_BYTES = 16_000

_LIVE: weakref.WeakSet[BrokerProcess] = weakref.WeakSet()
#: every broker child not yet reaped; SIGKILLed at interpreter exit so that a test that
#: forgot ``close()`` never leaves a broker running after pytest ends
_CHILDREN: set[subprocess.Popen[bytes]] = set()


@atexit.register
def _kill_leftover_children() -> None:
    for proc in list(_CHILDREN):
        if proc.poll() is None:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)


class BrokerStartError(RuntimeError):
    """The broker exited, or wrote no ready file in time, during ``start()``."""


def live_brokers() -> list[BrokerProcess]:
    """Brokers created and not yet closed (for failure reports)."""
    return [b for b in list(_LIVE) if not b.closed]


class BrokerProcess:
    """One broker subprocess bound to one working directory (data dir, ready file, log).

    ``workdir`` is created if missing.  ``overrides`` are Kafka property names mapped to
    values (``{"num.partitions": "3"}``); ``env`` adds environment variables (e.g.
    ``STROM_*``) on top of this process's environment.  ``python_module`` is the module
    run with ``-m`` (only the helper's own self-check changes it).
    """

    def __init__(
        self,
        workdir: Path,
        overrides: Mapping[str, str | int] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        startup_timeout: float = DEFAULT_STARTUP_TIMEOUT_S,
        stop_timeout: float = DEFAULT_STOP_TIMEOUT_S,
        python_module: str = "broker",
    ) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.workdir / "data"
        self.ready_file = self.workdir / "ready"
        self.log_path = self.workdir / "broker.log"
        self.overrides: dict[str, str] = {k: str(v) for k, v in (overrides or {}).items()}
        self.env = dict(env or {})
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.python_module = python_module
        self.host = "127.0.0.1"
        self.port = 0
        self.starts = 0
        self.closed = False
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        _LIVE.add(self)

    # ------------------------------------------------------------------ properties
    @property
    def bootstrap(self) -> str:
        """``"host:port"`` of the running broker (valid after the first ``start()``)."""
        if not self.port:
            raise RuntimeError("broker has not been started yet")
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc is not None else None

    # ------------------------------------------------------------------ lifecycle
    def command(self) -> list[str]:
        """The exact argv used to start the broker."""
        listener_port = self.port  # 0 on the first start, then the learned port
        args = [
            sys.executable,
            "-m",
            self.python_module,
            "serve",
            "--override",
            f"log.dirs={self.data_dir}",
            "--override",
            f"listeners=PLAINTEXT://127.0.0.1:{listener_port}",
            "--ready-file",
            str(self.ready_file),
        ]
        for key, value in self.overrides.items():
            args += ["--override", f"{key}={value}"]
        return args

    def start(self) -> BrokerProcess:
        """Start the broker and wait for its ready file; returns ``self``."""
        if self.closed:
            raise RuntimeError("BrokerProcess was closed")
        if self.running:
            raise RuntimeError("broker is already running")
        self.ready_file.unlink(missing_ok=True)
        self.starts += 1
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the child's life
        self._log.write(
            f"\n===== start #{self.starts} at {time.strftime('%H:%M:%S')}: "
            f"{' '.join(self.command())}\n".encode()
        )
        self._log.flush()
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        self._proc = subprocess.Popen(
            self.command(),
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        _CHILDREN.add(self._proc)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.startup_timeout
        while True:
            text = self._read_ready_file()
            if text is not None:
                host, _, port = text.strip().rpartition(":")
                self.host = host or "127.0.0.1"
                self.port = int(port)
                return
            code = self._proc.poll()
            if code is not None:
                _CHILDREN.discard(self._proc)
                self._close_log()
                raise BrokerStartError(
                    f"broker exited with code {code} before it was ready\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                self._hard_kill()
                raise BrokerStartError(
                    f"broker wrote no ready file within {self.startup_timeout} s\n{self.log_tail()}"
                )
            time.sleep(0.02)

    def _read_ready_file(self) -> str | None:
        try:
            text = self.ready_file.read_text()
        except FileNotFoundError:
            return None
        # The broker writes atomically; the trailing newline is a second guard.
        return text if text.endswith("\n") and ":" in text else None

    def stop(self, timeout: float | None = None) -> int:
        """SIGTERM, wait, and assert a clean exit (code 0). Returns the exit code."""
        proc = self._require_running()
        proc.send_signal(signal.SIGTERM)
        limit = self.stop_timeout if timeout is None else timeout
        try:
            code = proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            self._hard_kill()
            raise AssertionError(
                f"broker did not exit within {limit} s of SIGTERM\n{self.log_tail()}"
            ) from None
        _CHILDREN.discard(proc)
        self._close_log()
        assert code == 0, f"broker exited with code {code} after SIGTERM\n{self.log_tail()}"
        return code

    def kill(self) -> None:
        """SIGKILL (``kill -9``) and reap the process."""
        self._require_running()
        self._hard_kill()

    def restart(self, *, clean: bool = True) -> BrokerProcess:
        """Stop (SIGTERM, or SIGKILL when ``clean=False``), then start on the same data dir/port."""
        if clean:
            self.stop()
        else:
            self.kill()
        return self.start()

    def close(self) -> None:
        """Teardown that never raises: SIGKILL if still running, close the log file."""
        if self.running:
            self._hard_kill()
        self._close_log()
        self.closed = True

    def __enter__(self) -> BrokerProcess:
        return self.start() if not self.running else self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ logs
    def log_tail(self, max_bytes: int = LOG_TAIL_BYTES) -> str:
        """The last ``max_bytes`` of the broker log (all runs), decoded leniently."""
        if self._log is not None:
            self._log.flush()
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - max_bytes))
                data = f.read()
        except FileNotFoundError:
            return "(no broker log)"
        prefix = f"----- broker log {self.log_path} (last {len(data)} of {size} bytes) -----\n"
        return prefix + data.decode("utf-8", errors="replace")

    # ------------------------------------------------------------------ internals
    def _require_running(self) -> subprocess.Popen[bytes]:
        if self._proc is None or self._proc.poll() is not None:
            raise RuntimeError(f"broker is not running (exit code {self.returncode})")
        return self._proc

    def _hard_kill(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        if proc is not None and proc.poll() is not None:
            _CHILDREN.discard(proc)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __repr__(self) -> str:
        state = "running" if self.running else f"exited({self.returncode})"
        return f"BrokerProcess({self.workdir}, port={self.port}, {state})"
