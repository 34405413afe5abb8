"""The producer id shells: the controller listener's AllocateProducerIds handler off the
active controller, and the broker's request loop (``ClusterNode.allocate_producer_ids``):
NOT_CONTROLLER, stale epochs and connection errors are retried within the deadline, other
errors and an exhausted deadline raise ProducerIdsUnavailable."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from kio.schema.allocate_producer_ids.v0.request import AllocateProducerIdsRequest
from kio.schema.errors import ErrorCode

from broker.cluster import controller_api
from broker.cluster.node import ClusterNode
from broker.handlers import RequestContext
from broker.producer_ids import ProducerIdsUnavailable
from net.client import RequestError
from protocol.headers import RequestHeader


async def test_a_node_that_is_not_the_controller_answers_not_controller() -> None:
    ctx = RequestContext(SimpleNamespace(controller=None),  # type: ignore[arg-type]
                         RequestHeader(67, 0, 1, "t", 2, 0), "test", 0)
    response = await controller_api.handle_allocate_producer_ids(
        ctx, AllocateProducerIdsRequest(broker_id=1, broker_epoch=5))  # type: ignore[arg-type]
    assert response.error_code == ErrorCode.not_controller
    assert (int(response.producer_id_start), int(response.producer_id_len)) == (-1, 0)


def answer(code: ErrorCode, start: int = -1, length: int = 0) -> Any:
    return SimpleNamespace(error_code=code, producer_id_start=start, producer_id_len=length)


def node(answers: list[Any]) -> tuple[ClusterNode, list[Any]]:
    """A broker-role ClusterNode shell whose controller answers ``answers`` in turn (an
    exception instance is raised)."""
    n = ClusterNode.__new__(ClusterNode)
    n.single_voter, n._stopping, n.node_id, n.broker_epoch = False, False, 1, 7
    n.broker, n.controller = None, None
    sent: list[Any] = []

    async def to_controller(body: Any, *, timeout: float, channel: str) -> Any:
        sent.append(body)
        item = answers.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    n._to_controller = to_controller  # type: ignore[method-assign]
    return n, sent


async def test_retriable_answers_are_retried_until_a_block_comes() -> None:
    n, sent = node([RequestError("refused"), answer(ErrorCode.not_controller),
                    answer(ErrorCode.stale_broker_epoch), answer(ErrorCode.none, 4000, 1000)])
    assert await n.allocate_producer_ids(5.0) == (4000, 1000)
    assert [(int(b.broker_id), int(b.broker_epoch)) for b in sent] == [(1, 7)] * 4


async def test_other_errors_and_the_deadline_raise() -> None:
    n, _ = node([answer(ErrorCode.unknown_server_error)])
    with pytest.raises(ProducerIdsUnavailable, match="UNKNOWN_SERVER_ERROR|unknown_server"):
        await n.allocate_producer_ids(5.0)
    n, _ = node([answer(ErrorCode.not_controller)] * 100)
    with pytest.raises(ProducerIdsUnavailable, match="within 0.3s"):
        await n.allocate_producer_ids(0.3)
    n, sent = node([])
    n.broker_epoch = -1  # not registered yet: nothing is sent
    with pytest.raises(ProducerIdsUnavailable, match="not registered"):
        await n.allocate_producer_ids(0.2)
    assert sent == []
