"""The conscent plugin: the Sink."""

from __future__ import annotations

import json
from pathlib import Path

import cerberus
import httpx
import orjson
import pytest
from router_plugins.conscent.codec import ConscentCodec
from router_plugins.conscent.sink import ConscentSink

from router import SinkRejected, SinkUnavailable

PAYLOADS = Path(__file__).parents[2] / "data" / "payloads" / "conscent"


def load(name: str):
    return json.loads((PAYLOADS / name).read_text())


SINK_OPTIONS = {"url": "https://sandbox-collection.conscent.in", "client_id": "client-a"}


def make_sink(handler=None, **options):
    transport = httpx.MockTransport(handler or (lambda request: httpx.Response(201, json=[])))
    return ConscentSink(
        "conscent",
        {**SINK_OPTIONS, **options},
        client=httpx.AsyncClient(transport=transport),
        codec=ConscentCodec(),
    )


def encoded(*names):
    return [orjson.dumps(load(name)) for name in names]


def test_build_request():
    batch = encoded("ping.json", "click.json", "purchase.json")
    url, body, headers = make_sink().build_request(batch)
    assert url == "https://sandbox-collection.conscent.in/collect/event"
    assert json.loads(body) == {
        "messageBody": [load("ping.json"), load("click.json"), load("purchase.json")]
    }
    assert headers == {"content-type": "application/json"}


@pytest.mark.parametrize(
    "url",
    [
        "https://collections.conscent.in/",
        "https://collections.conscent.in",
    ],
)
def test_url_joins_the_path(url):
    assert make_sink(url=url).build_request(encoded("exit.json"))[0] == (
        "https://collections.conscent.in/collect/event"
    )


def test_url_keeps_a_path_prefix():
    sink = make_sink(url="http://127.0.0.1:8080/conscent/")
    assert sink.build_request(encoded("exit.json"))[0] == (
        "http://127.0.0.1:8080/conscent/collect/event"
    )


def test_api_key_header():
    _, _, headers = make_sink(api_key="s3cret").build_request(encoded("exit.json"))
    assert headers["x-api-key"] == "s3cret"
    sink = make_sink(api_key="s3cret", api_key_header="Authorization")
    _, _, headers = sink.build_request(encoded("exit.json"))
    assert headers == {"content-type": "application/json", "authorization": "s3cret"}


def test_build_request_does_not_share_headers():
    sink = make_sink(api_key="s3cret")
    sink.build_request(encoded("exit.json"))[2]["x-api-key"] = "changed"
    assert sink.build_request(encoded("exit.json"))[2]["x-api-key"] == "s3cret"


def test_encode_uses_the_sink_options():
    event = ConscentCodec().decode(
        load("exit.json"), id="e1", received_at=1_700_000_000_000, meta={}
    )
    event.extras.clear()  # as if it came from another vendor
    assert make_sink().encode(event)["clientId"] == "client-a"


async def test_send_posts_the_built_request():
    seen = []

    def handler(request):
        seen.append(request)
        return httpx.Response(201, json=[])

    sink = make_sink(handler, api_key="s3cret")
    batch = encoded("ping.json", "exit.json")
    await sink.send(batch)
    (sent,) = seen
    url, body, headers = sink.build_request(batch)
    assert (sent.method, str(sent.url), sent.content) == ("POST", url, body)
    assert {k: sent.headers[k] for k in headers} == {
        "content-type": "application/json",
        "x-api-key": "s3cret",
    }


@pytest.mark.parametrize(("status", "error"), [(503, SinkUnavailable), (400, SinkRejected)])
async def test_send_maps_upstream_errors(status, error):
    sink = make_sink(lambda request: httpx.Response(status, json={"statusCode": status}))
    with pytest.raises(error):
        await sink.send(encoded("exit.json"))


@pytest.mark.parametrize(
    ("options", "valid"),
    [
        ({"url": "https://collections.conscent.in"}, True),
        (
            {
                "url": "https://sandbox-collection.conscent.in",
                "client_id": "${CONSCENT_API_KEY}",
                "api_key": "k",
                "api_key_header": "X-Client-Key",
                "default_event_location": "PAYWALL",
                "type_map": {"page_view": "PING", "ITEM_PURCHASED": "PURCHASE"},
            },
            True,
        ),
        ({}, False),
        ({"url": "collections.conscent.in"}, False),
        ({"url": "https://collections.conscent.in", "client_id": ""}, False),
        ({"url": "https://collections.conscent.in", "api_key_header": "X-Key"}, False),
        ({"url": "https://collections.conscent.in", "default_event_location": "HOME"}, False),
        ({"url": "https://collections.conscent.in", "type_map": {"page_view": "VIEW"}}, False),
        ({"url": "https://collections.conscent.in", "type_map": ["PING"]}, False),
        ({"url": "https://collections.conscent.in", "clientId": "c"}, False),
    ],
)
def test_options_schema(options, valid):
    assert cerberus.Validator(ConscentSink.options_schema).validate(options) is valid
