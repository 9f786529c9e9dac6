"""The ``server:`` limits: defaults, and one clear line for each bad value."""

from __future__ import annotations

import pytest

from router.errors import ConfigError
from router.testing.daemon import build_config


def server(**options) -> dict:
    return {
        "server": options,
        "sources": {"in": {"plugin": "conscent", "auth": "none"}},
        "sinks": {"out": {"plugin": "file", "path": "out.ndjson"}},
        "routes": [{"from": "in", "to": "out"}],
    }


def test_defaults():
    config, _ = build_config(server())
    s = config.server
    assert (s.max_json_depth, s.max_header_bytes, s.max_connections) == (64, 16384, 1000)
    assert (s.keepalive_timeout, s.body_timeout) == (5.0, 10.0)


def test_values_are_parsed():
    config, _ = build_config(
        server(max_header_bytes="32KiB", keepalive_timeout="500ms", body_timeout="1m")
    )
    s = config.server
    assert (s.max_header_bytes, s.keepalive_timeout, s.body_timeout) == (32768, 0.5, 60.0)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_json_depth": 500}, "server.max_json_depth: max value is 128"),
        ({"max_json_depth": 1}, "server.max_json_depth: min value is 2"),
        ({"body_timeout": 0}, "server.body_timeout: must be longer than 0 s"),
        ({"keepalive_timeout": "soon"}, "server.keepalive_timeout: must be a duration"),
        ({"max_connections": 0}, "server.max_connections: min value is 1"),
        ({"max_header_bytes": "big"}, "server.max_header_bytes: must be a size"),
    ],
)
def test_bad_values_name_the_key(options, message):
    with pytest.raises(ConfigError) as caught:
        build_config(server(**options))
    assert message in str(caught.value)
