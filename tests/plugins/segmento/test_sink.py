"""SegmentoSink: request building and options."""

from __future__ import annotations

import json

import cerberus
import httpx
import orjson
import pytest
from router_plugins.segmento.codec import SegmentoCodec
from router_plugins.segmento.sink import MAX_BATCH_EVENTS, SegmentoSink

from router import Event, Identity, Item, SinkRejected

OPTIONS = {"url": "https://control.example.com/api/v5/segmento/user-events", "api_key": "k-9"}


def make_sink(options=OPTIONS, handler=None) -> SegmentoSink:
    transport = httpx.MockTransport(handler or (lambda request: httpx.Response(200)))
    return SegmentoSink(
        "segmento-out",
        options,
        client=httpx.AsyncClient(transport=transport),
        codec=SegmentoCodec(),
    )


def test_class_declares_the_api():
    assert (SegmentoSink.kind, SegmentoSink.vendor) == ("segmento", "segmento")
    assert SegmentoSink.max_batch_events == MAX_BATCH_EVENTS == 1000
    assert SegmentoSink.delivery_defaults["batch"]["max_events"] == 500


def test_build_request():
    batch = [
        orjson.dumps({"event_name": "page-view", "visitor_id": "v", "event_properties": {"t": 1}}),
        orjson.dumps({"event_name": "x", "visitor_id": "w", "event_properties": {}}),
    ]
    url, body, headers = make_sink().build_request(batch)
    assert url == OPTIONS["url"]
    assert json.loads(body) == {
        "data": [
            {"event_name": "page-view", "visitor_id": "v", "event_properties": {"t": 1}},
            {"event_name": "x", "visitor_id": "w", "event_properties": {}},
        ]
    }
    assert headers["authkey"] == "k-9"
    assert headers["content-type"] == "application/json"


def test_build_request_single_event():
    _, body, _ = make_sink().build_request([b'{"a":1}'])
    assert body == b'{"data":[{"a":1}]}'


def test_sink_encodes_through_the_codec():
    event = Event(
        id="e",
        type="product_viewed",
        timestamp=0,
        received_at=0,
        vendor="moloco",
        identity=Identity(user_id="u"),
        items=[Item(id="P")],
    )
    assert make_sink().encode(event) == {
        "event_name": "product-viewed",
        "visitor_id": "u",
        "event_properties": {"product_id": "P"},
        "event_timestamp": "1970-01-01 00:00:00",
    }


async def test_send_posts_the_built_request():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"status": "success", "hasError": False})

    sink = make_sink(handler=handler)
    await sink.send([b'{"a":1}', b'{"b":2}'])
    assert len(seen) == 1
    assert str(seen[0].url) == OPTIONS["url"]
    assert seen[0].method == "POST"
    assert seen[0].headers["authkey"] == "k-9"
    assert seen[0].content == b'{"data":[{"a":1},{"b":2}]}'


async def test_send_maps_4xx_to_rejected():
    sink = make_sink(handler=lambda request: httpx.Response(401, json={"hasError": True}))
    with pytest.raises(SinkRejected) as info:
        await sink.send([b"{}"])
    assert info.value.status == 401


@pytest.mark.parametrize(
    "options",
    [
        OPTIONS,
        {**OPTIONS, "url": "http://127.0.0.1:8080/events"},
        {**OPTIONS, "type_map": {"purchase": "order-completed", "VIEW": "page-view"}},
        {**OPTIONS, "visitor_id_from": ["custom_id", "user_id"]},
        {**OPTIONS, "visitor_id_from": ["session_id"]},
    ],
)
def test_options_schema_accepts(options):
    validator = cerberus.Validator(SegmentoSink.options_schema)
    assert validator.validate(options), validator.errors


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"api_key": "k"}, "url"),
        ({"url": "https://x.example/"}, "api_key"),
        ({**OPTIONS, "api_key": ""}, "api_key"),
        ({**OPTIONS, "url": "ftp://x.example/"}, "url"),
        ({**OPTIONS, "url": "https://x.example/ y"}, "url"),
        ({**OPTIONS, "type_map": {"purchase": ""}}, "type_map"),
        ({**OPTIONS, "type_map": {"purchase": 3}}, "type_map"),
        ({**OPTIONS, "type_map": ["purchase"]}, "type_map"),
        ({**OPTIONS, "visitor_id_from": []}, "visitor_id_from"),
        ({**OPTIONS, "visitor_id_from": ["email"]}, "visitor_id_from"),
        ({**OPTIONS, "visitor_id_from": "user_id"}, "visitor_id_from"),
    ],
)
def test_options_schema_rejects(options, field):
    validator = cerberus.Validator(SegmentoSink.options_schema)
    assert not validator.validate(options)
    assert field in validator.errors
