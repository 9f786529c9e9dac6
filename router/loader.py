"""Reading a config together with the plugins it enables.

Shared by the command line and the worker processes it starts, which both
sit above it (:mod:`router.cli` starts :mod:`router.workers`).
"""

from __future__ import annotations

from collections.abc import Sequence

from router.config import RouterConfig, blocked_plugins, load_config, read_config_file
from router.pluginmanager import make_plugin_manager
from router.registry import Registry, build_registry

__all__ = ["load", "registry_only"]


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
