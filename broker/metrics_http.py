"""The Prometheus scrape endpoint: ``GET /metrics`` over HTTP/1.x on
``strom.metrics.address`` (host:port; empty: no endpoint).

One request per connection: the request head (at most 8 KiB, read within 5 s) is parsed,
``GET /metrics`` (any query string) answers 200 with ``Registry.render()`` as
``text/plain; version=0.0.4``, another path 404, another method 405, an unreadable head
400; then the connection closes.
"""

from __future__ import annotations

import asyncio
import contextlib

from common.logging import get_logger
from common.metrics import Registry

log = get_logger("strom.metrics")
MAX_HEAD = 8192
READ_TIMEOUT_S = 5.0


def _response(status: str, body: bytes, content_type: str = "text/plain; charset=utf-8"
              ) -> bytes:
    head = (f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    return head.encode() + body


def answer(head: bytes, registry: Registry) -> bytes:
    """The whole HTTP response to a request ``head`` (the bytes up to the blank line)."""
    try:
        method, target, version = head.split(b"\r\n", 1)[0].decode("ascii").split(" ")
    except (UnicodeDecodeError, ValueError):
        return _response("400 Bad Request", b"bad request\n")
    if not version.startswith("HTTP/1."):
        return _response("400 Bad Request", b"bad request\n")
    if target.split("?", 1)[0] != "/metrics":
        return _response("404 Not Found", b"only /metrics is served here\n")
    if method != "GET":
        return _response("405 Method Not Allowed", b"GET /metrics\n")
    return _response("200 OK", registry.render().encode(),
                     "text/plain; version=0.0.4; charset=utf-8")


class MetricsServer:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> tuple[str, int]:
        self._server = await asyncio.start_server(self._serve, host or None, port,
                                                  reuse_address=True, limit=MAX_HEAD)
        sockname = self._server.sockets[0].getsockname()
        return sockname[0], sockname[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT_S)
            writer.write(answer(head, self.registry))
        except asyncio.LimitOverrunError:
            writer.write(_response("431 Request Header Fields Too Large", b"too large\n"))
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            pass
        finally:
            with contextlib.suppress(ConnectionError, OSError):
                await writer.drain()
            writer.close()

    async def shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
