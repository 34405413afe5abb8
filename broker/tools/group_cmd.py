"""``strom group list|describe|delete|seek``; seek follows
``kafka-consumer-groups.sh --reset-offsets`` (the group must have no active members)."""

from __future__ import annotations

import argparse
import time
from typing import Any

from broker.tools.context import Failure, UsageError, emit, make_client
from broker.tools.plans import TopicPartition, lag_rows, reset_plan, shifted
from broker.tools.positions import (
    EARLIEST as POS_EARLIEST,
)
from broker.tools.positions import (
    LATEST as POS_LATEST,
)
from broker.tools.positions import (
    OFFSET,
    Position,
    parse_duration_ms,
    parse_position,
    parse_timestamp_ms,
)
from broker.tools.render import key_values, table
from broker.tools.topic_cmd import family, leaf
from net.admin import EARLIEST, LATEST, Admin
from net.groups import Groups
from net.kafka_client import KafkaClient


def add_parser(sub: Any, common: Any) -> None:
    group = family(sub, "group", "list, describe, delete consumer groups; reset offsets",
                   "strom group describe billing",
                   "strom group seek billing --all-topics --to-earliest --dry-run")
    gsub = group.add_subparsers(dest="group_command", required=True, metavar="COMMAND")
    p = leaf(gsub, "list", "list consumer groups", "strom group list", [common])
    p.set_defaults(run=list_groups)

    p = leaf(gsub, "describe", "members, assignments and lag per partition",
             "strom group describe billing", [common])
    p.add_argument("group")
    p.set_defaults(run=describe)

    p = leaf(gsub, "delete", "delete groups (they must have no members)",
             "strom group delete billing", [common])
    p.add_argument("groups", nargs="+", metavar="group")
    p.set_defaults(run=delete)

    p = leaf(gsub, "seek", "reset a group's committed offsets (the group must be empty)",
             "strom group seek billing --topic orders --to -1h --dry-run", [common])
    p.add_argument("group")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--topic", action="append", metavar="TOPIC[:P,P...]",
                       help="topic (optionally some partitions); repeatable")
    which.add_argument("--all-topics", action="store_true",
                       help="every topic the group has committed offsets for")
    to = p.add_mutually_exclusive_group(required=True)
    to.add_argument("--to-earliest", action="store_true")
    to.add_argument("--to-latest", action="store_true")
    to.add_argument("--to-offset", type=int, metavar="N")
    to.add_argument("--to-datetime", metavar="TIME", help="epoch ms or ISO-8601")
    to.add_argument("--by-duration", metavar="DURATION", help="e.g. 1h, 15m, PT1H: that long ago")
    to.add_argument("--shift-by", type=int, metavar="N", help="committed offset + N (may be < 0)")
    to.add_argument("--to", metavar="POSITION",
                    help="earliest, latest, N, @TIME or -DURATION (e.g. --to -1h)")
    p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    p.set_defaults(run=seek)


def list_groups(args: argparse.Namespace) -> int:
    with make_client(args) as client:
        groups = Groups(client).list()
    emit(args, groups, lambda: table(("GROUP", "STATE", "PROTOCOL-TYPE", "COORDINATOR"), [
        (g.group_id, g.state, g.protocol_type, g.coordinator) for g in groups]))
    return 0


def _log_ends(client: KafkaClient, tps: list[TopicPartition], spec: int
              ) -> dict[TopicPartition, int]:
    if not tps:
        return {}
    topics = sorted({t for t, _ in tps})
    md = client.metadata(topics)
    known = [tp for tp in tps if tp[0] in md.topics and md.topics[tp[0]].error == "NONE"]
    answers = Admin(client).list_offsets(md, dict.fromkeys(known, spec))
    return {tp: a.offset for tp, a in answers.items()}


def describe(args: argparse.Namespace) -> int:
    with make_client(args) as client:
        groups = Groups(client)
        desc = groups.describe(args.group)
        committed = groups.committed(args.group)
        owners = {tp: m.member_id for m in desc.members for tp in m.assignment}
        ends = _log_ends(client, sorted(set(committed) | set(owners)), LATEST)
    if desc.state == "Dead" and not committed:
        raise Failure(f"group {args.group!r} does not exist")
    rows = lag_rows(committed, ends, owners)
    data = {"group": desc.group_id, "state": desc.state, "protocol_type": desc.protocol_type,
            "protocol": desc.protocol, "members": desc.members,
            "offsets": rows, "total_lag": sum(r.lag or 0 for r in rows)}

    def human() -> str:
        head = key_values([("Group", desc.group_id), ("State", desc.state),
                           ("Protocol", f"{desc.protocol_type}/{desc.protocol}"
                            if desc.protocol else desc.protocol_type or None),
                           ("Members", len(desc.members)), ("TotalLag", data["total_lag"])])
        members = table(("MEMBER", "INSTANCE", "CLIENT-ID", "HOST", "ASSIGNMENT"), [
            (m.member_id, m.instance_id, m.client_id, m.client_host,
             [f"{t}-{p}" for t, p in m.assignment]) for m in desc.members])
        lag = table(("TOPIC", "PARTITION", "COMMITTED", "LOG-END", "LAG", "MEMBER"), [
            (r.topic, r.partition, r.committed, r.log_end, r.lag, r.member) for r in rows])
        return f"{head}\n\n{members}\n\n{lag}"

    emit(args, data, human)
    return 0


def delete(args: argparse.Namespace) -> int:
    with make_client(args) as client:
        Groups(client).delete(args.groups)
    emit(args, {"deleted": args.groups},
         lambda: "\n".join(f"group {g} deleted" for g in args.groups))
    return 0


def _target(args: argparse.Namespace, now_ms: int) -> Position | int:
    """The requested position, or an int for --shift-by."""
    try:
        if args.to_earliest:
            return Position(POS_EARLIEST)
        if args.to_latest:
            return Position(POS_LATEST)
        if args.to_offset is not None:
            if args.to_offset < 0:
                raise ValueError(f"bad --to-offset {args.to_offset}: must be >= 0")
            return Position(OFFSET, args.to_offset)
        if args.to_datetime is not None:
            return Position("timestamp", parse_timestamp_ms(args.to_datetime))
        if args.by_duration is not None:
            return Position("timestamp", now_ms - parse_duration_ms(args.by_duration))
        if args.shift_by is not None:
            return int(args.shift_by)
        return parse_position(args.to, now_ms)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _partitions(client: KafkaClient, args: argparse.Namespace,
                committed: dict[TopicPartition, int]) -> list[TopicPartition]:
    if args.all_topics:
        if not committed:
            raise Failure(f"group {args.group!r} has no committed offsets; name --topic")
        md = client.metadata(sorted({t for t, _ in committed}))
        live = {name for name, t in md.topics.items() if t.error == "NONE"}
        return sorted(tp for tp in committed if tp[0] in live)  # not deleted topics
    out: list[TopicPartition] = []
    for spec in args.topic:
        name, _, parts = spec.partition(":")
        info = client.topic(name)
        have = [p.partition for p in info.partitions]
        if parts:
            try:
                chosen = [int(x) for x in parts.split(",") if x]
            except ValueError:
                raise UsageError(f"bad --topic {spec!r}: expected TOPIC or TOPIC:0,1,2"
                                 ) from None
            missing = sorted(set(chosen) - set(have))
            if missing:
                raise UsageError(f"topic {name} has no partition(s) {missing}")
        else:
            chosen = have
        out.extend((name, p) for p in chosen)
    return sorted(set(out))


def seek(args: argparse.Namespace) -> int:
    target = _target(args, time.time_ns() // 1_000_000)
    with make_client(args) as client:
        groups = Groups(client)
        desc = groups.describe(args.group)
        if desc.members:
            raise Failure(f"group {args.group!r} has {len(desc.members)} active member(s) "
                          f"(state {desc.state}): stop its consumers first")
        committed = groups.committed(args.group)
        tps = _partitions(client, args, committed)
        earliest = _log_ends(client, tps, EARLIEST)
        latest = _log_ends(client, tps, LATEST)
        if isinstance(target, int):
            wanted = shifted(committed, tps, latest, target)
        elif target.kind == POS_EARLIEST:
            wanted = dict(earliest)
        elif target.kind == POS_LATEST:
            wanted = dict(latest)
        elif target.kind == OFFSET:
            wanted = dict.fromkeys(tps, target.value)
        else:
            md = client.metadata(sorted({t for t, _ in tps}))
            found = Admin(client).list_offsets(md, dict.fromkeys(tps, target.value))
            wanted = {tp: found[tp].offset for tp in tps}
        plan = reset_plan(tps, committed, earliest, latest, wanted)
        if not args.dry_run:
            groups.commit(args.group, {(r.topic, r.partition): r.new for r in plan})
    data = {"group": args.group, "dry_run": args.dry_run, "offsets": plan}

    def human() -> str:
        note = "(dry run: nothing changed)" if args.dry_run else "offsets committed"
        return table(("TOPIC", "PARTITION", "CURRENT", "NEW"), [
            (r.topic, r.partition, r.current, r.new) for r in plan]) + f"\n{note}"

    emit(args, data, human)
    return 0
