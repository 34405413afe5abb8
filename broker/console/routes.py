"""The console's aiohttp routes over a ``ClusterNode`` (``add_console``). GET only;
an unknown topic is a 404 page; a message browser query that does not parse is a 400
page naming the field. ``/api/stats`` is the JSON the live charts poll
(``snapshot.stats``); ``/static/`` serves ``static/live.js``.

On a broker with ``authorizer.class.name`` set every route needs a login
(``broker.console.login``: HTTP Basic, checked by the broker's own SASL listener, the
pages asked as that user so its ACLs apply); without a SASL_PLAINTEXT listener to check
it on, every page answers 403 saying so (nothing behind ACLs leaks over HTTP). The POST
actions of ``broker.console.actions`` are there only when enabled.

``/topics/{name}/messages`` query: ``partition`` (default 0), ``offset`` (>= 0) or
``timestamp`` (ms since the epoch or ISO 8601; without a zone: UTC) — neither: the last
records —, ``limit`` (1-500, default 20), ``decode`` (utf8, json, hex).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from broker.console import browse, pages, snapshot
from broker.console.actions import Actions
from broker.console.login import unauthorized
from broker.console.pages import BrowseQuery
from net.kafka_client import KafkaClient
from net.session import AuthenticationFailed, ClientError
from protocol.records import Record

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

MAX_LIMIT = 500
STATIC = Path(__file__).parent / "static"


def parse_query(query: Any) -> BrowseQuery:
    """A ``BrowseQuery`` from the page's query string; ValueError names the bad field."""

    def integer(name: str, low: int, high: int | None = None) -> int | None:
        raw = query.get(name, "").strip()
        if not raw:
            return None
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"{name} must be a whole number, not {raw!r}") from None
        if value < low or (high is not None and value > high):
            bound = f"between {low} and {high}" if high is not None else f">= {low}"
            raise ValueError(f"{name} must be {bound}, not {value}")
        return value

    timestamp = query.get("timestamp", "").strip()
    timestamp_ms = None
    if timestamp:
        if timestamp.lstrip("-").isdigit():
            timestamp_ms = int(timestamp)
        else:
            try:
                when = datetime.fromisoformat(timestamp)
            except ValueError:
                raise ValueError(f"timestamp must be ms since the epoch or ISO 8601, "
                                 f"not {timestamp!r}") from None
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            timestamp_ms = int(when.timestamp() * 1000)
    decoder = query.get("decode", "utf8") or "utf8"
    if decoder not in browse.DECODERS:
        raise ValueError(f"decode must be one of {', '.join(browse.DECODERS)}, "
                         f"not {decoder!r}")
    partition = integer("partition", 0)
    limit = integer("limit", 1, MAX_LIMIT)
    return BrowseQuery(partition or 0, integer("offset", 0), timestamp_ms,
                       20 if limit is None else limit, decoder)

_HTML = "text/html"


LOCKED = ("The console has no login on this broker: with authorizer.class.name set it "
          "logs users in over a SASL_PLAINTEXT listener (HTTP Basic, see "
          "broker.console.login), and this broker has none. Use a Kafka client with "
          "credentials.")


class Source(Protocol):
    """Where the pages' values come from: the node's own state (``NodeSource``) or a
    cluster asked over the Kafka protocol (``broker.console.remote.ProtocolSource``)."""

    async def cluster(self) -> snapshot.Cluster: ...

    async def groups(self) -> list[snapshot.Group]: ...

    async def records(self, topic: snapshot.TopicRow, q: BrowseQuery
                      ) -> tuple[list[Record], str]: ...

    async def stats(self, now_ms: int) -> dict[str, Any]: ...


class NodeSource:
    """The in-process source: ``snapshot`` over a ``ClusterNode`` (on the event loop)."""

    def __init__(self, node: Any) -> None:
        self.node = node

    async def cluster(self) -> snapshot.Cluster:
        return snapshot.cluster(self.node)

    async def groups(self) -> list[snapshot.Group]:
        return snapshot.groups(self.node)

    async def records(self, topic: snapshot.TopicRow, q: BrowseQuery
                      ) -> tuple[list[Record], str]:
        node, name = self.node, topic.name
        plog = snapshot.local_log(node, name, q.partition)
        if plog is None:
            leader = next(p.leader for p in topic.partitions if p.partition == q.partition)
            return [], (f"node {node.node_id} has no replica of {name}-{q.partition}: "
                        f"browse it on the console of its leader, broker {leader}")
        try:
            start = browse.start_offset(plog, q.offset, q.timestamp_ms, q.limit)
            return browse.read_records(plog, start, q.limit), ""
        except Exception as exc:  # the log moved under us (retention, deletion)
            return [], f"could not read {name}-{q.partition}: {exc}"

    async def stats(self, now_ms: int) -> dict[str, Any]:
        return snapshot.stats(self.node, now_ms)


def add_console(app: web.Application, node: Any) -> None:
    """Add the console's pages (see ``broker.console``) to ``app``: in-process values
    without an authorizer; with one, a login (``broker.console.login``) and the values
    asked as the logged-in user. Actions when ``strom.console.actions.enabled``."""
    config = node.config
    enabled = bool(getattr(config, "strom_console_actions_enabled", False))
    if getattr(config, "authorizer_class_name", ""):
        from broker.console.login import node_login

        if not any(config.security_protocol(li.name) == "SASL_PLAINTEXT"
                   for li in config.listener_list):
            async def locked(_request: web.Request) -> web.Response:
                return web.Response(text=pages.layout("Console off", f"<p id=\"locked\">"
                                                      f"{escape(LOCKED)}</p>"),
                                    status=403, content_type=_HTML)

            for path in ("/", "/topics/{name}", "/topics/{name}/messages", "/groups",
                         "/api/stats"):
                app.router.add_get(path, locked)
            return
        login = node_login(node)
        add_pages(app, login.source_for,
                  Actions(login.client_for, login.user_of) if enabled else None,
                  authenticate=login.user_of)
        return
    source = NodeSource(node)

    def own_client(_request: web.Request) -> KafkaClient:
        """A client of this node's first PLAINTEXT listener (no authorizer: any will do)."""
        for name, host, port in getattr(node, "advertised", ()):
            if config.security_protocol(name) == "PLAINTEXT":
                return KafkaClient(f"{host}:{port}", client_id="strom-console")
        raise ClientError("this broker has no PLAINTEXT listener for the console's actions")

    add_pages(app, lambda _request: source, Actions(own_client) if enabled else None)


def add_pages(app: web.Application, source_for: Callable[[web.Request], Source],
              actions: Actions | None = None,
              authenticate: Callable[[web.Request], Any] | None = None) -> None:
    """The console's GET pages over the ``Source`` that ``source_for(request)`` gives
    (it may raise an aiohttp HTTP exception, e.g. 401, instead), and the POST routes of
    ``actions`` (None: read-only, no forms). ``authenticate(request)`` runs first on every
    route, the static files included (it raises 401 without a login). A cluster that
    cannot be asked (``net.session.ClientError``) is a 502 page saying why; a login it
    refuses (``AuthenticationFailed``) a 401."""

    def token(request: web.Request) -> str | None:
        return actions.token(request) if actions is not None else None

    def guarded(handler: Handler) -> Handler:
        async def run(request: web.Request) -> web.StreamResponse:
            try:
                if authenticate is not None:
                    authenticate(request)
                return await handler(request)
            except AuthenticationFailed as exc:
                raise unauthorized(f"Login refused: {exc}") from None
            except ClientError as exc:
                return web.Response(text=pages.layout("Cluster unavailable",
                                                      f'<p id="unavailable" class="bad">'
                                                      f"{escape(str(exc))}</p>"),
                                    status=502, content_type=_HTML)
        return run

    async def overview(request: web.Request) -> web.Response:
        cluster = await source_for(request).cluster()
        return web.Response(text=pages.overview(cluster, token(request)), content_type=_HTML)

    async def topic(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        cluster = await source_for(request).cluster()
        found = next((t for t in cluster.topics if t.name == name), None)
        if found is None:
            return web.Response(text=pages.not_found(f"No topic {name!r}."), status=404,
                                content_type=_HTML)
        return web.Response(text=pages.topic(cluster, found, token(request)),
                            content_type=_HTML)

    async def groups(request: web.Request) -> web.Response:
        source = source_for(request)
        cluster = await source.cluster()
        return web.Response(text=pages.groups(cluster.cluster_id, cluster.node_id,
                                              await source.groups(), token(request)),
                            content_type=_HTML)

    async def messages(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        source = source_for(request)
        cluster = await source.cluster()
        found = next((t for t in cluster.topics if t.name == name), None)
        if found is None:
            return web.Response(text=pages.not_found(f"No topic {name!r}."), status=404,
                                content_type=_HTML)
        partitions = [p.partition for p in found.partitions]
        try:
            q = parse_query(request.query)
        except ValueError as exc:
            return web.Response(text=pages.messages(cluster.cluster_id, name, partitions,
                                                    BrowseQuery(), [], str(exc)),
                                status=400, content_type=_HTML)
        records: list[Record] = []
        if q.partition not in partitions:
            error = f"{name} has no partition {q.partition}"
        else:
            records, error = await source.records(found, q)
        return web.Response(text=pages.messages(cluster.cluster_id, name, partitions, q,
                                                records, error), content_type=_HTML)

    async def stats(request: web.Request) -> web.Response:
        data = await source_for(request).stats(int(time.time() * 1000))
        return web.json_response(data, headers={"Cache-Control": "no-store"})

    async def live_js(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "live.js")

    app.router.add_get("/", guarded(overview))
    app.router.add_get("/api/stats", guarded(stats))
    app.router.add_get("/static/live.js", guarded(live_js))
    app.router.add_get("/topics/{name}/messages", guarded(messages))
    app.router.add_get("/topics/{name}", guarded(topic))
    app.router.add_get("/groups", guarded(groups))
    if actions is not None:
        actions.add_routes(app, guarded)
