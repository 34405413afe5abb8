"""The ``strom`` operator tools: topic, group, produce, consume, cluster, config,
console, acl and user subcommands, built on the blocking client in ``net/`` (``net.kafka_client``).

``add_parsers(sub)`` registers them on ``strom``'s subparsers; each leaf sets
``run`` (a function of the parsed arguments returning an exit code), called through
``broker.tools.context.run_guarded`` so no failure leaves as a traceback. Pure parts
(formatting, positions, plans) live in ``render``, ``positions``, ``plans`` and
``record_text``; the ``*_cmd`` modules do the I/O.
"""

from __future__ import annotations

from typing import Any

COMMANDS = ("topic", "group", "produce", "consume", "cluster", "config", "console", "acl",
            "user")


def add_parsers(sub: Any) -> None:
    from broker.tools import (
        cluster_cmd,
        console_cmd,
        consume_cmd,
        group_cmd,
        produce_cmd,
        security_cmd,
        topic_cmd,
    )
    from broker.tools.context import common_options

    common = common_options()
    topic_cmd.add_parser(sub, common)
    group_cmd.add_parser(sub, common)
    produce_cmd.add_parser(sub, common)
    consume_cmd.add_parser(sub, common_options(with_format=False))
    cluster_cmd.add_parser(sub, common)
    console_cmd.add_parser(sub, common_options(with_format=False))
    security_cmd.add_parser(sub, common)


# options whose value may be a duration ago, "-1h": argparse would take it for an option
NEGATIVE_VALUE_OPTIONS = frozenset({"--offset", "-o", "--to", "--shift-by"})


def join_negative_values(argv: list[str]) -> list[str]:
    """``["--offset", "-1h"]`` → ``["--offset=-1h"]`` so a duration ago can be typed as
    it reads; other arguments are left alone."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        nxt = argv[i + 1] if i + 1 < len(argv) else ""
        if arg in NEGATIVE_VALUE_OPTIONS and len(nxt) > 1 and nxt[0] == "-" and \
                (nxt[1].isdigit() or nxt[1] in "Pp"):
            out.append(f"{arg}={nxt}")
            i += 2
        else:
            out.append(arg)
            i += 1
    return out
