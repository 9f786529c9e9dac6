"""The moloco plugin: the Sink."""

from __future__ import annotations

from pathlib import Path

import cerberus
import httpx
import orjson
import pytest
from router_plugins.moloco.codec import MolocoCodec
from router_plugins.moloco.schema import CHANNEL_TYPES
from router_plugins.moloco.sink import MolocoSink

import router
import router.hookspecs

PAYLOADS = Path(__file__).parents[2] / "data" / "payloads" / "moloco"
EXAMPLES = sorted(PAYLOADS.glob("*.json"))

CODEC = MolocoCodec()


def load(path: Path) -> dict:
    return orjson.loads(path.read_bytes())


SINK_OPTIONS = {
    "url": "https://sandbox-evt.mcm-api.moloco.com",
    "api_key": "k-1",
    "platform": "ACME",
}


def make_sink(client=None, **options) -> MolocoSink:
    return MolocoSink(
        "moloco-out",
        {**SINK_OPTIONS, **options},
        client=client or httpx.AsyncClient(),
        codec=MolocoCodec(),
    )


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_build_request(path):
    encoded = orjson.dumps(load(path))
    url, body, headers = make_sink().build_request([encoded])
    assert url == "https://sandbox-evt.mcm-api.moloco.com/rmp/event/v1/platforms/ACME/userevents"
    assert body == encoded
    assert orjson.loads(body) == load(path)
    assert headers == {"x-api-key": "k-1", "content-type": "application/json"}


@pytest.mark.parametrize(
    ("url", "platform", "expected"),
    [
        (
            "https://evt.example.com/",
            "ACME",
            "https://evt.example.com/rmp/event/v1/platforms/ACME/userevents",
        ),
        (
            "http://127.0.0.1:8080/proxy",
            "A B/C",
            "http://127.0.0.1:8080/proxy/rmp/event/v1/platforms/A%20B%2FC/userevents",
        ),
    ],
)
def test_url_takes_the_platform_after_the_base(url, platform, expected):
    assert make_sink(url=url, platform=platform).build_request([b"{}"])[0] == expected


@pytest.mark.parametrize("size", [0, 2])
async def test_send_takes_one_event(size):
    # The guard is the core's (Sink.send), from max_batch_events = 1.
    with pytest.raises(ValueError, match="one event per request"):
        await make_sink().send([b"{}"] * size)


def test_build_request_headers_are_a_copy():
    sink = make_sink()
    sink.build_request([b"{}"])[2]["x-api-key"] = "changed"
    assert sink.build_request([b"{}"])[2]["x-api-key"] == "k-1"


async def test_send_posts_the_built_request():
    seen = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return httpx.Response(200, json={})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        sink = make_sink(client)
        await sink.send([b'{"event_type":"HOME"}'])
    (req,) = seen
    url, body, _ = sink.build_request([b'{"event_type":"HOME"}'])
    assert (req.method, str(req.url), req.content) == ("POST", url, body)
    assert req.headers["x-api-key"] == "k-1"
    assert req.headers["content-type"] == "application/json"


async def test_send_maps_rejection():
    def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"code": 3, "message": "bad", "details": []})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(router.SinkRejected) as info:
            await make_sink(client).send([b"{}"])
    assert info.value.status == 400


def test_encode_uses_the_codec_with_the_sink_options():
    event = CODEC.decode(load(PAYLOADS / "land.json"), id="r", received_at=0, meta={})
    sink = make_sink(type_map={"land": "HOME"})
    assert sink.encode(event)["event_type"] == "HOME"


def test_options_schema_accepts_a_full_config():
    validator = cerberus.Validator(MolocoSink.options_schema)
    options = {
        **SINK_OPTIONS,
        "channel_type": "SITE",
        "currency": "EUR",
        "unsupported_currency": "unknown",
        "default_item_id": "subscription",
        "type_map": {"click": "PAGE_VIEW", "ITEM_PURCHASED": "PURCHASE"},
    }
    assert validator.validate(options), validator.errors
    assert validator.validate(SINK_OPTIONS), validator.errors


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"url": None}, "url"),
        ({"api_key": None}, "api_key"),
        ({"platform": None}, "platform"),
        ({"url": "evt.example.com"}, "url"),
        ({"url": "ftp://evt.example.com"}, "url"),
        ({"url": "https://evt.example.com/?q=1"}, "url"),
        ({"api_key": ""}, "api_key"),
        ({"platform": ""}, "platform"),
        ({"channel_type": "site"}, "channel_type"),
        ({"channel_type": "UNKNOWN_CHANNEL_TYPE"}, "channel_type"),
        ({"currency": "NOK"}, "currency"),
        ({"unsupported_currency": "drop"}, "unsupported_currency"),
        ({"default_item_id": ""}, "default_item_id"),
        ({"type_map": {"click": "CLICK"}}, "type_map"),
        ({"type_map": ["click"]}, "type_map"),
    ],
)
def test_options_schema_rejects(change, field):
    options = {**SINK_OPTIONS, **change}
    options = {k: v for k, v in options.items() if v is not None}
    validator = cerberus.Validator(MolocoSink.options_schema)
    assert not validator.validate(options)
    assert field in validator.errors


def test_channel_types_offered_to_the_sink_exclude_unknown():
    allowed = MolocoSink.options_schema["channel_type"]["allowed"]
    assert allowed == [c for c in CHANNEL_TYPES if c != "UNKNOWN_CHANNEL_TYPE"]
