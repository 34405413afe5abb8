"""The console's aiohttp routes over a ``ClusterNode`` (``add_console``). GET only;
an unknown topic is a 404 page; a message browser query that does not parse is a 400
page naming the field. ``/api/stats`` is the JSON the live charts poll
(``snapshot.stats``); ``/static/`` serves ``static/live.js``.

The console has no login: on a broker with ``authorizer.class.name`` set, whose ACLs it
could not apply, every page answers 403 saying so (nothing behind ACLs leaks over HTTP).

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
from broker.console.pages import BrowseQuery
from net.session import ClientError
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


LOCKED = ("The console has no login, so it is off on a broker with authorizer.class.name "
          "set: its ACLs could not be applied here. Use a Kafka client with credentials.")


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
    """Add the console's pages (see ``broker.console``) to ``app``."""
    if getattr(node.config, "authorizer_class_name", ""):
        async def locked(_request: web.Request) -> web.Response:
            return web.Response(text=pages.layout("Console off", f"<p id=\"locked\">"
                                                  f"{escape(LOCKED)}</p>"),
                                status=403, content_type=_HTML)

        for path in ("/", "/topics/{name}", "/topics/{name}/messages", "/groups",
                     "/api/stats"):
            app.router.add_get(path, locked)
        return
    source = NodeSource(node)
    add_pages(app, lambda _request: source)


def add_pages(app: web.Application, source_for: Callable[[web.Request], Source]) -> None:
    """The console's GET pages over the ``Source`` that ``source_for(request)`` gives
    (it may raise an aiohttp HTTP exception, e.g. 401, instead). A cluster that cannot
    be asked (``net.session.ClientError``) is a 502 page saying why."""

    def guarded(handler: Handler) -> Handler:
        async def run(request: web.Request) -> web.StreamResponse:
            try:
                return await handler(request)
            except ClientError as exc:
                return web.Response(text=pages.layout("Cluster unavailable",
                                                      f'<p id="unavailable" class="bad">'
                                                      f"{escape(str(exc))}</p>"),
                                    status=502, content_type=_HTML)
        return run

    async def overview(request: web.Request) -> web.Response:
        cluster = await source_for(request).cluster()
        return web.Response(text=pages.overview(cluster), content_type=_HTML)

    async def topic(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        cluster = await source_for(request).cluster()
        found = next((t for t in cluster.topics if t.name == name), None)
        if found is None:
            return web.Response(text=pages.not_found(f"No topic {name!r}."), status=404,
                                content_type=_HTML)
        return web.Response(text=pages.topic(cluster, found), content_type=_HTML)

    async def groups(request: web.Request) -> web.Response:
        source = source_for(request)
        cluster = await source.cluster()
        return web.Response(text=pages.groups(cluster.cluster_id, cluster.node_id,
                                              await source.groups()), content_type=_HTML)

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

    app.router.add_get("/", guarded(overview))
    app.router.add_get("/api/stats", guarded(stats))
    app.router.add_static("/static/", STATIC)
    app.router.add_get("/topics/{name}/messages", guarded(messages))
    app.router.add_get("/topics/{name}", guarded(topic))
    app.router.add_get("/groups", guarded(groups))
