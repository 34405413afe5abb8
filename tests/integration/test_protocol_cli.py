"""The ``strom serve`` command: ready file, config errors, env vars, signals, banner."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kio.schema.api_versions.v3.request import ApiVersionsRequest

from net.wire import WireClient

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 20.0


def _serve(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "broker", "serve",
           "--override", "listeners=PLAINTEXT://127.0.0.1:0",
           "--ready-file", str(tmp_path / "ready"), *args]
    return subprocess.Popen(cmd, cwd=REPO, env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _wait_ready(proc: subprocess.Popen, ready: Path) -> tuple[str, int]:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if ready.exists():
            text = ready.read_text()
            if text.endswith("\n"):
                host, _, port = text.strip().rpartition(":")
                return host, int(port)
        assert proc.poll() is None, proc.communicate()[0].decode()
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("no ready file")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_ready_file_banner_and_clean_exit(tmp_path: Path, sig: signal.Signals) -> None:
    proc = _serve(tmp_path, "--override", f"log.dirs={tmp_path / 'data'}")
    try:
        host, port = _wait_ready(proc, tmp_path / "ready")
        from kio.schema.api_versions.v0.request import ApiVersionsRequest

        with WireClient(host, port) as c:
            assert c.request(ApiVersionsRequest()).error_code == 0
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    lines = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
    banner = next(e for e in lines if e["event"] == "strom_started")
    assert banner["version"] and banner["advertised_apis"] >= 8
    assert banner["listeners"] == [f"PLAINTEXT://{host}:{port}"]
    assert banner["data_dir"] == str((tmp_path / "data").resolve())
    assert any(e["event"] == "strom_stopped" for e in lines)
    assert (tmp_path / "data" / "meta.properties").exists()


def test_invalid_value_is_rejected_naming_the_key(tmp_path: Path) -> None:
    proc = _serve(tmp_path, "--override", f"log.dirs={tmp_path / 'data'}",
                  "--override", "num.partitions=-3")
    out, _ = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 2
    assert b"num.partitions" in out
    assert not (tmp_path / "ready").exists()


def test_env_and_properties_file(tmp_path: Path) -> None:
    props = tmp_path / "server.properties"
    props.write_text(f"log.dirs={tmp_path / 'from-file'}\nnum.partitions=3\n")
    proc = _serve(tmp_path, "--config", str(props),
                  env={"STROM_LOG_DIRS": str(tmp_path / "from-env")})
    try:
        host, port = _wait_ready(proc, tmp_path / "ready")
        from kio.schema.metadata.v4.request import MetadataRequest, MetadataRequestTopic

        with WireClient(host, port) as c:
            resp = c.request(MetadataRequest(topics=(MetadataRequestTopic(name="auto"),),
                                             allow_auto_topic_creation=True))
            assert len(resp.topics[0].partitions) == 3  # num.partitions from the file
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert (tmp_path / "from-env" / "auto-0").is_dir()  # env beat the file
    assert not (tmp_path / "from-file").exists()


def test_port_in_use_fails_with_exit_code_1(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        proc = subprocess.Popen(
            [sys.executable, "-m", "broker", "serve",
             "--override", f"listeners=PLAINTEXT://127.0.0.1:{port}",
             "--override", f"log.dirs={tmp_path / 'data'}"],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out, _ = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 1
    assert f"strom: cannot listen on PLAINTEXT://127.0.0.1:{port}:".encode() in out, out
    assert b"address already in use" in out, out
    assert b"Traceback" not in out, out


def test_a_second_process_on_the_same_data_dir_is_refused(tmp_path: Path) -> None:
    """Two brokers appending to the same logs would corrupt them: the second is refused,
    names the first, and the first keeps serving."""
    data = tmp_path / "data"
    first = _serve(tmp_path, "--override", f"log.dirs={data}")
    try:
        host, port = _wait_ready(first, tmp_path / "ready")
        second = subprocess.Popen(
            [sys.executable, "-m", "broker", "serve",
             "--override", "listeners=PLAINTEXT://127.0.0.1:0",
             "--override", f"log.dirs={data}"],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out, _ = second.communicate(timeout=TIMEOUT)
        assert second.returncode == 1, out
        assert f"is in use by another Strom process (pid {first.pid})".encode() in out, out
        with WireClient(host, port, timeout=5) as client:
            resp = client.request(ApiVersionsRequest(client_software_name="t",
                                                     client_software_version="1"))
            assert int(resp.error_code) == 0
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=TIMEOUT) == 0


def test_a_data_dir_of_another_node_id_is_refused(tmp_path: Path) -> None:
    """meta.properties records the node id: starting node 2 on node 1's directory would
    serve node 1's logs and metadata as its own."""
    data = tmp_path / "data"
    first = _serve(tmp_path, "--override", f"log.dirs={data}")
    _wait_ready(first, tmp_path / "ready")
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=TIMEOUT) == 0
    other = _serve(tmp_path, "--override", f"log.dirs={data}", "--override", "node.id=2")
    out, _ = other.communicate(timeout=TIMEOUT)
    assert other.returncode == 1, out
    assert b"node.id 2 does not match node.id 1 stored in" in out, out
    assert b"Traceback" not in out, out
