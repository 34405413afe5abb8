"""Every API a broker can serve sits behind an authorization gate
(``broker.security.gates``): the handler modules' APIs, the cluster node's replacements
and the APIs registered later at startup. A handler added without a gate fails here (and,
at run time, is refused fail-closed)."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

from broker.cluster.handlers import cluster_handlers
from broker.config import BrokerConfig
from broker.handlers import RequestContext, collect_handlers
from broker.security.gates import CHECKED_IN_HANDLER, EXEMPT, GATES, GuardedRegistry
from protocol.errors import ErrorCode
from protocol.headers import RequestHeader


def every_api_key() -> set[int]:
    keys = {h.api_key for h in collect_handlers()} | {h.api_key for h in cluster_handlers()}
    import contextlib
    import importlib

    for module, name in (("broker.group.handlers_consumer", "CONSUMER_HANDLERS"),
                         ("broker.share.handlers_share", "SHARE_HANDLERS"),
                         ("broker.share.handlers_state", "STATE_HANDLERS")):
        with contextlib.suppress(ImportError):  # registered by coordinators at startup
            keys |= {h.api_key for h in getattr(importlib.import_module(module), name, [])}
    return keys


def test_every_api_has_a_gate_or_is_exempt() -> None:
    missing = sorted(every_api_key() - set(GATES) - EXEMPT - CHECKED_IN_HANDLER)
    assert not missing, f"APIs without an authorization gate: {missing}"


def test_exempt_apis_are_only_api_versions_and_sasl() -> None:
    assert {17, 18, 36} == EXEMPT


class _Broker:
    def __init__(self, tmp: Path) -> None:
        self.config = BrokerConfig(log_dirs=str(tmp))
        self.authorizer = object()  # never asked: the fail-closed path answers first


def test_an_api_registered_later_without_a_gate_is_refused(tmp_path: Path) -> None:
    from broker.handlers import ApiHandler

    called: list[Any] = []

    async def sneaky(ctx: RequestContext, request: Any) -> Any:
        called.append(request)
        return ctx.build_response({"error_code": 0})

    registry = GuardedRegistry([])
    GATES_BACKUP = GATES.pop(60)  # DescribeCluster, as if nobody had written its gate
    try:
        registry.register(ApiHandler(60, 0, 0, sneaky).spec())
    finally:
        GATES[60] = GATES_BACKUP
    spec = registry.get(60)
    assert spec is not None
    ctx = RequestContext(_Broker(tmp_path), RequestHeader(60, 0, 1, "t", 2, 0),  # type: ignore[arg-type]
                         "127.0.0.1:1", 1)
    response = asyncio.run(spec.handler(ctx, object()))
    assert response.error_code == ErrorCode.cluster_authorization_failed
    assert called == []


def test_controller_listener_rpcs_need_cluster_action(tmp_path: Path) -> None:
    """Every controller-listener RPC but ApiVersions asks CLUSTER_ACTION on the cluster:
    a super user (the brokers' principal) passes, anybody else gets
    CLUSTER_AUTHORIZATION_FAILED and the RPC is not run."""
    from broker.cluster.controller_api import HANDLERS, cluster_action
    from broker.security.authz import StandardAuthorizer
    from controller.metadata import MetadataImage

    ran: list[str] = []

    class Endpoint:
        authorizer = StandardAuthorizer(lambda: MetadataImage(), frozenset({"User:broker"}),
                                        False)

    heartbeat = next(h for h in HANDLERS if h.api_key == 63)

    async def fake(ctx: RequestContext, request: Any) -> Any:
        ran.append(ctx.principal)
        return ctx.build_response({"error_code": 0})

    guarded = cluster_action(dataclasses.replace(heartbeat, handle=fake))
    for principal in ("User:broker", "User:alice"):
        ctx = RequestContext(Endpoint(), RequestHeader(63, 1, 1, "t", 2, 0),  # type: ignore[arg-type]
                             "127.0.0.1:1", 1, principal=principal)
        response = asyncio.run(guarded.handle(ctx, object()))
        expected = 0 if principal == "User:broker" else ErrorCode.cluster_authorization_failed
        assert response.error_code == expected
    assert ran == ["User:broker"]
