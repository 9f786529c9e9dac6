"""Checking a parsed config: the document becomes settings, or every problem at once.

The schema is the core's part (:mod:`router.config.schema`) plus each
plugin's part: the ``options_schema`` of its Source and Sink classes and the
schema it returns from ``router_config_schema``. Every problem is reported as
``FILE:LINE: key.path: message``.

An unset ``${VAR}`` read with ``no_environment`` (a placeholder, see
:func:`router.config.load.read_config_file`) passes every rule on the form of
a string (regex, allowed values, length); where the field needs another type
(a number, a duration, a size, a boolean) the value is checked as if it were
left out, so the default applies.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import cerberus.errors

from router.config.build import as_dict, merge, redis_config, server_config, sink_config
from router.config.schema import (
    ADMIN_SCHEMA,
    LOGGING_SCHEMA,
    NAME,
    REDIS_SCHEMA,
    ROUTE_SCHEMA,
    SERVER_SCHEMA,
    SINK_CORE_SCHEMA,
    SINK_DEFAULTS,
    SOURCE_CORE_SCHEMA,
    ConfigValidator,
    delivery_problem,
)
from router.config.secrets import config_secrets, declared_secrets
from router.config.settings import (
    AdminConfig,
    AuthConfig,
    InboundLimit,
    LoggingConfig,
    RouteConfig,
    RouterConfig,
    SinkConfig,
    SourceConfig,
    field_default,
)
from router.credentials import AUTH_STYLE_SCHEMA, credential_header, credential_problem
from router.errors import ConfigError, ConfigProblem
from router.log import Redactor
from router.validation import flatten_errors
from router.yamlsource import Loaded, dotted

if TYPE_CHECKING:
    from router.sink import Sink
    from router.source import Source

__all__ = ["PluginCatalog", "load_config"]

Path_ = tuple[Any, ...]

#: Rules on a string's form: a placeholder passes them, its real value is not known.
_FORM_RULES = frozenset({"regex", "allowed", "empty", "minlength", "maxlength"})


class PluginCatalog(Protocol):
    """What checking a config needs from :class:`router.registry.Registry`.

    A Protocol, so that the config sits below the registry, which imports it.
    """

    @property
    def sources(self) -> Mapping[str, type[Source]]: ...
    @property
    def sinks(self) -> Mapping[str, type[Sink]]: ...
    @property
    def config_schemas(self) -> Mapping[str, Mapping[str, Any]]: ...
    def check_requirement(self, requirement: str) -> str | None: ...


def load_config(loaded: Loaded, registry: PluginCatalog) -> RouterConfig:
    """Validate a parsed config against the core and plugin schemas.

    :raises ConfigError: listing every problem, each with file, line and key.
    """
    try:
        if not isinstance(loaded.data, dict):
            problems = list(loaded.problems)
            if loaded.data is not None or not problems:
                problems.append(ConfigProblem(loaded.file, 1, "", "the config must be a mapping"))
            raise ConfigError(problems)
        return _Checker(loaded, registry).check()
    except ConfigError as exc:
        # `router check` prints these before any logging exists; a message may quote a value.
        redactor = Redactor(config_secrets(loaded))
        if not redactor:
            raise
        raise ConfigError(
            [
                dataclasses.replace(
                    p, key=redactor.redact(p.key), message=redactor.redact(p.message)
                )
                for p in exc.problems
            ]
        ) from None


class _Checker:
    def __init__(self, loaded: Loaded, registry: PluginCatalog, *, prune: bool = True):
        self.loaded = loaded
        self.registry = registry
        self.problems: list[ConfigProblem] = list(loaded.problems)
        #: Values of options that a plugin's schema marks ``"meta": {"secret": True}``.
        self.declared_secrets: set[str] = set()
        #: Placeholders in a field that takes no string: checked again, left out.
        self.unfit: set[Path_] = set()
        self.prune = prune

    def problem(self, path: Path_, message: str) -> None:
        # A value whose ${VAR} is undefined was already reported; its other errors are noise.
        if _under(path, self.loaded.failed_paths) or _under(path, self.loaded.placeholders):
            return
        self.problems.append(
            ConfigProblem(self.loaded.file, self.loaded.line(path), dotted(path), message)
        )

    def validate(self, doc: Any, schema: Mapping[str, Any], path: Path_) -> bool:
        """Whether ``doc`` passes, placeholders failing only on a string's form aside."""
        validator = ConfigValidator(schema, allow_unknown=False)
        if validator.validate(doc, normalize=False):
            return True
        for error in flatten_errors(validator.errors):
            self.problem((*path, *error.path), error.message)
        excused = True
        # The error objects, not the messages: whether a placeholder fits depends on the rule.
        for error in _leaf_errors(validator._errors):
            where = (*path, *error.document_path)
            placeholder = _under(where, self.loaded.placeholders)
            if placeholder and error.rule not in _FORM_RULES:
                self.unfit.add(placeholder)
            excused = excused and bool(placeholder) and error.rule in _FORM_RULES
        return excused

    def check(self) -> RouterConfig:
        doc = self.loaded.data
        top = {
            "server": {"type": "dict", "schema": SERVER_SCHEMA},
            "logging": {"type": "dict", "schema": LOGGING_SCHEMA},
            "sources": {"type": "dict", "keysrules": NAME, "valuesrules": {"type": "dict"}},
            "sinks": {"type": "dict", "keysrules": NAME, "valuesrules": {"type": "dict"}},
            "routes": {"type": "list", "schema": {"type": "dict", "schema": ROUTE_SCHEMA}},
            "plugins": {"type": "dict", "schema": self.plugins_schema()},
            "redis": {"type": "dict", "schema": REDIS_SCHEMA},
            "admin": {"type": "dict", "schema": ADMIN_SCHEMA},
        }
        self.validate(doc, top, ())
        if problem := delivery_problem(as_dict(doc.get("server"))):
            self.problem(("server", "delivery"), problem)
        plugins = as_dict(doc.get("plugins"))
        for name, plugin_schema in self.registry.config_schemas.items():
            self.declared_secrets |= declared_secrets(plugins.get(name), plugin_schema)
        sources = {
            name: self.source(name, opts)
            for name, opts in as_dict(doc.get("sources")).items()
            if isinstance(opts, dict)
        }
        sinks = {
            name: self.sink(name, opts)
            for name, opts in as_dict(doc.get("sinks")).items()
            if isinstance(opts, dict)
        }
        routes = self.routes(doc.get("routes"), sources, sinks)
        self.check_paths(sources)
        self.check_required_plugins(doc)
        if self.unfit and self.prune:
            pruned = dataclasses.replace(self.loaded, data=_without(doc, self.unfit))
            return _Checker(pruned, self.registry, prune=False).check()
        if self.problems:
            raise ConfigError(_dedupe(self.problems))
        return RouterConfig(
            file=self.loaded.file,
            server=server_config(as_dict(doc.get("server"))),
            logging=LoggingConfig(**as_dict(doc.get("logging"))),
            sources={k: v for k, v in sources.items() if v is not None},
            sinks={k: v for k, v in sinks.items() if v is not None},
            routes=tuple(routes),
            plugins=as_dict(doc.get("plugins")),
            redis=redis_config(doc.get("redis")),
            admin=AdminConfig.of(as_dict(doc.get("admin"))),
            secrets=frozenset(config_secrets(self.loaded) | self.declared_secrets),
        )

    def plugins_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {
            "disable": {"type": "list", "schema": {"type": "string"}},
            "require": {
                "type": "list",
                "schema": {
                    "type": "string",
                    "regex": r"[A-Za-z0-9_.-]+\s*((==|>=|<=|>|<|~=)\s*[0-9][0-9a-z.]*)?",
                },
            },
        }
        for name, plugin_schema in self.registry.config_schemas.items():
            schema[name] = {"type": "dict", "schema": dict(plugin_schema)}
        return schema

    def plugin_class(self, kind: str, path: Path_, opts: dict[str, Any]) -> Any:
        """The Source or Sink class ``opts["plugin"]`` names, or None (reported)."""
        registry = self.registry
        known: Mapping[str, Any] = registry.sources if kind == "source" else registry.sinks
        plugin = opts.get("plugin")
        cls = known.get(plugin) if isinstance(plugin, str) else None
        if cls is None and isinstance(plugin, str):
            self.problem(
                (*path, "plugin"),
                f"no {kind} plugin {plugin!r} (available: {', '.join(sorted(known)) or 'none'})",
            )
        elif cls is None and "plugin" not in opts:
            self.problem((*path, "plugin"), "required field")
        return cls

    # -- sources ---------------------------------------------------------------

    def source(self, name: str, opts: dict[str, Any]) -> SourceConfig | None:
        path = ("sources", name)
        cls = self.plugin_class("source", path, opts)
        if cls is None:
            return None
        schema = {**SOURCE_CORE_SCHEMA, **cls.options_schema}
        self.declared_secrets |= declared_secrets(opts, cls.options_schema)
        self.declared_secrets |= declared_secrets(opts.get("auth"), cls.auth_schema)
        ok = self.validate(opts, schema, path)
        auth = self.auth(path, opts.get("auth"), cls)
        limit = self.inbound_limit(path, opts.get("rate_limit"), cls)
        if not ok:
            return None
        return SourceConfig(
            name=name,
            plugin=opts["plugin"],
            auth=auth,
            prefix=opts.get("prefix", field_default(SourceConfig, "prefix")),
            paths=opts.get("paths", {}),
            on_invalid=opts.get("on_invalid", cls.default_on_invalid),
            rate_limit=limit,
            options=opts,
        )

    def auth(self, path: Path_, value: Any, cls: Any) -> AuthConfig | None:
        path = (*path, "auth")
        if value == "none" or value is None:
            return None
        if not isinstance(value, dict):
            self.problem(path, "must be 'none' or a mapping with keys (e.g. keys: [${API_KEY}])")
            return None
        schema = {
            "keys": {"type": "list", "minlength": 1, "schema": {"type": "string", "empty": False}},
            "header": {"type": "string", "regex": r"[A-Za-z0-9-]+"},
            **AUTH_STYLE_SCHEMA,
            **cls.auth_schema,
        }
        if not self.validate(value, schema, path):
            return None
        keys = tuple(value.get("keys", ()))
        header = credential_header(cls, value)
        problem = credential_problem(cls, value) if keys else None
        if problem:
            self.problem(path, problem)
        if not keys and not (set(value) & set(cls.auth_schema)):
            self.problem(path, "gives no credential: set keys (or 'auth: none' to accept anyone)")
        extra = {k: v for k, v in value.items() if k not in ("keys", "header", *AUTH_STYLE_SCHEMA)}
        return AuthConfig(keys=keys, header=header.lower() if header else None, options=extra)

    def inbound_limit(self, path: Path_, value: Any, cls: Any) -> InboundLimit | None:
        if not isinstance(value, dict) or "rate" not in value:
            return None
        key = value.get("key", field_default(InboundLimit, "key"))
        known = ("remote_addr", "credential", *cls.rate_limit_keys)
        if isinstance(key, str) and key not in known and not key.startswith("header:"):
            self.problem(
                (*path, "rate_limit", "key"),
                f"unknown key {key!r}; use one of {', '.join(known)} or header:<name>",
            )
        if value.get("backend") == "redis":
            self.needs_redis((*path, "rate_limit", "backend"), "backend: redis")
        rate, burst = value["rate"], value.get("burst")
        # A wrong-typed value was reported by the schema; there is no limit to build.
        if (
            not _is_number(rate)
            or not (burst is None or _is_int(burst))
            or not isinstance(key, str)
        ):
            return None
        rate = float(rate)
        given = {k: value[k] for k in ("unit", "backend", "on_backend_error") if k in value}
        return InboundLimit(
            rate=rate, burst=burst if burst is not None else max(1, round(rate)), key=key, **given
        )

    def needs_redis(self, path: Path_, what: str) -> None:
        """``what`` at ``path`` uses Redis: the top-level ``redis.url`` must be set."""
        redis = as_dict(self.loaded.data.get("redis"))
        if not isinstance(redis.get("url"), str):
            self.problem(
                path, f"{what} needs the top-level redis section: redis: {{url: redis://…}}"
            )

    # -- sinks -----------------------------------------------------------------

    def sink(self, name: str, opts: dict[str, Any]) -> SinkConfig | None:
        path = ("sinks", name)
        cls = self.plugin_class("sink", path, opts)
        if cls is None:
            return None
        self.declared_secrets |= declared_secrets(opts, cls.options_schema)
        if not self.validate(opts, {**SINK_CORE_SCHEMA, **cls.options_schema}, path):
            return None
        merged = merge(merge(SINK_DEFAULTS, cls.delivery_defaults), opts)
        batch = merged["batch"]
        if cls.max_batch_events and batch["max_events"] > cls.max_batch_events:
            if "max_events" in opts.get("batch", {}):
                self.problem(
                    (*path, "batch", "max_events"),
                    f"{opts['plugin']} takes at most {cls.max_batch_events} events per request",
                )
            merged["batch"] = {**batch, "max_events": cls.max_batch_events}
        if merged["buffer"] == "redis":
            self.needs_redis((*path, "buffer"), "buffer: redis")
        limit = opts.get("rate_limit")
        if limit and limit.get("backend") == "redis":
            self.needs_redis((*path, "rate_limit", "backend"), "backend: redis")
        return sink_config(name, merged, opts)

    # -- routes ----------------------------------------------------------------

    def routes(
        self, value: Any, sources: Mapping[str, Any], sinks: Mapping[str, Any]
    ) -> list[RouteConfig]:
        out = []
        for i, route in enumerate(value if isinstance(value, list) else []):
            if not isinstance(route, dict):
                continue
            names = {}
            for key, known, kind in (("from", sources, "source"), ("to", sinks, "sink")):
                given = route.get(key)
                given = [given] if isinstance(given, str) else given
                given = given if isinstance(given, list) else ()
                names[key] = tuple(n for n in given if isinstance(n, str))
                for j, n in enumerate(names[key]):
                    if n not in known:
                        where = (
                            ("routes", i, key)
                            if isinstance(route[key], str)
                            else ("routes", i, key, j)
                        )
                        self.problem(where, f"no {kind} named {n!r}")
            flt = as_dict(route.get("filter"))
            types = flt.get("types")
            types = [t for t in types if isinstance(t, str)] if isinstance(types, list) else None
            out.append(
                RouteConfig(
                    names["from"],
                    names["to"],
                    frozenset(types) if types else None,
                    as_dict(flt.get("match")),
                )
            )
        return out

    def check_paths(self, sources: Mapping[str, SourceConfig | None]) -> None:
        seen: dict[tuple[str, str], str] = {}
        for name, source in sources.items():
            if source is None:
                continue
            cls = self.registry.sources[source.plugin]
            known = {route.name for route in cls.routes}
            for route_name in source.paths:
                if route_name not in known:
                    self.problem(
                        ("sources", name, "paths", route_name),
                        f"{source.plugin} has no route named {route_name!r} "
                        f"(routes: {', '.join(sorted(known))})",
                    )
            for route in cls.routes:
                full = source.prefix + source.paths.get(route.name, route.path)
                other = seen.setdefault((route.method, full), name)
                if other != name:
                    self.problem(
                        ("sources", name),
                        f"{route.method} {full} is also served by source {other!r}; "
                        "give one of them a prefix",
                    )

    def check_required_plugins(self, doc: Mapping[str, Any]) -> None:
        plugins = as_dict(doc.get("plugins"))
        required = plugins.get("require")
        for i, requirement in enumerate(required if isinstance(required, list) else ()):
            if not isinstance(requirement, str):
                continue
            problem = self.registry.check_requirement(requirement)
            if problem:
                self.problem(("plugins", "require", i), problem)


def _leaf_errors(errors: Any) -> Iterator[cerberus.errors.ValidationError]:
    for error in errors:
        if error.is_group_error:
            yield from _leaf_errors(error.child_errors)
        else:
            yield error


def _under(path: Path_, roots: set[Path_]) -> Path_ | None:
    """The path of ``roots`` that ``path`` is at or under, if any."""
    for root in roots:
        if path[: len(root)] == root:
            return root
    return None


def _without(doc: Any, paths: set[Path_]) -> Any:
    """A copy of ``doc`` without the mapping keys at ``paths``."""
    out = copy.deepcopy(doc)
    for path in paths:
        parent = out
        for key in path[:-1]:
            parent = parent[key]
        if isinstance(parent, dict):
            parent.pop(path[-1], None)
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _dedupe(problems: list[ConfigProblem]) -> list[ConfigProblem]:
    seen, out = set(), []
    for p in problems:
        if p not in seen:
            seen.add(p)
            out.append(p)
    return sorted(out, key=lambda p: (p.line or 0, p.key))
