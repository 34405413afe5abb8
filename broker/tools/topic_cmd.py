"""``strom topic create|list|describe|delete|alter-config|add-partitions``."""

from __future__ import annotations

import argparse
from typing import Any

from broker.tools.context import UsageError, emit, make_client
from broker.tools.plans import parse_pairs
from broker.tools.render import key_values, table
from net.admin import DEFAULT_SOURCE, EARLIEST, LATEST, RESOURCE_TOPIC, Admin


def leaf(sub: Any, name: str, help_text: str, example: str, parents: list[Any]) -> Any:
    """A subcommand whose --help ends with an example."""
    return sub.add_parser(name, help=help_text, description=help_text, parents=parents,
                          epilog=f"example:\n  {example}",
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def family(sub: Any, name: str, help_text: str, *examples: str) -> Any:
    """A command with subcommands (``strom topic``), its --help ending with examples."""
    return sub.add_parser(name, help=help_text, description=help_text,
                          epilog="examples:\n" + "\n".join(f"  {e}" for e in examples),
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def add_parser(sub: Any, common: Any) -> None:
    topic = family(sub, "topic", "create, list, describe, alter and delete topics",
                   "strom topic create orders -p 6", "strom topic describe orders",
                   "strom topic list --format json")
    tsub = topic.add_subparsers(dest="topic_command", required=True, metavar="COMMAND")
    p = leaf(tsub, "create", "create a topic", "strom topic create orders -p 6 -r 3 "
             "-c retention.ms=86400000", [common])
    p.add_argument("name")
    p.add_argument("-p", "--partitions", type=int, default=-1,
                   help="partition count (default: the broker's num.partitions)")
    p.add_argument("-r", "--replication-factor", type=int, default=-1,
                   help="replicas per partition (default: default.replication.factor)")
    p.add_argument("-c", "--config", action="append", default=[], metavar="KEY=VALUE",
                   help="topic config (repeatable)")
    p.add_argument("--if-not-exists", action="store_true", help="no error if it exists")
    p.add_argument("--dry-run", action="store_true", help="validate only")
    p.set_defaults(run=create)

    p = leaf(tsub, "list", "list topics", "strom topic list --format json", [common])
    p.add_argument("-i", "--internal", action="store_true", help="include internal topics")
    p.set_defaults(run=list_topics)

    p = leaf(tsub, "describe", "partitions, leaders, replicas, ISR, offsets, sizes and "
             "non-default configs of a topic", "strom topic describe orders", [common])
    p.add_argument("name")
    p.add_argument("--all-configs", action="store_true", help="also show default configs")
    p.set_defaults(run=describe)

    p = leaf(tsub, "delete", "delete topics", "strom topic delete orders old-orders", [common])
    p.add_argument("names", nargs="+", metavar="name")
    p.set_defaults(run=delete)

    p = leaf(tsub, "alter-config", "set or delete topic configs (IncrementalAlterConfigs)",
             "strom topic alter-config orders --set retention.ms=3600000 "
             "--delete cleanup.policy", [common])
    p.add_argument("name")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--delete", action="append", default=[], metavar="KEY",
                   help="back to the default")
    p.add_argument("--dry-run", action="store_true", help="validate only")
    p.set_defaults(run=alter_config)

    p = leaf(tsub, "add-partitions", "grow a topic's partition count",
             "strom topic add-partitions orders --total 12", [common])
    p.add_argument("name")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--total", type=int, help="the new partition count")
    how.add_argument("--add", type=int, help="partitions to add")
    p.add_argument("--dry-run", action="store_true", help="validate only")
    p.set_defaults(run=add_partitions)


def _pairs(items: list[str]) -> dict[str, str]:
    try:
        return parse_pairs(items)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def create(args: argparse.Namespace) -> int:
    configs = _pairs(args.config)
    with make_client(args) as client:
        existing = client.metadata([args.name]).topics.get(args.name)
        if args.if_not_exists and existing is not None and existing.error == "NONE":
            emit(args, {"topic": args.name, "created": False},
                 lambda: f"topic {args.name} exists")
            return 0
        Admin(client).create_topic(args.name, args.partitions, args.replication_factor,
                                   configs, validate_only=args.dry_run)
    verb = "would be created" if args.dry_run else "created"
    emit(args, {"topic": args.name, "created": not args.dry_run},
         lambda: f"topic {args.name} {verb}")
    return 0


def list_topics(args: argparse.Namespace) -> int:
    with make_client(args) as client:
        md = client.metadata(None)
    topics = [t for t in sorted(md.topics.values(), key=lambda t: t.name)
              if args.internal or not t.internal]
    data = [{"name": t.name, "partitions": len(t.partitions),
             "replication_factor": max((len(p.replicas) for p in t.partitions), default=0),
             "internal": t.internal} for t in topics]
    emit(args, data, lambda: table(("NAME", "PARTITIONS", "REPLICAS"), [
        (d["name"], d["partitions"], d["replication_factor"]) for d in data]))
    return 0


def describe(args: argparse.Namespace) -> int:
    with make_client(args) as client:
        info = client.topic(args.name)
        md = client.metadata([args.name])
        admin = Admin(client)
        tps = [(args.name, p.partition) for p in info.partitions if p.leader >= 0]
        first = admin.list_offsets(md, dict.fromkeys(tps, EARLIEST))
        last = admin.list_offsets(md, dict.fromkeys(tps, LATEST))
        sizes = admin.partition_sizes(md, args.name)
        configs = admin.describe_configs(RESOURCE_TOPIC, args.name)
    shown = [c for c in configs if args.all_configs or c.source != DEFAULT_SOURCE]
    parts = []
    for p in info.partitions:
        tp = (args.name, p.partition)
        on_leader = sizes.get(p.partition, {}).get(p.leader)
        parts.append({
            "partition": p.partition, "leader": p.leader, "leader_epoch": p.leader_epoch,
            "replicas": list(p.replicas), "isr": list(p.isr),
            "offline_replicas": list(p.offline),
            "earliest_offset": first[tp].offset if tp in first else None,
            "latest_offset": last[tp].offset if tp in last else None,
            "size_bytes": on_leader, "error": p.error})
    data = {"name": info.name, "topic_id": info.topic_id, "internal": info.internal,
            "partitions": parts,
            "replication_factor": max((len(p.replicas) for p in info.partitions), default=0),
            "configs": [{"name": c.name, "value": None if c.sensitive else c.value,
                         "source": c.source, "sensitive": c.sensitive} for c in shown]}

    def human() -> str:
        head = key_values([("Topic", info.name), ("TopicId", info.topic_id),
                           ("Partitions", len(parts)),
                           ("ReplicationFactor", data["replication_factor"]),
                           ("Internal", info.internal)])
        body = table(("PARTITION", "LEADER", "EPOCH", "REPLICAS", "ISR", "EARLIEST", "LATEST",
                      "SIZE"), [(d["partition"], d["leader"], d["leader_epoch"], d["replicas"],
                                 d["isr"], d["earliest_offset"], d["latest_offset"],
                                 d["size_bytes"]) for d in parts])
        conf = table(("CONFIG", "VALUE", "SOURCE"), [
            (c["name"], "(sensitive)" if c["sensitive"] else c["value"], c["source"])
            for c in data["configs"]]) if shown else "(all configs are defaults)"
        return f"{head}\n\n{body}\n\n{conf}"

    emit(args, data, human)
    return 0


def delete(args: argparse.Namespace) -> int:
    with make_client(args) as client:
        Admin(client).delete_topics(args.names)
    emit(args, {"deleted": args.names}, lambda: "\n".join(f"topic {n} deleted"
                                                          for n in args.names))
    return 0


def alter_config(args: argparse.Namespace) -> int:
    updates = _pairs(args.set)
    if not updates and not args.delete:
        raise UsageError("nothing to change: give --set KEY=VALUE or --delete KEY")
    with make_client(args) as client:
        client.topic(args.name)
        Admin(client).alter_configs(RESOURCE_TOPIC, args.name, updates, args.delete,
                                    validate_only=args.dry_run)
    verb = "would be altered" if args.dry_run else "altered"
    emit(args, {"topic": args.name, "set": updates, "deleted": args.delete,
                "dry_run": args.dry_run}, lambda: f"topic {args.name} configs {verb}")
    return 0


def add_partitions(args: argparse.Namespace) -> int:
    with make_client(args) as client:
        current = len(client.topic(args.name).partitions)
        total = args.total if args.total is not None else current + args.add
        if total <= current:
            raise UsageError(f"topic {args.name} has {current} partitions; the new count "
                             f"must be larger, not {total}")
        Admin(client).add_partitions(args.name, total, validate_only=args.dry_run)
    emit(args, {"topic": args.name, "partitions": total, "previous": current},
         lambda: f"topic {args.name}: {current} -> {total} partitions")
    return 0
