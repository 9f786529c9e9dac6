"""Building a fresh plugin manager per daemon: built-ins first, then entry points.

Load order (the contract for which plugin wins, since pluggy calls LIFO):

1. the hookspecs in :mod:`router.hookspecs`;
2. :data:`BUILTIN_PLUGINS`, in order, unless blocked by ``plugins.disable``;
3. third-party plugins from the ``router.plugins`` entry-point group, unless
   ``ROUTER_DISABLE_PLUGIN_AUTOLOAD=1`` or blocked;
4. plugins passed as ``extra`` (tests).

Built-ins are registered exactly like third-party plugins: by module, under
their short name. ``ROUTER_TRACE_HOOKS=1`` prints every hook call to stderr.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import sys
from collections.abc import Iterable
from typing import Any

import pluggy

from router import __version__, hookspecs
from router.errors import PluginError

__all__ = ["BUILTIN_PLUGINS", "ENTRY_POINT_GROUP", "RouterPluginManager", "make_plugin_manager"]

#: (name, module) of the plugins that ship with the router.
BUILTIN_PLUGINS: tuple[tuple[str, str], ...] = (
    ("file", "router.filesink"),
    ("conscent", "router_plugins.conscent"),
    ("segmento", "router_plugins.segmento"),
    ("moloco", "router_plugins.moloco"),
    ("endu", "router_plugins.endu"),
)
ENTRY_POINT_GROUP = "router.plugins"


class RouterPluginManager(pluggy.PluginManager):
    """A pluggy manager that also knows each plugin's version and origin."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT)
        self.add_hookspecs(hookspecs)
        #: plugin name -> (version, origin), origin "builtin", "entrypoint" or "extra".
        self.origins: dict[str, tuple[str, str]] = {}

    def register_named(self, plugin: Any, name: str, version: str, origin: str) -> None:
        try:
            self.register(plugin, name=name)
        except pluggy.PluginValidationError as exc:
            raise PluginError(name, None, str(exc)) from exc
        self.origins[name] = (version, origin)


def make_plugin_manager(
    *,
    autoload: bool = True,
    blocked: Iterable[str] = (),
    extra: Iterable[tuple[str, Any]] = (),
) -> RouterPluginManager:
    """A new manager with every plugin loaded and checked.

    :param autoload: Load entry-point plugins (also off with ``ROUTER_DISABLE_PLUGIN_AUTOLOAD``).
    :param blocked: Plugin names not to load.
    :param extra: ``(name, plugin)`` pairs to register last.
    :raises PluginError: if a plugin fails to import or has invalid hookimpls.
    """
    pm = RouterPluginManager()
    for name in blocked:
        pm.set_blocked(name)
    for name, module in BUILTIN_PLUGINS:
        if pm.is_blocked(name):
            continue
        pm.register_named(_import(name, module), name, __version__, "builtin")
    if autoload and not os.environ.get("ROUTER_DISABLE_PLUGIN_AUTOLOAD"):
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if pm.is_blocked(ep.name) or pm.has_plugin(ep.name):
                continue
            try:
                plugin = ep.load()
            except Exception as exc:
                raise PluginError(
                    ep.name, None, f"cannot import {ep.value}: {type(exc).__name__}: {exc}"
                ) from exc
            version = ep.dist.version if ep.dist else "unknown"
            pm.register_named(plugin, ep.name, version, "entrypoint")
    for name, plugin in extra:
        pm.register_named(plugin, name, getattr(plugin, "__version__", "unknown"), "extra")
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(pm.get_name(exc.plugin) or "?", None, str(exc)) from exc
    if os.environ.get("ROUTER_TRACE_HOOKS"):
        pm.trace.root.setwriter(sys.stderr.write)
        pm.enable_tracing()
    return pm


def _import(name: str, module: str) -> Any:
    try:
        return importlib.import_module(module)
    except Exception as exc:
        raise PluginError(
            name, None, f"cannot import {module}: {type(exc).__name__}: {exc}"
        ) from exc
