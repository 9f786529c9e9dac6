"""The daemon's configuration: one YAML file, checked completely before anything starts.

The schema is the core's part (``server``, ``logging``, ``routes``, the core
options of every source and sink) plus each plugin's part: the
``options_schema`` of its Source and Sink classes and the schema it returns
from ``router_config_schema``. Unknown keys are errors. Every problem is
reported at once as ``FILE:LINE: key.path: message``.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

import cerberus

from router.errors import ConfigError, ConfigProblem
from router.log import REDACTED, Redactor
from router.source import AUTH_STYLE_SCHEMA, credential_header, credential_problem
from router.validation import flatten_errors
from router.yamlsource import Loaded, dotted, load_yaml

if TYPE_CHECKING:
    from router.sink import Sink
    from router.source import Source

__all__ = [
    "DEFAULT_CONFIG",
    "AuthConfig",
    "BatchConfig",
    "InboundLimit",
    "LoggingConfig",
    "OutboundLimit",
    "PluginCatalog",
    "RedisConfig",
    "RetryConfig",
    "RouteConfig",
    "RouterConfig",
    "ServerConfig",
    "SinkConfig",
    "SourceConfig",
    "SpoolConfig",
    "load_config",
    "parse_bind",
    "parse_duration",
    "parse_size",
    "read_config_file",
]


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


#: The config ``router run`` uses without ``-c`` (``config/router.yaml`` is a copy).
DEFAULT_CONFIG = str(importlib.resources.files("router").joinpath("default.yaml"))

# --------------------------------------------------------------------------
# Units
# --------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600, "d": 86400}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|KiB|MB|MiB|GB|GiB)?\s*$")
_SIZE_UNITS = {
    None: 1,
    "B": 1,
    "KB": 10**3,
    "KiB": 2**10,
    "MB": 10**6,
    "MiB": 2**20,
    "GB": 10**9,
    "GiB": 2**30,
}


def parse_duration(value: Any) -> float:
    """Seconds from ``2.5``, ``"500ms"``, ``"30s"``, ``"5m"``, ``"1h"`` or ``"1d"``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"not a duration: {value!r} (use e.g. 2.5, 500ms, 30s, 5m, 1h)")
    return float(match.group(1)) * _DURATION_UNITS[match.group(2)]


def parse_size(value: Any) -> int:
    """Bytes from ``1048576``, ``"512KiB"``, ``"1MiB"``, ``"2GB"``…"""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"not a size: {value!r} (use e.g. 1048576, 512KiB, 1MiB, 2GB)")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2)])


_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$"
)


def parse_bind(value: str) -> tuple[str, int]:
    """``(host, port)`` from ``HOST:PORT``: an IPv4 address, a host name or ``[IPv6]``.

    :raises ValueError: saying what a valid address looks like.
    """
    host, sep, port = value.rpartition(":")
    if not sep or not host:
        raise ValueError(f"{value!r} is not HOST:PORT (e.g. 127.0.0.1:8080 or [::1]:8080)")
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"port {port!r} of {value!r} is not a number from 0 to 65535")
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ValueError(f"{host} in {value!r} is not an IPv6 address") from None
        return host[1:-1], int(port)
    if ":" in host:
        raise ValueError(f"write an IPv6 address in brackets: [{host}]:{port}")
    if not _HOSTNAME.match(host):
        raise ValueError(f"{host!r} in {value!r} is not an IP address or host name")
    return host, int(port)


class ConfigValidator(cerberus.Validator):
    """Cerberus with the config's own checks: ``duration``, ``size`` and ``bind``."""

    def _check_with_bind(self, field: str, value: Any) -> None:
        if not isinstance(value, str):
            return  # the type rule reports it
        try:
            parse_bind(value)
        except ValueError as exc:
            self._error(field, str(exc))

    def _check_with_duration(self, field: str, value: Any) -> None:
        try:
            parse_duration(value)
        except ValueError:
            self._error(field, "must be a duration such as 2.5, 500ms, 30s, 5m or 1h")

    def _check_with_timeout(self, field: str, value: Any) -> None:
        try:
            seconds = parse_duration(value)
        except ValueError:
            self._error(field, "must be a duration such as 2.5, 500ms, 30s, 5m or 1h")
            return
        if seconds <= 0:
            self._error(field, "must be longer than 0 s")

    def _check_with_size(self, field: str, value: Any) -> None:
        try:
            parse_size(value)
        except ValueError:
            self._error(field, "must be a size such as 1048576, 512KiB or 1MiB")

    def _check_with_positive_size(self, field: str, value: Any) -> None:
        try:
            size = parse_size(value)
        except ValueError:
            self._error(field, "must be a size such as 1048576, 512KiB or 1MiB")
            return
        if size < 1:
            self._error(field, "must be a size of at least 1 byte, such as 16MiB")


# --------------------------------------------------------------------------
# The core schema
# --------------------------------------------------------------------------

DURATION = {"type": ["number", "string"], "check_with": "duration"}
TIMEOUT = {"type": ["number", "string"], "check_with": "timeout"}
SIZE = {"type": ["integer", "string"], "check_with": "size"}
#: A memory budget: zero would admit nothing.
BUDGET = {"type": ["integer", "string"], "check_with": "positive_size"}
NAME = {"type": "string", "regex": r"[A-Za-z0-9][A-Za-z0-9_.-]*"}
NAMES = {"type": ["string", "list"], "schema": NAME}

#: The highest ``server.max_json_depth``: orjson serializes at most 255 levels
#: and codecs recurse, so deeper documents could only fail later, with a 500.
MAX_JSON_DEPTH = 128

SERVER_SCHEMA = {
    "bind": {"type": "string", "check_with": "bind"},
    "workers": {"type": "integer", "min": 1, "max": 64},
    "max_body_bytes": SIZE,
    "max_inflight_bytes": BUDGET,
    "shutdown_timeout": DURATION,
    "data_dir": {"type": "string", "empty": False},
    "access_log": {"type": "boolean"},
    "max_json_depth": {"type": "integer", "min": 2, "max": MAX_JSON_DEPTH},
    "max_header_bytes": SIZE,
    "max_connections": {"type": "integer", "min": 1},
    "keepalive_timeout": TIMEOUT,
    "body_timeout": TIMEOUT,
}

LOGGING_SCHEMA = {
    "level": {"type": "string", "allowed": ["debug", "info", "warning", "error"]},
    "format": {"type": "string", "allowed": ["auto", "json", "console"]},
}

BACKEND = {"type": "string", "allowed": ["memory", "redis"]}
ON_BACKEND_ERROR = {"type": "string", "allowed": ["fail_open", "fail_closed"]}

INBOUND_LIMIT_SCHEMA = {
    "rate": {"type": "number", "min": 0, "required": True},
    "burst": {"type": "integer", "min": 1},
    "key": {"type": "string", "empty": False},
    "unit": {"type": "string", "allowed": ["requests", "events"]},
    "backend": BACKEND,
    "on_backend_error": ON_BACKEND_ERROR,
}

SOURCE_CORE_SCHEMA = {
    "plugin": {"type": "string", "required": True},
    "auth": {"type": ["string", "dict"], "required": True},
    "prefix": {"type": "string", "regex": r"(/[A-Za-z0-9._~-]+)*"},
    "paths": {
        "type": "dict",
        "keysrules": {"type": "string"},
        "valuesrules": {"type": "string", "regex": r"/.*"},
    },
    "on_invalid": {"type": "string", "allowed": ["reject", "quarantine"]},
    "rate_limit": {"type": "dict", "schema": INBOUND_LIMIT_SCHEMA},
}

SINK_CORE_SCHEMA = {
    "plugin": {"type": "string", "required": True},
    "batch": {
        "type": "dict",
        "schema": {
            "max_events": {"type": "integer", "min": 1},
            "max_bytes": SIZE,
            "max_wait": DURATION,
        },
    },
    "max_concurrency": {"type": "integer", "min": 1, "max": 1024},
    "max_inflight_bytes": BUDGET,
    "timeout": DURATION,
    "retry": {
        "type": "dict",
        "schema": {
            "max_attempts": {"type": "integer", "min": 1},
            "max_age": DURATION,
            "initial_backoff": DURATION,
            "max_backoff": DURATION,
        },
    },
    "rate_limit": {
        "type": "dict",
        "schema": {
            "requests_per_second": {"type": "number", "min": 0},
            "events_per_second": {"type": "number", "min": 0},
            "backend": BACKEND,
            "on_backend_error": ON_BACKEND_ERROR,
        },
    },
    "buffer": {"type": "string", "allowed": ["disk", "memory", "redis"]},
    "spool": {
        "type": "dict",
        "schema": {
            "max_events": {"type": "integer", "min": 1},
            "max_bytes": SIZE,
            "memory_bytes": BUDGET,
            "when_full": {"type": "string", "allowed": ["block", "drop_newest"]},
        },
    },
    "dedup": {"type": "dict", "schema": {"window": {**DURATION, "required": True}}},
    "failing_after": DURATION,
    # Every sink takes it; a plugin's options_schema may narrow the values.
    "type_map": {
        "type": "dict",
        "keysrules": {"type": "string", "empty": False},
        "valuesrules": {"type": "string", "empty": False},
    },
}

ROUTE_SCHEMA = {
    "from": {**NAMES, "required": True},
    "to": {**NAMES, "required": True},
    "filter": {
        "type": "dict",
        "schema": {
            "types": {"type": "list", "schema": {"type": "string"}},
            "match": {"type": "dict", "keysrules": {"type": "string"}},
        },
    },
}

REDIS_SCHEMA = {
    "url": {
        "type": "string",
        "required": True,
        "regex": r"(rediss?://|redis\+sentinel://|redis\+cluster://).+",
    },
    "prefix": {"type": "string", "regex": r"[A-Za-z0-9][A-Za-z0-9_.-]*"},
    "consumer": {"type": "string", "regex": r"[A-Za-z0-9][A-Za-z0-9_.:-]*"},
    "claim_idle": DURATION,
    "connect_timeout": DURATION,
    "command_timeout": DURATION,
    "refresh_interval": DURATION,
    "reconnect": {
        "type": "dict",
        "schema": {"initial_backoff": DURATION, "max_backoff": DURATION},
    },
    "dead_letters_max": {"type": "integer", "min": 1},
    "max_connections": {"type": "integer", "min": 2, "max": 10_000},
}

# Defaults, applied after validation (validation itself never normalizes).
SERVER_DEFAULTS = {
    "bind": "127.0.0.1:8080",
    "workers": 1,
    "max_body_bytes": 1 << 20,
    # Request bodies being read or processed at once, per process (docs/delivery.md).
    "max_inflight_bytes": 16 << 20,
    "shutdown_timeout": 10.0,
    "data_dir": "./data",
    "access_log": False,
    "max_json_depth": 64,
    "max_header_bytes": 16 * 1024,
    "max_connections": 1000,
    "keepalive_timeout": 5.0,
    "body_timeout": 10.0,
}
SINK_DEFAULTS: dict[str, Any] = {
    "batch": {"max_events": 100, "max_bytes": 1 << 20, "max_wait": 0.2},
    "max_concurrency": 4,
    # Bytes of batches a sink has taken from its queue at once, across max_concurrency.
    "max_inflight_bytes": 16 << 20,
    "timeout": 10.0,
    "retry": {"max_attempts": 20, "max_age": 86400.0, "initial_backoff": 0.2, "max_backoff": 60.0},
    "buffer": "disk",
    "spool": {
        "max_events": 1_000_000,
        "max_bytes": 1 << 30,
        # Pending events a durable queue keeps in memory: hot window, or one page in.
        "memory_bytes": 16 << 20,
        "when_full": "block",
    },
    "failing_after": 60.0,
}

#: Option names whose values are credentials: never logged. A plugin marks
#: other options as credentials in its schemas with ``"meta": {"secret": True}``.
SECRET_KEY = re.compile(
    r"(?i)(api_?key|authkey|auth_?token|(access|private|secret|signing)_?key|keys|tokens?"
    r"|secrets?|password|passwd|credentials?|client_ids)$"
)

# --------------------------------------------------------------------------
# The validated config
# --------------------------------------------------------------------------


def redact_url(url: str) -> str:
    """``url`` with the password of its userinfo replaced by ``[redacted]``."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return url
    return url.replace(f":{password}@", f":{REDACTED}@", 1) if password else url


class _SafeRepr:
    """A dataclass ``repr`` that hides credentials: a config object may end up in a log.

    Fields named in ``_hidden`` (credentials, and option maps that hold them)
    show as ``[redacted]``; ``url`` fields lose their password.
    """

    __slots__ = ()
    _hidden: ClassVar[frozenset[str]] = frozenset()

    def __repr__(self) -> str:
        parts = []
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            if not f.repr:
                continue
            value = getattr(self, f.name)
            if f.name in self._hidden and value:
                shown = REDACTED
            elif f.name == "url" and isinstance(value, str):
                shown = repr(redact_url(value))
            else:
                shown = repr(value)
            parts.append(f"{f.name}={shown}")
        return f"{type(self).__name__}({', '.join(parts)})"


@dataclass(frozen=True, slots=True)
class ServerConfig:
    bind: str
    workers: int
    max_body_bytes: int
    shutdown_timeout: float
    data_dir: Path
    access_log: bool
    max_inflight_bytes: int = 16 << 20
    #: Deepest nesting of arrays and objects a client's JSON body may have (400 beyond).
    max_json_depth: int = 64
    #: Request line plus headers, at most (431 beyond).
    max_header_bytes: int = 16 * 1024
    #: Open client connections at most; more wait in the listen backlog.
    max_connections: int = 1000
    #: Seconds a connection may go without a complete request head (idle or slow headers).
    keepalive_timeout: float = 5.0
    #: Seconds a request's whole body may take to arrive after its head (408 beyond).
    body_timeout: float = 10.0


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    level: str = "info"
    format: str = "auto"


@dataclass(frozen=True, slots=True, repr=False)
class AuthConfig(_SafeRepr):
    """A source's ``auth`` option. ``keys`` are compared with the ``header``'s value."""

    _hidden = frozenset({"keys", "options"})

    keys: tuple[str, ...]
    header: str | None
    options: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class InboundLimit:
    """``rate`` per second with ``burst``, per value of ``key``, counting ``unit``."""

    rate: float
    burst: int
    key: str
    unit: str
    backend: str
    on_backend_error: str


@dataclass(frozen=True, slots=True, repr=False)
class SourceConfig(_SafeRepr):
    _hidden = frozenset({"options"})

    name: str
    plugin: str
    auth: AuthConfig | None
    prefix: str
    paths: Mapping[str, str]
    on_invalid: str
    rate_limit: InboundLimit | None
    #: Every option of the source, core and plugin ones, as written.
    options: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class BatchConfig:
    max_events: int
    max_bytes: int
    max_wait: float


@dataclass(frozen=True, slots=True)
class RetryConfig:
    max_attempts: int
    max_age: float
    initial_backoff: float
    max_backoff: float


@dataclass(frozen=True, slots=True)
class SpoolConfig:
    max_events: int
    max_bytes: int
    when_full: str
    memory_bytes: int = 16 << 20


@dataclass(frozen=True, slots=True)
class OutboundLimit:
    requests_per_second: float | None
    events_per_second: float | None
    backend: str
    on_backend_error: str


@dataclass(frozen=True, slots=True, repr=False)
class SinkConfig(_SafeRepr):
    _hidden = frozenset({"options"})

    name: str
    plugin: str
    batch: BatchConfig
    max_concurrency: int
    timeout: float
    retry: RetryConfig
    rate_limit: OutboundLimit | None
    buffer: str
    spool: SpoolConfig
    dedup_window: float | None
    failing_after: float
    options: Mapping[str, Any]
    max_inflight_bytes: int = 16 << 20


@dataclass(frozen=True, slots=True, repr=False)
class RedisConfig(_SafeRepr):
    """The top-level ``redis`` section, shared by every Redis feature (see docs/scaling.md)."""

    #: ``redis://``/``rediss://`` (one node), ``redis+sentinel://h:p[,h:p]/service``,
    #: ``redis+cluster://h:p[,h:p]``.
    url: str
    #: First part of every key: ``{<prefix>:<sink>}:stream``, ``{<prefix>:rl:<source>}:<key>``.
    prefix: str = "router"
    #: This daemon's consumer name in each sink's group (default: host + data dir).
    consumer: str | None = None
    #: Entries another daemon took and left unacknowledged this long are claimed.
    claim_idle: float = 30.0
    connect_timeout: float = 2.0
    command_timeout: float = 5.0
    #: How often the shared queue length (``full()``, gauges) is read from Redis.
    refresh_interval: float = 0.5
    reconnect_initial_backoff: float = 0.1
    reconnect_max_backoff: float = 5.0
    #: Keep at most about this many dead letters per sink (``None``: all of them).
    dead_letters_max: int | None = None
    max_connections: int = 64


@dataclass(frozen=True, slots=True)
class RouteConfig:
    sources: tuple[str, ...]
    sinks: tuple[str, ...]
    types: frozenset[str] | None
    match: Mapping[str, Any]


@dataclass(frozen=True, repr=False)
class RouterConfig(_SafeRepr):
    """The whole validated config. Built by :func:`load_config`."""

    _hidden = frozenset({"plugins", "secrets"})

    file: str
    server: ServerConfig
    logging: LoggingConfig
    sources: Mapping[str, SourceConfig]
    sinks: Mapping[str, SinkConfig]
    routes: tuple[RouteConfig, ...]
    plugins: Mapping[str, Any]
    #: The shared Redis of ``buffer: redis`` sinks and ``backend: redis`` limits.
    redis: RedisConfig | None = None
    #: Every credential in the config, for log redaction.
    secrets: frozenset[str] = field(default=frozenset(), repr=False)

    def plugin_settings(self, name: str) -> Mapping[str, Any]:
        """The validated ``plugins.<name>`` section (``{}`` if absent)."""
        return self.plugins.get(name) or {}

    def summary(self) -> str:
        return f"{len(self.sources)} sources, {len(self.sinks)} sinks, {len(self.routes)} routes"


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------


def read_config_file(path: str | Path | None, env: Mapping[str, str] | None = None) -> Loaded:
    """Parse a config file (``None``: the default config); raise ConfigError if it is unreadable.

    YAML errors are reported later, with the schema's.
    """
    if path is None:
        text = importlib.resources.files("router").joinpath("default.yaml").read_text("utf-8")
        return load_yaml(text, DEFAULT_CONFIG, env)
    path = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([ConfigProblem(path, None, "", f"cannot read: {exc.strerror}")]) from exc
    return load_yaml(text, path, env)


def blocked_plugins(loaded: Loaded) -> list[str]:
    """``plugins.disable`` read before validation (the plugin manager needs it first)."""
    plugins = loaded.data.get("plugins") if isinstance(loaded.data, dict) else None
    disable = plugins.get("disable") if isinstance(plugins, dict) else None
    return [p for p in disable if isinstance(p, str)] if isinstance(disable, list) else []


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


def config_secrets(loaded: Loaded) -> set[str]:
    """The credentials of a parsed config that can be found without its plugins' schemas.

    Values from ``${VAR}``, of options whose name matches :data:`SECRET_KEY`,
    and the passwords and credential query parameters of URLs.
    """
    return loaded.secrets | _secret_values(loaded.data) | _url_secrets(loaded.data)


class _Checker:
    def __init__(self, loaded: Loaded, registry: PluginCatalog):
        self.loaded = loaded
        self.registry = registry
        self.problems: list[ConfigProblem] = list(loaded.problems)
        #: Values of options that a plugin's schema marks ``"meta": {"secret": True}``.
        self.declared_secrets: set[str] = set()

    def problem(self, path: tuple[Any, ...], message: str) -> None:
        # A value whose ${VAR} is undefined was already reported; its other errors are noise.
        if any(path[: len(bad)] == bad for bad in self.loaded.failed_paths):
            return
        self.problems.append(
            ConfigProblem(self.loaded.file, self.loaded.line(path), dotted(path), message)
        )

    def validate(self, doc: Any, schema: Mapping[str, Any], path: tuple[Any, ...]) -> bool:
        validator = ConfigValidator(schema, allow_unknown=False)
        if validator.validate(doc, normalize=False):
            return True
        for error in flatten_errors(validator.errors):
            self.problem((*path, *error.path), error.message)
        return False

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
        }
        self.validate(doc, top, ())
        plugins = _dict(doc.get("plugins"))
        for name, plugin_schema in self.registry.config_schemas.items():
            self.declared_secrets |= _declared_secrets(plugins.get(name), plugin_schema)
        sources = {
            name: self.source(name, opts)
            for name, opts in _dict(doc.get("sources")).items()
            if isinstance(opts, dict)
        }
        sinks = {
            name: self.sink(name, opts)
            for name, opts in _dict(doc.get("sinks")).items()
            if isinstance(opts, dict)
        }
        routes = self.routes(doc.get("routes"), sources, sinks)
        self.check_paths(sources)
        self.check_required_plugins(doc)
        if self.problems:
            raise ConfigError(_dedupe(self.problems))
        server = {**SERVER_DEFAULTS, **_dict(doc.get("server"))}
        return RouterConfig(
            file=self.loaded.file,
            server=ServerConfig(
                bind=server["bind"],
                workers=server["workers"],
                max_body_bytes=parse_size(server["max_body_bytes"]),
                shutdown_timeout=parse_duration(server["shutdown_timeout"]),
                data_dir=Path(server["data_dir"]),
                access_log=server["access_log"],
                max_inflight_bytes=parse_size(server["max_inflight_bytes"]),
                max_json_depth=server["max_json_depth"],
                max_header_bytes=parse_size(server["max_header_bytes"]),
                max_connections=server["max_connections"],
                keepalive_timeout=parse_duration(server["keepalive_timeout"]),
                body_timeout=parse_duration(server["body_timeout"]),
            ),
            logging=LoggingConfig(**_dict(doc.get("logging"))),
            sources={k: v for k, v in sources.items() if v is not None},
            sinks={k: v for k, v in sinks.items() if v is not None},
            routes=tuple(routes),
            plugins=_dict(doc.get("plugins")),
            redis=_redis_config(doc.get("redis")),
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

    # -- sources ---------------------------------------------------------------

    def source(self, name: str, opts: dict[str, Any]) -> SourceConfig | None:
        path = ("sources", name)
        plugin = opts.get("plugin")
        cls = self.registry.sources.get(plugin) if isinstance(plugin, str) else None
        if cls is None:
            if isinstance(plugin, str):
                self.problem(
                    (*path, "plugin"),
                    f"no source plugin {plugin!r} "
                    f"(available: {', '.join(sorted(self.registry.sources)) or 'none'})",
                )
            elif "plugin" not in opts:
                self.problem((*path, "plugin"), "required field")
            return None
        schema = {**SOURCE_CORE_SCHEMA, **cls.options_schema}
        self.declared_secrets |= _declared_secrets(opts, cls.options_schema)
        self.declared_secrets |= _declared_secrets(opts.get("auth"), cls.auth_schema)
        ok = self.validate(opts, schema, path)
        auth = self.auth(path, opts.get("auth"), cls)
        limit = self.inbound_limit(path, opts.get("rate_limit"), cls)
        if not ok:
            return None
        return SourceConfig(
            name=name,
            plugin=plugin,
            auth=auth,
            prefix=opts.get("prefix", ""),
            paths=opts.get("paths", {}),
            on_invalid=opts.get("on_invalid", cls.default_on_invalid),
            rate_limit=limit,
            options=opts,
        )

    def auth(self, path: tuple[Any, ...], value: Any, cls: Any) -> AuthConfig | None:
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

    def inbound_limit(self, path: tuple[Any, ...], value: Any, cls: Any) -> InboundLimit | None:
        if not isinstance(value, dict) or "rate" not in value:
            return None
        key = value.get("key", "remote_addr")
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
        return InboundLimit(
            rate=rate,
            burst=burst if burst is not None else max(1, round(rate)),
            key=key,
            unit=value.get("unit", "requests"),
            backend=value.get("backend", "memory"),
            on_backend_error=value.get("on_backend_error", "fail_open"),
        )

    def needs_redis(self, path: tuple[Any, ...], what: str) -> None:
        """``what`` at ``path`` uses Redis: the top-level ``redis.url`` must be set."""
        redis = _dict(self.loaded.data.get("redis"))
        if not isinstance(redis.get("url"), str):
            self.problem(
                path, f"{what} needs the top-level redis section: redis: {{url: redis://…}}"
            )

    # -- sinks -----------------------------------------------------------------

    def sink(self, name: str, opts: dict[str, Any]) -> SinkConfig | None:
        path = ("sinks", name)
        plugin = opts.get("plugin")
        cls = self.registry.sinks.get(plugin) if isinstance(plugin, str) else None
        if cls is None:
            if isinstance(plugin, str):
                self.problem(
                    (*path, "plugin"),
                    f"no sink plugin {plugin!r} "
                    f"(available: {', '.join(sorted(self.registry.sinks)) or 'none'})",
                )
            elif "plugin" not in opts:
                self.problem((*path, "plugin"), "required field")
            return None
        self.declared_secrets |= _declared_secrets(opts, cls.options_schema)
        if not self.validate(opts, {**SINK_CORE_SCHEMA, **cls.options_schema}, path):
            return None
        merged = _merge(_merge(SINK_DEFAULTS, cls.delivery_defaults), opts)
        batch = merged["batch"]
        if cls.max_batch_events and batch["max_events"] > cls.max_batch_events:
            if "max_events" in opts.get("batch", {}):
                self.problem(
                    (*path, "batch", "max_events"),
                    f"{plugin} takes at most {cls.max_batch_events} events per request",
                )
            batch = {**batch, "max_events": cls.max_batch_events}
        retry = merged["retry"]
        spool = merged["spool"]
        limit = opts.get("rate_limit")
        buffer = merged["buffer"]
        if buffer == "redis":
            self.needs_redis((*path, "buffer"), "buffer: redis")
        if limit and limit.get("backend") == "redis":
            self.needs_redis((*path, "rate_limit", "backend"), "backend: redis")
        return SinkConfig(
            name=name,
            plugin=plugin,
            batch=BatchConfig(
                batch["max_events"],
                parse_size(batch["max_bytes"]),
                parse_duration(batch["max_wait"]),
            ),
            max_concurrency=merged["max_concurrency"],
            timeout=parse_duration(merged["timeout"]),
            retry=RetryConfig(
                retry["max_attempts"],
                parse_duration(retry["max_age"]),
                parse_duration(retry["initial_backoff"]),
                parse_duration(retry["max_backoff"]),
            ),
            rate_limit=OutboundLimit(
                requests_per_second=limit.get("requests_per_second"),
                events_per_second=limit.get("events_per_second"),
                backend=limit.get("backend", "memory"),
                on_backend_error=limit.get("on_backend_error", "fail_open"),
            )
            if limit
            else None,
            buffer=buffer,
            spool=SpoolConfig(
                spool["max_events"],
                parse_size(spool["max_bytes"]),
                spool["when_full"],
                parse_size(spool["memory_bytes"]),
            ),
            dedup_window=parse_duration(opts["dedup"]["window"]) if "dedup" in opts else None,
            failing_after=parse_duration(merged["failing_after"]),
            options=opts,
            max_inflight_bytes=parse_size(merged["max_inflight_bytes"]),
        )

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
            flt = _dict(route.get("filter"))
            types = flt.get("types")
            types = [t for t in types if isinstance(t, str)] if isinstance(types, list) else None
            out.append(
                RouteConfig(
                    names["from"],
                    names["to"],
                    frozenset(types) if types else None,
                    _dict(flt.get("match")),
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
        plugins = _dict(doc.get("plugins"))
        required = plugins.get("require")
        for i, requirement in enumerate(required if isinstance(required, list) else ()):
            if not isinstance(requirement, str):
                continue
            problem = self.registry.check_requirement(requirement)
            if problem:
                self.problem(("plugins", "require", i), problem)


def _redis_config(value: Any) -> RedisConfig | None:
    if not isinstance(value, dict):
        return None
    reconnect = _dict(value.get("reconnect"))
    durations = {
        key: parse_duration(value[key])
        for key in ("claim_idle", "connect_timeout", "command_timeout", "refresh_interval")
        if key in value
    }
    for key in ("initial_backoff", "max_backoff"):
        if key in reconnect:
            durations[f"reconnect_{key}"] = parse_duration(reconnect[key])
    others = {
        key: value[key]
        for key in ("prefix", "consumer", "dead_letters_max", "max_connections")
        if key in value
    }
    return RedisConfig(url=value["url"], **durations, **others)


def _url_secrets(doc: Any) -> set[str]:
    """Passwords and credential query parameters of every URL in the config (``redis.url``…)."""
    found: set[str] = set()
    for value in _strings(doc):
        if "://" not in value:
            continue
        try:
            url = urlsplit(value.strip())
            password = url.password
        except ValueError:
            continue
        if password:
            found |= {password, unquote(password)}
        found.update(v for k, v in parse_qsl(url.query) if v and SECRET_KEY.search(k))
    return found


def _strings(value: Any) -> list[str]:
    """Every string (and number, as text) in a parsed YAML document."""
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, int | float) and not isinstance(value, bool):
        return [str(value)]
    return []


def _declared_secrets(doc: Any, schema: Mapping[str, Any]) -> set[str]:
    """Values in ``doc`` of the options ``schema`` marks ``"meta": {"secret": True}``."""
    found: set[str] = set()
    if not isinstance(doc, dict):
        return found
    for key, rules in schema.items():
        if key not in doc or not isinstance(rules, Mapping):
            continue
        meta = rules.get("meta")
        if isinstance(meta, Mapping) and meta.get("secret"):
            found.update(_strings(doc[key]))
        elif isinstance(rules.get("schema"), Mapping):
            value = doc[key]
            items = value if isinstance(value, list) else [value]
            for item in items:
                found |= _declared_secrets(item, rules["schema"])
                if isinstance(rules["schema"].get("schema"), Mapping):
                    found |= _declared_secrets(item, rules["schema"]["schema"])
    return found


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``, one level of nested dicts deep."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def _secret_values(doc: Any) -> set[str]:
    found: set[str] = set()

    def walk(value: Any, secret: bool) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, secret or bool(SECRET_KEY.search(str(k))))
        elif isinstance(value, list):
            for v in value:
                walk(v, secret)
        elif secret:
            found.update(_strings(value))

    walk(doc, False)
    return found


def _dedupe(problems: list[ConfigProblem]) -> list[ConfigProblem]:
    seen, out = set(), []
    for p in problems:
        if p not in seen:
            seen.add(p)
            out.append(p)
    return sorted(out, key=lambda p: (p.line or 0, p.key))
