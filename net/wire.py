"""A minimal blocking Kafka wire client: kio request entities in, kio responses out.

Used by protocol tests (and tools) that need byte-level control the real clients do not
give: any API/version, raw bytes, pipelining, half-written frames. Every socket wait is
bounded by ``timeout`` seconds.

    with WireClient("127.0.0.1", port) as c:
        resp = c.request(ApiVersionsRequest(...))           # version from the entity
        c.send(MetadataRequest(...)); c.send(...); c.receive()  # pipelined
"""

from __future__ import annotations

import itertools
import socket
from typing import TYPE_CHECKING, Any

from protocol.codec import decode_response, encode_request

if TYPE_CHECKING:
    import ssl


class ConnectionClosed(ConnectionError):
    """The broker closed the connection (EOF) while a response was expected."""


class WireClient:
    """``ssl_context``: TLS over the connection (the handshake checks ``host`` when the
    context checks host names); ``ssl.SSLError`` is an ``OSError``."""

    def __init__(self, host: str, port: int, *, timeout: float = 10.0,
                 client_id: str | None = "strom-wire",
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        if ssl_context is not None:
            try:
                self.sock = ssl_context.wrap_socket(self.sock, server_hostname=host)
            except BaseException:
                self.sock.close()
                raise
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(timeout)
        self.client_id = client_id
        self._correlation = itertools.count(1)
        self._pending: list[tuple[int, int, int]] = []  # (correlation, api_key, version)

    def __enter__(self) -> WireClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    # ------------------------------------------------------------------ raw bytes
    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv_exact(self, n: int) -> bytes:
        chunks = []
        while n:
            chunk = self.sock.recv(min(n, 1 << 20))
            if not chunk:
                raise ConnectionClosed("connection closed by broker")
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def recv_frame(self) -> bytes:
        size = int.from_bytes(self.recv_exact(4), "big", signed=True)
        return self.recv_exact(size)

    def is_closed_by_peer(self) -> bool:
        """True when the broker has closed the connection (EOF or reset) within the timeout."""
        try:
            return self.sock.recv(1) == b""
        except (ConnectionResetError, BrokenPipeError):
            return True

    # ------------------------------------------------------------------ kio entities
    def send(self, body: Any, *, version: int | None = None, api_key: int | None = None,
             correlation_id: int | None = None) -> int:
        key = int(body.__api_key__ if api_key is None else api_key)
        ver = int(body.__version__ if version is None else version)
        cid = next(self._correlation) if correlation_id is None else correlation_id
        self.sock.sendall(encode_request(key, ver, cid, self.client_id, body))
        self._pending.append((cid, key, ver))
        return cid

    def receive(self) -> Any:
        cid, key, ver = self._pending.pop(0)
        got_cid, body = decode_response(key, ver, self.recv_frame())
        if got_cid != cid:
            raise AssertionError(f"correlation id {got_cid} != expected {cid}")
        return body

    def request(self, body: Any, **kwargs: Any) -> Any:
        self.send(body, **kwargs)
        return self.receive()
