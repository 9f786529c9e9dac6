"""Typed settings from validated config sections, with the defaults of the dataclasses.

Called by :mod:`router.config.check` once a section passed its schema, so
every value here has the type the schema allows.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from router.config.schema import SERVER_DEFAULTS
from router.config.settings import (
    BatchConfig,
    OutboundLimit,
    RedisConfig,
    RetryConfig,
    ServerConfig,
    SinkConfig,
    SpoolConfig,
)
from router.config.units import parse_duration, parse_size

__all__ = ["as_dict", "merge", "redis_config", "server_config", "sink_config"]


def server_config(given: Mapping[str, Any]) -> ServerConfig:
    server = {**SERVER_DEFAULTS, **given}
    return ServerConfig(
        bind=server["bind"],
        workers=server["workers"],
        delivery=server["delivery"],
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
    )


def sink_config(name: str, merged: Mapping[str, Any], opts: dict[str, Any]) -> SinkConfig:
    """A sink's settings from its options on top of the defaults (``merged``), as validated."""
    batch, retry, spool = merged["batch"], merged["retry"], merged["spool"]
    limit = opts.get("rate_limit")
    return SinkConfig(
        name=name,
        plugin=opts["plugin"],
        batch=BatchConfig(
            batch["max_events"], parse_size(batch["max_bytes"]), parse_duration(batch["max_wait"])
        ),
        max_concurrency=merged["max_concurrency"],
        timeout=parse_duration(merged["timeout"]),
        retry=RetryConfig(
            retry["max_attempts"],
            parse_duration(retry["max_age"]),
            parse_duration(retry["initial_backoff"]),
            parse_duration(retry["max_backoff"]),
        ),
        rate_limit=OutboundLimit(**limit) if limit else None,
        buffer=merged["buffer"],
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


def redis_config(value: Any) -> RedisConfig | None:
    if not isinstance(value, dict):
        return None
    reconnect = as_dict(value.get("reconnect"))
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


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``, one level of nested dicts deep."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out
