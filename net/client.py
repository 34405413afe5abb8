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

Receiving: an asyncio ``BufferedProtocol`` with ``protocol.framing``'s decoder, so a
response up to 16 MiB lands in one buffer sized from its length prefix and is decoded from
there (a StreamReader copied it three more times; measured for 1 MB Fetch answers: ~250
instead of 360-950 µs of the receiving thread's CPU each).

Errors: ``RequestError`` (a subclass of ``ConnectionError``) for every failure — connect
refused, timeout, peer closed, undecodable response; callers retry with their own logic.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import ssl
import time
from collections.abc import Callable
from typing import Any

from common.logging import get_logger
from net.sasl_login import SaslLogin, SaslLoginError, authenticate
from protocol.codec import decode_response, encode_request
from protocol.framing import FrameDecoder, FrameError

log = get_logger("strom.net")

MAX_RESPONSE_BYTES = 256 * 1024 * 1024


class RequestError(ConnectionError):
    """A request could not be completed (connection, timeout or decoding problem)."""


class ResponseFrames(FrameDecoder):
    """Frames from a broker or controller this process chose to talk to: a frame up to
    ``DIRECT_FRAME_BYTES`` gets its whole buffer when its size arrives, so the kernel
    copies it straight into place (no doubling; larger ones: framing's lazy mmap)."""

    __slots__ = ()
    DIRECT_FRAME_BYTES = 16 * 1024 * 1024
    INITIAL_FRAME_BYTES = DIRECT_FRAME_BYTES
    MAPPED_FRAME_BYTES = DIRECT_FRAME_BYTES


class _Receiver(asyncio.BufferedProtocol):
    """The connection's socket side: response frames received into their own buffers
    (``protocol.framing``), handed to ``on_frame``; ``on_lost`` once the connection ends.
    A StreamReader copied every response three times more (chunk, buffer, readexactly):
    for a follower that was most of its own CPU per replicated byte."""

    def __init__(self) -> None:
        self.decoder = ResponseFrames(MAX_RESPONSE_BYTES)
        self.on_frame: Callable[[Any], None] | None = None
        self.on_lost: Callable[[Exception], None] | None = None
        self.lost: Exception | None = None

    def get_buffer(self, sizehint: int) -> memoryview:
        try:
            return self.decoder.get_buffer()
        except FrameError:  # already failed: somewhere to put the bytes until closed
            return memoryview(bytearray(65536))

    def buffer_updated(self, nbytes: int) -> None:
        try:
            frames = self.decoder.buffer_updated(nbytes)
        except FrameError as exc:
            self._lose(RequestError(f"bad response size: {exc}"))
            return
        for frame in frames:
            if self.on_frame is not None:
                self.on_frame(frame)

    def eof_received(self) -> bool:
        return False  # close

    def connection_lost(self, exc: Exception | None) -> None:
        self._lose(RequestError(f"connection lost: {exc!r}" if exc else "connection closed"))

    def _lose(self, error: Exception) -> None:
        if self.lost is None:
            self.lost = error
            if self.on_lost is not None:
                self.on_lost(error)


class KafkaConnection:
    """One connection; use ``await KafkaConnection.open(...)``."""

    def __init__(self, transport: asyncio.Transport, receiver: _Receiver, *,
                 client_id: str, peer: str) -> None:
        self._transport = transport
        self.client_id = client_id
        self.peer = peer
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[int, int, asyncio.Future[Any]]] = {}
        self._order: collections.deque[int] = collections.deque()
        self.closed = False
        receiver.on_frame = self._on_frame
        receiver.on_lost = self._lost
        if receiver.lost is not None:
            self._lost(receiver.lost)

    @classmethod
    async def open(cls, host: str, port: int, *, timeout: float, client_id: str,
                   ssl_context: ssl.SSLContext | None = None) -> KafkaConnection:
        loop = asyncio.get_running_loop()
        try:
            transport, receiver = await asyncio.wait_for(
                loop.create_connection(_Receiver, host, port, ssl=ssl_context,
                                       server_hostname=host if ssl_context else None),
                timeout)
        except (TimeoutError, OSError) as exc:  # ssl.SSLError is an OSError
            raise RequestError(f"cannot connect to {host}:{port}: {exc!r}") from None
        return cls(transport, receiver, client_id=client_id,  # type: ignore[arg-type]
                   peer=f"{host}:{port}")

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
            self._transport.write(encode_request(key, version, cid, self.client_id, body))
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

    def _on_frame(self, payload: Any) -> None:
        """One response frame (after the size): matched to the oldest request."""
        if self.closed:
            return
        if len(payload) < 4:
            self._fail(RequestError(f"bad response size {len(payload)} from {self.peer}"))
            return
        if not self._order:
            self._fail(RequestError(f"unsolicited response from {self.peer}"))
            return
        cid = self._order.popleft()
        entry = self._pending.get(cid)
        if entry is None:  # the request timed out: the connection is closing
            return
        key, version, fut = entry
        try:
            got, body = decode_response(key, version, payload)
        except Exception as exc:
            self._fail(RequestError(f"undecodable response from {self.peer}: {exc!r}"))
            return
        if got != cid:
            self._fail(RequestError(f"correlation id {got} from {self.peer}, expected {cid}"))
            return
        if not fut.done():
            fut.set_result(body)

    def _lost(self, error: Exception) -> None:
        self._fail(RequestError(f"connection to {self.peer} lost: {error}"))

    def _fail(self, error: Exception) -> None:
        """The connection is over: close it, fail every request still waiting."""
        self.closed = True
        with contextlib.suppress(Exception):
            self._transport.close()
        for _, _, fut in list(self._pending.values()):
            if not fut.done():
                fut.set_exception(error)

    def close(self) -> None:
        self._fail(RequestError(f"connection to {self.peer} closed"))


class ClientPool:
    """Connections to peers by (host, port, channel) with reconnect backoff.

    SASL: a pool made with ``sasl`` (``net.sasl_login.SaslLogin``) logs in on every new
    connection before any other request (a refused login is a failed connect, with
    backoff). When the peer announces a session lifetime (KIP-368), the connection is
    replaced once 90% of it has passed and the old one is closed as soon as no request is
    in flight on it, so the peer never gets a request on an expired session.
    """

    def __init__(self, *, client_id: str, connect_timeout: float = 2.0,
                 reconnect_backoff_ms: int = 50, reconnect_backoff_max_ms: int = 1000,
                 ssl_context: ssl.SSLContext | None = None,
                 sasl: SaslLogin | None = None) -> None:
        self.client_id = client_id
        self.ssl_context = ssl_context
        self.sasl = sasl
        #: when to replace a SASL connection (monotonic s), by pool key
        self._renew_at: dict[tuple[str, int, str], float] = {}
        #: replaced connections still finishing their requests
        self._retiring: list[KafkaConnection] = []
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
        if self._retiring:
            self._close_idle_retired()
        if conn is not None and not conn.closed:
            renew_at = self._renew_at.get(key)
            if renew_at is None or time.monotonic() < renew_at:
                return conn
            del self._conns[key]  # its SASL session is ending: a fresh one takes over
            self._retiring.append(conn)
            self._close_idle_retired()
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
            if self.sasl is not None:
                await self._login(conn, key)
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

    async def _login(self, conn: KafkaConnection, key: tuple[str, int, str]) -> None:
        """SASL on a fresh connection; RequestError (connection closed) when refused."""
        assert self.sasl is not None
        started = time.monotonic()
        try:
            lifetime_ms = await authenticate(
                lambda body: conn.request(body, timeout=self.connect_timeout), self.sasl)
        except SaslLoginError as exc:
            conn.close()
            log.warning("sasl_login_failed", peer=conn.peer, mechanism=self.sasl.mechanism,
                        error=str(exc))
            raise RequestError(f"{conn.peer}: {exc}") from None
        if lifetime_ms > 0:
            self._renew_at[key] = started + 0.9 * lifetime_ms / 1000
        else:
            self._renew_at.pop(key, None)

    def _close_idle_retired(self) -> None:
        keep = []
        for old in self._retiring:
            if old.closed:
                continue
            if old._pending:  # requests still in flight
                keep.append(old)
            else:
                old.close()
        self._retiring = keep

    async def request(self, host: str, port: int, body: Any, *, timeout: float,
                      channel: str = "default") -> Any:
        """Send ``body`` to host:port; raises ``RequestError`` on any failure."""
        if self.closed:
            raise RequestError("client pool closed")
        conn = await self._connection(host, port, channel)
        return await conn.request(body, timeout=timeout)

    def close(self) -> None:
        self.closed = True
        for conn in [*self._conns.values(), *self._retiring]:
            conn.close()
        self._conns.clear()
        self._retiring.clear()
