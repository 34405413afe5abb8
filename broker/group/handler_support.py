"""Small helpers shared by the group API handler modules."""

from __future__ import annotations

import datetime
from typing import Any

from broker.handlers import RequestContext


def ms(value: Any, default: int = -1) -> int:
    """Milliseconds of a kio ``timedelta`` field (or an int), ``default`` if absent."""
    if value is None:
        return default
    if isinstance(value, datetime.timedelta):
        return round(value.total_seconds() * 1000)
    return int(value)


def client_host(ctx: RequestContext) -> str:
    """Kafka's ``/address`` form of the peer address."""
    host = ctx.peer.rsplit(":", 1)[0] if ":" in ctx.peer else ctx.peer
    return "/" + host


def topic_partition_known(ctx: RequestContext, topic: str, partition: int) -> bool:
    info = ctx.broker.topics.get(topic)
    return info is not None and 0 <= partition < info.partitions
