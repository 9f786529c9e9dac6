"""The endu plugin: the Sink."""

from __future__ import annotations

import cerberus
import httpx
import orjson
import pytest
from router_plugins.endu.codec import EnduCodec
from router_plugins.endu.schema import VALIDATORS
from router_plugins.endu.sink import EnduSink

from router import FieldError, SinkRejected, SinkUnavailable
from router.validation import Validators
from tests.plugins.endu.events import BASE, event

CODEC = EnduCodec()
VALIDATORS_ = Validators(VALIDATORS)


def check(doc: dict) -> list[FieldError]:
    return VALIDATORS_.check("endu", CODEC.event_type(doc), doc)


SINK_OPTIONS = {
    "plugin": "endu",
    "url": "https://sux.chatsight.ai",
    "api_key": "k-123",
    "property_id": "D#1",
    "organization_id": "org-1",
}


def make_sink(client=None, **options) -> EnduSink:
    return EnduSink("endu-out", {**SINK_OPTIONS, **options}, client=client, codec=CODEC)


def options_errors(options: dict) -> dict:
    validator = cerberus.Validator({"plugin": {"type": "string"}, **EnduSink.options_schema})
    validator.validate(options, normalize=False)
    return validator.errors


def test_declares_single_event_delivery():
    assert EnduSink.max_batch_events == 1
    assert EnduSink.delivery_defaults["max_concurrency"] > 1
    assert EnduSink.delivery_defaults["batch"]["max_events"] == 1


@pytest.mark.parametrize(
    "options",
    [
        SINK_OPTIONS,
        {"plugin": "endu", "url": "http://127.0.0.1:9000/base", "api_key": "k"},
        {
            **SINK_OPTIONS,
            "path": "/v2/events",
            "api_key_header": "x-chatsight-api-auth",
            "override_ids": True,
            "type_map": {"purchase": "ORDER_COMPLETED", "PING": "HEARTBEAT"},
            "user_id_is_c_user_id": True,
            "fingerprint_from": ["anonymous_id", "persistent_id", "custom_id"],
        },
    ],
)
def test_options_schema_accepts(options):
    assert options_errors(options) == {}


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"plugin": "endu", "api_key": "k"}, "url"),
        ({**SINK_OPTIONS, "api_key": ""}, "api_key"),
        ({"plugin": "endu", "url": "https://x"}, "api_key"),
        ({**SINK_OPTIONS, "url": "sux.chatsight.ai"}, "url"),
        ({**SINK_OPTIONS, "path": "api/events"}, "path"),
        ({**SINK_OPTIONS, "api_key_header": "X Api Key"}, "api_key_header"),
        ({**SINK_OPTIONS, "property_id": ""}, "property_id"),
        ({**SINK_OPTIONS, "override_ids": "yes"}, "override_ids"),
        ({**SINK_OPTIONS, "type_map": {"purchase": ""}}, "type_map"),
        ({**SINK_OPTIONS, "fingerprint_from": ["user_id"]}, "fingerprint_from"),
        ({**SINK_OPTIONS, "user_id_is_c_user_id": 1}, "user_id_is_c_user_id"),
    ],
)
def test_options_schema_rejects(options, field):
    assert field in options_errors(options)


def test_build_request_default_path_and_bearer_key():
    body = orjson.dumps(event())
    url, content, headers = make_sink().build_request([body])
    assert url == "https://sux.chatsight.ai/api/events/record"
    assert orjson.loads(content) == event()
    assert headers == {"content-type": "application/json", "authorization": "Bearer k-123"}


def test_build_request_custom_path_and_header():
    sink = make_sink(
        url="http://127.0.0.1:8081/base/", path="/v2/submit", api_key_header="X-Chatsight-Api-Auth"
    )
    url, content, headers = sink.build_request([b'{"a":1}'])
    assert url == "http://127.0.0.1:8081/base/v2/submit"
    assert content == b'{"a":1}'
    assert headers["x-chatsight-api-auth"] == "k-123"
    assert "authorization" not in headers


@pytest.mark.parametrize("batch", [[], [b"{}", b"{}"]])
async def test_send_takes_exactly_one_event(batch):
    # The guard is the core's (Sink.send), from max_batch_events = 1.
    with pytest.raises(ValueError, match="one event per request"):
        await make_sink().send(batch)


def test_encode_uses_sink_options():
    from router import Event, Identity

    foreign = Event(
        id="e1",
        type="page_view",
        timestamp=1672536219123,
        received_at=1672536220000,
        vendor="conscent",
        identity=Identity(fingerprint="fp"),
    )
    payload = make_sink().encode(foreign)
    assert payload["property_id"] == "D#1"
    assert payload["organization_id"] == "org-1"
    assert payload["event_type"] == "PAGE_VIEW"
    assert check(payload) == []


async def test_send_posts_the_event():
    seen = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return httpx.Response(200)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        await make_sink(client).send([orjson.dumps(BASE)])
    [req] = seen
    assert (req.method, str(req.url)) == ("POST", "https://sux.chatsight.ai/api/events/record")
    assert req.headers["authorization"] == "Bearer k-123"
    assert orjson.loads(req.content) == BASE


@pytest.mark.parametrize(("status", "error"), [(400, SinkRejected), (503, SinkUnavailable)])
async def test_send_maps_upstream_errors(status, error):
    def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(status, text="nope")

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(error):
            await make_sink(client).send([orjson.dumps(BASE)])
