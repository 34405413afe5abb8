"""The server in-process on 127.0.0.1:0, started as ``strom serve`` starts a lone node (a
one-voter quorum of itself): handler failures close only their connection, handlers
registered late are advertised, shutdown finishes in-flight requests."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from kio.schema.api_versions.v0.request import ApiVersionsRequest
from kio.schema.describe_delegation_token.v1.request import DescribeDelegationTokenRequest

from broker.cluster.node import ClusterNode
from broker.config import load_config
from broker.handlers import ApiHandler, RequestContext
from broker.server import KafkaServer
from broker.topics import NewTopicRequest
from net.wire import WireClient

UNUSED_API = 41  # DescribeDelegationToken: not served by any real handler


async def _failing(ctx: RequestContext, request: Any) -> Any:
    raise RuntimeError("boom")


@pytest.fixture
async def running(tmp_path: Path) -> Any:
    config, _ = load_config(None, [f"log.dirs={tmp_path}", "listeners=PLAINTEXT://127.0.0.1:0"],
                            environ={})
    node = ClusterNode(config)
    node.open()
    broker = node.broker
    assert broker is not None
    broker.registry.register(ApiHandler(UNUSED_API, 1, 1, _failing).spec())
    await node.start_quorum()
    server = KafkaServer(broker)
    try:
        assert await node.wait_caught_up(5)
        await broker.run_startup_hooks()
        host, port = await server.start("127.0.0.1", 0)
        node.start_broker([("PLAINTEXT", host, port)])
        assert await node.wait_serving(5)
        yield node, broker, server, host, port
    finally:
        await server.shutdown()
        await node.stop()
        await broker.shutdown()
        node.release_data_dir()


def _call(host: str, port: int, body: Any) -> Any:
    with WireClient(host, port, timeout=5) as c:
        return c.request(body)


async def test_handler_failure_closes_only_that_connection(running: Any) -> None:
    _node, _broker, _server, host, port = running
    versions = await asyncio.to_thread(_call, host, port, ApiVersionsRequest())
    assert any(int(k.api_key) == UNUSED_API for k in versions.api_keys)

    def failing_then_check() -> bool:
        with WireClient(host, port, timeout=5) as c:
            c.send(DescribeDelegationTokenRequest(owners=None))
            return c.is_closed_by_peer()

    assert await asyncio.to_thread(failing_then_check)
    again = await asyncio.to_thread(_call, host, port, ApiVersionsRequest())
    assert again.error_code == 0


async def test_shutdown_answers_in_flight_long_poll(running: Any) -> None:
    node, broker, server, host, port = running
    from protocol.build import build
    from protocol.codec import request_type

    await node.create_now([NewTopicRequest("lp", 1)])
    assert broker.topics.get("lp") is not None
    fetch = build(request_type(1, 12), {
        "replica_id": -1, "max_wait": 30_000, "min_bytes": 1, "max_bytes": 1 << 20,
        "session_epoch": -1, "forgotten_topics_data": [],
        "topics": [{"topic": "lp", "partitions": [
            {"partition": 0, "fetch_offset": 0, "partition_max_bytes": 1 << 20}]}]})

    client = WireClient(host, port, timeout=10)
    try:
        await asyncio.to_thread(client.send, fetch)
        for _ in range(100):  # wait until the fetch is parked in the purgatory
            if broker.purgatory.waiting():
                break
            await asyncio.sleep(0.02)
        assert broker.purgatory.waiting() == 1
        await asyncio.wait_for(server.shutdown(), 5)
        resp = await asyncio.to_thread(client.receive)
        assert resp.responses[0].partitions[0].error_code == 0
    finally:
        client.close()
