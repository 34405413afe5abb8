"""The Prometheus scrape endpoint: ``GET /metrics`` over HTTP/1.1 on
``strom.metrics.address`` (host:port; empty: no endpoint), served by aiohttp on the
broker's event loop.

``GET /metrics`` (also HEAD) answers 200 with the registry rendered by
``prometheus_client``: the text format 0.0.4 (``text/plain; version=0.0.4``) unless the
``Accept`` header asks for OpenMetrics or text 1.0.0 (what Prometheus itself negotiates);
gzip when ``Accept-Encoding`` allows it; ``?name[]=a&name[]=b`` restricts the answer to
those series. Another path is 404, another method 405. Rendering runs on the loop (the
collectors read broker state that only the loop may touch); it is a scrape every few
seconds, not a hot path.

``HttpServer`` is the aiohttp server without pages of its own; ``HttpServer.app`` is its
application, to which the broker's pages (``MetricsServer``'s ``/metrics``, the console
of ``broker.console``) add their routes before ``start``.
"""

from __future__ import annotations

import contextlib
import gzip

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder, gzip_accepted

from common.logging import get_logger

log = get_logger("strom.metrics")


def render(registry: CollectorRegistry, accept: str, accept_encoding: str,
           names: list[str]) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a scrape answer (see the module doc)."""
    encoder, content_type = choose_encoder(accept)
    source = registry.restricted_registry(names) if names else registry
    body = encoder(source)  # type: ignore[arg-type]
    headers = {"Content-Type": content_type}
    if gzip_accepted(accept_encoding):
        body = gzip.compress(body, compresslevel=1)
        headers["Content-Encoding"] = "gzip"
    return body, headers


class HttpServer:
    def __init__(self) -> None:
        self.app = web.Application()
        self._runner: web.AppRunner | None = None

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Listen on ``host:port`` (port 0: any free port); returns the bound address.
        Raises OSError when it cannot listen."""
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, host or None, port, reuse_address=True)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        bound = runner.addresses[0]
        return bound[0], bound[1]

    async def shutdown(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            with contextlib.suppress(Exception):
                await runner.cleanup()


class MetricsServer(HttpServer):
    """An ``HttpServer`` answering ``GET /metrics`` from ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__()
        self.registry = registry
        self.app.router.add_get("/metrics", self._metrics)

    async def _metrics(self, request: web.Request) -> web.Response:
        body, headers = render(self.registry, request.headers.get("Accept", ""),
                               request.headers.get("Accept-Encoding", ""),
                               request.query.getall("name[]", []))
        return web.Response(body=body, headers=headers)
