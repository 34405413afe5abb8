"""``strom cluster info|health`` and ``strom config get|set`` (broker configs)."""

from __future__ import annotations

import argparse
import time
from typing import Any

from broker.tools.context import Failure, UsageError, emit, make_client
from broker.tools.plans import PartitionState, health_findings, parse_pairs
from broker.tools.render import key_values, table
from broker.tools.topic_cmd import family, leaf
from net.admin import DEFAULT_SOURCE, RESOURCE_BROKER, Admin, QuorumState
from net.kafka_client import ClusterMetadata, KafkaClient
from net.session import ClientError, KafkaApiError, UnsupportedVersion


def add_parser(sub: Any, common: Any) -> None:
    cluster = family(sub, "cluster", "brokers, controller, quorum and health",
                     "strom cluster info", "strom cluster health --format json")
    csub = cluster.add_subparsers(dest="cluster_command", required=True, metavar="COMMAND")
    p = leaf(csub, "info", "brokers, controller, metadata quorum and partition health",
             "strom cluster info -b 127.0.0.1:9092", [common])
    p.set_defaults(run=info)
    p = leaf(csub, "health", "exit 1 when a broker is down, the quorum lags or partitions "
             "are offline or under-replicated (for scripts and probes)",
             "strom cluster health || echo unhealthy", [common])
    p.add_argument("--max-voter-lag-ms", type=int, default=5000,
                   help="a quorum voter that has not fetched for longer is unhealthy")
    p.set_defaults(run=health)

    config = family(sub, "config", "read and change broker configs",
                    "strom config get --broker 1", "strom config set log.retention.ms=3600000")
    fsub = config.add_subparsers(dest="config_command", required=True, metavar="COMMAND")
    p = leaf(fsub, "get", "a broker's configs (non-default ones unless --all)",
             "strom config get --broker 1 log.retention.ms", [common])
    p.add_argument("keys", nargs="*", metavar="key")
    p.add_argument("--broker", type=int, help="broker id (default: the first broker)")
    p.add_argument("--all", action="store_true", help="include defaults")
    p.set_defaults(run=config_get)
    p = leaf(fsub, "set", "change dynamic broker configs (IncrementalAlterConfigs)",
             "strom config set --broker 1 log.retention.ms=3600000", [common])
    p.add_argument("pairs", nargs="*", metavar="KEY=VALUE")
    p.add_argument("--delete", action="append", default=[], metavar="KEY",
                   help="remove a dynamic value (back to static/default)")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--broker", type=int, help="broker id (default: the first broker)")
    target.add_argument("--all-brokers", action="store_true", help="every broker, one by one")
    p.add_argument("--dry-run", action="store_true", help="validate only")
    p.set_defaults(run=config_set)


def _partitions(md: ClusterMetadata) -> list[PartitionState]:
    return [PartitionState(t.name, p.partition, p.leader, p.replicas, p.isr)
            for t in sorted(md.topics.values(), key=lambda t: t.name)
            for p in t.partitions]


def _quorum(admin: Admin) -> QuorumState | None:
    try:
        return admin.describe_quorum()
    except (UnsupportedVersion, KafkaApiError):
        return None  # a broker that does not serve or forward DescribeQuorum


def _voter_ages(quorum: QuorumState, now_ms: int) -> dict[int, int | None]:
    return {v.replica_id: (None if v.last_fetch_timestamp < 0
                           else max(now_ms - v.last_fetch_timestamp, 0))
            for v in quorum.voters if v.replica_id != quorum.leader_id}


def info(args: argparse.Namespace) -> int:
    with make_client(args) as client:
        admin = Admin(client)
        cluster = admin.describe_cluster()
        md = client.metadata(None)
        quorum = _quorum(admin)
    now = time.time_ns() // 1_000_000
    parts = _partitions(md)
    under = [p for p in parts if p.leader >= 0 and len(p.isr) < len(p.replicas)]
    offline = [p for p in parts if p.leader < 0]
    data = {"cluster_id": cluster.cluster_id, "controller_id": cluster.controller_id,
            "brokers": cluster.brokers, "topics": len(md.topics), "partitions": len(parts),
            "under_replicated": [f"{p.topic}-{p.partition}" for p in under],
            "offline": [f"{p.topic}-{p.partition}" for p in offline], "quorum": quorum}

    def human() -> str:
        head = key_values([("ClusterId", cluster.cluster_id),
                           ("Controller", cluster.controller_id),
                           ("Topics", len(md.topics)), ("Partitions", len(parts)),
                           ("UnderReplicated", len(under)), ("Offline", len(offline))])
        brokers = table(("BROKER", "HOST", "PORT", "RACK", "FENCED"), [
            (b.node_id, b.host, b.port, b.rack, b.fenced) for b in cluster.brokers])
        if quorum is None:
            return f"{head}\n\n{brokers}\n\n(metadata quorum not described by this broker)"
        leader_end = max((v.log_end_offset for v in quorum.voters), default=0)
        q = key_values([("QuorumLeader", quorum.leader_id), ("QuorumEpoch", quorum.leader_epoch),
                        ("HighWatermark", quorum.high_watermark)])
        def ago(ts: int) -> str:
            return "-" if ts < 0 else f"{max(now - ts, 0)} ms ago"

        voters = table(("NODE", "ROLE", "LOG-END", "LAG", "LAST-FETCH"), [
            (r.replica_id, role, r.log_end_offset, max(leader_end - r.log_end_offset, 0),
             ago(r.last_fetch_timestamp))
            for role, group in (("voter", quorum.voters), ("observer", quorum.observers))
            for r in group])
        return f"{head}\n\n{brokers}\n\n{q}\n{voters}"

    emit(args, data, human)
    return 0


def health(args: argparse.Namespace) -> int:
    with make_client(args) as client:
        admin = Admin(client)
        cluster = admin.describe_cluster()
        md = client.metadata(None)
        unreachable: dict[int, str] = {}
        for b in cluster.brokers:
            if b.fenced:
                continue
            try:
                client.session(b.node_id)
            except ClientError as exc:
                unreachable[b.node_id] = str(exc)
        quorum = _quorum(admin)
    now = time.time_ns() // 1_000_000
    findings = health_findings(
        brokers=[b.node_id for b in cluster.brokers], unreachable=unreachable,
        partitions=_partitions(md),
        quorum_leader=None if quorum is None else quorum.leader_id,
        voter_fetch_age_ms={} if quorum is None else _voter_ages(quorum, now),
        max_voter_age_ms=args.max_voter_lag_ms,
        fenced=[b.node_id for b in cluster.brokers if b.fenced])
    if quorum is None:  # not knowable here: do not call it a problem
        findings = [f for f in findings if not f.startswith("the metadata quorum")]
    healthy = not findings
    emit(args, {"healthy": healthy, "problems": findings,
                "brokers": [b.node_id for b in cluster.brokers]},
         lambda: "healthy: " + f"{len(cluster.brokers)} broker(s), quorum leader "
                 f"{quorum.leader_id if quorum else 'unknown'}" if healthy
         else "unhealthy:\n" + "\n".join(f"  - {f}" for f in findings))
    if not healthy:
        raise Failure(f"cluster unhealthy: {len(findings)} problem(s)")
    return 0


def _broker_ids(client: KafkaClient, args: argparse.Namespace) -> list[int]:
    md = client.metadata([])
    ids = sorted(md.brokers)
    if getattr(args, "all_brokers", False):
        return ids
    if args.broker is None:
        if not ids:
            raise Failure("the cluster reports no brokers")
        return ids[:1]
    if args.broker not in md.brokers:
        raise UsageError(f"no broker {args.broker}; brokers are {ids}")
    return [args.broker]


def config_get(args: argparse.Namespace) -> int:
    with make_client(args) as client:
        [broker] = _broker_ids(client, args)
        entries = Admin(client).describe_configs(RESOURCE_BROKER, str(broker), args.keys or None)
    known = {e.name for e in entries}
    unknown = [k for k in args.keys if k not in known]
    if unknown:
        raise UsageError(f"broker {broker} has no config {', '.join(unknown)}")
    shown = [e for e in entries if args.all or args.keys or e.source != DEFAULT_SOURCE]
    data = {"broker": broker, "configs": [
        {"name": e.name, "value": None if e.sensitive else e.value, "source": e.source,
         "read_only": e.read_only, "sensitive": e.sensitive} for e in shown]}
    emit(args, data, lambda: table(("CONFIG", "VALUE", "SOURCE", "READ-ONLY"), [
        (c["name"], "(sensitive)" if c["sensitive"] else c["value"], c["source"],
         c["read_only"]) for c in data["configs"]]))
    return 0


def config_set(args: argparse.Namespace) -> int:
    try:
        updates = parse_pairs(args.pairs)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not updates and not args.delete:
        raise UsageError("nothing to change: give KEY=VALUE or --delete KEY")
    with make_client(args) as client:
        brokers = _broker_ids(client, args)
        for broker in brokers:
            Admin(client).alter_configs(RESOURCE_BROKER, str(broker), updates, args.delete,
                                        validate_only=args.dry_run)
    verb = "would be changed" if args.dry_run else "changed"
    emit(args, {"brokers": brokers, "set": updates, "deleted": args.delete,
                "dry_run": args.dry_run},
         lambda: "\n".join(f"broker {b} configs {verb}" for b in brokers))
    return 0
