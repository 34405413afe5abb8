"""A Kafka-frame-aware TCP proxy for fault injection in client tests.

Clients connect to the proxy; the proxy forwards whole frames (``int32 length`` +
payload) to one upstream broker and back.  It reads each request's header (``int16
api_key, int16 api_version, int32 correlation_id``) so it can match responses
(``int32 correlation_id`` first) to the request's API.

Fault: ``drop_responses(api_key, count)`` arms the proxy so that the next ``count``
responses to requests of ``api_key`` are swallowed after the broker has processed the
request, and that client connection is closed.  A client then sees a disconnect for a
request the broker did perform, and must retry it — the way to force an idempotent
producer's retry of an already-appended batch.

To put the proxy in the clients' path, start the broker with
``advertised.listeners=PLAINTEXT://127.0.0.1:<proxy.port>`` (metadata then names the
proxy) and ``proxy.set_upstream(broker.host, broker.port)``.

Threads only (works with sync and asyncio clients alike); every socket has a timeout and
``close()`` joins everything within a bound.  Counters: ``requests`` per API key,
``dropped`` per API key, ``accepted`` client connections, ``upstream_closes`` (links the
broker closed first, e.g. idle connections).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections import Counter

PRODUCE = 0
_IO_TIMEOUT_S = 60.0


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    chunks = bytearray()
    while len(chunks) < n:
        try:
            chunk = sock.recv(n - len(chunks))
        except OSError:
            return None
        if not chunk:
            return None
        chunks += chunk
    return bytes(chunks)


def _recv_frame(sock: socket.socket) -> bytes | None:
    """One whole frame including its 4-byte length prefix, or None at EOF/error."""
    head = _recv_exact(sock, 4)
    if head is None:
        return None
    (size,) = struct.unpack(">i", head)
    if size < 0 or size > 512 * 1024 * 1024:
        return None
    body = _recv_exact(sock, size)
    return None if body is None else head + body


class _Link:
    """One client connection and its upstream connection."""

    def __init__(self, proxy: KafkaProxy, client: socket.socket, upstream: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.upstream = upstream
        self.pending: dict[int, int] = {}  # correlation id -> api key
        self.lock = threading.Lock()
        self.closed = threading.Event()
        self.threads = [
            threading.Thread(target=self._client_to_broker, daemon=True),
            threading.Thread(target=self._broker_to_client, daemon=True),
        ]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def close(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        for s in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()

    def _client_to_broker(self) -> None:
        while not self.closed.is_set():
            frame = _recv_frame(self.client)
            if frame is None or len(frame) < 12:
                break
            api_key, _version, correlation_id = struct.unpack_from(">hhi", frame, 4)
            with self.lock:
                self.pending[correlation_id] = api_key
            self.proxy._count_request(api_key)
            try:
                self.upstream.sendall(frame)
            except OSError:
                break
        self.close()

    def _broker_to_client(self) -> None:
        while not self.closed.is_set():
            frame = _recv_frame(self.upstream)
            if frame is None or len(frame) < 8:
                if not self.closed.is_set():
                    self.proxy._count_upstream_close()
                break
            (correlation_id,) = struct.unpack_from(">i", frame, 4)
            with self.lock:
                api_key = self.pending.pop(correlation_id, -1)
            if self.proxy._should_drop(api_key):
                break  # swallow the response and cut the client off
            try:
                self.client.sendall(frame)
            except OSError:
                break
        self.close()


class KafkaProxy:
    """Listen on 127.0.0.1 (port 0 → a free port) and forward to ``upstream``."""

    def __init__(self, upstream: tuple[str, int] | None = None) -> None:
        self._upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._drop: Counter[int] = Counter()
        self.dropped: Counter[int] = Counter()
        self.requests: Counter[int] = Counter()
        #: client connections accepted, and links the broker side closed first
        self.accepted = 0
        self.upstream_closes = 0
        self._links: list[_Link] = []
        self._stopping = threading.Event()
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)
        self._acceptor.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def set_upstream(self, host: str, port: int) -> None:
        self._upstream = (host, port)

    def drop_responses(self, api_key: int = PRODUCE, count: int = 1) -> None:
        """Swallow the next ``count`` responses to ``api_key`` requests (closing the link)."""
        with self._lock:
            self._drop[api_key] += count

    def disconnect_all(self) -> None:
        """Close every current client link (new connections are still accepted)."""
        with self._lock:
            links, self._links = self._links, []
        for link in links:
            link.close()

    def close(self) -> None:
        self._stopping.set()
        self._acceptor.join(timeout=5)
        with contextlib.suppress(OSError):
            self._listener.close()
        self.disconnect_all()

    def __enter__(self) -> KafkaProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ---------------------------------------------------------------
    def _count_request(self, api_key: int) -> None:
        with self._lock:
            self.requests[api_key] += 1

    def _count_upstream_close(self) -> None:
        with self._lock:
            self.upstream_closes += 1

    def _should_drop(self, api_key: int) -> bool:
        with self._lock:
            if self._drop[api_key] > 0:
                self._drop[api_key] -= 1
                self.dropped[api_key] += 1
                return True
            return False

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self._upstream is None:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self._upstream, timeout=10)
            except OSError:
                client.close()
                continue
            for s in (client, upstream):
                s.settimeout(_IO_TIMEOUT_S)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            link = _Link(self, client, upstream)
            with self._lock:
                self._links.append(link)
                self.accepted += 1
            link.start()
