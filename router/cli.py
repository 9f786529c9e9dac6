"""The ``router`` command line. Each command is one function; ``main`` dispatches.

Exit codes: 0 success, 1 a command found problems in its input (``translate``,
``validate``), 2 a config or plugin error (nothing was started).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import orjson
import trio

from router import __version__
from router.config import (
    DEFAULT_CONFIG,
    RouterConfig,
    blocked_plugins,
    load_config,
    read_config_file,
)
from router.errors import ConfigError, DataDirLocked, PluginError
from router.log import configure_logging
from router.pluginmanager import make_plugin_manager
from router.registry import Registry, build_registry

__all__ = ["main"]

EXIT_INVALID_INPUT = 1
EXIT_CONFIG = 2


def load(path: str, *, blocked: Sequence[str] = ()) -> tuple[RouterConfig, Registry]:
    """Read, check and validate a config with the plugins it enables.

    :raises ConfigError, PluginError:
    """
    loaded = read_config_file(path)
    registry = build_registry(make_plugin_manager(blocked=[*blocked, *blocked_plugins(loaded)]))
    return load_config(loaded, registry), registry


def registry_only(config_path: str | None) -> Registry:
    """The plugins a config enables (or every installed plugin with no config)."""
    blocked: list[str] = []
    if config_path:
        blocked = blocked_plugins(read_config_file(config_path))
    return build_registry(make_plugin_manager(blocked=blocked))


# -- commands ------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    config, registry = load(args.config)
    server = config.server
    overrides: dict[str, Any] = {}
    if args.bind:
        overrides["bind"] = args.bind
    if args.workers:
        overrides["workers"] = args.workers
    if args.data_dir:
        overrides["data_dir"] = Path(args.data_dir)
    if overrides:
        config = dataclasses.replace(config, server=dataclasses.replace(server, **overrides))
    configure_logging(config.logging.level, config.logging.format, secrets=config.secrets)
    if config.server.workers > 1:
        from router.workers import run_workers

        return run_workers(args.config, config)
    from router.daemon import serve

    trio.run(lambda: serve(config, registry, handle_signals=True))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    config, registry = load(args.config)
    print(f"{args.config}: ok: {config.summary()}, {len(registry.plugins)} plugins")
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


# -- parser --------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="router",
        description="Route analytics and marketing events between vendors' APIs.",
    )
    parser.add_argument("--version", action="version", version=f"router {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, fn: Any) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.set_defaults(fn=fn)
        return sub

    def config_option(sub: argparse.ArgumentParser, *, default: str | None = DEFAULT_CONFIG):
        sub.add_argument(
            "-c",
            "--config",
            default=default,
            metavar="FILE",
            help=f"config file (default: {default})" if default else "config file",
        )

    run = command("run", "run the daemon", cmd_run)
    config_option(run)
    run.add_argument("--bind", metavar="HOST:PORT", help="override server.bind")
    run.add_argument("--workers", type=int, metavar="N", help="override server.workers")
    run.add_argument("--data-dir", metavar="DIR", help="override server.data_dir")

    check = command("check", "validate a config without starting anything", cmd_check)
    config_option(check)

    plugins = command("plugins", "list loaded plugins and what each registered", cmd_plugins)
    config_option(plugins, default=None)
    plugins.add_argument("--json", action="store_true", help="print JSON")

    return parser


def main(argv: Sequence[str] | None = None, *, stderr: TextIO | None = None) -> int:
    """Run the command line; returns the exit code."""
    stderr = stderr or sys.stderr
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=stderr)
        return EXIT_CONFIG
    except (PluginError, DataDirLocked) as exc:
        print(f"error: {exc}", file=stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
