"""What the Sink, Codec and Source base classes do for every plugin, third-party ones included."""

from __future__ import annotations

import types
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import orjson
import pytest
import trio
from router_plugins.conscent.ingest import ConscentSource
from router_plugins.conscent.sink import ConscentSink
from router_plugins.segmento.ingest import SegmentoSource

from router import (
    Codec,
    Event,
    IngestRequest,
    Sink,
    SinkRejected,
    SinkRequest,
    SinkUnavailable,
    hookimpl,
)
from router.codec import resolve_type
from router.errors import ConfigError
from router.testing.daemon import running_daemon
from router.testing.upstream import FakeUpstream, Reply
from router.translate import Translator


class ThirdCodec(Codec):
    """A third-party codec that leaves type_map to the base class."""

    vendor = "third"
    default_types = {"page_view": "VIEW", "purchase": "BUY"}

    def event_type(self, raw: Any) -> str | None:
        return raw.get("t") if isinstance(raw, dict) else None

    def decode(self, raw, *, id, received_at, meta) -> Event:
        return Event(id=id, type="page_view", timestamp=received_at, received_at=received_at,
                     vendor="third")  # fmt: skip

    def encode(self, event: Event, options: Mapping[str, Any]) -> dict[str, Any]:
        return {"t": self.resolve_type(event.type, options, custom=event.custom) or "?"}


class ThirdSink(Sink):
    """A third-party HTTP sink that writes only build_request."""

    kind = "third"
    vendor = "third"
    options_schema = {"url": {"type": "string", "required": True}}

    def build_request(self, batch: Sequence[bytes]) -> SinkRequest:
        body = b"[" + b",".join(batch) + b"]"
        return SinkRequest(self.options["url"] + "/in", body, {"content-type": "application/json"})


class SingleSink(ThirdSink):
    """The same API taking one event per request."""

    kind = "single"
    max_batch_events = 1


class NoRequestSink(Sink):
    """A sink that forgot both build_request and send."""

    kind = "forgetful"


@hookimpl
def router_codecs():
    return [ThirdCodec()]


@hookimpl
def router_sinks():
    return [ThirdSink, SingleSink]


THIRD = [("third", types.SimpleNamespace(router_codecs=router_codecs, router_sinks=router_sinks))]


def event(type_: str = "page_view", *, custom: bool = False) -> Event:
    return Event(id="e1", type=type_, timestamp=1, received_at=1, vendor="x", custom=custom)


# -- Codec.resolve_type ----------------------------------------------------------


@pytest.mark.parametrize(
    ("type_map", "type_", "custom", "expected"),
    [
        (None, "page_view", False, "VIEW"),
        ({"page_view": "CLICK"}, "page_view", False, "CLICK"),
        (None, "search", False, None),
        ({"*": "OTHER"}, "search", False, "OTHER"),
        ({"*": "OTHER"}, "page_view", False, "VIEW"),
        # Another vendor's custom type never takes a canonical default.
        (None, "purchase", True, None),
        ({"*": "OTHER"}, "purchase", True, "OTHER"),
        ({"purchase": "BUY2", "*": "OTHER"}, "purchase", True, "BUY2"),
    ],
)
def test_resolve_type_entry_then_default_then_catch_all(type_map, type_, custom, expected):
    options = {"type_map": type_map} if type_map is not None else {}
    assert ThirdCodec().resolve_type(type_, options, custom=custom) == expected


def test_resolve_type_prefers_a_codecs_own_default_to_the_table():
    codec = ThirdCodec()
    assert codec.resolve_type("page_view", {}, default="PAGE") == "PAGE"
    assert codec.resolve_type("page_view", {"type_map": {"page_view": "X"}}, default="P") == "X"
    assert resolve_type({"*": ""}, "a") is None


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
        with trio.fail_after(10):
            while len(out.read_text().splitlines() if out.exists() else []) < 3:  # noqa: ASYNC110
                await trio.sleep(0.01)
    written = [orjson.loads(line) for line in out.read_text().splitlines()]
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


# -- the default send ------------------------------------------------------------


def make(cls: type[Sink], client: httpx.AsyncClient, url: str = "http://up") -> Sink:
    return cls("out", {"url": url}, client=client)


async def test_the_default_send_posts_build_request_through_the_client():
    async with FakeUpstream.running() as upstream, httpx.AsyncClient() as client:
        await make(ThirdSink, client, upstream.url).send([b'{"a":1}', b'{"b":2}'])
    (req,) = upstream.accepted
    assert (req.method, req.path, req.body) == ("POST", "/in", b'[{"a":1},{"b":2}]')
    assert req.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("reply", "error", "retry_after"),
    [
        (Reply(429, headers={"retry-after": "7"}), SinkUnavailable, 7.0),
        (Reply(429, headers={"x-ratelimit-reset": "3"}), SinkUnavailable, 3.0),
        (Reply(503), SinkUnavailable, None),
        (Reply(408), SinkUnavailable, None),
        (Reply(400, body="bad"), SinkRejected, None),
        (Reply(404), SinkRejected, None),
    ],
)
async def test_the_default_send_maps_answers_like_every_sink(reply, error, retry_after):
    async with FakeUpstream.running(default=reply) as upstream, httpx.AsyncClient() as client:
        with pytest.raises(error) as caught:
            await make(ThirdSink, client, upstream.url).send([b"{}"])
    assert caught.value.status == reply.status
    if error is SinkUnavailable:
        assert caught.value.retry_after == retry_after


async def test_the_default_send_maps_a_refused_connection_to_unavailable():
    async with FakeUpstream.running() as upstream:
        url = upstream.url
    async with httpx.AsyncClient() as client:
        with pytest.raises(SinkUnavailable, match="connection failed"):
            await make(ThirdSink, client, url).send([b"{}"])


@pytest.mark.parametrize("size", [0, 2])
async def test_max_batch_events_is_enforced_by_the_base_send(size):
    async with FakeUpstream.running() as upstream, httpx.AsyncClient() as client:
        with pytest.raises(ValueError, match="takes one event per request, got"):
            await make(SingleSink, client, upstream.url).send([b"{}"] * size)
        await make(ThirdSink, client, upstream.url).send([b"{}"] * 2)
    assert len(upstream.accepted) == 1


async def test_a_sink_with_neither_build_request_nor_send_says_which_to_write():
    async with httpx.AsyncClient() as client:
        with pytest.raises(NotImplementedError, match="NoRequestSink must implement build_request"):
            await make(NoRequestSink, client).send([b"{}"])


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


# -- sources without storage ---------------------------------------------------------


def test_a_source_needs_no_quarantine_to_split():
    """On main, Source() requires ``quarantine``: translate built a SQLite one to split."""
    source = ConscentSource("cli", {})
    assert source.quarantine is None
    body = {"messageBody": [conscent("EXIT")], "extra": 1}
    envelope = source.split(IngestRequest("POST", "", {}, b""), body)
    assert envelope.events == [conscent("EXIT")]
    assert SegmentoSource("cli", {}).quarantine is None


def test_translate_gives_its_source_no_storage():
    from router.pluginmanager import make_plugin_manager
    from router.registry import build_registry

    registry = build_registry(make_plugin_manager(autoload=True))
    translator = Translator(registry, "conscent", "moloco")
    assert translator._source is not None and translator._source.quarantine is None


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
