"""Fetch purgatory wake-ups and producer-id blocks handed out by the broker."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
from pathlib import Path

import pytest

from broker.producer_ids import (
    FILE_NAME,
    ProducerIdManager,
    ProducerIdsUnavailable,
    legacy_floor,
)
from replication.fetch_purgatory import FetchPurgatory


async def test_append_wakes_only_watchers_of_that_partition() -> None:
    p = FetchPurgatory()
    a = p.watch([("t", 0), ("t", 1)])
    b = p.watch([("u", 0)])
    p.notify(("t", 1))
    assert a.done() and not b.done()
    p.unwatch([("t", 0), ("t", 1)], a)
    assert p.waiting() == 1
    p.close()
    assert b.done()
    assert p.watch([("x", 0)]).done()  # after close, watches complete at once


async def test_wait_times_out_without_notification() -> None:
    p = FetchPurgatory()
    fut = p.watch([("t", 0)])
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(fut), 0.05)
    assert not fut.done()
    p.unwatch([("t", 0)], fut)
    assert p.waiting() == 0


class FakeController:
    """Blocks of ``size`` ids from one shared counter, as the active controller hands out;
    ``fail`` answers raise (a controller that cannot be reached)."""

    def __init__(self, size: int = 10) -> None:
        self.size = size
        self.next = 0
        self.calls = 0
        self.fail = 0

    async def fetch(self, timeout: float) -> tuple[int, int]:
        self.calls += 1
        if self.fail:
            self.fail -= 1
            raise ProducerIdsUnavailable("controller unreachable")
        start, self.next = self.next, self.next + self.size
        return start, self.size


async def test_two_brokers_sharing_a_controller_never_hand_out_the_same_id() -> None:
    controller = FakeController(size=10)
    a, b = ProducerIdManager(controller.fetch), ProducerIdManager(controller.fetch)
    ids = []
    for _ in range(25):
        ids += [await a.allocate(), await b.allocate()]
    assert len(set(ids)) == len(ids) == 50


async def test_next_block_is_prefetched_before_the_current_one_runs_out() -> None:
    controller = FakeController(size=10)
    m = ProducerIdManager(controller.fetch)
    assert [await m.allocate() for _ in range(9)] == list(range(9))
    await asyncio.sleep(0)  # the prefetch runs in the background
    assert controller.calls == 2
    assert [await m.allocate() for _ in range(2)] == [9, 10]
    assert controller.calls == 2


async def test_ids_below_the_legacy_floor_are_never_handed_out(tmp_path: Path) -> None:
    (tmp_path / FILE_NAME).write_text("next_block_start=25\n")
    assert legacy_floor(tmp_path) == 25
    assert legacy_floor(tmp_path / "elsewhere") == 0
    controller = FakeController(size=10)
    m = ProducerIdManager(controller.fetch, floor=legacy_floor(tmp_path))
    assert [await m.allocate() for _ in range(6)] == [25, 26, 27, 28, 29, 30]
    (tmp_path / FILE_NAME).write_text("next_block_start=x\n")
    with pytest.raises(ValueError, match="not a number"):
        legacy_floor(tmp_path)


async def test_init_producer_id_answers_coordinator_load_in_progress_without_a_block(
        ) -> None:
    """Kafka's answer when no block can be had: retriable, so the client asks again."""
    from types import SimpleNamespace

    from kio.schema.init_producer_id.v4.request import InitProducerIdRequest

    from broker.handlers import RequestContext, init_producer_id
    from protocol.headers import RequestHeader

    controller = FakeController(size=10)
    controller.fail = 1000
    broker = SimpleNamespace(producer_ids=ProducerIdManager(controller.fetch, wait_s=0.1))
    ctx = RequestContext(broker, RequestHeader(22, 4, 1, "t", 2, 0),  # type: ignore[arg-type]
                         "test", 0)
    request = InitProducerIdRequest(transactional_id=None,
                                    transaction_timeout=datetime.timedelta(seconds=60))
    response = await init_producer_id.handle(ctx, request)
    assert response.error_code.name == "coordinator_load_in_progress"
    assert (int(response.producer_id), int(response.producer_epoch)) == (-1, -1)
    controller.fail = 0
    response = await init_producer_id.handle(ctx, request)
    assert (int(response.error_code), int(response.producer_id)) == (0, 0)
    broker.producer_ids.close()


async def test_retriable_error_when_no_block_comes_in_time() -> None:
    controller = FakeController(size=10)
    controller.fail = 1000
    m = ProducerIdManager(controller.fetch, wait_s=0.2)
    with pytest.raises(ProducerIdsUnavailable, match="controller unreachable"):
        await m.allocate()
    controller.fail = 0
    assert await m.allocate() == 0  # the controller is back: ids again
    m.close()
