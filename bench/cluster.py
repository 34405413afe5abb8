"""A local combined-mode Strom cluster as broker processes, for benchmarks.

The topology is :mod:`broker.local_cluster`'s (``node_args``: node ``i`` has
``node.id=i``, ``process.roles=broker,controller``, client port ``client_port + i - 1``,
quorum port ``controller_port + i - 1``, data in ``<workdir>/node-<i>``), on free ports of
127.0.0.1 and a temporary directory instead of 9092/19092 and ``./data/cluster``.

    with LocalCluster(workdir, overrides={"default.replication.factor": "3"}) as cluster:
        cluster.kill(2); cluster.restart(2)
        cluster.partitions("topic")      # partition -> PartitionState (Metadata v12)

Every node runs in its own session (a terminal's Ctrl-C reaches only the benchmark, which
then stops the nodes); each node's stdout and stderr are appended to
``<workdir>/node-<i>.log``. ``close()`` (also on leaving the ``with`` block, and at
interpreter exit as a last resort) sends SIGTERM, waits, then SIGKILLs what is left.
Every wait is bounded.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from broker.local_cluster import HOST, node_args

REPO_ROOT = Path(__file__).resolve().parents[1]
STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 20.0

#: every node process not yet reaped, SIGKILLed at exit if ``close()`` never ran
_CHILDREN: set[subprocess.Popen[bytes]] = set()


@atexit.register
def _kill_leftovers() -> None:
    for proc in list(_CHILDREN):
        if proc.poll() is None:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)


def consecutive_free_ports(count: int, *, attempts: int = 200) -> int:
    """The first of ``count`` consecutive TCP ports free on 127.0.0.1 right now."""
    for _ in range(attempts):
        with socket.socket() as probe:
            probe.bind((HOST, 0))
            base = probe.getsockname()[1]
        if base + count > 65535:
            continue
        held: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                held.append(s)
                s.bind((HOST, port))
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
        return base
    raise RuntimeError(f"found no {count} consecutive free ports on {HOST}")


def wait_for(cond: Callable[[], Any], timeout: float, interval: float = 0.1) -> Any:
    """``cond()`` once it is truthy, or None after ``timeout`` seconds; OSError and
    ValueError from ``cond`` count as not yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = cond()
        except (OSError, ValueError):
            value = None
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


@dataclass(frozen=True)
class PartitionState:
    """One partition as a Metadata response describes it."""

    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    error_code: int
    leader_epoch: int = -1


def accepted_overrides(overrides: dict[str, str]) -> dict[str, str]:
    """The entries of ``overrides`` that ``broker.config.BrokerConfig`` knows (Kafka
    property ``a.b.c`` ↔ field ``a_b_c``); the broker would ignore the others."""
    from broker.config import BrokerConfig

    fields = BrokerConfig.model_fields
    return {k: v for k, v in overrides.items() if k.replace(".", "_") in fields}


class LocalCluster:
    """``nodes`` combined-mode broker processes on free ports under ``workdir``."""

    def __init__(self, workdir: Path, *, nodes: int = 3,
                 overrides: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.nodes = nodes
        self.overrides = dict(overrides or {})
        self.client_port = consecutive_free_ports(2 * nodes)
        self.controller_port = self.client_port + nodes
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    # ------------------------------------------------------------------ addresses
    def port(self, node_id: int) -> int:
        return self.client_port + node_id - 1

    def address(self, node_id: int) -> str:
        return f"{HOST}:{self.port(node_id)}"

    @property
    def bootstrap(self) -> str:
        return ",".join(self.address(i) for i in range(1, self.nodes + 1))

    def log_path(self, node_id: int) -> Path:
        return self.workdir / f"node-{node_id}.log"

    def running(self, node_id: int) -> bool:
        proc = self.procs.get(node_id)
        return proc is not None and proc.poll() is None

    def live_nodes(self) -> list[int]:
        return [i for i in range(1, self.nodes + 1) if self.running(i)]

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> LocalCluster:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Start every node; return once each has listened and Metadata lists them all."""
        for node_id in range(1, self.nodes + 1):
            self._spawn(node_id)
        for node_id in range(1, self.nodes + 1):
            self._wait_ready(node_id)
        expected = set(range(1, self.nodes + 1))
        if wait_for(lambda: self.brokers() == expected, STARTUP_TIMEOUT_S) is None:
            raise RuntimeError(f"brokers {sorted(expected)} not all registered after "
                               f"{STARTUP_TIMEOUT_S:.0f} s:\n{self.log_tails()}")

    def _ready_file(self, node_id: int) -> Path:
        return self.workdir / f"node-{node_id}.ready"

    def _spawn(self, node_id: int) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._ready_file(node_id).unlink(missing_ok=True)
        args = node_args(node_id, nodes=self.nodes, client_port=self.client_port,
                         controller_port=self.controller_port, data_dir=self.workdir,
                         extra=[f"{k}={v}" for k, v in self.overrides.items()])
        args += ["--ready-file", str(self._ready_file(node_id))]
        env = {**os.environ, "STROM_LOG_FORMAT": "json", "STROM_LOG_LEVEL": "WARNING"}
        with open(self.log_path(node_id), "ab") as log:
            proc = subprocess.Popen(args, cwd=REPO_ROOT, stdout=log, stderr=log, env=env,
                                    start_new_session=True)
        self.procs[node_id] = proc
        _CHILDREN.add(proc)

    def _wait_ready(self, node_id: int) -> None:
        proc = self.procs[node_id]
        ready = self._ready_file(node_id)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not ready.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"node {node_id} did not start (exit {proc.poll()}):\n"
                                   f"{self.log_tail(node_id)}")
            time.sleep(0.05)

    def kill(self, node_id: int) -> None:
        """SIGKILL node ``node_id`` and reap it (its page cache survives, as after kill -9)."""
        proc = self.procs[node_id]
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=STOP_TIMEOUT_S)
        _CHILDREN.discard(proc)

    def restart(self, node_id: int) -> None:
        """Start node ``node_id`` again on its data directory; return once it listens."""
        if self.running(node_id):
            raise RuntimeError(f"node {node_id} is still running")
        self._spawn(node_id)
        self._wait_ready(node_id)

    def close(self) -> None:
        """SIGTERM every running node, wait up to ``STOP_TIMEOUT_S``, SIGKILL the rest.
        Idempotent; never raises for a node that already exited."""
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=5)
            _CHILDREN.discard(proc)

    # ------------------------------------------------------------------ metadata
    def metadata(self, topics: list[str] | None = None, *, via: int | None = None) -> Any:
        """A Metadata v12 response from node ``via`` (default: the first live node that
        answers); no topic auto-creation. Raises OSError when no node answers."""
        from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic

        from net.wire import WireClient

        request = MetadataRequest(
            topics=None if topics is None else tuple(
                MetadataRequestTopic(topic_id=None, name=t) for t in topics),
            allow_auto_topic_creation=False, include_topic_authorized_operations=False)
        last: OSError = OSError("no live node")
        for node_id in [via] if via is not None else self.live_nodes():
            try:
                with WireClient(HOST, self.port(node_id), timeout=5) as client:
                    return client.request(request)
            except OSError as exc:
                last = exc
        raise last

    def active_controller(self) -> int:
        """Node id of the quorum leader (the active controller) as the first live node
        answering DescribeQuorum reports it; -1 when unknown."""
        from broker.cluster.quorum_cli import describe

        for node_id in self.live_nodes():
            try:
                return int(describe(f"{HOST}:{self.controller_port + node_id - 1}",
                                    timeout=3).leader_id)
            except (OSError, ValueError):
                continue
        return -1

    def brokers(self, *, via: int | None = None) -> set[int]:
        """Node ids of the brokers Metadata lists (registered and not fenced)."""
        return {int(b.node_id) for b in self.metadata([], via=via).brokers}

    def partitions(self, topic: str, *, via: int | None = None) -> dict[int, PartitionState]:
        """partition → its leader, replicas, ISR and error as Metadata reports them
        (empty when the topic is unknown)."""
        response = self.metadata([topic], via=via)
        out: dict[int, PartitionState] = {}
        for t in response.topics:
            if int(t.error_code) != 0:
                continue
            for p in t.partitions:
                out[int(p.partition_index)] = PartitionState(
                    int(p.leader_id), tuple(int(r) for r in p.replica_nodes),
                    tuple(int(r) for r in p.isr_nodes), int(p.error_code),
                    int(p.leader_epoch))
        return out

    def wait_full_isr(self, topic: str, timeout: float) -> bool:
        """Whether every partition of ``topic`` gets a leader and an ISR of all its
        replicas within ``timeout`` seconds."""

        def full() -> bool:
            parts = self.partitions(topic)
            return bool(parts) and all(
                p.leader >= 0 and p.error_code == 0 and set(p.isr) == set(p.replicas)
                for p in parts.values())

        return wait_for(full, timeout) is not None

    # ------------------------------------------------------------------ logs
    def log_tail(self, node_id: int, nbytes: int = 3000) -> str:
        try:
            return self.log_path(node_id).read_text(errors="replace")[-nbytes:]
        except OSError:
            return ""

    def log_tails(self, nbytes: int = 2000) -> str:
        return "\n".join(f"--- node {i} log tail ---\n{self.log_tail(i, nbytes)}"
                         for i in range(1, self.nodes + 1))
