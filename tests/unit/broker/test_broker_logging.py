"""structlog setup: JSON lines when not a terminal, human-readable console on a TTY."""

from __future__ import annotations

import io
import json

import structlog

from common.logging import configure_logging, get_logger, uses_console


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _emit(stream: io.StringIO, fmt: str = "auto") -> str:
    structlog.reset_defaults()
    configure_logging("INFO", fmt, stream=stream)
    get_logger("strom.test").info("connection_closed", peer="127.0.0.1:1", reason="idle")
    get_logger("strom.test").debug("hidden_below_level")
    structlog.reset_defaults()
    return stream.getvalue()


def test_json_when_not_a_terminal() -> None:
    out = _emit(io.StringIO())
    (line,) = out.strip().splitlines()
    event = json.loads(line)
    assert event["event"] == "connection_closed"
    assert event["peer"] == "127.0.0.1:1" and event["level"] == "info"
    assert event["timestamp"].endswith("Z")


def test_console_on_a_terminal() -> None:
    out = _emit(_Tty())
    assert "connection_closed" in out and "reason" in out
    assert not out.lstrip().startswith("{")
    assert "hidden_below_level" not in out


def test_forced_json_on_a_terminal() -> None:
    assert json.loads(_emit(_Tty(), "json").strip())["event"] == "connection_closed"


def test_uses_console_decides_like_configure_logging() -> None:
    assert uses_console("auto", _Tty()) and uses_console("console", io.StringIO())
    assert not uses_console("auto", io.StringIO()) and not uses_console("json", _Tty())
    assert _emit(_Tty(), "json").startswith("{")
