"""The ``router`` command line's parser: every command, its help and its arguments.

The commands themselves are :data:`router.cli.COMMANDS`, by the same names.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import NoReturn

from router.config import SERVER_SCHEMA, parse_bind
from router.version import __version__

__all__ = ["build_parser"]


class _CommandListFormatter(argparse.HelpFormatter):
    """Keeps each command and its one-line help on one line in ``router --help``."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=24, width=100)
        self._action_max_length = 18


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error as one line that points at ``--help``."""

    usage_exit = 2

    def error(self, message: str) -> NoReturn:
        self.exit(self.usage_exit, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _bind(value: str) -> str:
    try:
        parse_bind(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def _admin_bind(value: str) -> str:
    if value == "off" or value.startswith("unix:"):
        return value
    return _bind(value)


def _workers(value: str) -> int:
    low, high = SERVER_SCHEMA["workers"]["min"], SERVER_SCHEMA["workers"]["max"]
    try:
        number = int(value)
    except ValueError:
        number = None
    if number is None or not low <= number <= high:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number from {low} to {high}")
    return number


def build_parser(usage_exit: int = 2) -> argparse.ArgumentParser:
    """The ``router`` parser; ``args.command`` names the command (``router.cli.COMMANDS``)."""
    _Parser.usage_exit = usage_exit
    parser = _Parser(
        prog="router",
        description="Route analytics and marketing events between vendors' APIs.",
        formatter_class=_CommandListFormatter,
    )
    parser.add_argument("--version", action="version", version=f"router {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help, add_arguments in _COMMANDS:
        add_arguments(commands.add_parser(name, help=help, description=help))
    return parser


def _config_option(sub: argparse.ArgumentParser, *, builtin: bool = True) -> None:
    sub.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        help="config file (default: the built-in one, a copy of config/router.yaml)"
        if builtin
        else "config file",
    )


def _run(run: argparse.ArgumentParser) -> None:
    _config_option(run)
    run.add_argument("--bind", type=_bind, metavar="HOST:PORT", help="override server.bind")
    run.add_argument("--workers", type=_workers, metavar="N", help="override server.workers")
    run.add_argument("--data-dir", metavar="DIR", help="override server.data_dir")
    run.add_argument(
        "--admin-bind",
        type=_admin_bind,
        metavar="HOST:PORT",
        help="override admin.bind (HOST:PORT, unix:PATH or off)",
    )
    run.add_argument(
        "--watch", action="store_true", help="reload when the config file changes (as SIGHUP)"
    )


def _check(check: argparse.ArgumentParser) -> None:
    _config_option(check)
    check.add_argument("--strict", action="store_true", help="exit 1 if a type is dead-lettered")
    check.add_argument(
        "--no-environment",
        action="store_true",
        help="treat unset ${VAR}s as placeholders instead of errors",
    )


def _plugins(plugins: argparse.ArgumentParser) -> None:
    _config_option(plugins, builtin=False)
    plugins.add_argument("--json", action="store_true", help="print JSON")


def _translate(translate: argparse.ArgumentParser) -> None:
    translate.add_argument("--from", dest="source", required=True, metavar="VENDOR")
    translate.add_argument("--to", dest="destination", required=True, metavar="VENDOR")
    translate.add_argument(
        "-o",
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a destination sink option (client_id=…, platform=…)",
    )
    translate.add_argument(
        "--sink", metavar="NAME", help="take the destination options from this sink of --config"
    )
    _config_option(translate)
    translate.add_argument(
        "--deterministic", action="store_true", help="ids count up from 1, times are fixed"
    )
    translate.add_argument("file", nargs="?", default="-", metavar="FILE|-")


def _test(test: argparse.ArgumentParser) -> None:
    test.add_argument("files", nargs="+", metavar="FILE|DIR")


def _validate(validate: argparse.ArgumentParser) -> None:
    validate.add_argument("--vendor", required=True, metavar="VENDOR")
    validate.add_argument("file", nargs="?", default="-", metavar="FILE|-")


def _dlq(dlq: argparse.ArgumentParser) -> None:
    dlq.add_argument("action", choices=["list", "show", "replay", "purge"])
    dlq.add_argument("sink", metavar="SINK")
    dlq.add_argument(
        "--id",
        type=int,
        action="append",
        metavar="N",
        help="a dead letter's id (repeatable); default: all",
    )
    dlq.add_argument("--all", action="store_true", help="purge: every dead letter of the sink")
    dlq.add_argument("--limit", type=int, default=100)
    dlq.add_argument("--offset", type=int, default=0)
    dlq.add_argument("--data-dir", metavar="DIR", help="default: server.data_dir of --config")
    _config_option(dlq)


def _quarantine(quarantine: argparse.ArgumentParser) -> None:
    quarantine.add_argument("action", choices=["list", "purge", "replay"])
    quarantine.add_argument(
        "source", nargs="?", metavar="SOURCE", help="list, replay: default all; purge: required"
    )
    quarantine.add_argument("--id", type=int, action="append", metavar="N", help="replay: one")
    quarantine.add_argument("--file", metavar="NDJSON", help="replay: fixed events (list's form)")
    quarantine.add_argument("--url", help="replay: the router (default: http://server.bind)")
    quarantine.add_argument("--header", action="append", default=[], metavar="NAME:VALUE")
    quarantine.add_argument("--path", help="replay: the ingest path, if it has parameters")
    quarantine.add_argument("--all", action="store_true", help="purge: the events of every source")
    quarantine.add_argument("--limit", type=int, default=100)
    quarantine.add_argument("--offset", type=int, default=0)
    quarantine.add_argument(
        "--data-dir", metavar="DIR", help="default: server.data_dir of --config"
    )
    _config_option(quarantine)


def _fraction(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0.0 < number <= 1.0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a fraction above 0 and at most 1")
    return number


def _count(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of at least 1")
    return int(value)


def _tap(tap: argparse.ArgumentParser) -> None:
    _config_option(tap)
    tap.add_argument(
        "--admin", metavar="URL", help="the admin listener (default: admin.bind of --config)"
    )
    tap.add_argument("--token", metavar="T", help="admin.token (default: that of --config)")
    point = tap.add_mutually_exclusive_group()
    point.add_argument("--source", metavar="S", help="the events a source receives")
    point.add_argument("--route", metavar="R", help="a route, by index or 'from -> to'")
    point.add_argument("--sink", metavar="K", help="the events a sink delivers or dead-letters")
    tap.add_argument("--form", choices=["canonical", "vendor"], default="canonical")
    tap.add_argument("--type", metavar="T", help="only events of this canonical type")
    tap.add_argument("--sample", type=_fraction, metavar="F", help="keep this fraction (0-1]")
    tap.add_argument("--limit", type=_count, metavar="N", help="stop after N events")


def _interval(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < float("inf"):  # nan compares false too
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds more than 0")
    return seconds


def _top(top: argparse.ArgumentParser) -> None:
    top.add_argument(
        "--admin",
        action="append",
        metavar="URL",
        help="the admin listener: http://HOST:PORT, HOST:PORT or unix:PATH (default: admin.bind of "
        "--config, else http://127.0.0.1:9091); repeat it to add up several daemons",
    )
    top.add_argument("--token", metavar="T", help="admin.token (default: that of --config)")
    top.add_argument(
        "--interval", type=_interval, default=1.0, metavar="S", help="seconds between reads (1)"
    )
    top.add_argument("--once", action="store_true", help="print one frame and exit")
    _config_option(top, builtin=False)


def _new_plugin(new_plugin: argparse.ArgumentParser) -> None:
    new_plugin.add_argument("name", metavar="NAME", help="the plugin's name (lower case)")
    new_plugin.add_argument("--dir", default=".", metavar="DIR", help="where (default: .)")


#: Every command: its name, its one-line help, and what adds its arguments.
_COMMANDS: list[tuple[str, str, Callable[[argparse.ArgumentParser], None]]] = [
    ("run", "run the daemon", _run),
    ("check", "validate a config without starting anything", _check),
    ("config", "print the effective config: defaults filled in, secrets redacted", _config_option),
    ("plugins", "list loaded plugins and what each registered", _plugins),
    ("translate", "translate NDJSON events from one vendor's format to another's", _translate),
    ("test", "run config unit tests: YAML cases through a real daemon", _test),
    ("validate", "check NDJSON events against a vendor's schemas", _validate),
    ("dlq", "list, show, replay or purge a sink's dead letters", _dlq),
    ("quarantine", "list, purge or replay a source's invalid events", _quarantine),
    ("tap", "stream the events passing a source, route or sink of a running daemon", _tap),
    ("top", "a live view of a running router: rates, queues, failing sinks", _top),
    ("new-plugin", "write a new plugin package with its tests, ready to install", _new_plugin),
]
