"""The ``strom`` operator tools: topic, group, produce, consume, cluster and config
subcommands, built on the blocking client in ``net/`` (``net.kafka_client``).

``add_parsers(sub)`` registers them on ``strom``'s subparsers; each leaf sets
``run`` (a function of the parsed arguments returning an exit code), called through
``broker.tools.context.run_guarded`` so no failure leaves as a traceback. Pure parts
(formatting, positions, plans) live in ``render``, ``positions``, ``plans`` and
``record_text``; the ``*_cmd`` modules do the I/O.
"""

from __future__ import annotations

from typing import Any

COMMANDS = ("topic", "group", "produce", "consume", "cluster", "config")


def add_parsers(sub: Any) -> None:
    from broker.tools import cluster_cmd, consume_cmd, group_cmd, produce_cmd, topic_cmd
    from broker.tools.context import common_options

    common = common_options()
    topic_cmd.add_parser(sub, common)
    group_cmd.add_parser(sub, common)
    produce_cmd.add_parser(sub, common)
    consume_cmd.add_parser(sub, common_options(with_format=False))
    cluster_cmd.add_parser(sub, common)
