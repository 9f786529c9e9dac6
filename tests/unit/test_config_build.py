"""Typed settings from validated sections."""

from __future__ import annotations

from pathlib import Path

from router.config.build import merge, redis_config, server_config, sink_config
from router.config.schema import SINK_DEFAULTS
from router.config.settings import OutboundLimit, RedisConfig, ServerConfig, SinkConfig


def test_server_config_parses_units_over_the_defaults():
    server = server_config({"max_body_bytes": "2MiB", "shutdown_timeout": "1m", "data_dir": "d"})
    assert server == ServerConfig(max_body_bytes=2 << 20, shutdown_timeout=60.0, data_dir=Path("d"))


def test_sink_config_from_the_defaults_is_the_default_sink():
    opts = {"plugin": "p"}
    assert sink_config("s", merge(SINK_DEFAULTS, opts), opts) == SinkConfig("s", "p", options=opts)


def test_sink_config_parses_what_is_given():
    opts = {
        "plugin": "p",
        "batch": {"max_wait": "50ms"},
        "dedup": {"window": "1h"},
        "rate_limit": {"events_per_second": 5},
    }
    sink = sink_config("s", merge(SINK_DEFAULTS, opts), opts)
    assert sink.batch.max_wait == 0.05 and sink.batch.max_events == 100
    assert sink.dedup_window == 3600.0
    assert sink.rate_limit == OutboundLimit(events_per_second=5)


def test_redis_config_names_the_reconnect_fields():
    redis = redis_config({"url": "redis://h", "reconnect": {"max_backoff": "2s"}, "prefix": "x"})
    assert redis == RedisConfig("redis://h", prefix="x", reconnect_max_backoff=2.0)
    assert redis_config(None) is None


def test_merge_is_one_level_deep():
    base = {"a": {"x": 1, "y": 2}, "b": 1}
    assert merge(base, {"a": {"y": 3}, "c": 4}) == {"a": {"x": 1, "y": 3}, "b": 1, "c": 4}
    assert base == {"a": {"x": 1, "y": 2}, "b": 1}
