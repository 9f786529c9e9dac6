"""The daemon's configuration: one YAML file, checked completely before anything starts.

One idea per module: :mod:`~router.config.units` (durations, sizes, binds),
:mod:`~router.config.settings` (the typed settings and every default),
:mod:`~router.config.schema` (the core's cerberus schemas),
:mod:`~router.config.load` (reading the file), :mod:`~router.config.check`
(document to settings, every problem with file and line),
:mod:`~router.config.build` (settings from validated sections),
:mod:`~router.config.secrets` (what is a credential) and
:mod:`~router.config.document` (settings back to a document, for ``router
config``). Everything is importable from here.
"""

from __future__ import annotations

from router.config.check import PluginCatalog, load_config
from router.config.document import config_document, dump_config
from router.config.load import DEFAULT_CONFIG, Loaded, blocked_plugins, read_config_file
from router.config.schema import (
    ADMIN_SCHEMA,
    BACKEND,
    BUDGET,
    DURATION,
    INBOUND_LIMIT_SCHEMA,
    LOGGING_SCHEMA,
    MAX_JSON_DEPTH,
    NAME,
    NAMES,
    ON_BACKEND_ERROR,
    ONE_INGEST_PROCESS,
    REDIS_SCHEMA,
    ROUTE_SCHEMA,
    SERVER_DEFAULTS,
    SERVER_SCHEMA,
    SINK_CORE_SCHEMA,
    SINK_DEFAULTS,
    SIZE,
    SOURCE_CORE_SCHEMA,
    TIMEOUT,
    ConfigValidator,
)
from router.config.secrets import SECRET_KEY, config_secrets, redact_url
from router.config.settings import (
    AdminConfig,
    AuthConfig,
    BatchConfig,
    InboundLimit,
    LoggingConfig,
    OutboundLimit,
    RedisConfig,
    RetryConfig,
    RouteConfig,
    RouterConfig,
    ServerConfig,
    SinkConfig,
    SourceConfig,
    SpoolConfig,
    TapConfig,
)
from router.config.units import parse_bind, parse_duration, parse_size

__all__ = [
    "ADMIN_SCHEMA",
    "BACKEND",
    "BUDGET",
    "DEFAULT_CONFIG",
    "DURATION",
    "INBOUND_LIMIT_SCHEMA",
    "LOGGING_SCHEMA",
    "MAX_JSON_DEPTH",
    "NAME",
    "NAMES",
    "ONE_INGEST_PROCESS",
    "ON_BACKEND_ERROR",
    "REDIS_SCHEMA",
    "ROUTE_SCHEMA",
    "SECRET_KEY",
    "SERVER_DEFAULTS",
    "SERVER_SCHEMA",
    "SINK_CORE_SCHEMA",
    "SINK_DEFAULTS",
    "SIZE",
    "SOURCE_CORE_SCHEMA",
    "TIMEOUT",
    "AdminConfig",
    "AuthConfig",
    "BatchConfig",
    "ConfigValidator",
    "InboundLimit",
    "Loaded",
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
    "TapConfig",
    "blocked_plugins",
    "config_document",
    "config_secrets",
    "dump_config",
    "load_config",
    "parse_bind",
    "parse_duration",
    "parse_size",
    "read_config_file",
    "redact_url",
]
