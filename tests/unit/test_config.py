"""The ``router.config`` package: what it exports, and the size of its modules."""

from __future__ import annotations

import ast
from pathlib import Path

import router.config

PACKAGE = Path(router.config.__file__).parent

#: Every public name of the single module ``router/config.py`` the package replaced.
FORMER_NAMES = [
    "AuthConfig",
    "BACKEND",
    "BUDGET",
    "BatchConfig",
    "ConfigValidator",
    "DEFAULT_CONFIG",
    "DURATION",
    "INBOUND_LIMIT_SCHEMA",
    "InboundLimit",
    "LOGGING_SCHEMA",
    "LoggingConfig",
    "MAX_JSON_DEPTH",
    "NAME",
    "NAMES",
    "ON_BACKEND_ERROR",
    "OutboundLimit",
    "PluginCatalog",
    "REDIS_SCHEMA",
    "ROUTE_SCHEMA",
    "RedisConfig",
    "RetryConfig",
    "RouteConfig",
    "RouterConfig",
    "SECRET_KEY",
    "SERVER_DEFAULTS",
    "SERVER_SCHEMA",
    "SINK_CORE_SCHEMA",
    "SINK_DEFAULTS",
    "SIZE",
    "SOURCE_CORE_SCHEMA",
    "ServerConfig",
    "SinkConfig",
    "SourceConfig",
    "SpoolConfig",
    "TIMEOUT",
    "blocked_plugins",
    "config_secrets",
    "load_config",
    "parse_bind",
    "parse_duration",
    "parse_size",
    "read_config_file",
    "redact_url",
    "Loaded",
]


def test_every_former_name_is_still_importable_from_router_config():
    missing = [name for name in FORMER_NAMES if not hasattr(router.config, name)]
    assert missing == []
    assert set(FORMER_NAMES) <= set(router.config.__all__)


def test_all_resolves():
    assert all(getattr(router.config, name) is not None for name in router.config.__all__)


def test_modules_are_short_and_so_are_their_functions():
    for path in sorted(PACKAGE.glob("*.py")):
        text = path.read_text()
        assert len(text.splitlines()) < 450, path.name
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                assert length <= 80, f"{path.name}: {node.name} has {length} lines"
