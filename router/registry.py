"""Calling the registration hooks once and keeping what they returned.

Every hook is called through pluggy (``pm.hook.<name>``), one implementation
at a time with :meth:`pluggy.PluginManager.subset_hook_caller`, so that every
result and every failure is attributed to a named plugin while tracing,
``tryfirst``/``trylast`` and hook wrappers apply. A plugin that raises,
returns the wrong kind of object or reuses a name stops startup with a
PluginError that names the plugin and the hook.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import cerberus
import pluggy
from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import InvalidVersion, Version

from router.codec import Codec
from router.config import SINK_CORE_SCHEMA, ConfigValidator
from router.errors import PluginError
from router.pluginmanager import RouterPluginManager
from router.sink import Sink
from router.source import Source
from router.validation import Validators, ValidatorSpec, flatten_errors

__all__ = ["PluginInfo", "Registry", "build_registry", "call_each", "call_each_collecting"]


@dataclass(frozen=True, slots=True)
class PluginInfo:
    """One loaded plugin and what it registered (``router plugins``, ``/plugins``)."""

    name: str
    version: str
    origin: str
    hooks: tuple[str, ...]
    sources: tuple[str, ...]
    routes: tuple[str, ...]
    sinks: tuple[str, ...]
    codecs: tuple[str, ...]
    event_types: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self.__slots__}


@dataclass(frozen=True)
class Registry:
    """Everything the plugins registered. Built once per daemon."""

    sources: Mapping[str, type[Source]]
    sinks: Mapping[str, type[Sink]]
    codecs: Mapping[str, Codec]
    validators: Validators
    config_schemas: Mapping[str, Mapping[str, Any]]
    plugins: tuple[PluginInfo, ...]
    pm: RouterPluginManager

    def check_requirement(self, requirement: str) -> str | None:
        """A problem with a ``plugins.require`` entry such as ``"example>=1.0,<2"``, or None.

        The specifier is PEP 440 (:mod:`packaging`); a pre-release of the
        installed plugin counts as that version.
        """
        try:
            req = Requirement(requirement)
        except InvalidRequirement:
            return (
                f"cannot parse requirement {requirement!r}: "
                "give a plugin name and an optional version specifier, e.g. 'example>=1.0,<2'"
            )
        if req.extras or req.marker or req.url:
            return (
                f"requirement {requirement!r} may hold only a plugin name and a version "
                "specifier, not extras, a URL or an environment marker"
            )
        info = next((p for p in self.plugins if p.name == req.name), None)
        if info is None:
            return f"required plugin {req.name!r} is not installed"
        if not req.specifier:
            return None
        try:
            version = Version(info.version)
        except InvalidVersion:
            return (
                f"plugin {req.name!r} has version {info.version!r}, "
                f"which cannot be checked against {requirement.strip()}"
            )
        if not req.specifier.contains(version, prereleases=True):
            return (
                f"plugin {req.name!r} is version {info.version}, {requirement.strip()} is required"
            )
        return None


def call_each(pm: pluggy.PluginManager, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
    """``(plugin name, result)`` of every implementation of ``hook``, in load order.

    The implementations are called in pluggy's order (``tryfirst`` first, then
    the plugin loaded last first); results come back in load order (built-ins
    first), so a name collision is the fault of the plugin loaded later.

    :raises PluginError: naming the plugin and hook if an implementation raises.
    """
    results = []
    for plugin, outcome in _call_one_by_one(pm, hook, kwargs):
        if isinstance(outcome, BaseException):
            raise PluginError(plugin, hook, f"{type(outcome).__name__}: {outcome}") from outcome
        results.extend((plugin, result) for result in outcome)
    return _in_load_order(pm, results)


def call_each_collecting(
    pm: pluggy.PluginManager, hook: str, **kwargs: Any
) -> list[tuple[str, str]]:
    """Call every implementation of ``hook``; ``(plugin name, error)`` of those that raised.

    For hooks such as ``router_shutdown`` where one plugin's failure must not
    stop the others being called.
    """
    return [
        (plugin, f"{type(outcome).__name__}: {outcome}")
        for plugin, outcome in _call_one_by_one(pm, hook, kwargs)
        if isinstance(outcome, BaseException)
    ]


def _call_one_by_one(
    pm: pluggy.PluginManager, hook: str, kwargs: Mapping[str, Any]
) -> Iterator[tuple[str, list[Any] | Exception]]:
    """Each plain implementation's plugin and results (or exception), in pluggy's call order.

    Each call goes through a subset caller that leaves out the other plain
    implementations but keeps every wrapper, so wrappers wrap each call.
    """
    impls = getattr(pm.hook, hook).get_hookimpls()
    plain = [impl for impl in impls if not (impl.wrapper or impl.hookwrapper)]
    for impl in reversed(plain):  # pluggy calls the end of the list first
        others = [other.plugin for other in plain if other is not impl]
        caller = pm.subset_hook_caller(hook, remove_plugins=others)
        try:
            outcome: list[Any] | Exception = caller(**kwargs)
        except Exception as exc:
            outcome = exc
        yield impl.plugin_name, outcome


def _in_load_order(
    pm: pluggy.PluginManager, results: list[tuple[str, Any]]
) -> list[tuple[str, Any]]:
    rank = {name: i for i, (name, _) in enumerate(pm.list_name_plugin())}
    return sorted(results, key=lambda item: rank.get(item[0], len(rank)))


def build_registry(pm: RouterPluginManager) -> Registry:
    """Call the registration hooks once and check what they returned."""
    hooks = _Registration(pm)
    config_schemas = hooks.config_schemas()
    codecs = hooks.codecs()
    specs = hooks.validators()
    sources = hooks.sources(codecs)
    sinks = hooks.sinks(codecs)
    return Registry(sources, sinks, codecs, Validators(specs), config_schemas, hooks.infos(), pm)


class _Registration:
    """The registration hooks' results, one hook at a time, and who registered each name."""

    def __init__(self, pm: RouterPluginManager):
        self.pm = pm
        self.by_plugin: dict[str, dict[str, list[str]]] = {
            name: {"sources": [], "routes": [], "sinks": [], "codecs": [], "types": []}
            for name in pm.origins
        }
        self.owners: dict[tuple[str, str], str] = {}

    def claim(self, kind: str, key: str, plugin: str, hook: str) -> None:
        """Record ``plugin`` as the owner of ``kind`` ``key``; a second owner is an error."""
        other = self.owners.setdefault((kind, key), plugin)
        if other != plugin:
            raise PluginError(plugin, hook, f"{kind} {key!r} is already registered by {other!r}")

    def config_schemas(self) -> dict[str, Mapping[str, Any]]:
        config_schemas: dict[str, Mapping[str, Any]] = {}
        for plugin, schema in call_each(self.pm, "router_config_schema"):
            _check_schema(plugin, "router_config_schema", schema)
            config_schemas[plugin] = schema
        return config_schemas

    def codecs(self) -> dict[str, Codec]:
        codecs: dict[str, Codec] = {}
        for plugin, result in call_each(self.pm, "router_codecs"):
            for codec in _items(plugin, "router_codecs", result, Codec, instance=True):
                self.claim("codec", codec.vendor, plugin, "router_codecs")
                codecs[codec.vendor] = codec
                self.by_plugin[plugin]["codecs"].append(codec.vendor)
        return codecs

    def validators(self) -> list[ValidatorSpec]:
        specs: list[ValidatorSpec] = []
        hook = "router_validators"
        for plugin, result in call_each(self.pm, hook):
            for spec in _items(plugin, hook, result, ValidatorSpec, instance=True):
                self.claim("validator", f"{spec.vendor}:{spec.event_type}", plugin, hook)
                _check_schema(plugin, hook, spec.schema)
                specs.append(spec)
                if spec.event_type != "*":
                    self.by_plugin[plugin]["types"].append(f"{spec.vendor}:{spec.event_type}")
        return specs

    def sources(self, codecs: Mapping[str, Codec]) -> dict[str, type[Source]]:
        sources: dict[str, type[Source]] = {}
        for plugin, result in call_each(self.pm, "router_sources"):
            for cls in _items(plugin, "router_sources", result, Source, instance=False):
                self.claim("source", cls.vendor, plugin, "router_sources")
                if cls.vendor not in codecs:
                    raise PluginError(
                        plugin,
                        "router_sources",
                        f"source {cls.__name__} needs a codec for vendor {cls.vendor!r}",
                    )
                for schema in (cls.options_schema, cls.auth_schema):
                    _check_schema(plugin, "router_sources", schema)
                sources[cls.vendor] = cls
                got = self.by_plugin[plugin]
                got["sources"].append(cls.vendor)
                got["routes"].extend(f"{r.method} {r.path}" for r in cls.routes)
        return sources

    def sinks(self, codecs: Mapping[str, Codec]) -> dict[str, type[Sink]]:
        sinks: dict[str, type[Sink]] = {}
        for plugin, result in call_each(self.pm, "router_sinks"):
            for cls in _items(plugin, "router_sinks", result, Sink, instance=False):
                self.claim("sink", cls.kind, plugin, "router_sinks")
                if cls.vendor is not None and cls.vendor not in codecs:
                    raise PluginError(
                        plugin,
                        "router_sinks",
                        f"sink {cls.__name__} needs a codec for vendor {cls.vendor!r}",
                    )
                _check_schema(plugin, "router_sinks", cls.options_schema)
                _check_delivery_defaults(plugin, cls)
                sinks[cls.kind] = cls
                self.by_plugin[plugin]["sinks"].append(cls.kind)
        return sinks

    def infos(self) -> tuple[PluginInfo, ...]:
        """What each plugin registered, for ``/plugins``."""
        infos = []
        for name, (version, origin) in self.pm.origins.items():
            plugin = self.pm.get_plugin(name)
            hooks = tuple(sorted(h.name for h in self.pm.get_hookcallers(plugin) or ()))
            got = self.by_plugin[name]
            infos.append(
                PluginInfo(
                    name,
                    version,
                    origin,
                    hooks,
                    tuple(got["sources"]),
                    tuple(got["routes"]),
                    tuple(got["sinks"]),
                    tuple(got["codecs"]),
                    tuple(got["types"]),
                )
            )
        return tuple(infos)


def _items(plugin: str, hook: str, result: Any, kind: type, *, instance: bool) -> list[Any]:
    try:
        items = list(result)
    except TypeError:
        raise PluginError(
            plugin, hook, f"must return a list, not {type(result).__name__}"
        ) from None
    for item in items:
        ok = (
            isinstance(item, kind)
            if instance
            else isinstance(item, type) and issubclass(item, kind)
        )
        if not ok:
            what = f"{kind.__name__} instances" if instance else f"{kind.__name__} subclasses"
            raise PluginError(plugin, hook, f"must return {what}, got {item!r}")
    return items


def _check_schema(plugin: str, hook: str, schema: Any) -> None:
    try:
        cerberus.Validator(schema)
    except Exception as exc:  # cerberus raises SchemaError, or TypeError for non-mappings
        raise PluginError(plugin, hook, f"invalid cerberus schema: {exc}") from exc


def _check_delivery_defaults(plugin: str, cls: type[Sink]) -> None:
    """A sink's ``delivery_defaults`` must be valid core sink options."""
    schema = {k: v for k, v in SINK_CORE_SCHEMA.items() if k != "plugin"}
    validator = ConfigValidator(schema, allow_unknown=False)
    if not validator.validate(dict(cls.delivery_defaults), normalize=False):
        problems = "; ".join(str(e) for e in flatten_errors(validator.errors))
        raise PluginError(
            plugin, "router_sinks", f"{cls.__name__}.delivery_defaults is not valid: {problems}"
        )
