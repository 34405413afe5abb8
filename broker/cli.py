"""Command line: ``strom serve [--config FILE] [--override key=value ...] [--ready-file PATH]``.

Also ``python -m broker serve ...``. Exit codes: 0 after a clean shutdown (SIGTERM or
SIGINT), 2 for invalid configuration or arguments, 1 for a startup failure.
When listening, the broker writes ``host:port\\n`` to ``--ready-file`` atomically
(temporary file + rename) so a waiting process never reads a partial line.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


def strom_version() -> str:
    try:
        return version("strom")
    except PackageNotFoundError:
        return "0.0.0+local"


def _parser() -> argparse.ArgumentParser:
    from broker.tools.context import StromArgumentParser

    parser = StromArgumentParser(
        prog="strom", description="Kafka-compatible log broker and its operator tools",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  strom serve --override log.dirs=./data\n"
               "  strom topic create demo -p 3 -b 127.0.0.1:9092\n"
               "  echo hello | strom produce demo ; strom consume demo -o earliest -e")
    parser.add_argument("--version", action="version", version=f"strom {strom_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run a broker in the foreground")
    serve.add_argument("--config", "-c", help="server.properties file")
    serve.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                       help="set a property (repeatable; beats file and STROM_* env)")
    serve.add_argument("--ready-file", help="write host:port here once listening")
    from broker.cluster import quorum_cli

    quorum_cli.add_parser(sub)
    from broker import tools

    tools.add_parsers(sub)
    return parser


def raise_open_files_limit() -> None:
    """Lift the soft RLIMIT_NOFILE to the hard limit: every connection and segment is a fd."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY:
            hard = 1 << 20
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):  # pragma: no cover - best effort
        pass


def write_ready_file(path: str, host: str, port: int) -> None:
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(f"{host}:{port}\n")
    os.replace(tmp, target)


async def serve(config, unknown: dict[str, str], ready_file: str | None) -> int:  # type: ignore[no-untyped-def]
    """Run a node until SIGTERM/SIGINT (``broker.cluster.serve``): a cluster member, or —
    without ``controller.quorum.voters`` — a one-voter quorum of itself."""
    from broker.cluster.serve import serve_cluster

    return await serve_cluster(config, unknown, ready_file, write_ready=write_ready_file)


def main(argv: list[str] | None = None) -> int:
    from broker.tools import join_negative_values

    words = sys.argv[1:] if argv is None else argv
    if argv is None and words[:1] and "hypothesis" not in sys.modules:
        # kio imports hypothesis only to register test strategies (optional: ImportError is
        # handled); no strom process needs them: a tool starts in 0.1 s instead of 0.5 s,
        # `serve` imports in ~1.1 s instead of ~1.6 s of CPU.
        # Only as the program's entry point: an in-process caller may need hypothesis.
        sys.modules["hypothesis"] = None  # type: ignore[assignment]
    args = _parser().parse_args(join_negative_values(words))
    if args.command == "quorum":
        from broker.cluster import quorum_cli

        return quorum_cli.run(args)
    if getattr(args, "run", None) is not None:  # the operator tools (broker/tools)
        from broker.tools.context import run_guarded

        return run_guarded(args.run, args)
    if args.command != "serve":  # pragma: no cover - argparse enforces it
        return 2
    # the serve path imports ~750 modules that live as long as the process: the cyclic
    # collector finds nothing among them, and skipping it saves ~15% of the import CPU
    collecting = gc.isenabled()
    gc.disable()
    try:
        from broker.config import ConfigError, load_config  # pydantic: only `serve` pays

        try:
            config, unknown = load_config(args.config, args.override)
        except ConfigError as exc:
            print(f"strom: {exc}", file=sys.stderr)
            return 2
        from common.logging import configure_logging

        configure_logging(config.log_level, config.log_format)
        # after configure_logging: module-level loggers bind to the configured format
        from broker.cluster import serve as _serve  # noqa: F401 - imported for serve()
    finally:
        if collecting:
            gc.enable()
    raise_open_files_limit()
    from common.memory import tune_malloc

    tune_malloc()
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run
    try:
        return runner(serve(config, unknown, args.ready_file))
    except Exception as exc:
        from common.logging import get_logger

        get_logger("strom").exception("startup_failed", error=repr(exc))
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
