"""The core schemas, the config's own cerberus rules, and the defaults dicts."""

from __future__ import annotations

import dataclasses

import pytest

from router.config.schema import (
    SERVER_DEFAULTS,
    SERVER_SCHEMA,
    SINK_CORE_SCHEMA,
    SINK_DEFAULTS,
    ConfigValidator,
)
from router.config.settings import ServerConfig, SinkConfig, field_default


def test_server_defaults_are_the_server_config_defaults():
    assert set(SERVER_DEFAULTS) == set(SERVER_SCHEMA)
    for f in dataclasses.fields(ServerConfig):
        default = getattr(ServerConfig(), f.name)
        assert SERVER_DEFAULTS[f.name] == (str(default) if f.name == "data_dir" else default)


def test_sink_defaults_are_the_sink_config_defaults():
    assert set(SINK_DEFAULTS) <= set(SINK_CORE_SCHEMA)
    for key, value in SINK_DEFAULTS.items():
        default = field_default(SinkConfig, key)
        expected = dataclasses.asdict(default) if dataclasses.is_dataclass(default) else default
        assert value == expected, key


@pytest.mark.parametrize(
    ("rule", "value", "message"),
    [
        ("duration", "soon", "must be a duration such as 2.5, 500ms, 30s, 5m or 1h"),
        ("timeout", 0, "must be longer than 0 s"),
        ("size", "big", "must be a size such as 1048576, 512KiB or 1MiB"),
        ("positive_size", 0, "must be a size of at least 1 byte, such as 16MiB"),
        ("bind", "nowhere", "is not HOST:PORT"),
    ],
)
def test_the_config_rules(rule, value, message):
    validator = ConfigValidator({"x": {"check_with": rule}})
    assert not validator.validate({"x": value})
    assert message in validator.errors["x"][0]


@pytest.mark.parametrize(
    ("rule", "value"),
    [("duration", "30s"), ("timeout", "500ms"), ("size", "1MiB"), ("bind", "[::1]:80")],
)
def test_the_config_rules_accept_valid_values(rule, value):
    assert ConfigValidator({"x": {"check_with": rule}}).validate({"x": value})
