"""The settings dataclasses are the one source of every default."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import pytest
import yaml

from router.config import DEFAULT_CONFIG, load_config
from router.config.settings import (
    InboundLimit,
    LoggingConfig,
    RedisConfig,
    ServerConfig,
    SinkConfig,
    SourceConfig,
    SpoolConfig,
    field_default,
)
from router.pluginmanager import make_plugin_manager
from router.redisqueue import RedisQueue
from router.registry import build_registry
from router.spool import HOT_BYTES, SqliteQueue
from router.yamlsource import load_yaml

MINIMAL = """\
sources: {in: {plugin: sample, auth: none}}
sinks: {out: {plugin: sample, url: "http://127.0.0.1:1"}}
redis: {url: "redis://127.0.0.1"}
routes: [{from: in, to: out}]
"""


def loaded_minimal(sample):
    registry = build_registry(make_plugin_manager(autoload=False, extra=sample))
    return load_config(load_yaml(MINIMAL, "router.yaml", {}), registry)


def test_a_config_that_sets_nothing_gets_the_dataclass_defaults(sample):
    config = loaded_minimal(sample)
    assert config.server == ServerConfig()
    assert config.logging == LoggingConfig()
    sink = config.sinks["out"]
    assert dataclasses.replace(sink, options={}) == SinkConfig("out", "sample")
    source = config.sources["in"]
    assert dataclasses.replace(source, options={}) == SourceConfig("in", "sample", None)
    assert config.redis == RedisConfig("redis://127.0.0.1")


def test_a_rate_limit_that_sets_only_the_rate_gets_the_dataclass_defaults(sample):
    text = MINIMAL.replace("auth: none}", "auth: none, rate_limit: {rate: 5}}")
    registry = build_registry(make_plugin_manager(autoload=False, extra=sample))
    config = load_config(load_yaml(text, "router.yaml", {}), registry)
    assert config.sources["in"].rate_limit == InboundLimit(rate=5.0, burst=5)


@pytest.mark.parametrize("queue", [SqliteQueue, RedisQueue])
def test_queue_constructors_take_their_defaults_from_spool_config(queue):
    """The very objects, not equal numbers: restating ``1_000_000`` in the queue fails this."""
    parameters = inspect.signature(queue.__init__).parameters
    defaults = SpoolConfig()
    assert parameters["max_events"].default is defaults.max_events
    assert parameters["max_bytes"].default is defaults.max_bytes


def test_the_spool_memory_default_is_spool_config_memory_bytes():
    assert HOT_BYTES is SpoolConfig().memory_bytes
    assert inspect.signature(SqliteQueue.__init__).parameters["memory_bytes"].default is HOT_BYTES


def test_the_default_config_states_only_the_defaults_for_server_and_logging():
    """``router/default.yaml`` spells some defaults out for readers; they must not drift."""
    doc = yaml.safe_load(Path(DEFAULT_CONFIG).read_text())
    config = load_config(
        load_yaml(Path(DEFAULT_CONFIG).read_text(), DEFAULT_CONFIG, {}),
        build_registry(make_plugin_manager(autoload=False)),
    )
    assert set(doc["server"]) <= {f.name for f in dataclasses.fields(ServerConfig)}
    assert config.server == ServerConfig()
    assert config.logging == LoggingConfig()


def test_field_default():
    assert field_default(InboundLimit, "key") == "remote_addr"
    assert field_default(SinkConfig, "options") == {}
    with pytest.raises(LookupError, match=r"InboundLimit\.rate has no default"):
        field_default(InboundLimit, "rate")
    with pytest.raises(LookupError, match="no field 'nope'"):
        field_default(InboundLimit, "nope")
