"""Outbound Kafka-protocol client for brokers and controllers (asyncio).

``KafkaConnection`` is one TCP connection to one peer: requests are kio entities (the
version is the entity's ``__version__``), pipelined, matched to responses by correlation
id (Kafka answers in request order on a connection; the id is checked anyway). Every
request is bounded by a timeout; a timed-out or failed request closes the connection,
because a response arriving later would otherwise be matched to the wrong request.

``ClientPool`` keeps one connection per (host, port, channel) and reconnects on demand
with exponential backoff (``reconnect_backoff_ms`` doubling up to
``reconnect_backoff_max_ms``), so a dead peer costs one failed connect per backoff period,
not one per request. Channels let a caller keep long-polling requests (Raft Fetch) off the
connection its short requests (Vote, heartbeats) use.

TLS: a pool made with ``ssl_context`` (an ``ssl.SSLContext`` built by the caller, e.g.
``broker.tls.client_context``) speaks TLS on every connection, the peer's host as the
server name (checked when the context checks host names).

Errors: ``RequestError`` (a subclass of ``ConnectionError``) for every failure — connect
refused, timeout, peer closed, undecodable response; callers retry with their own logic.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import ssl
import time
from typing import Any

from common.logging import get_logger
from protocol.codec import decode_response, encode_request

log = get_logger("strom.net")

MAX_RESPONSE_BYTES = 256 * 1024 * 1024


class RequestError(ConnectionError):
    """A request could not be completed (connection, timeout or decoding problem)."""


class KafkaConnection:
    """One connection; use ``await KafkaConnection.open(...)``."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                 client_id: str, peer: str) -> None:
        self._reader = reader
        self._writer = writer
        self.client_id = client_id
        self.peer = peer
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[int, int, asyncio.Future[Any]]] = {}
        self._order: list[int] = []
        self.closed = False
        self._reader_task = asyncio.get_running_loop().create_task(self._read_loop())

    @classmethod
    async def open(cls, host: str, port: int, *, timeout: float, client_id: str,
                   ssl_context: ssl.SSLContext | None = None) -> KafkaConnection:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, limit=1 << 20, ssl=ssl_context,
                                        server_hostname=host if ssl_context else None),
                timeout)
        except (TimeoutError, OSError) as exc:  # ssl.SSLError is an OSError
            raise RequestError(f"cannot connect to {host}:{port}: {exc!r}") from None
        return cls(reader, writer, client_id=client_id, peer=f"{host}:{port}")

    async def request(self, body: Any, *, timeout: float) -> Any:
        """Send ``body`` and return the response entity of the same API and version."""
        if self.closed:
            raise RequestError(f"connection to {self.peer} is closed")
        key, version = int(body.__api_key__), int(body.__version__)
        cid = next(self._ids) & 0x7FFFFFFF
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[cid] = (key, version, fut)
        self._order.append(cid)
        try:
            self._writer.write(encode_request(key, version, cid, self.client_id, body))
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            self.close()
            raise RequestError(f"request {key} v{version} to {self.peer} timed out after "
                               f"{timeout:.1f}s") from None
        except (OSError, RuntimeError) as exc:
            self.close()
            raise RequestError(f"request to {self.peer} failed: {exc!r}") from None
        finally:
            self._pending.pop(cid, None)

    async def _read_loop(self) -> None:
        error: Exception = RequestError(f"connection to {self.peer} closed")
        try:
            while True:
                size = int.from_bytes(await self._reader.readexactly(4), "big", signed=True)
                if size < 4 or size > MAX_RESPONSE_BYTES:
                    raise RequestError(f"bad response size {size} from {self.peer}")
                payload = await self._reader.readexactly(size)
                if not self._order:
                    raise RequestError(f"unsolicited response from {self.peer}")
                cid = self._order.pop(0)
                entry = self._pending.get(cid)
                if entry is None:  # the request timed out: the connection is closing
                    continue
                key, version, fut = entry
                try:
                    got, body = decode_response(key, version, payload)
                except Exception as exc:
                    raise RequestError(f"undecodable response from {self.peer}: {exc!r}"
                                       ) from None
                if got != cid:
                    raise RequestError(f"correlation id {got} from {self.peer}, expected {cid}")
                if not fut.done():
                    fut.set_result(body)
        except (asyncio.IncompleteReadError, OSError) as exc:
            error = RequestError(f"connection to {self.peer} lost: {exc!r}")
        except RequestError as exc:
            error = exc
        except asyncio.CancelledError:
            pass
        finally:
            self.closed = True
            for _, _, fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(error)
            with contextlib.suppress(Exception):
                self._writer.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            with contextlib.suppress(Exception):
                self._writer.close()
        self._reader_task.cancel()


class ClientPool:
    """Connections to peers by (host, port, channel) with reconnect backoff."""

    def __init__(self, *, client_id: str, connect_timeout: float = 2.0,
                 reconnect_backoff_ms: int = 50, reconnect_backoff_max_ms: int = 1000,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.client_id = client_id
        self.ssl_context = ssl_context
        self.connect_timeout = connect_timeout
        self.backoff_ms = reconnect_backoff_ms
        self.backoff_max_ms = reconnect_backoff_max_ms
        self._conns: dict[tuple[str, int, str], KafkaConnection] = {}
        self._connecting: dict[tuple[str, int, str], asyncio.Future[KafkaConnection]] = {}
        self._backoff: dict[tuple[str, int, str], tuple[float, int]] = {}  # retry_at, ms
        self.closed = False

    async def _connection(self, host: str, port: int, channel: str) -> KafkaConnection:
        key = (host, port, channel)
        conn = self._conns.get(key)
        if conn is not None and not conn.closed:
            return conn
        pending = self._connecting.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        retry_at, delay = self._backoff.get(key, (0.0, 0))
        if time.monotonic() < retry_at:
            raise RequestError(f"{host}:{port} unreachable (backing off {delay} ms)")
        fut: asyncio.Future[KafkaConnection] = asyncio.get_running_loop().create_future()
        self._connecting[key] = fut
        try:
            conn = await KafkaConnection.open(host, port, timeout=self.connect_timeout,
                                              client_id=self.client_id,
                                              ssl_context=self.ssl_context)
        except RequestError as exc:
            delay = min(max(delay * 2, self.backoff_ms), self.backoff_max_ms)
            self._backoff[key] = (time.monotonic() + delay / 1000, delay)
            fut.set_exception(exc)
            fut.exception()  # retrieved: no "never retrieved" warning when nobody waits
            raise
        finally:
            self._connecting.pop(key, None)
        self._backoff.pop(key, None)
        if self.closed:
            conn.close()
            raise RequestError("client pool closed")
        self._conns[key] = conn
        fut.set_result(conn)
        return conn

    async def request(self, host: str, port: int, body: Any, *, timeout: float,
                      channel: str = "default") -> Any:
        """Send ``body`` to host:port; raises ``RequestError`` on any failure."""
        if self.closed:
            raise RequestError("client pool closed")
        conn = await self._connection(host, port, channel)
        return await conn.request(body, timeout=timeout)

    def close(self) -> None:
        self.closed = True
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()
