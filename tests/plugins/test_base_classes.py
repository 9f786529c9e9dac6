"""What the base classes give every plugin, built-in or third-party, in a config or a daemon.

``type_map`` as a core sink option, the cap on ``batch.max_events``, one URL
check for every sink. The base classes' own methods are tested in
tests/unit/test_codec.py, test_sink.py and test_source.py.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import trio
from router_plugins.conscent.sink import ConscentSink

from router import Sink, SinkRequest
from router.errors import ConfigError
from router.testing.daemon import running_daemon
from router.testing.upstream import FakeUpstream
from tests.helpers.ndjson import wait_for_lines
from tests.helpers.third_plugin import THIRD

# -- type_map is a core sink option --------------------------------------------------


async def test_a_third_party_sink_takes_type_map_and_its_codec_applies_it(tmp_path):
    """On main, ``type_map`` on a plugin sink that does not declare it is an unknown field."""
    async with FakeUpstream.running() as upstream:
        config = {
            "sources": {"in": {"plugin": "conscent", "auth": "none"}},
            "sinks": {
                "out": {
                    "plugin": "third",
                    "url": upstream.url,
                    "type_map": {"click": "TAP", "*": "OTHER"},
                    "batch": {"max_wait": 0.01},
                }
            },
            "routes": [{"from": "in", "to": "out"}],
        }
        async with running_daemon(config, data_dir=tmp_path / "d", plugins=THIRD) as rd:
            body = {"messageBody": [conscent("CLICK"), conscent("EXIT")]}
            r = await rd.client.post("/collect/event", json=body)
            assert r.status_code == 201, r.text
            with trio.fail_after(10):
                await upstream.wait_for(lambda u: sum(len(req.json()) for req in u.accepted) >= 2)
    assert {req.path for req in upstream.accepted} == {"/in"}
    sent = [event for req in upstream.accepted for event in req.json()]
    assert sent == [{"t": "TAP"}, {"t": "OTHER"}]


async def test_the_file_sink_renames_types_with_type_map(tmp_path):
    """A canonical sink applies type_map to the event it writes; on main it is refused."""
    out = tmp_path / "out.ndjson"
    config = {
        "sources": {"in": {"plugin": "conscent", "auth": "none"}},
        "sinks": {
            "out": {
                "plugin": "file",
                "path": str(out),
                "type_map": {"click": "tap", "exit": "heartbeat"},
                "batch": {"max_wait": 0.01},
            }
        },
        "routes": [{"from": "in", "to": "out"}],
    }
    async with running_daemon(config, data_dir=tmp_path / "d") as rd:
        body = {"messageBody": [conscent("CLICK"), conscent("EXIT"), conscent("PING")]}
        r = await rd.client.post("/collect/event", json=body)
        assert r.status_code == 201, r.text
        written = await wait_for_lines(out, 3)
    assert [(e["type"], e.get("custom", False)) for e in written] == [
        ("tap", True),
        ("heartbeat", False),
        ("heartbeat", False),
    ]


def test_type_map_values_are_still_checked_by_the_plugins_schema(tmp_path):
    config = {
        "sources": {"in": {"plugin": "conscent", "auth": "none"}},
        "sinks": {
            "c": {"plugin": "conscent", "url": "http://127.0.0.1:1", "type_map": {"a": "NO"}}
        },
        "routes": [{"from": "in", "to": "c"}],
    }
    from router.testing.daemon import build_config

    with pytest.raises(ConfigError, match=r"sinks\.c\.type_map"):
        build_config(config)


def conscent(event_type: str) -> dict[str, Any]:
    raw = {
        "clientId": "c1",
        "eventType": event_type,
        "eventLocation": "PAGE",
        "anonId": "8f14e45f-ceea-467f-a8b4-43c6f1a0b8d1",
    }
    if event_type == "PING":
        raw.update(pingId="0b1d7c2e-2f63-4d3e-9a41-7a5c4f2f1e10", active=1)
    return raw


# -- what every built-in sink shares


def test_the_config_caps_batch_max_events_at_max_batch_events():
    from router.testing.daemon import build_config

    config, _ = build_config(
        {
            "sources": {"in": {"plugin": "conscent", "auth": "none"}},
            "sinks": {"s": {"plugin": "single", "url": "http://127.0.0.1:1"}},
            "routes": [{"from": "in", "to": "s"}],
        },
        plugins=THIRD,
    )
    assert config.sinks["s"].batch.max_events == 1


def test_every_built_in_sink_still_builds_its_request_as_a_tuple():
    # SinkRequest is a NamedTuple, so (url, body, headers) unpacking keeps working.
    sink = ConscentSink("c", {"url": "http://h"}, client=None)  # type: ignore[arg-type]
    url, body, _ = sink.build_request([b"{}"])
    assert (url, body) == ("http://h/collect/event", b'{"messageBody":[{}]}')
    assert isinstance(sink.build_request([b"{}"]), SinkRequest)


# -- one URL check -------------------------------------------------------------------

SINK_OPTIONS = {
    "conscent": {},
    "segmento": {"api_key": "k"},
    "moloco": {"api_key": "k", "platform": "p"},
    "endu": {"api_key": "k"},
}


def sink_config(plugin: str, url: str) -> dict[str, Any]:
    return {
        "sources": {"in": {"plugin": "conscent", "auth": "none"}},
        "sinks": {"s": {"plugin": plugin, "url": url, **SINK_OPTIONS[plugin]}},
        "routes": [{"from": "in", "to": "s"}],
    }


@pytest.mark.parametrize("plugin", sorted(SINK_OPTIONS))
@pytest.mark.parametrize(
    "url",
    ["https://h.example/p?authkey=s3cret", "https://h.example/p#f", "ftp://h.example", "https://"],
)
def test_every_sink_refuses_the_same_urls_with_one_message(plugin, url):
    """On main Conscent took ``?q`` and ``#f`` (then appended its path after them)."""
    from router.testing.daemon import build_config

    with pytest.raises(ConfigError) as caught:
        build_config(sink_config(plugin, url))
    message = str(caught.value)
    assert "sinks.s.url: must be an http:// or https:// URL" in message
    assert "s3cret" not in message


@pytest.mark.parametrize("plugin", sorted(SINK_OPTIONS))
@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "https://h.example/v1/", "http://h/a/b"])
def test_every_sink_takes_the_same_urls(plugin, url):
    from router.testing.daemon import build_config

    config, _ = build_config(sink_config(plugin, url))
    assert config.sinks["s"].options["url"] == url


# -- router translate ----------------------------------------------------------------


def test_translate_takes_type_map_for_a_third_party_destination():
    """On main ``router translate -o type_map=…`` to such a sink was an unknown option."""
    from router.pluginmanager import make_plugin_manager
    from router.registry import build_registry
    from router.translate import UnknownOption, check_options

    registry = build_registry(make_plugin_manager(autoload=False, extra=THIRD))
    check_options(registry, "third", {"type_map": {"click": "TAP"}})
    with pytest.raises(UnknownOption, match="type_map"):
        check_options(registry, "third", {"type_map": {"click": ""}})
    # The vendor's own narrowing still applies.
    with pytest.raises(UnknownOption, match="unallowed value NO"):
        check_options(registry, "conscent", {"type_map": {"click": "NO"}})


def test_an_http_sink_gets_its_url_and_headers_from_two_hooks():
    class Keyed(Sink):
        kind = "keyed"

        def request_url(self, options):
            return options["url"] + "/v1/events"

        def request_headers(self, options):
            return {**super().request_headers(options), "x-key": options["key"]}

        def build_request(self, batch):
            return self.request(b"[" + b",".join(batch) + b"]")

    client = httpx.AsyncClient()
    sink = Keyed("k", {"url": "https://api.example.com", "key": "s3"}, client=client)
    url, body, headers = sink.build_request([b"1", b"2"])
    assert url == "https://api.example.com/v1/events" and body == b"[1,2]"
    assert headers == {"content-type": "application/json", "x-key": "s3"}
    headers["x-key"] = "changed"  # each request gets its own copy
    assert sink.build_request([b"1"]).headers["x-key"] == "s3"
    plain = Sink("p", {"url": "https://h.example/path"}, client=client)
    assert (plain.url, plain.headers) == (
        "https://h.example/path",
        {"content-type": "application/json"},
    )
