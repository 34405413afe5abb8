"""The console's aiohttp routes over a ``ClusterNode`` (``add_console``). GET only;
an unknown topic is a 404 page."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from broker.console import pages, snapshot

_HTML = "text/html"


def add_console(app: web.Application, node: Any) -> None:
    """Add the console's pages (see ``broker.console``) to ``app``."""

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

    app.router.add_get("/", overview)
    app.router.add_get("/topics/{name}", topic)
    app.router.add_get("/groups", groups)
