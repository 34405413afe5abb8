"""Run the real ``strom`` command (``python -m broker.cli``) in a subprocess for tests.

``strom(*args, input=b"", env={...}, timeout=30)`` returns the ``CompletedProcess`` with
bytes stdout/stderr. The child gets a clean environment for the tools: no
``STROM_BROKERS`` / ``STROM_SASL_*`` / ``STROM_PROFILE`` from the caller and a profile
file path that does not exist, unless ``env`` sets them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.broker import REPO_ROOT

TOOL_ENV = ("STROM_BROKERS", "STROM_SASL_USERNAME", "STROM_SASL_PASSWORD", "STROM_PROFILE",
            "STROM_PROFILE_FILE")


def strom(*args: str, input: bytes | None = None, env: dict[str, str] | None = None,
          timeout: float = 30.0) -> subprocess.CompletedProcess[bytes]:
    base = {k: v for k, v in os.environ.items() if k not in TOOL_ENV}
    base["STROM_PROFILE_FILE"] = str(Path(REPO_ROOT) / ".no-such-strom-profile.toml")
    return subprocess.run([sys.executable, "-m", "broker.cli", *args], cwd=REPO_ROOT,
                          input=input, capture_output=True, timeout=timeout,
                          env={**base, **(env or {})}, check=False)


def one_line_error(proc: subprocess.CompletedProcess[bytes]) -> str:
    """The single stderr line of a failed command (asserts there is exactly one and no
    traceback)."""
    err = proc.stderr.decode()
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]
