"""Run kafkajs (Node.js) programs from tests.

kafkajs 2.2.4 is installed by npm into ``tests/integration/js/node_modules`` on first use
(the same place and version the groups tests use; ``node_modules/`` is git-ignored).
``kafkajs_env()`` returns the environment for ``node`` (``NODE_PATH``), or raises
``KafkajsUnavailable`` when node/npm are missing.  ``run_node(program, stdin_obj, env)``
runs ``node -e program`` with a JSON document on stdin, bounded by a timeout, asserts
exit code 0, and returns the JSON document the program printed last on stdout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

JS_DIR = Path(__file__).resolve().parents[1] / "integration" / "js"
KAFKAJS_VERSION = "2.2.4"


class KafkajsUnavailable(RuntimeError):
    """node or npm is not installed."""


def kafkajs_env() -> dict[str, str]:
    if shutil.which("node") is None or shutil.which("npm") is None:
        if os.environ.get("CI"):  # CI must run them: a skip there would pass untested
            raise AssertionError("node/npm not installed: CI runs the kafkajs tests")
        raise KafkajsUnavailable("node/npm not installed: kafkajs tests need Node.js and npm")
    package = JS_DIR / "node_modules" / "kafkajs" / "package.json"
    if not package.exists() or json.loads(package.read_text())["version"] != KAFKAJS_VERSION:
        JS_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "install", "--no-save", "--no-package-lock", "--silent",
             f"kafkajs@{KAFKAJS_VERSION}"],
            cwd=JS_DIR, check=True, timeout=180, capture_output=True,
        )  # fmt: skip
    return {"NODE_PATH": str(JS_DIR / "node_modules")}


def run_node(program: str, stdin_obj: Any, env: dict[str, str], timeout: float = 60) -> Any:
    proc = subprocess.run(
        ["node", "-e", program],
        input=json.dumps(stdin_obj).encode(),
        capture_output=True,
        timeout=timeout,
        env={**os.environ, **env},
        check=False,
    )
    assert proc.returncode == 0, (
        f"node exited {proc.returncode}\nstderr:\n{proc.stderr.decode(errors='replace')[-4000:]}"
    )
    lines = [ln for ln in proc.stdout.decode().splitlines() if ln.strip()]
    assert lines, "node printed nothing"
    return json.loads(lines[-1])
