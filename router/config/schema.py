"""The core's cerberus schemas, the validator with the config's own rules, and defaults.

Validation never normalizes: the defaults (:data:`SERVER_DEFAULTS`,
:data:`SINK_DEFAULTS`) are applied after it, and both are read from the
settings dataclasses rather than restated.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cerberus

from router.config.settings import (
    BatchConfig,
    RetryConfig,
    ServerConfig,
    SinkConfig,
    SpoolConfig,
    field_default,
)
from router.config.units import parse_bind, parse_duration, parse_size

__all__ = [
    "ADMIN_SCHEMA",
    "BACKEND",
    "BUDGET",
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
    "SERVER_DEFAULTS",
    "SERVER_SCHEMA",
    "SINK_CORE_SCHEMA",
    "SINK_DEFAULTS",
    "SIZE",
    "SOURCE_CORE_SCHEMA",
    "TIMEOUT",
    "ConfigValidator",
    "delivery_problem",
]

_DURATION_HINT = "must be a duration such as 2.5, 500ms, 30s, 5m or 1h"
_SIZE_HINT = "must be a size such as 1048576, 512KiB or 1MiB"


class ConfigValidator(cerberus.Validator):
    """Cerberus with the config's own checks: ``duration``, ``size`` and ``bind``."""

    def _check_with_bind(self, field: str, value: Any) -> None:
        if not isinstance(value, str):
            return  # the type rule reports it
        try:
            parse_bind(value)
        except ValueError as exc:
            self._error(field, str(exc))

    def _check_with_admin_bind(self, field: str, value: Any) -> None:
        if value == "off" or (isinstance(value, str) and value.startswith("unix:")):
            return
        self._check_with_bind(field, value)

    def _check_with_duration(self, field: str, value: Any) -> None:
        try:
            parse_duration(value)
        except ValueError:
            self._error(field, _DURATION_HINT)

    def _check_with_timeout(self, field: str, value: Any) -> None:
        try:
            seconds = parse_duration(value)
        except ValueError:
            self._error(field, _DURATION_HINT)
            return
        if seconds <= 0:
            self._error(field, "must be longer than 0 s")

    def _check_with_size(self, field: str, value: Any) -> None:
        try:
            parse_size(value)
        except ValueError:
            self._error(field, _SIZE_HINT)

    def _check_with_positive_size(self, field: str, value: Any) -> None:
        try:
            size = parse_size(value)
        except ValueError:
            self._error(field, _SIZE_HINT)
            return
        if size < 1:
            self._error(field, "must be a size of at least 1 byte, such as 16MiB")


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

#: Why ``server.delivery: process`` with ``server.workers > 1`` is refused.
ONE_INGEST_PROCESS = (
    "'process' runs one ingest process: set server.workers to 1 (or drop --workers), "
    "or server.delivery to 'inline'"
)


def delivery_problem(server: Mapping[str, Any]) -> str | None:
    """What is wrong with a ``server`` section's ``delivery`` beside its ``workers``
    (as written, or as ``router run --workers`` makes it)."""
    workers = server.get("workers")
    many = isinstance(workers, int) and not isinstance(workers, bool) and workers > 1
    return ONE_INGEST_PROCESS if server.get("delivery") == "process" and many else None


SERVER_SCHEMA = {
    "bind": {"type": "string", "check_with": "bind"},
    "workers": {"type": "integer", "min": 1, "max": 64},
    "delivery": {"type": "string", "allowed": ["inline", "process"]},
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

ADMIN_SCHEMA = {
    "bind": {"type": "string", "check_with": "admin_bind"},
    "token": {"type": "string", "empty": False, "nullable": True},
    "tap": {
        "type": "dict",
        "schema": {
            "mask": {
                "type": "list",
                "schema": {"type": "string", "regex": r"[A-Za-z0-9_$@-]+(\.[A-Za-z0-9_$@-]+)*"},
            },
        },
    },
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


def _as_written(value: Any) -> Any:
    return str(value) if isinstance(value, Path) else value


#: ``server:`` keys a config leaves out get these (``ServerConfig``'s defaults).
SERVER_DEFAULTS: dict[str, Any] = {
    f.name: _as_written(getattr(ServerConfig(), f.name)) for f in dataclasses.fields(ServerConfig)
}
#: A sink's core options a config leaves out (``SinkConfig``'s defaults), before
#: the plugin's ``Sink.delivery_defaults``. Only the options that always have a value.
SINK_DEFAULTS: dict[str, Any] = {
    "batch": dataclasses.asdict(BatchConfig()),
    "max_concurrency": field_default(SinkConfig, "max_concurrency"),
    "max_inflight_bytes": field_default(SinkConfig, "max_inflight_bytes"),
    "timeout": field_default(SinkConfig, "timeout"),
    "retry": dataclasses.asdict(RetryConfig()),
    "buffer": field_default(SinkConfig, "buffer"),
    "spool": dataclasses.asdict(SpoolConfig()),
    "failing_after": field_default(SinkConfig, "failing_after"),
}
