"""Reading a config together with the plugins it enables.

Shared by the command line and the worker processes it starts, which both
sit above it (:mod:`router.cli` starts :mod:`router.workers`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from router.config import (
    RouterConfig,
    blocked_plugins,
    config_secrets,
    load_config,
    read_config_file,
)
from router.errors import ConfigError
from router.log import learn_secrets
from router.pluginmanager import make_plugin_manager
from router.registry import Registry, build_registry

__all__ = ["ConfigReader", "Overrides", "apply_overrides", "config_reader", "load", "registry_only"]

#: How a running daemon reads its config again: given its registry, the new config.
ConfigReader = Callable[[Registry], RouterConfig]
#: What the command line set, by section: ``{"server": {"bind": …}, "admin": {"bind": …}}``.
Overrides = Mapping[str, Mapping[str, Any]]


def apply_overrides(config: RouterConfig, overrides: Overrides | None) -> RouterConfig:
    """``config`` with the fields of ``overrides`` replaced, section by section."""
    for section, fields in (overrides or {}).items():
        if fields:
            replaced = dataclasses.replace(getattr(config, section), **fields)
            config = dataclasses.replace(config, **{section: replaced})
    return config


def load(path: str | None, *, blocked: Sequence[str] = ()) -> tuple[RouterConfig, Registry]:
    """Read, check and validate a config (``None``: the default) with the plugins it enables.

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


def config_reader(path: str | None, overrides: Overrides | None = None) -> ConfigReader:
    """Read ``path`` again with the running plugins, with the same ``overrides``.

    The overrides are what the command line set (``--bind``, ``--data-dir``,
    ``--workers``, ``--admin-bind``), so a reload does not see them as changes. A config that
    fails its checks raises ConfigError; the secrets it names are redacted
    from the logs from then on, since its problems are about to be logged.
    """

    def read(registry: Registry) -> RouterConfig:
        loaded = read_config_file(path)
        try:
            config = load_config(loaded, registry)
        except ConfigError:
            learn_secrets(config_secrets(loaded))
            raise
        return apply_overrides(config, overrides)

    return read
