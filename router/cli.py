"""The ``router`` command line. Each command is one function; ``main`` dispatches.

Exit codes, the same in every command:

- 0: success.
- 1: the command ran and found a negative result (``validate``/``translate``
  found invalid events, ``dlq show`` found no such dead letter, ``top`` could
  not read the admin listener).
- 2: something the user must fix, printed as one line (a config as one
  ``FILE:LINE: key: message`` line per problem): usage, config, plugin,
  storage (a full disk, a damaged spool.db), data dir in use, cannot listen, unreadable input file.
- 70: a bug in the router: one line; ``ROUTER_DEBUG=1`` adds the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sqlite3
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import orjson
import trio

from router import __version__
from router.cliparser import build_parser
from router.config import (
    RouterConfig,
    delivery_problem,
    dump_config,
    load_config,
    read_config_file,
)
from router.errors import ConfigError, ConfigProblem, RouterError, StorageError, UsageError
from router.event import deterministic
from router.loader import apply_overrides, config_reader, load, registry_only
from router.log import Redactor, configure_logging, redact_std_streams
from router.queue import DeadLetterStore
from router.storage import make_data_dir

__all__ = ["main"]

EXIT_INVALID_INPUT = 1
#: Anything the user must fix: usage, config, plugins, storage, the listening address.
EXIT_CONFIG = 2
EXIT_BUG = 70
EXIT_INTERRUPTED = 130


# -- commands ------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    config, registry = load(args.config)
    server: dict[str, Any] = {}
    if args.bind is not None:
        server["bind"] = args.bind
    if args.workers is not None:
        server["workers"] = args.workers
    if args.data_dir is not None:
        server["data_dir"] = Path(args.data_dir)
    admin = {"bind": args.admin_bind} if args.admin_bind is not None else {}
    overrides = {"server": server, "admin": admin}
    config = apply_overrides(config, overrides)
    redact_std_streams(config.secrets)
    configure_logging(config.logging.level, config.logging.format, secrets=config.secrets)
    make_data_dir(config.server.data_dir)
    # The file passed the same check; --workers may have broken it since.
    server = {"delivery": config.server.delivery, "workers": config.server.workers}
    if problem := delivery_problem(server):
        raise ConfigError([ConfigProblem(config.file, None, "server.delivery", problem)])
    if config.server.workers > 1 or config.server.delivery == "process":
        from router.workers import run_workers

        return run_workers(args.config, config, watch=args.watch)
    from router.daemon import serve
    from router.gcpolicy import tune_for_serving
    from router.listener import listen
    from router.workers import adopted_dirs

    drain = adopted_dirs(config.server.data_dir, 0, 1)
    # A SIGHUP before the daemon listens for it must not end the process (the default).
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    # Bound here, before trio starts, so a busy port is one ListenError, not a nursery's group.
    sockets = listen(config.server.bind)
    tune_for_serving()
    trio.run(
        lambda: serve(
            config,
            registry,
            handle_signals=True,
            drain=drain,
            sockets=sockets,
            read_config=config_reader(args.config, overrides),
            watch=args.watch,
        )
    )
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from router.coverage import check_command

    if args.no_environment:
        # The plugins are the config's either way; only the check treats ${VAR}s as unknown.
        registry = registry_only(args.config)
        config = load_config(read_config_file(args.config, no_environment=True), registry)
    else:
        config, registry = load(args.config)
    print(f"{config.file}: ok: {config.summary()}, {len(registry.plugins)} plugins")
    return check_command(config, registry, args.strict, sys.stdout, sys.stderr)


def cmd_config(args: argparse.Namespace) -> int:
    config, _ = load(args.config)
    sys.stdout.write(dump_config(config))
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    registry = registry_only(args.config)
    if args.json:
        print(
            orjson.dumps(
                [p.to_dict() for p in registry.plugins], option=orjson.OPT_INDENT_2
            ).decode()
        )
        return 0
    for p in registry.plugins:
        print(f"{p.name} {p.version} ({p.origin})")
        for label, values in (
            ("routes", p.routes),
            ("event types", p.event_types),
            ("sink kinds", p.sinks),
            ("codecs", p.codecs),
        ):
            if values:
                print(f"  {label}: {', '.join(values)}")
    return 0


def _open_input(path: str) -> TextIO:
    """``path`` for reading (``-``: stdin). :raises UsageError: if it cannot be read."""
    if path == "-":
        return sys.stdin
    try:
        return open(path, encoding="utf-8")
    except IsADirectoryError:
        raise UsageError(f"cannot read {path}: it is a directory; give an NDJSON file") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None


def _options(pairs: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs; values are YAML scalars (``true``, ``3``, ``{a: B}``)."""
    import yaml

    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--option expects KEY=VALUE, got {pair!r}")
        options[key] = yaml.safe_load(value)
    return options


def cmd_new_plugin(args: argparse.Namespace) -> int:
    from router.scaffold import new_plugin

    target = new_plugin(args.name, Path(args.dir))
    print(f"wrote {target}; next: pip install -e '{target}[test]' && pytest {target}")
    return 0


def cmd_translate(args: argparse.Namespace) -> int:
    from router.translate import Translator, check_options

    options = _options(args.option)
    if args.sink:
        config, registry = load(args.config)
        if args.sink not in config.sinks:
            known = ", ".join(sorted(config.sinks)) or "none"
            raise UsageError(f"no sink {args.sink!r} in {config.file} (sinks: {known})")
    else:
        registry = registry_only(None)
    given = options
    if args.sink:
        options = {**config.sinks[args.sink].options, **options}
    translator = Translator(registry, args.source, args.destination, options)
    check_options(registry, args.destination, given)
    fixed = deterministic() if args.deterministic else contextlib.nullcontext()
    with _open_input(args.file) as stream, fixed:
        ok, failed = translator.run(stream, sys.stdout, sys.stderr)
    print(f"{ok} translated, {failed} failed", file=sys.stderr)
    return EXIT_INVALID_INPUT if failed else 0


def cmd_test(args: argparse.Namespace) -> int:
    from router.configtest import main as run_tests

    configure_logging("critical", stream=sys.stderr)  # the cases' outcomes are the output
    return run_tests(args.files, sys.stdout)


def cmd_validate(args: argparse.Namespace) -> int:
    from router.translate import Translator

    translator = Translator(registry_only(None), args.vendor)
    with _open_input(args.file) as stream:
        ok, failed = translator.run(stream, None, sys.stderr)
    print(f"{ok} valid, {failed} invalid", file=sys.stderr)
    return EXIT_INVALID_INPUT if failed else 0


def cmd_dlq(args: argparse.Namespace) -> int:
    from router.deadletters import DeadLetters, UnknownSink

    config = _dlq_config(args)
    # An upstream's answer may quote what it was sent: no configured secret is printed.
    redact = Redactor(config.secrets).redact if config is not None else str
    if config is not None and config.redis is not None:
        sink = config.sinks.get(args.sink)
        if sink is not None and sink.buffer == "redis":
            from router.redisqueue import SyncDeadLetters

            # Redis unreachable is a StorageError: one line and exit 2, as for the disk spool.
            return _dlq(SyncDeadLetters(config), args, redact)
    data_dir = Path(args.data_dir) if args.data_dir else config.server.data_dir
    try:
        with DeadLetters(data_dir) as dlq:
            return _dlq(dlq, args, redact)
    except (UnknownSink, FileNotFoundError) as exc:
        raise UsageError(str(exc.args[0] if exc.args else exc)) from exc
    except sqlite3.Error as exc:  # the spool failed mid-command (disk full, damaged page)
        from router.storage import describe

        spool = data_dir / "spool.db"
        raise StorageError(describe(spool, exc, what="spool")) from exc


def _dlq_config(args: argparse.Namespace) -> RouterConfig | None:
    """The config, which says whether the sink's dead letters are in Redis.

    With ``--data-dir`` and no readable config the spool of that directory is used.
    """
    if args.data_dir and args.config is not None and not Path(args.config).is_file():
        return None
    try:
        config, _ = load(args.config)
    except ConfigError:
        if args.data_dir:
            return None
        raise
    return config


def _dlq(dlq: DeadLetterStore, args: argparse.Namespace, redact: Callable[[str], str]) -> int:
    ids = args.id or None
    if args.action == "list":
        total = dlq.count(args.sink)
        for letter in dlq.list(args.sink, offset=args.offset, limit=args.limit):
            status = letter.status if letter.status is not None else "-"
            print(
                redact(
                    f"{letter.id}\t{letter.event_id}\t{letter.attempts}\t{status}\t{letter.reason}"
                )
            )
        print(f"{total} dead letters in {args.sink}", file=sys.stderr)
    elif args.action == "show":
        letters = [dlq.get(args.sink, i) for i in (ids or [])] or dlq.list(args.sink, limit=1)
        for letter in letters:
            if letter is None:
                print("router: no such dead letter", file=sys.stderr)
                return EXIT_INVALID_INPUT
            print(redact(orjson.dumps(letter.to_dict(), option=orjson.OPT_INDENT_2).decode()))
    elif args.action == "replay":

        def progress(done: int, total: int) -> None:
            print(f"\rreplayed {done}/{total}", end="", file=sys.stderr, flush=True)

        done = dlq.replay(args.sink, ids, progress=progress)
        print(f"\rreplayed {done} dead letters into the queue of {args.sink}", file=sys.stderr)
    elif args.action == "purge":
        if ids is None and not args.all:
            raise UsageError("purge needs --id N (repeatable) or --all")
        print(f"purged {dlq.purge(args.sink, ids)} dead letters of {args.sink}", file=sys.stderr)
    return 0


def cmd_tap(args: argparse.Namespace) -> int:
    """Print ``GET /admin/tap`` as it streams: one JSON object a line."""
    import httpx

    from router.adminclient import admin_client, admin_targets

    (url,), token = admin_targets(
        [args.admin] if args.admin else None, args.token, args.config, "router tap"
    )
    names = ("source", "route", "sink", "form", "type", "sample", "limit")
    params = {name: str(getattr(args, name)) for name in names if getattr(args, name) is not None}
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    timeout = httpx.Timeout(10.0, read=None)  # a quiet tap is no failure
    try:
        with (
            admin_client(url, headers, timeout) as client,
            client.stream("GET", "/admin/tap", params=params) as reply,
        ):
            if reply.status_code != 200:
                reply.read()
                try:
                    message = reply.json()["message"]
                except (ValueError, KeyError, TypeError):
                    message = reply.text.strip()[:200]
                print(
                    f"router: tap: {url} answered {reply.status_code}: {message}", file=sys.stderr
                )
                return EXIT_CONFIG if reply.status_code == 400 else EXIT_INVALID_INPUT
            out = sys.stdout.buffer
            for chunk in reply.iter_raw():  # whole lines as the daemon wrote them
                out.write(chunk)
                out.flush()
    except httpx.HTTPError as exc:
        print(f"router: tap: cannot read from the admin listener at {url}: {exc}", file=sys.stderr)
        return EXIT_INVALID_INPUT
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `router tap | head`: the reader has what it wanted
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - no flush error at exit
    return 0


def cmd_quarantine(args: argparse.Namespace) -> int:
    from router.quarantinetool import command

    return command(args)


def cmd_top(args: argparse.Namespace) -> int:
    from router.top import command

    return command(args)


#: Each command's implementation, by name (the parser is router.cliparser).
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": cmd_run,
    "check": cmd_check,
    "config": cmd_config,
    "plugins": cmd_plugins,
    "translate": cmd_translate,
    "test": cmd_test,
    "validate": cmd_validate,
    "dlq": cmd_dlq,
    "quarantine": cmd_quarantine,
    "tap": cmd_tap,
    "top": cmd_top,
    "new-plugin": cmd_new_plugin,
}


#: How ``main`` reports an error the user must fix: the lines to print, then exit 2.
#: The first class that matches wins, so subclasses go before their bases.
USER_ERRORS: list[tuple[type[BaseException], Callable[[Any], list[str]]]] = [
    (ConfigError, lambda exc: [str(p) for p in exc.problems]),
    (RouterError, lambda exc: [f"router: error: {exc}"]),
]


def _sole(exc: BaseException) -> BaseException:
    """The one error inside nested exception groups (trio's nurseries wrap errors)."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def report(exc: BaseException, stderr: TextIO) -> int:
    """Print ``exc`` for the user; the exit code."""
    exc = _sole(exc)
    if os.environ.get("ROUTER_DEBUG") == "1":
        traceback.print_exception(exc, file=stderr)
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    for cls, lines in USER_ERRORS:
        if isinstance(exc, cls):
            for line in lines(exc):
                print(line, file=stderr)
            return EXIT_CONFIG
    hint = "" if os.environ.get("ROUTER_DEBUG") == "1" else "; ROUTER_DEBUG=1 shows the traceback"
    message = str(exc).splitlines()[0] if str(exc) else ""
    print(
        f"router: internal error: {type(exc).__name__}: {message}. This is a bug in router "
        f"{__version__}; please report it to the project's issue tracker with the command "
        f"you ran{hint}",
        file=stderr,
    )
    return EXIT_BUG


def main(argv: Sequence[str] | None = None, *, stderr: TextIO | None = None) -> int:
    """Run the command line; returns the exit code (see the module docstring)."""
    args = build_parser(EXIT_CONFIG).parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (Exception, KeyboardInterrupt) as exc:
        # sys.stderr as it is now: `router run` made it redact the config's secrets.
        return report(exc, stderr or sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
