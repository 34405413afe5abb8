"""A local combined-mode cluster as processes on one machine (``make cluster``)::

    python -m broker.local_cluster [--nodes 3] [--data-dir ./data/cluster]
        [--client-port 9092] [--controller-port 19092] [--metrics-port 9644]
        [--kinesis-port 4567] [--override KEY=VALUE ...]

Node ``i`` (1-based) is ``node.id=i`` with ``process.roles=broker,controller``, listens
for clients on ``127.0.0.1:<client-port + i - 1>`` and for the quorum on
``127.0.0.1:<controller-port + i - 1>``, serves Prometheus metrics on
``127.0.0.1:<metrics-port + i - 1>/metrics`` and the web console on the same port
(``--metrics-port 0``: neither), serves the
Kinesis API on ``http://127.0.0.1:<kinesis-port + i - 1>`` (``--kinesis-port 0``: none),
and keeps its data in ``<data-dir>/node-<i>``.
All share ``controller.quorum.voters=1@127.0.0.1:19092,2@127.0.0.1:19093,...`` and
``cluster.id`` (``CLUSTER_ID``). Clients bootstrap with any node, e.g.
``bootstrap.servers=127.0.0.1:9092``.

Ctrl-C (SIGINT) or SIGTERM stops every node with SIGTERM (each shuts down cleanly:
controlled shutdown, quorum resignation, storage flush) and waits for them; a node that
has not exited after ``--stop-timeout`` seconds is killed. If a node exits on its own the
others keep running and the exit is reported.

``node_args(...)`` gives the ``strom serve`` arguments of one node: the docker-compose
file and the tests use the same topology (``topology()``).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

CLUSTER_ID = "strom-local-cluster"
HOST = "127.0.0.1"


def voters_spec(nodes: int, controller_port: int, host: str = HOST) -> str:
    return ",".join(f"{i}@{host}:{controller_port + i - 1}" for i in range(1, nodes + 1))


def topology(nodes: int = 3, client_port: int = 9092, controller_port: int = 19092,
             metrics_port: int = 9644, kinesis_port: int = 4567
             ) -> dict[int, dict[str, object]]:
    """node id → client, controller, metrics and Kinesis port and the shared voter list."""
    voters = voters_spec(nodes, controller_port)
    return {i: {"client_port": client_port + i - 1, "controller_port": controller_port + i - 1,
                "metrics_port": metrics_port + i - 1, "kinesis_port": kinesis_port + i - 1,
                "voters": voters}
            for i in range(1, nodes + 1)}


def node_overrides(node_id: int, *, nodes: int, client_port: int, controller_port: int,
                   data_dir: Path, host: str = HOST, metrics_port: int = 0,
                   kinesis_port: int = 0) -> dict[str, str]:
    http = f"{host}:{metrics_port + node_id - 1}"
    metrics = {"strom.metrics.address": http, "strom.console.address": http} \
        if metrics_port else {}
    if kinesis_port:
        metrics["strom.kinesis.listener"] = f"http://{host}:{kinesis_port + node_id - 1}"
    return {
        "node.id": str(node_id),
        "process.roles": "broker,controller",
        "cluster.id": CLUSTER_ID,
        "controller.quorum.voters": voters_spec(nodes, controller_port, host),
        "controller.listener.names": "CONTROLLER",
        "listeners": f"PLAINTEXT://{host}:{client_port + node_id - 1},"
                     f"CONTROLLER://{host}:{controller_port + node_id - 1}",
        "advertised.listeners": f"PLAINTEXT://{host}:{client_port + node_id - 1}",
        "log.dirs": str(data_dir / f"node-{node_id}"),
        "num.partitions": "3",
        "default.replication.factor": str(min(3, nodes)),
        "min.insync.replicas": str(min(2, nodes)),
        **metrics,
    }


def node_args(node_id: int, *, nodes: int, client_port: int, controller_port: int,
              data_dir: Path, metrics_port: int = 0, extra: list[str] | None = None,
              kinesis_port: int = 0) -> list[str]:
    overrides = node_overrides(node_id, nodes=nodes, client_port=client_port,
                               controller_port=controller_port, data_dir=data_dir,
                               metrics_port=metrics_port, kinesis_port=kinesis_port)
    args = [sys.executable, "-m", "broker", "serve"]
    for key, value in overrides.items():
        args += ["--override", f"{key}={value}"]
    for item in extra or []:
        args += ["--override", item]
    return args


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m broker.local_cluster",
                                     description="run a local combined-mode Strom cluster")
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--data-dir", default="./data/cluster")
    parser.add_argument("--client-port", type=int, default=9092)
    parser.add_argument("--controller-port", type=int, default=19092)
    parser.add_argument("--metrics-port", type=int, default=9644,
                        help="first Prometheus metrics port (0: no metrics)")
    parser.add_argument("--kinesis-port", type=int, default=4567,
                        help="first Kinesis API port (0: no Kinesis API)")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="extra property for every node (repeatable)")
    parser.add_argument("--stop-timeout", type=float, default=20.0)
    args = parser.parse_args(argv)
    if args.nodes < 1:
        parser.error("--nodes must be at least 1")
    data_dir = Path(args.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    procs: dict[int, subprocess.Popen[bytes]] = {}
    stopping = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    for node_id in range(1, args.nodes + 1):
        cmd = node_args(node_id, nodes=args.nodes, client_port=args.client_port,
                        controller_port=args.controller_port, data_dir=data_dir,
                        metrics_port=args.metrics_port, extra=args.override,
                        kinesis_port=args.kinesis_port)
        # own process group: the terminal's Ctrl-C reaches only this supervisor, which
        # then stops the nodes in order
        procs[node_id] = subprocess.Popen(cmd, start_new_session=True)
    bootstrap = ",".join(f"{HOST}:{args.client_port + i}" for i in range(args.nodes))
    print(f"strom cluster: {args.nodes} nodes, bootstrap.servers={bootstrap}, "
          f"controllers {voters_spec(args.nodes, args.controller_port)}, data {data_dir}; "
          "Ctrl-C stops", flush=True)
    reported: set[int] = set()
    while not stopping:
        for node_id, proc in procs.items():
            code = proc.poll()
            if code is not None and node_id not in reported:
                reported.add(node_id)
                print(f"strom cluster: node {node_id} exited with code {code}", flush=True)
        if len(reported) == len(procs):
            break
        time.sleep(0.2)
    print("strom cluster: stopping", flush=True)
    for proc in procs.values():
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + args.stop_timeout
    worst = 0
    for node_id, proc in procs.items():
        try:
            code = proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            print(f"strom cluster: node {node_id} did not stop in time; killing it", flush=True)
            proc.kill()
            code = proc.wait()
        worst = worst or code
    print("strom cluster: stopped", flush=True)
    return 0 if worst in (0, -signal.SIGTERM) else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
