"""Building a fresh plugin manager per daemon: built-ins first, then entry points.

Load order (which plugin a name collision blames; pluggy calls the last first):

1. the hookspecs in :mod:`router.hookspecs`;
2. :data:`BUILTIN_PLUGINS`, in order, unless blocked by ``plugins.disable``;
3. third-party plugins from the ``router.plugins`` entry-point group, unless
   ``ROUTER_DISABLE_PLUGIN_AUTOLOAD=1`` or blocked;
4. plugins passed as ``extra`` (tests).

Built-ins are registered exactly like third-party plugins: by module, under
their short name. Two plugins with the same name stop startup unless the name
is blocked. ``ROUTER_TRACE_HOOKS=1`` prints every hook call and its result to
stderr.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import reprlib
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pluggy

from router import hookspecs
from router.errors import PluginError
from router.version import __version__

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
            hash(plugin)
        except TypeError:
            # Calling one implementation at a time (subset_hook_caller) needs
            # hashable plugins; a SimpleNamespace or an eq-dataclass is not.
            plugin = _Hashable(plugin)
        try:
            self.register(plugin, name=name)
        except pluggy.PluginValidationError as exc:
            raise PluginError(name, None, str(exc)) from exc
        except ValueError as exc:  # pluggy: the name or the object is already registered
            if self.has_plugin(name):
                why = f"the name is already used by the {self.origins[name][1]} plugin"
            else:
                why = f"the same plugin is already registered as {self.get_name(plugin)!r}"
            raise PluginError(name, None, f"{why}; give each plugin its own name") from exc
        self.origins[name] = (version, origin)


class _Hashable:
    """An unhashable plugin object, seen by identity.

    pluggy finds hookimpls with ``inspect.getattr_static``, so the hook
    attributes are copied onto the instance; anything else is looked up on
    the plugin.
    """

    def __init__(self, plugin: Any) -> None:
        self._plugin = plugin
        for name in dir(plugin):
            if name.startswith(f"{hookspecs.PROJECT}_"):
                setattr(self, name, getattr(plugin, name))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._plugin, name)

    def __repr__(self) -> str:
        return repr(self._plugin)


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
        for ep in _entry_points(pm):
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
        trace_hooks(pm)
    return pm


def trace_hooks(pm: pluggy.PluginManager, write: Any = None) -> Any:
    """Write a line before and after every hook call (``ROUTER_TRACE_HOOKS=1``).

    Argument values are not written, only their names: the config holds
    secrets. Results are shortened. Returns pluggy's undo function.

    :param write: Where lines go (default ``sys.stderr.write``, read per line).
    """
    short = reprlib.Repr()
    short.maxlevel, short.maxlist, short.maxdict, short.maxstring, short.maxother = 3, 8, 8, 60, 120

    def out(line: str) -> None:
        (write or sys.stderr.write)(line + "\n")

    def where(hook: str, impls: Sequence[Any], kwargs: Mapping[str, object]) -> str:
        plugins = ",".join(impl.plugin_name for impl in reversed(impls))
        return f"{hook}({', '.join(kwargs)}) [{plugins}]"

    def before(hook: str, impls: Sequence[Any], kwargs: Mapping[str, object]) -> None:
        out(f"router hook call: {where(hook, impls, kwargs)}")

    def after(outcome: Any, hook: str, impls: Sequence[Any], kwargs: Mapping[str, object]) -> None:
        if outcome.exception is None:
            got = outcome.get_result()
            if len([i for i in impls if not (i.wrapper or i.hookwrapper)]) == 1:
                got = got[0] if got else None  # one plugin's call: its own return value
            got = short.repr(got)
            out(f"router hook result: {where(hook, impls, kwargs)} -> {got}")
        else:
            exc = outcome.exception
            out(f"router hook raised: {where(hook, impls, kwargs)} -> {type(exc).__name__}: {exc}")

    return pm.add_hookcall_monitoring(before, after)


def _entry_points(pm: RouterPluginManager) -> list[importlib.metadata.EntryPoint]:
    """The entry points to load: not blocked, and each name used once.

    :raises PluginError: naming both if two plugins (built-in or entry point) share a name.
    """
    seen: dict[str, str] = {name: f"the built-in {module}" for name, module in BUILTIN_PLUGINS}
    chosen = []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if pm.is_blocked(ep.name):
            continue
        this = f"entry point {ep.value} of {_dist(ep)}"
        if ep.name in seen:
            raise PluginError(
                ep.name,
                None,
                f"two plugins have this name: {seen[ep.name]} and {this}; uninstall one, "
                f"or add {ep.name!r} to plugins.disable to load neither",
            )
        seen[ep.name] = this
        chosen.append(ep)
    return chosen


def _dist(ep: importlib.metadata.EntryPoint) -> str:
    if ep.dist is None:
        return "an unknown distribution"
    return f"{ep.dist.metadata['Name']} {ep.dist.version}"


def _import(name: str, module: str) -> Any:
    try:
        return importlib.import_module(module)
    except Exception as exc:
        raise PluginError(
            name, None, f"cannot import {module}: {type(exc).__name__}: {exc}"
        ) from exc
