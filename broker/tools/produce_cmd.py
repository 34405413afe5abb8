"""``strom produce TOPIC``: records from lines of stdin or a file (see
``broker.tools.record_text`` for the line format)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from typing import IO, Any

from broker.tools.context import Failure, Progress, UsageError, emit, make_client
from broker.tools.plans import parse_pairs
from broker.tools.record_text import parse_line, unescape
from broker.tools.render import table
from broker.tools.topic_cmd import leaf
from net.producer import OutgoingRecord, Producer
from net.session import KafkaApiError
from protocol.compression import CODEC_NAMES

ACKS = {"all": -1, "-1": -1, "1": 1, "0": 0}
CODECS = {name: codec for codec, name in CODEC_NAMES.items()}


def add_parser(sub: Any, common: Any) -> None:
    p = leaf(sub, "produce", "write records from lines of stdin or a file",
             "printf 'k1\\tv1\\nk2\\tv2\\n' | strom produce orders --key-separator '\\t'",
             [common])
    p.add_argument("topic")
    p.add_argument("--file", "-F", help="read this file instead of stdin")
    p.add_argument("--key-separator", "-K", metavar="SEP",
                   help="each line is KEY SEP VALUE (escapes like \\t allowed)")
    p.add_argument("--header-separator", metavar="SEP",
                   help="each line starts with k=v,k=v headers, then SEP")
    p.add_argument("--header", "-H", action="append", default=[], metavar="KEY=VALUE",
                   help="a header on every record (repeatable)")
    p.add_argument("--delimiter", "-D", default="\\n", help="record delimiter (default \\n)")
    p.add_argument("--partition", "-p", type=int,
                   help="all records to this partition (default: by key, else spread)")
    p.add_argument("--compression", "-z", choices=sorted(CODECS), default="none")
    p.add_argument("--acks", choices=("all", "-1", "1", "0"), default="all")
    p.add_argument("--timestamp", type=int, metavar="MS",
                   help="record timestamp, epoch ms (default: now)")
    p.set_defaults(run=produce)


def _split(stream: IO[bytes], delimiter: bytes, chunk: int) -> Iterator[bytes]:
    """Records of ``stream`` separated by ``delimiter``; an empty tail is dropped."""
    buffer = b""
    while True:
        data = stream.read1(chunk) if hasattr(stream, "read1") else stream.read(chunk)
        if not data:
            break
        buffer += data
        *whole, buffer = buffer.split(delimiter)
        yield from whole
    if buffer:
        yield buffer


def produce(args: argparse.Namespace) -> int:
    delimiter = unescape(args.delimiter).encode()
    if not delimiter:
        raise UsageError("--delimiter must not be empty")
    key_sep = unescape(args.key_separator).encode() if args.key_separator else None
    header_sep = unescape(args.header_separator).encode() if args.header_separator else None
    try:
        fixed = [(k, v.encode()) for k, v in parse_pairs(args.header, "header").items()]
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    stream: IO[bytes]
    if args.file:
        try:
            stream = open(args.file, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise UsageError(f"cannot read {args.file}: {exc.strerror}") from None
    else:
        stream = sys.stdin.buffer
    interactive = stream.isatty()

    def records() -> Iterator[OutgoingRecord]:
        for n, line in enumerate(_split(stream, delimiter, 1 if interactive else 1 << 16), 1):
            try:
                headers, key, value = parse_line(line, key_sep, header_sep)
            except ValueError as exc:
                raise UsageError(f"record {n}: {exc}") from None
            yield OutgoingRecord(value, key, fixed + headers, args.partition, args.timestamp)

    progress = Progress("produced")
    try:
        with make_client(args) as client:
            producer = Producer(client, acks=ACKS[args.acks],
                                compression=CODECS[args.compression],
                                batch_records=1 if interactive else 1000)
            try:
                result = producer.send(args.topic, records(), progress)
            except KafkaApiError as exc:
                if exc.name == "UNKNOWN_TOPIC_OR_PARTITION":
                    raise Failure(f"{exc}: create it with `strom topic create {args.topic}`"
                                  ) from None
                raise
    finally:
        progress.done()
        if args.file:
            stream.close()
    data = {"topic": args.topic, "records": result.total,
            "partitions": [{"partition": p, "records": n,
                            "base_offset": result.base_offsets.get(p)}
                           for p, n in sorted(result.records.items())]}
    emit(args, data, lambda: f"produced {result.total} record(s) to {args.topic}\n" + table(
        ("PARTITION", "RECORDS", "FIRST-OFFSET"),
        [(d["partition"], d["records"], d["base_offset"]) for d in data["partitions"]]))
    return 0
