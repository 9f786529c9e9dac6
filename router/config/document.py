"""The settings back as a config document: what ``router config`` prints.

Built from the typed settings, so every default is filled in and every value
is the one the daemon uses (durations in seconds, sizes in bytes), then
redacted with the same :class:`router.log.Redactor` and the same secrets as
the logs. The document, saved and loaded again, gives the same settings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from router.config.secrets import redact_url
from router.config.settings import (
    AuthConfig,
    RedisConfig,
    RouteConfig,
    RouterConfig,
    ServerConfig,
    SinkConfig,
    SourceConfig,
)
from router.log import REDACTED, Redactor

__all__ = ["config_document", "dump_config"]

#: Source options the document writes from typed fields rather than as written.
_SOURCE_FIELDS = frozenset({"plugin", "auth", "prefix", "paths", "on_invalid", "rate_limit"})
_SINK_FIELDS = frozenset(
    {
        "plugin",
        "batch",
        "max_concurrency",
        "max_inflight_bytes",
        "timeout",
        "retry",
        "rate_limit",
        "buffer",
        "spool",
        "dedup",
        "failing_after",
    }
)


def config_document(config: RouterConfig) -> dict[str, Any]:
    """``config`` as plain data (dicts, lists, scalars), every secret redacted."""
    doc: dict[str, Any] = {
        "server": _server(config.server),
        "logging": dataclasses.asdict(config.logging),
        "sources": {name: _source(source) for name, source in config.sources.items()},
        "sinks": {name: _sink(sink) for name, sink in config.sinks.items()},
        "routes": [_route(route) for route in config.routes],
        "plugins": _plain(config.plugins),
    }
    if config.redis is not None:
        doc["redis"] = _redis(config.redis)
    doc["admin"] = dataclasses.asdict(config.admin)
    return _Redact(config.secrets).value(doc)


def dump_config(config: RouterConfig) -> str:
    """:func:`config_document` as YAML, headed by a comment naming the file."""
    body = yaml.safe_dump(
        config_document(config), sort_keys=False, allow_unicode=True, default_flow_style=False
    )
    return f"# {config.file}: the effective config (defaults filled in, secrets redacted)\n{body}"


def _server(server: ServerConfig) -> dict[str, Any]:
    return _plain(dataclasses.asdict(server))


def _source(source: SourceConfig) -> dict[str, Any]:
    doc: dict[str, Any] = {"plugin": source.plugin}
    doc.update((k, _plain(v)) for k, v in source.options.items() if k not in _SOURCE_FIELDS)
    doc["auth"] = _auth(source.auth)
    doc["prefix"] = source.prefix
    doc["paths"] = dict(source.paths)
    doc["on_invalid"] = source.on_invalid
    if source.rate_limit is not None:
        doc["rate_limit"] = dataclasses.asdict(source.rate_limit)
    return doc


def _auth(auth: AuthConfig | None) -> Any:
    if auth is None:
        return "none"
    doc: dict[str, Any] = {}
    if auth.keys:
        doc["keys"] = list(auth.keys)
    if auth.header:
        doc["header"] = auth.header
    doc.update((k, _plain(v)) for k, v in auth.options.items())
    return doc


def _sink(sink: SinkConfig) -> dict[str, Any]:
    doc: dict[str, Any] = {"plugin": sink.plugin}
    doc.update((k, _plain(v)) for k, v in sink.options.items() if k not in _SINK_FIELDS)
    doc.update(
        batch=dataclasses.asdict(sink.batch),
        max_concurrency=sink.max_concurrency,
        max_inflight_bytes=sink.max_inflight_bytes,
        timeout=sink.timeout,
        retry=dataclasses.asdict(sink.retry),
        buffer=sink.buffer,
        spool=dataclasses.asdict(sink.spool),
        failing_after=sink.failing_after,
    )
    if sink.rate_limit is not None:
        limit = dataclasses.asdict(sink.rate_limit)
        doc["rate_limit"] = {k: v for k, v in limit.items() if v is not None}
    if sink.dedup_window is not None:
        doc["dedup"] = {"window": sink.dedup_window}
    return doc


def _route(route: RouteConfig) -> dict[str, Any]:
    doc: dict[str, Any] = {"from": list(route.sources), "to": list(route.sinks)}
    flt: dict[str, Any] = {}
    if route.types is not None:
        flt["types"] = sorted(route.types)
    if route.match:
        flt["match"] = _plain(route.match)
    if flt:
        doc["filter"] = flt
    return doc


def _redis(redis: RedisConfig) -> dict[str, Any]:
    doc = dataclasses.asdict(redis)
    doc["reconnect"] = {
        "initial_backoff": doc.pop("reconnect_initial_backoff"),
        "max_backoff": doc.pop("reconnect_max_backoff"),
    }
    # ``None`` means "not set" here (a computed consumer name, no cap): left out.
    return {k: v for k, v in doc.items() if v is not None}


def _plain(value: Any) -> Any:
    """``value`` with mappings as dicts, sequences and sets as lists, paths as strings."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(_plain(v) for v in value)
    if isinstance(value, Path):
        return str(value)
    return value


class _Redact:
    """Every secret out of a document: keys, strings, and numbers written as secrets.

    Within text, the log's rule: secrets shorter than ``MIN_SECRET_LENGTH``
    stay. A string that *is* a secret is hidden whatever its length, and a
    URL always loses its password.
    """

    def __init__(self, secrets: frozenset[str]):
        self.secrets = secrets
        self.redactor = Redactor(secrets)

    def value(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {self.value(k): self.value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, str):
            if value in self.secrets:
                return REDACTED
            # Known secrets first: a password with a "/" or "@" confuses URL parsing.
            value = self.redactor.redact(value)
            return redact_url(value) if "://" in value else value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return REDACTED if str(value) in self.redactor.secrets else value
        return value
