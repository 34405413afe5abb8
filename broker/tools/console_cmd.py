"""``strom console``: the web console (``broker.console``) against any cluster, its values
asked over the Kafka protocol (``broker.console.remote``), served on ``--listen`` until
Ctrl-C or SIGTERM. Prints ``console on http://HOST:PORT/`` once listening. Read-only
unless ``--enable-actions`` (``broker.console.actions``). It asks and acts with the
connection options it was started with (``--sasl-*``): the cluster's authorizer applies to
that principal, whoever uses the browser, so keep ``--listen`` on 127.0.0.1. With
``--login`` it asks each browser user for HTTP Basic credentials instead and logs in to
the cluster as that user (``broker.console.login``), so the ACLs apply per user."""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

from broker.tools.context import UsageError, make_client
from broker.tools.topic_cmd import leaf

DEFAULT_LISTEN = "127.0.0.1:9645"


def add_parser(sub: Any, common: Any) -> None:
    p = leaf(sub, "console", "serve the web console for a cluster, asked over the Kafka "
             "protocol (Strom or Apache Kafka)",
             "strom console -b kafka-1:9092 --listen 127.0.0.1:9645", [common])
    p.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT",
                   help=f"where to serve it (default {DEFAULT_LISTEN}; port 0: any free)")
    p.add_argument("--enable-actions", action="store_true",
                   help="forms that create or delete topics and reset group offsets "
                        "(POST with a CSRF token; default: read-only)")
    p.add_argument("--login", action="store_true",
                   help="ask each browser user for HTTP Basic credentials and log in to "
                        "the cluster as them (SASL, --sasl-mechanism; default PLAIN), so "
                        "the cluster's ACLs apply per user")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    host, sep, port_text = args.listen.strip().rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        raise UsageError(f"bad --listen {args.listen!r}: expected HOST:PORT (port 0: any)")
    host, port = host.strip("[]"), int(port_text)
    with make_client(args) as client:  # an unreachable cluster fails here, in one line
        if args.login:
            client.any_session()  # ApiVersions: answered before any login
        else:
            client.metadata([])
    return asyncio.run(_serve(args, host, port))


async def _serve(args: argparse.Namespace, host: str, port: int) -> int:
    from broker.console.actions import Actions
    from broker.console.remote import ProtocolSource
    from broker.console.routes import add_pages
    from broker.metrics_http import HttpServer

    server = HttpServer()
    source = None
    if args.login:
        from broker.console.login import BasicLogin

        with make_client(args) as client:
            bootstrap = ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}"
                                 for h, p in client.bootstrap)
        mechanism = (args.sasl_mechanism or "PLAIN").upper()
        login = BasicLogin(lambda: bootstrap, lambda _user: mechanism)
        actions = Actions(login.client_for, login.user_of) if args.enable_actions else None
        add_pages(server.app, login.source_for, actions, authenticate=login.user_of)
    else:
        source = ProtocolSource(lambda: make_client(args))
        actions = (Actions(lambda _request: make_client(args)) if args.enable_actions
                   else None)
        add_pages(server.app, lambda _request: source, actions)
    try:
        bound_host, bound_port = await server.start(host, port)
    except OSError as exc:
        raise UsageError(f"cannot listen on {args.listen}: {exc.strerror or exc}") from None
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    print(f"console on http://{shown}:{bound_port}/", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.shutdown()
        if source is not None:
            source.close()
    return 0
