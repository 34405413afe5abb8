"""What every client subcommand of ``strom`` shares: connection options, their defaults,
output of results, progress on a terminal, and turning failures into one-line errors.

Where the broker address comes from, first match wins: ``--bootstrap-server``, the
``STROM_BROKERS`` environment variable, the profile file, ``127.0.0.1:9092``. The profile
file is TOML, ``$STROM_PROFILE_FILE`` or ``~/.config/strom/profile.toml``; the section
named by ``--profile`` / ``STROM_PROFILE`` (default ``default``) may hold ``brokers``,
``sasl_mechanism``, ``sasl_username``, ``sasl_password`` and ``timeout``. ``--command-config
FILE`` reads a Kafka client properties file (``broker.tools.command_config``: TLS and a
SASL login; ``--sasl-username``/``--sasl-password`` and the profile's login beat its)::

    [default]
    brokers = "127.0.0.1:9092"

    [prod]
    brokers = "kafka-1:9092,kafka-2:9092"
    sasl_username = "alice"
    sasl_password = "alice-secret"

Exit codes: 0 success, 1 a failure talking to the cluster (unreachable, refused, a Kafka
error), 2 bad input (arguments, values, files).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from broker.tools.render import to_json
from net.kafka_client import KafkaClient
from net.session import MECHANISMS, BrokerUnreachable, ClientError, Credentials

DEFAULT_BROKERS = "127.0.0.1:9092"
EXIT_FAILURE, EXIT_USAGE = 1, 2


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit code 2."""


class Failure(Exception):
    """A check that failed (e.g. ``cluster health``): printed, exit code 1."""


class StromArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors: ``strom topic create: error: ... (see --help)``."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def common_options(*, with_format: bool = True) -> argparse.ArgumentParser:
    """The connection options (and ``--format table|json`` unless ``with_format`` is
    False, for commands with their own output formats)."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("connection")
    group.add_argument("-b", "--bootstrap-server", "--brokers", dest="brokers",
                       metavar="HOST:PORT[,...]",
                       help="brokers to ask (default: $STROM_BROKERS, the profile, "
                            f"{DEFAULT_BROKERS})")
    group.add_argument("--profile", help="section of the profile file (default: "
                                         "$STROM_PROFILE or 'default')")
    group.add_argument("--sasl-username", help="SASL user (or $STROM_SASL_USERNAME)")
    group.add_argument("--sasl-password", help="SASL password (or $STROM_SASL_PASSWORD)")
    group.add_argument("--sasl-mechanism", default=None,
                       help="PLAIN (default), SCRAM-SHA-256 or SCRAM-SHA-512")
    group.add_argument("--timeout", type=float, default=None,
                       help="seconds to wait for each answer (default 10)")
    group.add_argument("--command-config", metavar="FILE",
                       help="Kafka client properties (security.protocol, sasl.mechanism, "
                            "sasl.jaas.config, ssl.truststore.*); --sasl-* beat its login")
    if with_format:
        parent.add_argument("--format", choices=("table", "json"), default="table",
                            help="human tables (default) or JSON for scripts")
    return parent


def profile_path() -> Path:
    env = os.environ.get("STROM_PROFILE_FILE")
    return Path(env) if env else Path.home() / ".config" / "strom" / "profile.toml"


def load_profile(name: str | None) -> dict[str, Any]:
    """The profile section ``name`` (``STROM_PROFILE`` / ``default``); {} without a file."""
    path = profile_path()
    chosen = name or os.environ.get("STROM_PROFILE") or "default"
    if not path.is_file():
        if name:
            raise UsageError(f"profile {name!r} requested but {path} does not exist")
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"cannot read profile file {path}: {exc}") from None
    section = data.get(chosen)
    if section is None:
        if name:
            raise UsageError(f"no [{chosen}] section in {path}")
        return {}
    return dict(section)


def make_client(args: argparse.Namespace) -> KafkaClient:
    profile = load_profile(getattr(args, "profile", None))
    brokers = (args.brokers or os.environ.get("STROM_BROKERS") or profile.get("brokers")
               or DEFAULT_BROKERS)
    user = (args.sasl_username or os.environ.get("STROM_SASL_USERNAME")
            or profile.get("sasl_username"))
    password = (args.sasl_password or os.environ.get("STROM_SASL_PASSWORD")
                or profile.get("sasl_password"))
    mechanism = args.sasl_mechanism or profile.get("sasl_mechanism") or "PLAIN"
    if (user is None) != (password is None):
        raise UsageError("give both --sasl-username and --sasl-password")
    if mechanism.upper() not in MECHANISMS:
        raise UsageError(f"SASL mechanism {mechanism!r} is not supported; use one of "
                         f"{', '.join(MECHANISMS)}")
    credentials = (Credentials(str(user), str(password), mechanism.upper())
                   if user is not None else None)
    tls = None
    if getattr(args, "command_config", None):
        from broker.tools import command_config

        security = command_config.load(args.command_config)
        credentials = credentials or security.credentials
        tls = security.tls
    timeout = args.timeout or float(profile.get("timeout", 10.0))
    try:
        return KafkaClient(str(brokers), timeout=timeout, credentials=credentials,
                           ssl_context=tls)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def emit(args: argparse.Namespace, data: Any, human: Callable[[], str]) -> None:
    """Print ``data`` as JSON (``--format json``) or the text ``human()`` returns."""
    print(to_json(data) if args.format == "json" else human())


class Progress:
    """``\\r<label> N`` on stderr when it is a terminal, at most 10 times a second."""

    def __init__(self, label: str, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.label = label
        self._last = 0.0
        self._shown = False

    def __call__(self, count: int) -> None:
        now = time.monotonic()
        if self.enabled and now - self._last >= 0.1:
            self._last = now
            self._shown = True
            self.stream.write(f"\r{self.label} {count}")
            self.stream.flush()

    def done(self) -> None:
        if self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def run_guarded(func: Callable[[argparse.Namespace], int | None], args: argparse.Namespace
                ) -> int:
    """Run a subcommand; every failure becomes one line on stderr and exit code 1 or 2."""
    try:
        return func(args) or 0
    except UsageError as exc:
        print(f"strom: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Failure as exc:
        print(f"strom: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except BrokerUnreachable as exc:
        text = str(exc)
        hint = ""
        if "no broker at" in text and not getattr(args, "brokers", None) and \
                not os.environ.get("STROM_BROKERS"):
            hint = ": is `make run` running? (or pass --bootstrap-server / set STROM_BROKERS)"
        elif "no broker at" in text:
            hint = ": is the address right and the broker running?"
        print(f"strom: {text}{hint}", file=sys.stderr)
        return EXIT_FAILURE
    except ClientError as exc:
        print(f"strom: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except BrokenPipeError:  # `strom consume ... | head`: the reader left; so do we
        _silence_stdout()
        return 0
    except KeyboardInterrupt:
        print("strom: interrupted", file=sys.stderr)
        return EXIT_FAILURE
    except OSError as exc:
        print(f"strom: {exc.strerror or exc}: {getattr(exc, 'filename', '') or ''}".rstrip(": "),
              file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # a bug: still one line, with what to do
        print(f"strom: internal error: {exc!r} (please report it with the command you ran)",
              file=sys.stderr)
        return EXIT_FAILURE


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass
