"""``strom consume TOPIC``: read records from an offset, a time or the end, print them as
text, a template or one JSON object per line; Ctrl-C stops cleanly and reports what was
read. With ``--group`` the group's committed offsets are the starting point and the
positions reached are committed on exit (a simple commit: no group membership, so the
group must have no active members)."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import time
from collections.abc import Iterator
from typing import Any

from broker.tools.context import Failure, Progress, UsageError, make_client
from broker.tools.positions import EARLIEST as POS_EARLIEST
from broker.tools.positions import FORMS, OFFSET, Position, parse_position
from broker.tools.positions import LATEST as POS_LATEST
from broker.tools.record_text import record_json, render_template, unescape
from broker.tools.topic_cmd import leaf
from net.admin import EARLIEST, LATEST, Admin
from net.consumer import ConsumedRecord, PartitionReader
from net.groups import Groups
from net.kafka_client import KafkaClient


def add_parser(sub: Any, connection: Any) -> None:
    p = leaf(sub, "consume", "read records and print them",
             "strom consume orders --offset earliest -n 10 --format json", [connection])
    p.add_argument("topic")
    p.add_argument("--offset", "-o", default=None, metavar="POSITION",
                   help=f"where to start: {FORMS} (default: latest; "
                        "with --group its committed offsets, else earliest)")
    p.add_argument("--partition", "-p", type=int, action="append",
                   help="only this partition (repeatable)")
    p.add_argument("--group", "-g", help="start at and commit to this group's offsets")
    p.add_argument("--count", "-n", type=int, help="stop after this many records")
    p.add_argument("--exit-at-end", "-e", action="store_true",
                   help="stop at the end of every partition (the high watermark)")
    p.add_argument("--format", choices=("text", "json"), default="text",
                   help="text: the value per line (default); json: one object per record")
    p.add_argument("--print-format", "-f", metavar="TEMPLATE",
                   help="e.g. '%%k\\t%%v\\n' (%%t %%p %%o %%T %%k %%v %%h)")
    p.add_argument("--read-committed", action="store_true",
                   help="isolation.level=read_committed")
    p.set_defaults(run=consume)


def _starts(client: KafkaClient, args: argparse.Namespace, spec: Position | None,
            partitions: list[int], committed: dict[int, int]) -> dict[int, int]:
    md = client.metadata([args.topic])
    admin = Admin(client)
    tps = [(args.topic, p) for p in partitions]
    if spec is None:
        default = EARLIEST if args.group else LATEST
        ends = admin.list_offsets(md, dict.fromkeys(tps, default))
        return {p: committed.get(p, ends[(args.topic, p)].offset) for p in partitions}
    if spec.kind == OFFSET:
        return dict.fromkeys(partitions, spec.value)
    kind = {POS_EARLIEST: EARLIEST, POS_LATEST: LATEST}.get(spec.kind, spec.value)
    found = admin.list_offsets(md, dict.fromkeys(tps, kind))
    if spec.kind in (POS_EARLIEST, POS_LATEST):
        return {p: found[(args.topic, p)].offset for p in partitions}
    latest = admin.list_offsets(md, dict.fromkeys(tps, LATEST))
    return {p: found[(args.topic, p)].offset if found[(args.topic, p)].offset >= 0
            else latest[(args.topic, p)].offset for p in partitions}


def consume(args: argparse.Namespace) -> int:
    template = unescape(args.print_format) if args.print_format else None
    if args.count is not None and args.count < 1:
        raise UsageError("--count must be at least 1")
    try:
        spec = (parse_position(args.offset, time.time_ns() // 1_000_000)
                if args.offset is not None else None)
    except ValueError as exc:
        raise UsageError(f"--offset: {exc}") from None
    out = sys.stdout.buffer
    progress = Progress("consumed", sys.stderr) if not sys.stdout.isatty() else None
    read = 0
    dropped: list[ConsumedRecord] = []
    with make_client(args) as client:
        info = client.topic(args.topic)
        have = [p.partition for p in info.partitions]
        partitions = sorted(set(args.partition)) if args.partition else have
        missing = sorted(set(partitions) - set(have))
        if missing:
            raise UsageError(f"topic {args.topic} has no partition(s) {missing}")
        committed: dict[int, int] = {}
        if args.group:
            groups = Groups(client)
            members = groups.describe(args.group).members
            if members:
                raise Failure(f"group {args.group!r} has {len(members)} active member(s): "
                              "strom consume commits without joining, so stop them first")
            committed = {p: o for (t, p), o in groups.committed(args.group).items()
                         if t == args.topic}
        reader = PartitionReader(client, args.topic, _starts(client, args, spec, partitions,
                                                             committed),
                                 isolation=1 if args.read_committed else 0)
        stop = _Interrupt()
        try:
            while not stop.requested:
                with stop.immediate():
                    batch = reader.poll()
                if args.count is not None:
                    batch, dropped = batch[:args.count - read], batch[args.count - read:]
                for rec in batch:
                    out.write(_render(rec, args.format, template))
                read += len(batch)
                if batch:
                    out.flush()
                    if progress is not None:
                        progress(read)
                if args.count is not None and read >= args.count:
                    break
                if args.exit_at_end and reader.at_end():
                    break
        except KeyboardInterrupt:
            pass
        finally:
            stop.restore()
            if progress is not None:
                progress.done()
        if args.group:
            positions = dict(reader.positions)
            for rec in dropped:  # fetched beyond --count, not printed: not consumed
                positions[rec.partition] = min(positions[rec.partition], rec.offset)
            Groups(client).commit(args.group, {(args.topic, p): o
                                               for p, o in positions.items()})
    print(f"strom: {read} record(s) read from {args.topic}", file=sys.stderr)
    return 0


class _Interrupt:
    """Ctrl-C (SIGINT) while records are printed finishes the batch, so the count is
    exact; while waiting for the broker it interrupts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._waiting = False
        self._previous = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, frame: object) -> None:
        self.requested = True
        if self._waiting:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def immediate(self) -> Iterator[None]:
        self._waiting = True
        try:
            yield
        finally:
            self._waiting = False

    def restore(self) -> None:
        signal.signal(signal.SIGINT, self._previous)


def _render(rec: ConsumedRecord, fmt: str, template: str | None) -> bytes:
    if template is not None:
        return render_template(template, rec)
    if fmt == "json":
        return record_json(rec).encode() + b"\n"
    return (rec.value or b"") + b"\n"
