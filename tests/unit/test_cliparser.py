"""router.cliparser: every command has a parser and an implementation, usage errors are one line."""

from __future__ import annotations

import argparse

import pytest

from router.cli import COMMANDS, EXIT_CONFIG
from router.cliparser import build_parser


def subcommands(parser: argparse.ArgumentParser) -> set[str]:
    (action,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(action.choices)


def test_every_parsed_command_has_an_implementation_and_back():
    assert subcommands(build_parser()) == set(COMMANDS)


def test_the_command_name_is_what_main_dispatches_on():
    args = build_parser().parse_args(["run", "--watch", "--workers", "2"])
    assert (args.command, args.watch, args.workers) == ("run", True, 2)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--workers", "0"], "'0' is not a number from 1 to"),
        (["run", "--bind", "nowhere"], "--bind"),
        (["dlq", "explode", "up"], "invalid choice: 'explode'"),
    ],
)
def test_a_usage_error_is_one_line_and_exits_with_the_given_code(capsys, argv, message):
    with pytest.raises(SystemExit) as exited:
        build_parser(EXIT_CONFIG).parse_args(argv)
    assert exited.value.code == EXIT_CONFIG
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and err[0].endswith(" --help)")
