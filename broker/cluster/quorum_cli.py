"""``strom quorum describe --bootstrap-server HOST:PORT [--replication]
[--command-config FILE]``.

Sends DescribeQuorum v2 to HOST:PORT (a controller listener, ``--bootstrap-controller``,
or any cluster broker, which forwards it) and prints what ``kafka-metadata-quorum.sh
describe --status`` prints — leader, epoch, high watermark, voters and observers —
followed by each replica's log end offset and lag (``--replication`` prints only that
table). ``--command-config``: a Kafka client properties file (``security.protocol``,
``sasl.mechanism``, ``sasl.jaas.config``, ``ssl.truststore.*``; see
``broker.tools.command_config``) for a SASL_PLAINTEXT, SSL or SASL_SSL listener, e.g. a
controller listener secured with ``sasl.mechanism.controller.protocol``; the principal
needs the cluster's CLUSTER_ACTION there (a super user, as the nodes' own). Exit code 0
on success, 1 when the node cannot be reached, refuses the login or no quorum leader
answers, 2 for an unusable command config.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from kio.schema.describe_quorum.v2.request import DescribeQuorumRequest, PartitionData, TopicData

from net.wire import WireClient

METADATA_TOPIC = "__cluster_metadata"


def add_parser(sub: Any) -> None:
    quorum = sub.add_parser("quorum", help="inspect the metadata quorum")
    qsub = quorum.add_subparsers(dest="quorum_command", required=True)
    describe = qsub.add_parser("describe", help="DescribeQuorum: leader, epoch, lag")
    describe.add_argument("--bootstrap-server", "--bootstrap-controller", required=True,
                          dest="bootstrap", metavar="HOST:PORT")
    describe.add_argument("--replication", action="store_true",
                          help="print only the per-replica table")
    describe.add_argument("--timeout", type=float, default=5.0)
    describe.add_argument("--command-config", metavar="FILE",
                          help="client properties: security.protocol, sasl.mechanism, "
                               "sasl.jaas.config, ssl.truststore.* (as Kafka's tools)")


def describe(bootstrap: str, timeout: float = 5.0, security: Any = None) -> Any:
    """The ``__cluster_metadata`` partition of a DescribeQuorum v2 answer from
    ``bootstrap``; ``security``: a ``command_config.ClientSecurity`` (None: PLAINTEXT)."""
    host, _, port = bootstrap.rpartition(":")
    request = DescribeQuorumRequest(topics=(TopicData(
        topic_name=METADATA_TOPIC, partitions=(PartitionData(partition_index=0),)),))
    if security is None:
        with WireClient(host.strip("[]"), int(port), timeout=timeout,
                        client_id="strom-quorum-cli") as client:
            response = client.request(request)
    else:
        from net.session import BrokerSession

        with BrokerSession(host.strip("[]"), int(port), timeout=timeout,
                           credentials=security.credentials, ssl_context=security.tls,
                           client_id="strom-quorum-cli") as session:
            response = session.request(request)
    if int(response.error_code) != 0 or not response.topics:
        raise QuorumRefused(f"{bootstrap} answered {response.error_code.name.upper()}"
                            + (f": {response.error_message}"
                               if getattr(response, "error_message", None) else ""))
    return response.topics[0].partitions[0]


class QuorumRefused(ValueError):
    """A DescribeQuorum answered with a top-level error (e.g. CLUSTER_AUTHORIZATION_FAILED);
    a ValueError, as a malformed answer is, for callers that retry those."""


def format_status(p: Any, now_ms: int) -> list[str]:
    voters = [r.replica_id for r in p.current_voters]
    observers = [r.replica_id for r in p.observers]
    lines = [
        f"LeaderId:              {p.leader_id}",
        f"LeaderEpoch:           {p.leader_epoch}",
        f"HighWatermark:         {p.high_watermark}",
        f"CurrentVoters:         {voters}",
        f"CurrentObservers:      {observers}",
        "",
    ]
    return lines + format_replication(p, now_ms)


def format_replication(p: Any, now_ms: int) -> list[str]:
    rows = [("NodeId", "LogEndOffset", "Lag", "LastFetchTimestamp", "LastCaughtUpTimestamp",
             "Status")]
    leader_end = next((r.log_end_offset for r in p.current_voters
                       if r.replica_id == p.leader_id), p.high_watermark)
    for status, replicas in (("Voter", p.current_voters), ("Observer", p.observers)):
        for r in replicas:
            if r.replica_id == p.leader_id:
                status_text = "Leader"
            else:
                status_text = "Follower" if status == "Voter" else "Observer"
            lag = max(leader_end - r.log_end_offset, 0)

            def ago(ts: int) -> str:
                return "-" if ts < 0 else f"{max(now_ms - ts, 0)} ms ago"

            rows.append((str(r.replica_id), str(r.log_end_offset), str(lag),
                         ago(r.last_fetch_timestamp), ago(r.last_caught_up_timestamp),
                         status_text))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            for row in rows]


def run(args: argparse.Namespace) -> int:
    from broker.tools.context import UsageError
    from net.session import ClientError

    security = None
    if args.command_config:
        from broker.tools import command_config

        try:
            security = command_config.load(args.command_config)
        except UsageError as exc:
            print(f"strom: {exc}", file=sys.stderr)
            return 2
    try:
        p = describe(args.bootstrap, args.timeout, security)
    except QuorumRefused as exc:
        print(f"strom: {exc}")
        return 1
    except ClientError as exc:
        print(f"strom: cannot describe the quorum via {args.bootstrap}: {exc}")
        return 1
    except (OSError, ValueError) as exc:
        hint = "" if security is not None else (
            " (if the listener needs SASL or TLS, pass --command-config)")
        print(f"strom: cannot describe the quorum via {args.bootstrap}: {exc}{hint}")
        return 1
    if int(p.error_code) != 0:
        print(f"strom: {args.bootstrap} answered {p.error_code.name}"
              f" (leader {p.leader_id}, epoch {p.leader_epoch})"
              + (f": {p.error_message}" if getattr(p, "error_message", None) else ""))
        return 1
    now = time.time_ns() // 1_000_000
    lines = format_replication(p, now) if args.replication else format_status(p, now)
    print("\n".join(lines))
    return 0
