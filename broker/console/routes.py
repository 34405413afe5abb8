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
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from aiohttp import web

from broker.console import browse, pages, snapshot
from broker.console.pages import BrowseQuery

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

    async def overview(_request: web.Request) -> web.Response:
        return web.Response(text=pages.overview(snapshot.cluster(node)), content_type=_HTML)

    async def topic(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        cluster = snapshot.cluster(node)
        found = next((t for t in cluster.topics if t.name == name), None)
        if found is None:
            return web.Response(text=pages.not_found(f"No topic {name!r}."), status=404,
                                content_type=_HTML)
        return web.Response(text=pages.topic(cluster, found), content_type=_HTML)

    async def groups(_request: web.Request) -> web.Response:
        return web.Response(text=pages.groups(node.cluster_id, node.node_id,
                                              snapshot.groups(node)), content_type=_HTML)

    async def messages(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        found = next((t for t in snapshot.cluster(node).topics if t.name == name), None)
        if found is None:
            return web.Response(text=pages.not_found(f"No topic {name!r}."), status=404,
                                content_type=_HTML)
        partitions = [p.partition for p in found.partitions]
        try:
            q = parse_query(request.query)
        except ValueError as exc:
            return web.Response(text=pages.messages(node.cluster_id, name, partitions,
                                                    BrowseQuery(), [], str(exc)),
                                status=400, content_type=_HTML)
        records, error = [], ""
        if q.partition not in partitions:
            error = f"{name} has no partition {q.partition}"
        else:
            plog = snapshot.local_log(node, name, q.partition)
            if plog is None:
                leader = found.partitions[partitions.index(q.partition)].leader
                error = (f"node {node.node_id} has no replica of {name}-{q.partition}: "
                         f"browse it on the console of its leader, broker {leader}")
            else:
                try:
                    start = browse.start_offset(plog, q.offset, q.timestamp_ms, q.limit)
                    records = browse.read_records(plog, start, q.limit)
                except Exception as exc:  # the log moved under us (retention, deletion)
                    error = f"could not read {name}-{q.partition}: {exc}"
        return web.Response(text=pages.messages(node.cluster_id, name, partitions, q,
                                                records, error), content_type=_HTML)

    async def stats(_request: web.Request) -> web.Response:
        return web.json_response(snapshot.stats(node, int(time.time() * 1000)),
                                 headers={"Cache-Control": "no-store"})

    app.router.add_get("/", overview)
    app.router.add_get("/api/stats", stats)
    app.router.add_static("/static/", STATIC)
    app.router.add_get("/topics/{name}/messages", messages)
    app.router.add_get("/topics/{name}", topic)
    app.router.add_get("/groups", groups)
