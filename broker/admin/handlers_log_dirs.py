"""DescribeLogDirs (35) v1-4: what this broker stores, per log directory
(``kafka-log-dirs.sh --describe``, ``AdminClient.describeLogDirs``).

One result: the broker's log directory (absolute path) with every partition log it holds
— or only those of the requested topics and partitions (``topics`` null: all) — each with
its size in bytes (all segments), offset lag 0 and ``is_future_key`` false (a current
replica; there are no future replicas: AlterReplicaLogDirs is not served). v4 adds the
volume's total and usable bytes (``statvfs``). Partitions not held here are left out, as
Kafka does.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from broker.handlers import ApiHandler, RequestContext


def answer_describe_log_dirs(log_dir: Path, held: Iterable[tuple[str, int, int]],
                             request: Any) -> dict[str, Any]:
    """The response dict for ``held`` = (topic, partition, size in bytes) of each log."""
    wanted = None if request.topics is None else {
        (t.topic, int(p)) for t in request.topics for p in t.partitions}
    topics: dict[str, list[dict[str, Any]]] = {}
    for topic, partition, size in sorted(held):
        if wanted is None or (topic, partition) in wanted:
            topics.setdefault(topic, []).append({
                "partition_index": partition, "partition_size": size, "offset_lag": 0,
                "is_future_key": False})
    usage = shutil.disk_usage(log_dir)
    return {"throttle_time": 0, "error_code": 0, "results": [{
        "error_code": 0, "log_dir": str(log_dir.resolve()),
        "topics": [{"name": name, "partitions": parts} for name, parts in topics.items()],
        "total_bytes": usage.total, "usable_bytes": usage.free}]}


async def handle_describe_log_dirs(ctx: RequestContext, request: Any) -> Any:
    logs = ctx.broker.logs
    held = []
    for topic, partition in logs.partitions():
        log = logs.get(topic, partition)
        if log is not None:
            held.append((topic, partition, log.size_in_bytes))
    return ctx.build_response(answer_describe_log_dirs(logs.log_dir, held, request))


HANDLERS = [ApiHandler(35, 1, 4, handle_describe_log_dirs)]
