"""Every ``strom`` tool command and command family prints --help with an example."""

from __future__ import annotations

import pytest

from broker.cli import main

COMMANDS = [["topic", c] for c in ("create", "list", "describe", "delete", "alter-config",
                                   "add-partitions")]
COMMANDS += [["group", c] for c in ("list", "describe", "delete", "seek")]
COMMANDS += [["produce"], ["consume"], ["cluster", "info"], ["cluster", "health"],
             ["config", "get"], ["config", "set"], ["topic"], ["group"], ["cluster"],
             ["config"]]


@pytest.mark.parametrize("words", COMMANDS, ids=" ".join)
def test_help_has_an_example(words: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main([*words, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: strom {' '.join(words)}")
    example = out.split("example", 1)[1]
    assert "\n  strom " in example or "| strom " in example, out


def test_usage_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["topic", "create"])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the following arguments are required: name" in err
