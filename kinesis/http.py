"""The Kinesis HTTP listener (``strom.kinesis.listener``): aiohttp, one route.

``POST /`` with ``X-Amz-Target: Kinesis_20131202.<Operation>`` and a JSON 1.1 or CBOR
body. Every answer carries ``x-amzn-RequestId``; errors are AWS's shape
(``{"__type", "message"}``) with AWS's status (``kinesis.errors``), in the request's
encoding. An operation Strom does not implement is ``UnknownOperationException`` naming
it. Anything unexpected is logged and answered ``InternalFailureException`` (500); the
listener keeps serving.
"""

from __future__ import annotations

import time
import uuid

from aiohttp import web

from common.logging import get_logger
from kinesis import codec, validation
from kinesis.errors import KinesisError
from kinesis.service import KinesisService
from kinesis.sigv4 import Authenticator

log = get_logger("strom.kinesis")

TARGET_PREFIX = "Kinesis_20131202."


class KinesisServer:
    def __init__(self, service: KinesisService, authenticator: Authenticator | None = None
                 ) -> None:
        self.service = service
        self.authenticator = authenticator or Authenticator({})
        max_record = service.settings.max_record_bytes
        # base64 inflates by 4/3; PutRecords carries up to 500 records
        self.max_body = max(max_record * 2, 16 << 20) + (1 << 20)
        self._runner: web.AppRunner | None = None
        self.address: tuple[str, int] | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.max_body)
        app.router.add_post("/", self.handle)
        return app

    async def start(self, host: str, port: int) -> tuple[str, int]:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
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
            self.authenticator.check(request.method, request.path_qs,
                                     request.headers, body)
            handler = self.service.operations.get(operation) \
                if target.startswith(TARGET_PREFIX) else None
            if handler is None:
                raise KinesisError(
                    "UnknownOperationException",
                    f"Operation {operation or '(no X-Amz-Target)'} is not supported by "
                    f"Strom's Kinesis API; supported: "
                    f"{', '.join(sorted(self.service.operations))}.")
            checked = validation.check(operation, codec.decode(content_type, body),
                                       self.service.settings.max_record_bytes)
            answer = await handler(checked)
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


