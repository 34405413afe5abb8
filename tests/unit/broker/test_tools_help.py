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


def _run(argv: list[str], capsys: pytest.CaptureFixture[str],
         monkeypatch: pytest.MonkeyPatch, tmp_path) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    for name in ("STROM_BROKERS", "STROM_SASL_USERNAME", "STROM_SASL_PASSWORD",
                 "STROM_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STROM_PROFILE_FILE", str(tmp_path / "none.toml"))
    code = main(argv)
    return code, capsys.readouterr().err


def test_input_errors_before_any_connection(capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    cases = [
        (["topic", "list", "--sasl-username", "alice"], "both --sasl-username and"),
        (["topic", "list", "--sasl-mechanism", "GSSAPI", "--sasl-username", "a",
          "--sasl-password", "b"], "not supported; use one of PLAIN, SCRAM"),
        (["topic", "list", "-b", "nonsense"], "bad broker address 'nonsense'"),
        (["topic", "list", "--profile", "prod"], "profile 'prod' requested"),
        (["consume", "t", "--offset", "-3x"], "bad position '-3x'"),
        (["consume", "t", "--count", "0"], "--count must be at least 1"),
        (["topic", "alter-config", "t"], "nothing to change"),
        (["config", "set"], "nothing to change"),
        (["produce", "t", "--header", "novalue"], "bad header 'novalue'"),
        (["produce", "t", "--file", str(tmp_path / "missing.txt")], "cannot read"),
    ]
    for argv, text in cases:
        code, err = _run(argv, capsys, monkeypatch, tmp_path)
        assert code == 2, (argv, err)
        assert err.count("\n") == 1 and text in err, (argv, err)


def test_unreachable_default_broker_points_at_make_run(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from broker.tools import context

    monkeypatch.setattr(context, "DEFAULT_BROKERS", "127.0.0.1:1")
    code, err = _run(["topic", "list"], capsys, monkeypatch, tmp_path)
    assert code == 1
    assert err == ("strom: no broker at 127.0.0.1:1 (connection refused): is `make run` "
                   "running? (or pass --bootstrap-server / set STROM_BROKERS)\n")


def test_a_duration_ago_may_follow_its_option() -> None:
    from broker.tools import join_negative_values

    assert join_negative_values(["consume", "t", "--offset", "-1h", "-n", "3"]) == [
        "consume", "t", "--offset=-1h", "-n", "3"]
    assert join_negative_values(["group", "seek", "g", "--to", "-PT1H", "--shift-by", "-2"]
                                ) == ["group", "seek", "g", "--to=-PT1H", "--shift-by=-2"]
    assert join_negative_values(["consume", "t", "-o", "-e"]) == ["consume", "t", "-o", "-e"]


def test_progress_only_on_a_terminal() -> None:
    import io

    from broker.tools.context import Progress

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty, pipe = Tty(), io.StringIO()
    for stream in (tty, pipe):
        progress = Progress("produced", stream)
        progress(10)
        progress(20)  # within 0.1 s of the last update: not drawn
        progress.done()
    assert tty.getvalue() == "\rproduced 10\r\x1b[K"
    assert pipe.getvalue() == ""
