"""The Kinesis HTTP listener (``strom.kinesis.listener``): aiohttp, one route.

``POST /`` with ``X-Amz-Target: Kinesis_20131202.<Operation>`` and a JSON 1.1 or CBOR
body. Every answer carries ``x-amzn-RequestId``; errors are AWS's shape
(``{"__type", "message"}``) with AWS's status (``kinesis.errors``), in the request's
encoding. An operation Strom does not implement is ``UnknownOperationException`` naming
it. Anything unexpected is logged and answered ``InternalFailureException`` (500); the
listener keeps serving.

Forwarding: a request for a shard led by another broker (``service.Forward``) is relayed
as it came (body, target, content type, signature headers) to that broker's Kinesis
listener, whose answer goes back unchanged; PutRecords sub-requests go as JSON. A relayed
request carries ``X-Strom-Forwarded``: HMAC-SHA256 over target and body with the
cluster's iterator key, so the leader trusts the signature check the first broker did
and never forwards it again.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from common.logging import get_logger
from kinesis import codec, eventstream, validation
from kinesis.errors import KinesisError
from kinesis.service import FORWARDED, JSON_WIRE, Forward, KinesisService
from kinesis.sigv4 import Authenticator

log = get_logger("strom.kinesis")

TARGET_PREFIX = "Kinesis_20131202."
FORWARDED_HEADER = "X-Strom-Forwarded"
SUBSCRIBE = "SubscribeToShard"
FORWARD_TIMEOUT_S = 35.0
#: request headers relayed to the leader
_RELAYED = ("Content-Type", "X-Amz-Target", "X-Amz-Date", "X-Amz-Security-Token",
            "X-Amz-Content-Sha256", "Authorization", "Host")


class KinesisServer:
    def __init__(self, service: KinesisService, authenticator: Authenticator | None = None
                 ) -> None:
        self.service = service
        self.authenticator = authenticator or Authenticator({})
        max_record = service.settings.max_record_bytes
        # base64 inflates by 4/3; PutRecords carries up to 500 records
        self.max_body = max(max_record * 2, 16 << 20) + (1 << 20)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.address: tuple[str, int] | None = None
        service.forward_json = self.forward_json

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.max_body)
        app.router.add_post("/", self.handle)
        return app

    async def start(self, host: str, port: int) -> tuple[str, int]:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        # open subscriptions (SubscribeToShard) are cut after 2 s at shutdown
        site = web.TCPSite(self._runner, host, port, shutdown_timeout=2.0)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        bound = sockets[0].getsockname()[:2] if sockets else (host, port)
        self.address = (str(bound[0]), int(bound[1]))
        log.info("kinesis_listening", address=f"http://{self.address[0]}:{self.address[1]}")
        return self.address

    async def shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    # ---- forwarding ------------------------------------------------------------------------
    def _proof(self, target: str, body: bytes) -> str:
        return hmac.new(self.service.settings.iterator_key, target.encode() + b"\n" + body,
                        hashlib.sha256).hexdigest()

    def _is_forwarded(self, target: str, headers: Any, body: bytes) -> bool:
        proof = headers.get(FORWARDED_HEADER)
        return proof is not None and hmac.compare_digest(proof, self._proof(target, body))

    async def _post(self, leader: int, headers: dict[str, str], body: bytes
                    ) -> tuple[int, str, bytes]:
        address = self.service.cluster.kinesis_address(leader)
        if address is None:
            raise KinesisError("InternalFailureException",
                               f"Broker {leader} leads the shard but serves no Kinesis "
                               f"listener; retry.")
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_S),
                skip_auto_headers=("User-Agent",))
        headers[FORWARDED_HEADER] = self._proof(headers.get("X-Amz-Target", ""), body)
        try:
            async with self._session.post(f"http://{address[0]}:{address[1]}/", data=body,
                                          headers=headers) as response:
                return response.status, response.headers.get("Content-Type", codec.JSON), \
                    await response.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise KinesisError("InternalFailureException",
                               f"Cannot reach broker {leader}, the shard's leader: "
                               f"{type(exc).__name__}; retry.") from None

    async def _subscribe(self, request: web.Request, checked: dict[str, Any], body: bytes,
                         request_id: str) -> web.StreamResponse:
        """SubscribeToShard: an event stream (see ``kinesis.eventstream``); errors before
        the first event are ordinary AWS errors (raised to ``handle``)."""
        try:
            sub = await self.service.subscribe(checked)
        except Forward as fwd:
            return await self._relay_stream(request, fwd.leader, body, request_id)
        response = web.StreamResponse(status=200, headers={
            "Content-Type": eventstream.CONTENT_TYPE, "x-amzn-RequestId": request_id})
        await response.prepare(request)
        try:
            await response.write(eventstream.event("initial-response", b"{}"))
            try:
                async for event in self.service.events(sub):
                    await response.write(eventstream.event(
                        "SubscribeToShardEvent", codec.encode(False, event)))
            except KinesisError as exc:
                await response.write(eventstream.exception(
                    exc.type, orjson.dumps({"message": exc.message})))
            await response.write_eof()
        except (ConnectionResetError, ConnectionError, RuntimeError):
            pass  # the subscriber went away
        return response

    async def _relay_stream(self, request: web.Request, leader: int, body: bytes,
                            request_id: str) -> web.StreamResponse:
        address = self.service.cluster.kinesis_address(leader)
        if address is None:
            raise KinesisError("InternalFailureException",
                               f"Broker {leader} leads the shard but serves no Kinesis "
                               f"listener; retry.")
        headers = {h: request.headers[h] for h in _RELAYED if h in request.headers}
        headers[FORWARDED_HEADER] = self._proof(headers.get("X-Amz-Target", ""), body)
        session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(
            total=None, sock_read=FORWARD_TIMEOUT_S))
        response: web.StreamResponse | None = None
        try:
            async with session.post(f"http://{address[0]}:{address[1]}/", data=body,
                                    headers=headers) as upstream:
                response = web.StreamResponse(status=upstream.status, headers={
                    "Content-Type": upstream.headers.get("Content-Type", codec.JSON),
                    "x-amzn-RequestId": request_id})
                await response.prepare(request)
                try:
                    async for chunk in upstream.content.iter_any():
                        await response.write(chunk)
                    await response.write_eof()
                except (ConnectionResetError, ConnectionError, RuntimeError):
                    pass
                return response
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            if response is not None and response.prepared:
                return response  # the upstream stream broke mid-way: end ours too
            raise KinesisError("InternalFailureException",
                               f"Cannot reach broker {leader}, the shard's leader: "
                               f"{type(exc).__name__}; retry.") from None
        finally:
            await session.close()

    async def forward_json(self, leader: int, operation: str, body: dict[str, Any]
                           ) -> dict[str, Any]:
        status, _ctype, data = await self._post(
            leader, {"Content-Type": codec.JSON, "X-Amz-Target": TARGET_PREFIX + operation},
            codec.encode(False, body))
        try:
            answer = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise KinesisError("InternalFailureException",
                               f"Broker {leader} answered status {status}") from None
        if status != 200:
            raise KinesisError(str(answer.get("__type", "InternalFailureException")),
                               str(answer.get("message", "")))
        return answer

    async def handle(self, request: web.Request) -> web.StreamResponse:
        content_type = request.headers.get("Content-Type", codec.JSON)
        cbor = codec.is_cbor(content_type)
        request_id = str(uuid.uuid4())
        started = time.perf_counter()
        operation = "?"
        try:
            target = request.headers.get("X-Amz-Target", "")
            operation = target[len(TARGET_PREFIX):] if target.startswith(TARGET_PREFIX) \
                else target
            try:
                body = await request.read()
            except web.HTTPRequestEntityTooLarge:
                raise KinesisError("ValidationException",
                                   f"Request body is larger than {self.max_body} bytes.") \
                    from None
            forwarded = self._is_forwarded(target, request.headers, body)
            if not forwarded:
                self.authenticator.check(request.method, request.path_qs,
                                         request.headers, body, time.time_ns() // 1_000_000)
            handler = self.service.operations.get(operation) \
                if target.startswith(TARGET_PREFIX) else None
            if operation == SUBSCRIBE and target.startswith(TARGET_PREFIX):
                checked = validation.check(operation, codec.decode(content_type, body),
                                           self.service.settings.max_record_bytes)
                if forwarded:
                    checked[FORWARDED] = True
                return await self._subscribe(request, checked, body, request_id)
            if handler is None:
                raise KinesisError(
                    "UnknownOperationException",
                    f"Operation {operation or '(no X-Amz-Target)'} is not supported by "
                    f"Strom's Kinesis API; supported: "
                    f"{', '.join(sorted([*self.service.operations, SUBSCRIBE]))}.")
            checked = validation.check(operation, codec.decode(content_type, body),
                                       self.service.settings.max_record_bytes)
            if forwarded:
                checked[FORWARDED] = True
            if not cbor:
                checked[JSON_WIRE] = True
            try:
                answer = await handler(checked)
            except Forward as fwd:
                headers = {h: request.headers[h] for h in _RELAYED if h in request.headers}
                status, ctype, data = await self._post(fwd.leader, headers, body)
                return web.Response(body=data, status=status, content_type=ctype.split(";")[0],
                                    headers={"x-amzn-RequestId": request_id})
            status = 200
        except KinesisError as exc:
            answer, status = exc.body(), exc.status
        except Exception as exc:  # never let one request take the listener down
            log.exception("kinesis_request_failed", operation=operation, error=repr(exc))
            answer = {"__type": "InternalFailureException",
                      "message": f"Internal failure: {type(exc).__name__}"}
            status = 500
        if status != 200:
            log.debug("kinesis_error", operation=operation, status=status,
                      type=answer.get("__type"),
                      ms=round((time.perf_counter() - started) * 1000, 2))
        return web.Response(body=codec.encode(cbor, answer), status=status,
                            content_type=codec.CBOR if cbor else codec.JSON,
                            headers={"x-amzn-RequestId": request_id})


