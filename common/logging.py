"""structlog setup: human-readable console output on a terminal, JSON lines otherwise.

``configure_logging(level, fmt)`` with ``fmt`` in {"auto", "console", "json"}; "auto"
picks console when stderr is a TTY. Every line carries an ISO timestamp, the level and
the event name; extra key/values are structured fields (``peer=``, ``api=``, ...).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog


def uses_console(fmt: str = "auto", stream: Any = None) -> bool:
    """Whether ``configure_logging(fmt=fmt, stream=stream)`` renders for a person
    (console) rather than JSON lines; ``stream`` defaults to stderr."""
    stream = sys.stderr if stream is None else stream
    return fmt == "console" or (fmt == "auto" and stream.isatty())


def configure_logging(level: str = "INFO", fmt: str = "auto", stream: Any = None) -> None:
    """Configure structlog (and stdlib logging) once for the process."""
    stream = sys.stderr if stream is None else stream
    use_console = uses_console(fmt, stream)
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
    ]
    if use_console:
        processors.append(structlog.dev.ConsoleRenderer(colors=stream.isatty()))
    else:
        processors.append(structlog.processors.JSONRenderer())
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=numeric, stream=stream, format="%(levelname)s %(name)s %(message)s")


def get_logger(name: str) -> Any:
    """A structlog logger bound with ``logger=name``."""
    return structlog.get_logger(name).bind(logger=name)
