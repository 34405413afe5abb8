"""``strom serve``: start order, signals and shutdown order of a node (a cluster member,
or — without ``controller.quorum.voters`` — a one-voter quorum of itself).

Start: open the metadata store and storage (refusing bad state with a message) → the
controller listener (controller role) → the quorum driver → (a lone node) adoption of the
topics an earlier version kept in ``__strom_topics.json`` (``legacy_topics``) → the client
listener (broker role) → broker registration and heartbeats → ready file (``host:port``
of the first client listener, or of the controller listener for a controller-only node).
Every listener not named in ``controller.listener.names`` is a client listener with a
server of its own; requests are answered with the endpoints of the listener they arrived
on. A lone node first waits (bounded) until it is registered and unfenced before it
accepts connections, so its first clients see it.

Stop (SIGTERM/SIGINT, or the quorum stopping on a fatal problem): controlled shutdown of
the broker (its partitions get new leaders or go offline at once), client listener, quorum
(resigning leadership with EndQuorumEpoch), controller listener, storage. Exit code 0 after
a clean stop, 1 when the quorum stopped on a fatal problem or startup failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import sys
from pathlib import Path
from typing import Any

from broker.banner import ClientListener, StartupInfo, render_banner, startup_fields
from broker.cluster.node import ClusterNode
from broker.config import BrokerConfig, parse_address, parse_ip_overrides
from broker.connection_quotas import ConnectionQuotas
from broker.metrics import BrokerMetrics, connection_quota_gauges, node_gauges
from broker.partition_metrics import partition_gauges
from broker.tls import TlsConfigError, listener_tls
from common.logging import get_logger, uses_console
from common.memory_pool import MemoryPool
from controller.raft_store import RaftStoreError

log = get_logger("strom")
#: a broker waits this long for the metadata log before serving clients (a lone node of a
#: cluster that cannot elect a leader yet starts serving anyway, with what it has)
CATCH_UP_WAIT_S = 5.0


def _advertised(config: BrokerConfig, client_name: str, host: str, port: int
                ) -> tuple[str, int]:
    """The (host, port) registered for listener ``client_name`` bound on ``host:port``:
    its ``advertised.listeners`` entry, with the bound port for port 0 and 127.0.0.1 for
    a wildcard or empty host."""
    advertised = next((li for li in config.advertised_listener_list if li.name == client_name),
                      None)
    adv_host = advertised.host if advertised else host
    adv_port = advertised.port if advertised and advertised.port else port
    if adv_host in ("", "0.0.0.0", "::"):
        adv_host = "127.0.0.1"
    return adv_host, adv_port


def _shown_host(host: str) -> str:
    """A bound host as a person on this machine reaches it (a wildcard: 127.0.0.1)."""
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host


async def _refuse(node: ClusterNode, problem: str, servers: list[Any]) -> int:
    """Startup failed after the node opened: say why, close what is open (``servers``
    that started, None for one that did not), exit code 1."""
    print(f"strom: {problem}", file=sys.stderr)
    log.error("startup_refused", problem=problem)
    for server in servers:
        if server is not None:
            await server.shutdown()
    await node.stop()
    if node.broker is not None:
        await node.broker.shutdown()
    node.release_data_dir()
    return 1


async def serve_cluster(config: BrokerConfig, unknown: dict[str, str], ready_file: str | None,
                        *, write_ready: Any) -> int:
    from broker.cli import strom_version
    from broker.server import KafkaServer

    for key in sorted(unknown):
        log.warning("unknown_configuration_ignored", key=key)
    try:  # key material first: a bad keystore stops startup before anything opens
        tls = listener_tls(config)
    except TlsConfigError as exc:
        print(f"strom: {exc}", file=sys.stderr)
        log.error("startup_refused", problem=str(exc))
        return 2
    quotas = ConnectionQuotas(
        max_connections=config.max_connections, per_ip=config.max_connections_per_ip,
        per_ip_overrides=parse_ip_overrides(config.max_connections_per_ip_overrides),
        creation_rate=config.max_connection_creation_rate,
        ip_quotas=lambda: node.quorum.image.quotas, window_num=config.quota_window_num,
        window_ms=config.quota_window_size_seconds * 1000)
    pool = MemoryPool(config.queued_max_request_bytes) \
        if config.queued_max_request_bytes > 0 else None

    def tls_of(name: str | None) -> dict[str, Any]:
        entry = tls.get(name or "")
        return {} if entry is None else {"ssl_context": entry.context,
                                         "principal_rules": entry.principal_rules}

    try:
        node = ClusterNode(config)
        notes = node.open()
    except (ValueError, RaftStoreError, OSError) as exc:
        print(f"strom: {exc}", file=sys.stderr)
        log.error("startup_refused", problem=str(exc))
        return 1
    for note in notes:
        log.warning("storage_startup_note", note=note)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    node.quorum.on_fatal(lambda problem: stop.set())

    controller_server = None
    ready_address: tuple[str, int] | None = None
    if node.is_controller and node.controller_listener is not None:
        controller_server = KafkaServer(node.controller_endpoint(),  # type: ignore[arg-type]
                                        node.controller_listener.name,
                                        **tls_of(node.controller_listener.name))
        try:
            ready_address = await controller_server.start(node.controller_listener.host,
                                                          node.controller_listener.port)
        except OSError as exc:
            return await _refuse(node, f"cannot listen on {node.controller_listener}: {exc}",
                                 [])
    await node.start_quorum()
    if node.single_voter:
        await node.adopt_legacy_topics()
    if node.is_broker and not await node.wait_caught_up(CATCH_UP_WAIT_S):
        log.warning("metadata_not_caught_up", waited_s=CATCH_UP_WAIT_S,
                    leader=node.quorum.leader_id, applied=node.quorum.image.offset,
                    high_watermark=node.quorum.high_watermark)
    client_servers: list[KafkaServer] = []
    advertised: list[tuple[str, str, int]] = []
    bound: list[str] = []
    shown: list[ClientListener] = []  # for the banner
    controller_address = ready_address
    broker = node.broker
    kinesis_server = None
    if broker is not None:
        await broker.run_startup_hooks()
        # A lone node is the only broker its clients can learn of: it refuses connections
        # until it is registered and unfenced, so no client reads a Metadata answer listing
        # no broker and no leader (librdkafka then stops asking until it reconnects).
        for listener in node.client_listeners:
            server = KafkaServer(broker, listener.name, quotas=quotas, pool=pool,
                                 **tls_of(listener.name))
            try:
                host, port = await server.start(listener.host, listener.port,
                                                serving=not node.single_voter)
            except OSError as exc:
                return await _refuse(node, f"cannot listen on {listener}: {exc}",
                                     [*client_servers, controller_server])
            client_servers.append(server)
            advertised.append((listener.name, *_advertised(config, listener.name, host, port)))
            bound.append(f"{listener.name}://{host}:{port}")
            _, adv_host, adv_port = advertised[-1]
            shown.append(ClientListener(listener.name, f"{adv_host}:{adv_port}",
                                        f"{host}:{port}", config.security_protocol(listener.name)))
            if len(client_servers) == 1:
                ready_address = (host, port)
        if config.strom_kinesis_listener:  # registered as listener KINESIS (forwarding)
            from broker.kinesis_front import start_kinesis
            try:
                kinesis_server = await start_kinesis(node, config, advertised)
            except (ValueError, OSError) as exc:
                return await _refuse(node, f"cannot serve the Kinesis API on "
                                           f"{config.strom_kinesis_listener}: {exc}",
                                     [*client_servers, controller_server])
        broker.start_background()
        node.start_broker(advertised)
    metrics_server = None
    metrics_url = None
    console_server = None
    console_url = None
    console_shared = bool(config.strom_console_address) and \
        config.strom_console_address == config.strom_metrics_address
    if config.strom_metrics_address:
        registry = (broker.metrics if broker is not None else BrokerMetrics()).registry
        node_gauges(registry, node, lambda: sum(len(s.connections) for s in client_servers))
        partition_gauges(registry, node)
        connection_quota_gauges(registry, quotas)
        from broker.metrics_http import MetricsServer  # aiohttp: only with an address

        metrics_server = MetricsServer(registry)
        if console_shared:
            from broker.console.routes import add_console

            add_console(metrics_server.app, node)
        try:
            metrics_host, metrics_port = await metrics_server.start(
                *parse_address(config.strom_metrics_address))
            metrics_url = f"http://{_shown_host(metrics_host)}:{metrics_port}/metrics"
            if console_shared:
                console_url = f"http://{_shown_host(metrics_host)}:{metrics_port}/"
        except OSError as exc:
            return await _refuse(node, f"cannot serve metrics on "
                                       f"{config.strom_metrics_address}: {exc}",
                                 [*client_servers, controller_server])
    if config.strom_console_address and not console_shared:
        from broker.console.routes import add_console
        from broker.metrics_http import HttpServer

        console_server = HttpServer()
        add_console(console_server.app, node)
        try:
            console_host, console_port = await console_server.start(
                *parse_address(config.strom_console_address))
            console_url = f"http://{_shown_host(console_host)}:{console_port}/"
        except OSError as exc:
            return await _refuse(node, f"cannot serve the console on "
                                       f"{config.strom_console_address}: {exc}",
                                 [*client_servers, controller_server, metrics_server])
    if broker is not None and node.single_voter:
        if not await node.wait_serving(CATCH_UP_WAIT_S):
            log.warning("broker_not_unfenced", waited_s=CATCH_UP_WAIT_S)
        for server in client_servers:
            await server.start_serving()
    # Everything built at startup (modules, kio schemas, topic table) lives for the whole
    # process: move it out of the collector's sight so full collections stay short.
    gc.collect()
    gc.freeze()
    info = StartupInfo(
        version=strom_version(), node_id=config.node_id, roles=config.process_roles,
        cluster_id=node.cluster_id, data_dir=str(config.data_dir.resolve()),
        listeners=tuple(shown), metrics_url=metrics_url, console_url=console_url,
        controller=f"{_shown_host(controller_address[0])}:{controller_address[1]}"
        if controller_address else None)
    log.info("strom_started", version=info.version, node_id=config.node_id,
             roles=config.process_roles, cluster_id=node.cluster_id,
             voters=sorted(node.voters),
             listeners=bound,
             advertised=[f"{name}://{host}:{port}" for name, host, port in advertised],
             advertised_apis=len(broker.registry) if broker is not None else 0,
             data_dir=str(config.data_dir.resolve()),
             controller_listener=str(node.controller_listener)
             if node.controller_listener else None,
             **startup_fields(info))
    if uses_console(config.log_format):  # JSON logs stay JSON: the event above says it all
        print(render_banner(info), file=sys.stderr, end="", flush=True)
    if ready_file and ready_address is not None:
        write_ready(ready_file, *ready_address)
    await stop.wait()
    log.info("strom_stopping", fatal=node.quorum.fatal)
    if node.quorum.fatal is None and not node.single_voter:
        # a lone node has nobody to hand its partitions to: it keeps them (and answers its
        # in-flight requests) until the listener closes
        with contextlib.suppress(Exception):
            await node.controlled_shutdown()
    for server in client_servers:
        await server.shutdown()
    if metrics_server is not None:
        await metrics_server.shutdown()
    if console_server is not None:
        await console_server.shutdown()
    if kinesis_server is not None:
        await kinesis_server.shutdown()
    await node.stop()
    if controller_server is not None:
        await controller_server.shutdown()
    if broker is not None:
        await broker.shutdown()
    node.release_data_dir()
    if ready_file:
        with contextlib.suppress(OSError):
            Path(ready_file).unlink()
    if node.quorum.fatal is not None:
        print(f"strom: stopped: {node.quorum.fatal}", file=sys.stderr)
        return 1
    log.info("strom_stopped")
    return 0
