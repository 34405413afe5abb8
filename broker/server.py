"""The Kafka TCP server: connections, framing, dispatch, ordering, flow control.

Per connection (``KafkaConnection``, an asyncio ``Protocol`` on uvloop):

- bytes are received straight into ``FrameDecoder``'s buffers (asyncio
  ``BufferedProtocol``: a large request lands in its final buffer without an extra copy;
  ``socket.request.max.bytes`` guard); complete frames are queued; one worker task
  handles them **one at a time, in arrival order**, so responses leave strictly in
  request order while the client may pipeline freely;
- a handler returning ``None`` (Produce acks=0) sends nothing;
- back-pressure: when more than ``max_inflight`` frames (or ``MAX_QUEUED_BYTES``) wait,
  reading pauses until the worker catches up; when the transport's write buffer is above
  its high-water mark (a slow reader), the worker waits for it to drain before handling
  the next request — so memory per connection stays bounded;
- client quotas (KIP-219, ``broker.quotas``): a handler that sets ``ctx.throttle_ms``
  gets its response sent at once, then the connection is muted for that long (reading
  paused, queued requests held);
- malformed input (bad frame size, unreadable header, unknown API key, unsupported
  version, undecodable body) closes **only that connection**, with one structured log
  line (``connection_closed`` + ``reason``), as Kafka does. ApiVersions with a version we
  do not support gets the KIP-511 fallback instead (v0 body, UNSUPPORTED_VERSION, list);
- connections idle (no request in progress, nothing received, and nothing sent: a peer
  that stops reading is idle too, as in Kafka) for ``connections.max.idle.ms`` are closed
  by a sweeper. A connection closed for idleness or an error is *aborted*: its socket and
  its queued response bytes are gone at once (a graceful close would wait for a peer that
  does not read);
- a peer that closes its side (EOF) or resets is gone: requests it had already sent are
  still handled (an acks=0 produce is not lost) but answered to nobody, a long-poll
  Fetch it was waiting on is cancelled, queued Fetches are skipped, and the socket is
  closed at once (no CLOSE-WAIT for ``max_wait_ms``);
- TLS (SSL and SASL_SSL listeners): the handshake runs on the accepted socket
  (``loop.start_tls`` with the listener's context from ``broker.tls``); a failed handshake
  (plaintext bytes on a TLS port, an expired or untrusted client certificate) closes only
  that connection with a ``tls_handshake_failed`` line. On an SSL listener the principal
  is the client certificate's subject mapped by ``ssl.principal.mapping.rules``
  (``broker.ssl_principal``; no certificate: User:ANONYMOUS). TLS sent to a plaintext
  port is recognised and logged as such;
- guardrails shared by the broker's client listeners: ``max.connections``,
  ``max.connections.per.ip`` (+ overrides) refuse a new connection at once,
  ``max.connection.creation.rate`` makes it wait, an ip quota's
  ``connection_creation_rate`` (KIP-612) leaves it unserved and closes it after its
  throttle time (``connection_throttled`` log line, ``strom_connections_throttled_total``)
  (``broker.connection_quotas``);
  ``queued.max.request.bytes`` is a memory pool (``common.memory_pool``): a request's
  body is read only once its declared size is reserved, and the reservation is returned
  when it has been handled; connections refused by the pool stop reading until released
  bytes let them go on. Receive scratch space is one buffer per server, not one per
  connection.

``KafkaServer.shutdown()`` stops accepting, lets every connection finish the request it
is handling (waiting fetches are woken), closes connections and returns.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import mmap
import socket
import ssl
import struct
import time
from typing import Any

from broker.broker import Broker
from broker.connection_quotas import ConnectionQuotas
from broker.handlers import CloseConnection, RequestContext
from broker.handlers.api_versions import API_KEY as API_VERSIONS_KEY
from broker.handlers.api_versions import fallback_response
from broker.handlers.sasl import AUTHENTICATE as SASL_AUTHENTICATE
from broker.handlers.sasl import HANDSHAKE as SASL_HANDSHAKE
from broker.metrics import BrokerMetrics
from broker.security.authenticator import SaslAuthenticator, SaslSession
from broker.ssl_principal import NoMatchingRule, Rule, principal_of
from common.logging import get_logger
from common.memory_pool import MemoryPool
from common.security.acl import ANONYMOUS
from protocol.build import build
from protocol.codec import (
    DecodeError,
    decode_request,
    encode_response,
    encode_response_chunks,
    response_type,
)
from protocol.errors import ErrorCode
from protocol.framing import FrameDecoder, FrameError
from protocol.headers import HeaderError, parse_request_header
from protocol.produce_scan import decode_produce_eliding

log = get_logger("strom.server")

MAX_QUEUED_BYTES = 64 * 1024 * 1024
SOCKET_BUFFER_BYTES = 4 * 1024 * 1024
#: the largest frame a SASL connection may send before it authenticates (Kafka's
#: sasl.server.max.receive.size default)
SASL_MAX_RECEIVE_BYTES = 512 * 1024
#: requests that only wait: cancelled when their client goes away (Kafka closes on EOF)
FETCH_KEY = 1
PRODUCE_KEY = 0
#: Produce frames at least this large are walked first, so a record set holding a batch
#: above its topic's max.message.bytes is refused without being copied
#: (``protocol.produce_scan``; a 100 MiB copy held the event loop for ~0.1-0.15 s)
PRODUCE_SCAN_BYTES = 1024 * 1024
_ids = itertools.count(1)


def _drop_frame(frame: Any) -> None:
    """Unmap a large request's buffer (``protocol.framing`` maps frames above 8 MiB) on a
    worker thread: munmap of a 100 MiB request's touched pages held the event loop for
    30-50 ms, and ``mmap.close`` releases the GIL. A buffer something still views (a slice
    kept by a handler) is left to the garbage collector, as before."""
    base = getattr(frame, "obj", None)
    if not isinstance(base, mmap.mmap):
        return
    frame.release()
    with contextlib.suppress(RuntimeError):  # no running loop: let refcounting free it
        asyncio.get_running_loop().run_in_executor(None, _close_mapping, base)


def _close_mapping(mapping: mmap.mmap) -> None:
    with contextlib.suppress(BufferError):  # still viewed: freed with its last view
        mapping.close()


class _Close(Exception):
    """Close this connection (reason in args[0])."""


class KafkaConnection(asyncio.BufferedProtocol):
    def __init__(self, server: KafkaServer) -> None:
        self.server = server
        self.broker = server.broker
        self.id = next(_ids)
        self.decoder = FrameDecoder(server.broker.config.socket_request_max_bytes,
                                    scratch=server.scratch, pool=server.pool)
        self.queue: collections.deque[Any] = collections.deque()
        self.queued_bytes = 0
        self.max_inflight = server.broker.config.strom_max_inflight_requests_per_connection
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.closed = False
        self.draining = False
        self.busy = False
        self.last_active = time.monotonic()
        self._wakeup: asyncio.Future[None] | None = None
        self._write_ready: asyncio.Future[None] | None = None
        self._reading_paused = False
        self._close_after_write: str | None = None
        self.worker: asyncio.Task[None] | None = None
        self.ip = ""
        #: the peer closed or reset: queued requests are handled, answered to nobody
        self.peer_gone = False
        self._admitted = False  # counted by the server's ConnectionQuotas
        self._forgotten = False
        self._first_receive: memoryview | None = None  # sniffed for TLS on plaintext
        self._received_any = False
        self._current_api = -1
        self._handler_task: asyncio.Future[Any] | None = None
        self._write_size_seen = 0
        self._tls_pending = False
        self._delay = 0.0  # max.connection.creation.rate wait before serving
        self._handshake_task: asyncio.Task[None] | None = None
        #: the authenticated principal (``User:<name>``; User:ANONYMOUS on a PLAINTEXT
        #: listener); None on a SASL listener until the client has authenticated
        self.sasl: SaslSession | None = None
        self.principal: str | None = ANONYMOUS
        if server.sasl is not None:  # Kafka's sasl.server.max.receive.size until then
            self.sasl = server.sasl.session()
            self.principal = None
            self.decoder.max_frame_bytes = SASL_MAX_RECEIVE_BYTES
        self._sasl_raw = False
        #: KIP-368: when the session ends (monotonic seconds; None: never), and whether
        #: the client is re-authenticating (SaslHandshake on an authenticated connection)
        self._session_end: float | None = None
        self._reauthenticating = False
        #: KIP-219: a throttled client's next requests wait until then (monotonic seconds)
        #: and its reads are paused while ``_muted`` (``broker.quotas``)
        self._muted_until = 0.0
        self._muted = False
        self._unmute: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------------ protocol callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._tls_pending:  # called again by the TLS layer once the handshake is done
            self._tls_ready(transport)
            return
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        self.ip = str(peer[0]) if peer else ""
        quotas = self.server.quotas
        if quotas is not None:
            admission = quotas.admit(self.ip, time.monotonic())
            if admission.refused is not None:
                self.closed = True
                log.warning("connection_refused", peer=self.peer, listener=self.server.label,
                            reason=admission.refused, connections=quotas.total,
                            from_ip=quotas.by_ip.get(self.ip, 0))
                transport.abort()  # type: ignore[attr-defined]
                return
            if admission.throttle_ms > 0:
                self._throttle_close(transport, admission.throttle_ms)
                return
            self._admitted = True
            self._delay = admission.delay
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # A large send buffer: a multi-MiB fetch response leaves in a few wake-ups instead
            # of dozens (capped by net.core.wmem_max). The receive side keeps the kernel's
            # autotuning, which may grow further than a fixed SO_RCVBUF would.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER_BYTES)
        transport.set_write_buffer_limits(high=4 * 1024 * 1024, low=1024 * 1024)  # type: ignore[attr-defined]
        self.server.connections.add(self)
        if self.server.ssl_context is not None:
            self._start_tls(transport)
        else:
            self._begin()

    def _throttle_close(self, transport: asyncio.BaseTransport, throttle_ms: int) -> None:
        """KIP-612: over its address's connection_creation_rate the connection is never
        served (reads paused) and closed after ``throttle_ms``, as Kafka's acceptor
        delays the close of a throttled socket."""
        self.closed = True
        with contextlib.suppress(Exception):
            transport.pause_reading()  # type: ignore[attr-defined]
        log.info("connection_throttled", peer=self.peer, listener=self.server.label,
                 reason="connection_creation_rate", throttle_ms=throttle_ms)
        if self.server.metrics is not None:
            self.server.metrics.connections_throttled.inc(self.server.label)
        self.server.throttled.add(transport)

        def close() -> None:
            self.server.throttled.discard(transport)
            transport.abort()  # type: ignore[attr-defined]

        asyncio.get_running_loop().call_later(throttle_ms / 1000, close)

    def _begin(self) -> None:
        """Start the worker, after the creation-rate delay (bytes that arrive meanwhile
        queue up under the usual limits)."""
        loop = asyncio.get_running_loop()
        delay, self._delay = self._delay, 0.0
        if delay > 0:  # max.connection.creation.rate: served later
            loop.call_later(delay, self._begin)
        elif not self.closed:
            self.worker = loop.create_task(self._run())

    def _start_tls(self, raw: asyncio.BaseTransport) -> None:
        """Put the TLS layer between the socket and this protocol *now*: uvloop reads the
        socket right after ``connection_made`` (``loop.start_tls`` from a task would let
        the ClientHello reach the plaintext decoder). The layer calls ``connection_made``
        again with the TLS transport after the handshake; a failed handshake completes
        the waiter with the error (``_handshake``)."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        timeout = min(60.0, max(1.0, self.broker.config.connections_max_idle_ms / 1000))
        layer = _ssl_protocol_type(loop)(loop, self, self.server.ssl_context, waiter, True,
                                         None, True, timeout, None)
        self._tls_pending = True
        raw.set_protocol(layer)
        layer.connection_made(raw)
        self._handshake_task = loop.create_task(self._handshake(raw, waiter))

    async def _handshake(self, raw: asyncio.BaseTransport, waiter: asyncio.Future[None]
                         ) -> None:
        try:
            await waiter
        except (ssl.SSLError, OSError, ConnectionError, TimeoutError, RuntimeError) as exc:
            if not self.closed:
                log.warning("tls_handshake_failed", peer=self.peer, connection=self.id,
                            listener=self.server.label, reason=_tls_reason(exc))
            self.closed = True
            with contextlib.suppress(Exception):
                raw.abort()  # type: ignore[attr-defined]
            self._forget()

    def _tls_ready(self, tls: asyncio.BaseTransport) -> None:
        """The handshake succeeded: serve over ``tls``; on an SSL listener the client
        certificate names the principal."""
        self._tls_pending = False
        self.transport = tls  # type: ignore[assignment]
        tls.set_write_buffer_limits(high=4 * 1024 * 1024,  # type: ignore[attr-defined]
                                    low=1024 * 1024)
        obj = tls.get_extra_info("ssl_object")
        fields: dict[str, Any] = {
            "tls_version": obj.version() if obj is not None else None,
            "cipher": (obj.cipher() or ("?",))[0] if obj is not None else None}
        if self.sasl is None:  # SSL: the certificate names the principal
            try:
                name = principal_of(tls.get_extra_info("peercert"), self.server.principal_rules)
            except NoMatchingRule as exc:
                self._close(f"TLS authentication failed: {exc}")
                return
            self.principal = f"User:{name}"
            fields["principal"] = self.principal
        log.info("tls_connected", peer=self.peer, connection=self.id,
                 listener=self.server.label, **fields)
        self._begin()

    def get_buffer(self, sizehint: int) -> memoryview:
        try:
            view = self.decoder.get_buffer()
        except FrameError:  # already closing: give the transport somewhere to write
            return memoryview(bytearray(65536))
        if not self._received_any:
            self._first_receive = view
        return view

    def buffer_updated(self, nbytes: int) -> None:
        if self.closed or self.draining:
            return
        self.last_active = time.monotonic()
        first, self._first_receive = self._first_receive, None
        self._received_any = True
        try:
            frames = self.decoder.buffer_updated(nbytes)
        except FrameError as exc:
            if first is not None and nbytes >= 3 and first[0] == 0x16 and first[1] == 0x03 \
                    and self.server.ssl_context is None:
                self._close("TLS handshake on a plaintext listener",
                            listener=self.server.label)
            else:
                self._close(f"invalid frame: {exc}")
            return
        if frames:
            for f in frames:
                self.queue.append(f)
                self.queued_bytes += len(f)
            self._wake()
        if self.decoder.blocked:
            self.server.wait_for_pool(self)
        self._update_reading()

    def _update_reading(self) -> None:
        """Pause reading while too much waits (requests queued, the pool refused a
        frame), resume when it does not."""
        if self.closed or self.transport is None:
            return
        full = len(self.queue) >= self.max_inflight or self.queued_bytes >= MAX_QUEUED_BYTES
        if not self._reading_paused and (full or self.decoder.blocked or self._muted):
            self._reading_paused = True
            self.transport.pause_reading()
        elif self._reading_paused and not self.decoder.blocked and not self.draining \
                and not self._muted \
                and len(self.queue) < self.max_inflight // 2 \
                and self.queued_bytes < MAX_QUEUED_BYTES // 2:
            self._reading_paused = False
            self.transport.resume_reading()

    def pool_resumed(self) -> bool:
        """The pool has room again: retry the blocked frame; False while still blocked."""
        if self.closed:
            return True
        frames = self.decoder.resume()
        for f in frames:
            self.queue.append(f)
            self.queued_bytes += len(f)
        if frames:
            self._wake()
        if self.decoder.blocked:
            return False
        self._update_reading()
        return True

    def _release(self, nbytes: int) -> None:
        if self.server.pool is not None and nbytes:
            self.server.release_pool(nbytes)

    def eof_received(self) -> bool | None:
        # Kafka closes on EOF: requests already received are handled, answered to nobody
        self._peer_left()
        return False

    def _peer_left(self) -> None:
        if not self.closed:
            self.peer_gone = True
            self.closed = True
            if self.transport is not None:
                with contextlib.suppress(Exception):
                    _reset(self.transport)
        task = self._handler_task
        if task is not None and not task.done() and self._current_api == FETCH_KEY:
            task.cancel()  # a long poll nobody waits for
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self._peer_left()
        self._forget()
        if self._write_ready is not None and not self._write_ready.done():
            self._write_ready.set_result(None)
        # Another request in progress is left to finish (its response is dropped):
        # handlers of other parts (e.g. JoinGroup) keep their state consistent that way, as
        # in Kafka, which does not abort a request when its client disconnects.

    def _forget(self) -> None:
        """Leave the server's books (once): connection set, quotas, pool reservations."""
        if self._forgotten:
            return
        self._forgotten = True
        self.server.connections.discard(self)
        if self._admitted and self.server.quotas is not None:
            self.server.quotas.release(self.ip)
        # Frames received and not handled are dropped now (the one being handled and,
        # when the peer left, those still queued are released by the worker).
        held = self.decoder.release_partial()
        if not self.peer_gone:
            held += self.queued_bytes
            self.queue.clear()
            self.queued_bytes = 0
        if self.server.pool is not None:
            self.server.forget_pool_waiter(self)
            self.server.release_pool(held)

    def pause_writing(self) -> None:
        if self._write_ready is None or self._write_ready.done():
            self._write_ready = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._write_ready is not None and not self._write_ready.done():
            self._write_ready.set_result(None)

    # ------------------------------------------------------------------ worker
    def _wake(self) -> None:
        w = self._wakeup
        if w is not None and not w.done():
            w.set_result(None)

    def _close(self, reason: str | None, *, graceful: bool = False, **fields: Any) -> None:
        """Close the connection. An error or idleness *aborts* it (queued output is
        dropped, the socket goes at once); ``graceful`` lets queued output leave first
        (after the last response of a draining or refused connection)."""
        if self.closed:
            return
        self.closed = True
        if reason is not None:
            log.warning("connection_closed", peer=self.peer, connection=self.id,
                        reason=reason, **fields)
        if self.transport is not None:
            if graceful:
                self.transport.close()
            else:
                _reset(self.transport)
        self._wake()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while not self.closed or (self.peer_gone and self.queue):
                if not self.queue:
                    if self.draining:
                        self._close(None, graceful=True)
                        break
                    self._wakeup = loop.create_future()
                    await self._wakeup
                    self._wakeup = None
                    continue
                mute = self._muted_until - time.monotonic()
                if mute > 0:  # quota throttling: hold this client's next request
                    await asyncio.sleep(mute)
                    continue
                frame = self.queue.popleft()
                size = len(frame)
                self.queued_bytes -= size
                self._update_reading()
                if self.peer_gone and size >= 2 and frame[0] == 0 and frame[1] == FETCH_KEY:
                    self._release(size)  # nobody waits for this long poll
                    continue
                self.busy = True
                try:
                    response = await self._handle(frame)
                finally:
                    self.busy = False
                    self._current_api = -1
                    self.last_active = time.monotonic()
                    _drop_frame(frame)
                    del frame
                    self._release(size)
                if response is not None and not self.closed:
                    if isinstance(response, list):
                        if len(response) == 1:
                            self.transport.write(response[0])  # type: ignore[union-attr]
                        else:
                            self.transport.writelines(response)  # type: ignore[union-attr]
                    else:
                        self.transport.write(response)  # type: ignore[union-attr]
                    if self._write_ready is not None and not self._write_ready.done():
                        await self._write_ready
                if self._close_after_write is not None:
                    self._close(self._close_after_write, graceful=True)
                    break
        except _Close as exc:
            self._close(str(exc.args[0]), **(exc.args[1] if len(exc.args) > 1 else {}))
        except asyncio.CancelledError:
            self._close(None)
        except Exception as exc:  # a bug: log it, drop this connection, keep serving others
            log.exception("connection_failed", peer=self.peer, connection=self.id,
                          error=repr(exc))
            self._close(None)

    def _mute(self, seconds: float) -> None:
        """KIP-219: after this response, read and handle nothing more of this client for
        ``seconds`` (its quota's throttle time)."""
        self._muted_until = time.monotonic() + seconds
        self._muted = True
        if self._unmute is not None:
            self._unmute.cancel()
        self._unmute = asyncio.get_running_loop().call_later(seconds, self._unmuted)
        self._update_reading()

    def _unmuted(self) -> None:
        self._muted, self._unmute = False, None
        self._update_reading()

    def _authenticated(self, principal: str, lifetime: bool) -> int:
        """The SASL exchange succeeded as ``principal``; returns the session lifetime in
        ms to tell the client (KIP-368: ``connections.max.reauth.ms``, 0 = none). A
        re-authentication must keep the principal (else the connection is closed)."""
        if self._reauthenticating and principal != self.principal:
            raise _Close("re-authentication changed the principal",
                         {"principal": self.principal, "new_principal": principal})
        self._reauthenticating = False
        self.principal = principal
        self.decoder.max_frame_bytes = self.broker.config.socket_request_max_bytes
        reauth_ms = self.server.reauth_ms
        self._session_end = time.monotonic() + reauth_ms / 1000 if reauth_ms > 0 else None
        log.info("sasl_authenticated", peer=self.peer, connection=self.id,
                 listener=self.server.label, principal=principal,
                 mechanism=self.sasl.mechanism if self.sasl else None)
        return reauth_ms if lifetime else 0

    def _sasl_failed(self, error: str | None) -> None:
        log.warning("sasl_authentication_failed", peer=self.peer, connection=self.id,
                    listener=self.server.label,
                    mechanism=self.sasl.mechanism if self.sasl else None, error=error)

    def _authenticate(self, header: Any, spec: Any, frame: Any, fields: dict[str, Any]
                      ) -> bytes:
        """A request on a SASL connection not (or no longer, while re-authenticating)
        authenticated (``broker.security.authenticator``): SaslHandshake naming an
        enabled mechanism, then SaslAuthenticate steps (after v1) or bare token frames
        (after v0); anything else closes it."""
        key, version = header.api_key, header.api_version
        session = self.sasl
        assert session is not None
        expected = SASL_AUTHENTICATE if session.mechanism else SASL_HANDSHAKE
        if key != expected or not spec.supports(version):
            raise _Close("request before SASL authentication", fields)
        try:
            request = decode_request(key, version, frame, header.body_offset)
        except DecodeError as exc:
            raise _Close(f"malformed request body: {exc}", fields) from None
        values: dict[str, Any]
        if key == SASL_HANDSHAKE:
            code = session.handshake(request.mechanism)
            values = {"error_code": code, "mechanisms": list(session.auth.mechanisms)}
            if code == 0:
                self._sasl_raw = version == 0
        else:
            step = session.step(bytes(request.auth_bytes))
            values = {"error_code": ErrorCode.none, "error_message": None,
                      "auth_bytes": step.response, "session_lifetime": 0}
            if step.done and step.principal is None:
                self._sasl_failed(step.error)
                values.update(error_code=ErrorCode.sasl_authentication_failed,
                              error_message=step.error, auth_bytes=b"")
                self._close_after_write = "SASL authentication failed"
            elif step.done and step.principal is not None:
                values["session_lifetime"] = self._authenticated(step.principal, version >= 1)
        response = build(response_type(key, version), values)
        return encode_response(key, version, header.correlation_id, response)

    def _raw_sasl(self, frame: Any) -> bytes:
        """After SaslHandshake v0 the tokens come as bare frames, answered likewise."""
        assert self.sasl is not None
        step = self.sasl.step(bytes(frame))
        if step.done:
            self._sasl_raw = False
            if step.principal is None:
                self._sasl_failed(step.error)
                raise _Close("SASL authentication failed", {})
            self._authenticated(step.principal, False)
        return len(step.response).to_bytes(4, "big") + step.response

    def _max_message_bytes(self, topic: str) -> int:
        """The topic's ``max.message.bytes`` (the broker's message.max.bytes for a topic
        this broker does not know: what an auto-created topic would get)."""
        try:
            return int(self.broker.topics.effective_configs(topic)["max.message.bytes"])
        except Exception:
            return int(self.broker.config.message_max_bytes)

    async def _handle(self, frame: Any) -> bytes | list[Any] | None:
        started = time.perf_counter()
        if self._sasl_raw:
            return self._raw_sasl(frame)
        try:
            header = parse_request_header(frame)
        except HeaderError as exc:
            raise _Close(f"unreadable request header: {exc}", {}) from None
        registry = self.broker.registry
        spec = registry.get(header.api_key)
        fields = {"api_key": header.api_key, "api_version": header.api_version,
                  "correlation_id": header.correlation_id, "client_id": header.client_id}
        if spec is None:
            raise _Close("unsupported api key", fields)
        if self.sasl is not None and header.api_key != API_VERSIONS_KEY:
            if self.principal is not None and not self._reauthenticating:
                if header.api_key == SASL_HANDSHAKE and self.server.reauth_ms > 0:
                    self._reauthenticating = True  # KIP-368: a fresh exchange
                    self.sasl = self.server.sasl.session()  # type: ignore[union-attr]
                elif self._session_end is not None and time.monotonic() > self._session_end:
                    raise _Close("SASL session expired (connections.max.reauth.ms)", fields)
            if self.principal is None or self._reauthenticating:
                return self._authenticate(header, spec, frame, fields)
        if not spec.supports(header.api_version):
            if header.api_key == API_VERSIONS_KEY:
                # KIP-511: answer in v0 with UNSUPPORTED_VERSION and our list
                return encode_response(
                    API_VERSIONS_KEY, 0, header.correlation_id, fallback_response(registry)
                )
            raise _Close("unsupported api version", fields)
        try:
            request = None
            if header.api_key == PRODUCE_KEY and len(frame) >= PRODUCE_SCAN_BYTES:
                request = decode_produce_eliding(header.api_version, frame,
                                                 header.body_offset, self._max_message_bytes)
            if request is None:
                request = decode_request(
                    header.api_key, header.api_version, frame, header.body_offset
                )
        except DecodeError as exc:
            raise _Close(f"malformed request body: {exc}", fields) from None
        ctx = RequestContext(self.broker, header, self.peer, self.id, self.server.listener,
                             principal=self.principal or ANONYMOUS)
        try:
            if header.api_key == FETCH_KEY:  # cancellable by the peer leaving
                self._current_api = FETCH_KEY
                task = self._handler_task = asyncio.ensure_future(spec.handler(ctx, request))
                try:
                    response = await task
                finally:
                    self._handler_task = None
            else:
                response = await spec.handler(ctx, request)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if self.peer_gone and current is not None and not current.cancelling():
                return None  # the long poll of a peer that left
            raise
        except CloseConnection as exc:
            raise _Close(str(exc.args[0]) if exc.args else "closed by handler", fields) from None
        except Exception as exc:
            log.exception("handler_failed", peer=self.peer, error=repr(exc), **fields)
            raise _Close("handler failed", fields) from None
        metrics = self.server.metrics
        if metrics is not None:
            metrics.request_done(spec.name, time.perf_counter() - started)
        if ctx.throttle_ms > 0:
            self._mute(ctx.throttle_ms / 1000)
        if response is None:
            return None
        try:
            return encode_response_chunks(header.api_key, header.api_version,
                                          header.correlation_id, response)
        except Exception as exc:  # a handler built a value its schema cannot carry
            log.exception("response_encode_failed", peer=self.peer, error=repr(exc),
                          **fields)
            raise _Close("response could not be encoded", fields) from None


def sasl_authenticator(broker: Any, listener: str) -> SaslAuthenticator | None:
    """The listener's authenticator when its security protocol is SASL_*: PLAIN users from
    its JAAS entry, SCRAM credentials from the broker's metadata image."""
    config = broker.config
    if not listener or not config.security_protocol(listener).startswith("SASL_"):
        return None
    return SaslAuthenticator(config.sasl_mechanism_list, config.plain_users().get(listener),
                             getattr(broker, "scram_credential", None))


class KafkaServer:
    """Listens on the broker's listener and serves Kafka connections."""

    def __init__(self, broker: Broker, listener: str = "", *,
                 ssl_context: ssl.SSLContext | None = None,
                 principal_rules: tuple[Rule, ...] = (Rule(),),
                 quotas: ConnectionQuotas | None = None,
                 pool: MemoryPool | None = None, label: str | None = None) -> None:
        self.broker = broker
        #: the listener's name in log lines (the controller's server has no ``listener``)
        self.label = label or listener
        #: TLS listeners: the context of the handshake (``broker.tls``) and the rules
        #: mapping a client certificate's subject to its principal
        self.ssl_context = ssl_context
        self.principal_rules = principal_rules
        #: connection limits shared by the broker's client listeners (None: unlimited)
        self.quotas = quotas
        #: queued.max.request.bytes shared by the client listeners (None: unbounded)
        self.pool = pool
        self._pool_waiters: collections.OrderedDict[KafkaConnection, None] = \
            collections.OrderedDict()
        #: the receive scratch of every connection of this server (see FrameDecoder)
        self.scratch = bytearray(FrameDecoder.SCRATCH_BYTES)
        #: the listener name this server serves (RequestContext.listener)
        self.listener = listener
        #: the SASL authenticator of a SASL listener (None: no SASL on this listener)
        self.sasl: SaslAuthenticator | None = sasl_authenticator(broker, listener)
        #: KIP-368 ``connections.max.reauth.ms`` (0: sessions never expire)
        self.reauth_ms: int = int(getattr(broker.config, "connections_max_reauth_ms", 0))
        #: the broker's instruments (None on a controller listener)
        self.metrics: BrokerMetrics | None = getattr(broker, "metrics", None)
        self.connections: set[KafkaConnection] = set()
        #: KIP-612 throttled connections waiting for their delayed close
        self.throttled: set[asyncio.BaseTransport] = set()
        self._server: asyncio.base_events.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self.host = ""
        self.port = 0

    async def start(self, host: str, port: int, *, serving: bool = True) -> tuple[str, int]:
        """Bind the listener; return the bound ``(host, port)``.  With ``serving=False`` the
        socket is bound but not listening (connections are refused, as from a broker that
        is down) until :meth:`start_serving`."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: KafkaConnection(self), host=host or None, port=port, reuse_address=True,
            backlog=2048, start_serving=serving,
        )
        sockname = self._server.sockets[0].getsockname()
        self.host, self.port = sockname[0], sockname[1]
        self._sweeper = loop.create_task(self._sweep_idle())
        return self.host, self.port

    async def start_serving(self) -> None:
        """Start accepting connections on a listener bound with ``serving=False``."""
        assert self._server is not None
        await self._server.start_serving()

    # ---- the memory pool (queued.max.request.bytes) ---------------------------------
    def wait_for_pool(self, conn: KafkaConnection) -> None:
        self._pool_waiters[conn] = None

    def forget_pool_waiter(self, conn: KafkaConnection) -> None:
        self._pool_waiters.pop(conn, None)

    def release_pool(self, nbytes: int) -> None:
        """Return ``nbytes`` to the pool; connections waiting for room go on, oldest
        first, while there is room."""
        pool = self.pool
        if pool is None:
            return
        pool.release(nbytes)
        while self._pool_waiters and pool.available > 0:
            conn = next(iter(self._pool_waiters))
            if not conn.pool_resumed():
                break  # still refused: it stays first in line
            self._pool_waiters.pop(conn, None)

    async def _sweep_idle(self) -> None:
        idle_s = self.broker.config.connections_max_idle_ms / 1000
        interval = min(max(idle_s / 4, 0.05), 5.0)
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for conn in list(self.connections):
                if conn.transport is not None and not conn.closed:
                    # bytes leaving count as activity; a peer that stops reading is idle
                    pending = conn.transport.get_write_buffer_size()
                    if pending < conn._write_size_seen:
                        conn.last_active = now
                    conn._write_size_seen = pending
                stalled = conn._write_ready is not None and not conn._write_ready.done()
                if not conn.busy and (not conn.queue or stalled) \
                        and now - conn.last_active > idle_s:
                    conn._close("idle", idle_ms=int((now - conn.last_active) * 1000),
                                unsent_bytes=conn._write_size_seen)

    async def shutdown(self, timeout: float = 10.0) -> None:
        """Stop accepting; finish in-flight requests; close every connection."""
        if self._server is not None:
            self._server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        self.broker.purgatory.close()  # long polls answer now
        workers = []
        for conn in list(self.connections):
            conn.draining = True
            if conn.transport is not None and not conn.closed:
                with contextlib.suppress(Exception):
                    conn.transport.pause_reading()
            conn._wake()
            if conn.worker is not None:
                workers.append(conn.worker)
        if workers:
            done, pending = await asyncio.wait(workers, timeout=timeout)
            for task in pending:
                task.cancel()
        for conn in list(self.connections):
            conn._close(None, graceful=True)
        for transport in list(self.throttled):
            transport.abort()  # type: ignore[attr-defined]
        self.throttled.clear()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), timeout=2)


def _tls_reason(exc: BaseException) -> str:
    """A short reason for a failed handshake (OpenSSL's, e.g. ``WRONG_VERSION_NUMBER`` for
    plaintext on a TLS port, ``CERTIFICATE_VERIFY_FAILED`` / ``SSLV3_ALERT_CERTIFICATE_
    EXPIRED`` for a refused client certificate)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"client certificate refused: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return str(exc.reason or exc)
    if isinstance(exc, TimeoutError):
        return "handshake timed out"
    return repr(exc)


_LINGER_RESET = struct.pack("ii", 1, 0)


def _reset(transport: asyncio.BaseTransport) -> None:
    """Abort with a TCP reset: SO_LINGER 0 makes the kernel drop the socket's send buffer
    too (a plain close would leave an orphan retrying megabytes towards a peer that does
    not read, in FIN-WAIT for minutes)."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    transport.abort()  # type: ignore[attr-defined]


def _ssl_protocol_type(loop: asyncio.AbstractEventLoop) -> Any:
    """The TLS protocol layer of ``loop``'s own ``start_tls`` (uvloop's, else asyncio's)."""
    if type(loop).__module__.startswith("uvloop"):
        from uvloop.loop import SSLProtocol

        return SSLProtocol
    from asyncio.sslproto import SSLProtocol as AsyncioSSLProtocol

    return AsyncioSSLProtocol
