"""Request handlers: one module per API, collected into the API registry.

How handlers are declared
-------------------------
A handler module exports ``HANDLERS: list[ApiHandler]``. Each ``ApiHandler`` names the
API key, the version range the handler really implements (every version must exist in
kio), and an ``async def handle(ctx: RequestContext, request) -> response | None``:

- ``request`` is the kio request entity of the version the client sent
  (``ctx.api_version``);
- the return value is a kio response entity of the same version (build it with
  ``ctx.build_response({...})``, which keeps the fields that version declares), or
  ``None`` to send no response (Produce with acks=0).

How they are collected
----------------------
``collect_handlers()`` imports the fixed ``CORE_MODULES`` below, then every module whose
name starts with ``handlers`` inside the extension packages ``EXTENSION_PACKAGES``
(``broker.admin``, ``broker.group``, ``broker.txn``, ``broker.share``), when those
packages exist, e.g. ``broker/admin/handlers.py`` or ``broker/group/handlers_offsets.py``.
Nothing else needs registering: adding such a module with a ``HANDLERS`` list makes the
broker answer and advertise those APIs. Two modules claiming the same API key is a startup error.
An extension module that fails to import is an error too (never silently skipped).

Startup: a handler module may also define ``on_broker_start(broker)`` (sync or async); the
broker calls it inside the event loop after storage is open and before it accepts
connections (e.g. to load coordinator state eagerly, as Kafka does).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

from protocol.api_registry import ApiRegistry, ApiSpec
from protocol.build import build
from protocol.codec import response_type

if TYPE_CHECKING:
    from broker.broker import Broker
    from protocol.headers import RequestHeader

HandlerFn = Callable[["RequestContext", Any], Awaitable[Any]]

CORE_MODULES: tuple[str, ...] = (
    "broker.handlers.api_versions",
    "broker.handlers.metadata",
    "broker.handlers.describe_cluster",
    "broker.handlers.produce",
    "broker.handlers.fetch",
    "broker.handlers.list_offsets",
    "broker.handlers.init_producer_id",
    "broker.handlers.offset_for_leader_epoch",
    "broker.handlers.describe_producers",
    "broker.handlers.sasl",
)
EXTENSION_PACKAGES: tuple[str, ...] = ("broker.admin", "broker.group", "broker.txn",
                                        "broker.share")


class CloseConnection(Exception):  # noqa: N818 - Kafka's wording: the broker closes it
    """Raised by a handler to close the client's connection instead of answering
    (Kafka does this for an acks=0 produce that failed). ``args[0]`` is the reason."""


@dataclass(frozen=True, slots=True)
class ApiHandler:
    """One API served by one async handler; see the module doc."""

    api_key: int
    min_version: int
    max_version: int
    handle: HandlerFn
    advertised_min: int | None = None

    def spec(self) -> ApiSpec[HandlerFn]:
        return ApiSpec(
            api_key=self.api_key,
            min_version=self.min_version,
            max_version=self.max_version,
            handler=self.handle,
            advertised_min=self.advertised_min,
        )


@dataclass(slots=True)
class RequestContext:
    """What a handler knows about the request besides its body."""

    broker: Broker
    header: RequestHeader
    peer: str
    connection_id: int
    #: name of the listener the request arrived on ("" in-process: the first client one)
    listener: str = ""
    #: who sent it (``User:<name>``; User:ANONYMOUS unauthenticated), what the
    #: authorizer decides for (``broker.security.authz``)
    principal: str = "User:ANONYMOUS"
    #: True for a request this process sends itself (in-process controller calls): the
    #: broker's own, never authorized against ACLs
    internal: bool = False
    #: True on the controller for a client's request a broker forwarded (KIP-590
    #: Envelope, or in-process on a lone node): ``principal`` and the header's client id
    #: are the client's, and its KIP-599 controller mutation quota applies
    forwarded: bool = False
    #: set by quota enforcement (``broker.quotas``): the server mutes the connection for
    #: this long after answering (KIP-219)
    throttle_ms: int = 0

    @property
    def client_host(self) -> str:
        """The client's IP address (the ``host`` of ACLs)."""
        host, _, _ = self.peer.rpartition(":")
        return host or self.peer

    @property
    def api_key(self) -> int:
        return self.header.api_key

    @property
    def api_version(self) -> int:
        return self.header.api_version

    @property
    def client_id(self) -> str | None:
        return self.header.client_id

    def response_class(self) -> type:
        return response_type(self.header.api_key, self.header.api_version)

    def build_response(self, values: dict[str, Any]) -> Any:
        """The response entity of this request's version built from ``values``."""
        return build(self.response_class(), values)


def _extension_modules() -> list[ModuleType]:
    modules = []
    for package_name in EXTENSION_PACKAGES:
        try:
            package = importlib.import_module(package_name)
        except ModuleNotFoundError as exc:
            if exc.name == package_name:
                continue
            raise
        paths = getattr(package, "__path__", None)
        if paths is None:
            continue
        for info in sorted(pkgutil.iter_modules(paths), key=lambda i: i.name):
            if info.name.startswith("handlers"):
                modules.append(importlib.import_module(f"{package_name}.{info.name}"))
    return modules


def _all_modules(extra_modules: tuple[str, ...] = ()) -> list[ModuleType]:
    modules = [importlib.import_module(m) for m in CORE_MODULES]
    modules += _extension_modules()
    modules += [importlib.import_module(m) for m in extra_modules]
    return modules


def collect_start_callbacks(extra_modules: tuple[str, ...] = ()) -> list[Callable[..., Any]]:
    """Every ``on_broker_start(broker)`` defined by a handler module."""
    return [m.on_broker_start for m in _all_modules(extra_modules)
            if callable(getattr(m, "on_broker_start", None))]


def collect_handlers(extra_modules: tuple[str, ...] = ()) -> list[ApiHandler]:
    """Every ``ApiHandler`` from the core modules, extension packages and ``extra_modules``."""
    handlers: list[ApiHandler] = []
    for module in _all_modules(extra_modules):
        declared = getattr(module, "HANDLERS", None)
        if declared is None:
            raise RuntimeError(f"handler module {module.__name__} exports no HANDLERS list")
        handlers.extend(declared)
    return handlers


def build_registry(extra_modules: tuple[str, ...] = ()) -> ApiRegistry[HandlerFn]:
    """The API registry the server dispatches on and ApiVersions advertises."""
    return ApiRegistry(h.spec() for h in collect_handlers(extra_modules))
