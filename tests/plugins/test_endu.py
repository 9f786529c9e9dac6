"""The endu plugin: hooks, validators, the ingest Source and the Sink.

The codec has its own module, ``test_endu_codec.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import cerberus
import httpx
import orjson
import pluggy
import pytest
import router_plugins.endu
from router_plugins.endu.codec import EnduCodec
from router_plugins.endu.ingest import DEFAULT_PATH, EnduSource
from router_plugins.endu.schema import DOCUMENTED_TYPES, VALIDATORS
from router_plugins.endu.sink import EnduSink

import router
import router.hookspecs
from router import (
    BadRequest,
    Envelope,
    FieldError,
    IngestRequest,
    IngestResult,
    RateLimited,
    SinkRejected,
    SinkUnavailable,
    Unauthorized,
    ValidationFailed,
)
from router.validation import Validators

PAYLOADS = Path(__file__).parent.parent / "data" / "payloads" / "endu"
VALID_EXAMPLES = sorted(p.name for p in PAYLOADS.glob("*.json") if p.stem != "base_insufficient")

CODEC = EnduCodec()
VALIDATORS_ = Validators(VALIDATORS)

#: A valid event (unique-identity variation) to break field by field.
BASE = {
    "property_id": "D#1007491775344160808",
    "organization_id": "848WN4oEUgisKrV9dY9Ni6",
    "timestamp": "1672536219",
    "event_type": "ITEM_PURCHASED",
    "c_user_id": "59078598125872925",
    "event_data": {"item_id": "8258727671"},
}
DROP = object()


def load(name: str) -> dict:
    return json.loads((PAYLOADS / name).read_text())


def event(event_type: str | None = None, /, **changes) -> dict:
    """BASE with ``event_type`` set and ``changes`` applied (``DROP`` removes a key)."""
    doc = {**BASE, **({"event_type": event_type} if event_type else {}), **changes}
    return {k: v for k, v in doc.items() if v is not DROP}


def check(doc: dict) -> list[FieldError]:
    return VALIDATORS_.check("endu", CODEC.event_type(doc), doc)


def fields(errors: list[FieldError]) -> set[str]:
    return {e.field for e in errors}


# --------------------------------------------------------------------------
# Hooks
# --------------------------------------------------------------------------


@pytest.fixture
def pm() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("router")
    pm.add_hookspecs(router.hookspecs)
    pm.register(router_plugins.endu, name="endu")
    pm.check_pending()
    return pm


def test_hook_router_codecs_registers_the_endu_codec(pm):
    [codecs] = pm.hook.router_codecs()
    assert [type(c) for c in codecs] == [EnduCodec]
    assert codecs[0].vendor == "endu"


def test_hook_router_validators_cover_documented_types_and_fallback(pm):
    [specs] = pm.hook.router_validators()
    assert {s.vendor for s in specs} == {"endu"}
    assert sorted(s.event_type for s in specs) == sorted([*DOCUMENTED_TYPES, "*"])
    assert all(s.require_any for s in specs)


def test_hook_router_sources_registers_the_endu_source(pm):
    [sources] = pm.hook.router_sources()
    assert sources == [EnduSource]
    assert EnduSource.vendor == "endu"


def test_hook_router_sinks_registers_the_endu_sink(pm):
    [sinks] = pm.hook.router_sinks()
    assert sinks == [EnduSink]
    assert (EnduSink.kind, EnduSink.vendor) == ("endu", "endu")


def test_hook_router_config_schema_not_implemented(pm):
    # The plugin has no plugin-wide options: everything is per source/sink.
    assert pm.hook.router_config_schema() == []


# --------------------------------------------------------------------------
# Validators
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", VALID_EXAMPLES)
def test_hook_router_validators_accept_documented_example(name):
    assert check(load(name)) == []


def test_hook_router_validators_base_request_alone_is_insufficient():
    # The doc: "This base event is insufficient to send as it is".
    errors = check(load("base_insufficient.json"))
    assert fields(errors) == {""}  # the event as a whole, not one field
    assert "at least one of p_user_id, c_user_id, blockchain, fingerprint" in errors[0].message


TYPES = [*DOCUMENTED_TYPES, "LEVEL_UP", "add_to_cart", "Wallet Connected", "ß"]


@pytest.mark.parametrize("event_type", TYPES)
def test_hook_router_validators_accept_every_event_type(event_type):
    assert check(event(event_type)) == []


@pytest.mark.parametrize(
    "identity",
    [
        {"p_user_id": "702877938567086080", "platform_type": "Discord"},
        {"p_user_id": "12345", "platform_type": "Telegram"},
        {"c_user_id": "59078598125872925"},
        {"blockchain": {"chain_type": "ethereum", "chain_account": "0xabc"}},
        {"fingerprint": "xuauwiaufjwaj"},
        {
            "p_user_id": "1",
            "platform_type": "Telegram",
            "c_user_id": "2",
            "blockchain": {"chain_type": "solana", "chain_account": "0x0"},
            "fingerprint": "f",
        },
    ],
)
def test_hook_router_validators_accept_each_identity_variation(identity):
    assert check(event(**{"c_user_id": DROP, **identity})) == []


REQUIRED = ["property_id", "organization_id", "timestamp", "event_type", "event_data"]


@pytest.mark.parametrize("event_type", TYPES)
@pytest.mark.parametrize("name", REQUIRED)
def test_hook_router_validators_require_base_field(event_type, name):
    errors = check(event(event_type, **{name: DROP}))
    assert name in fields(errors)


@pytest.mark.parametrize("event_type", TYPES)
def test_hook_router_validators_require_an_identity(event_type):
    errors = check(event(event_type, c_user_id=DROP))
    assert fields(errors) == {""}


WRONG_TYPES = [
    ("property_id", 1007491775344160808),
    ("property_id", None),
    ("organization_id", ["848WN4oEUgisKrV9dY9Ni6"]),
    ("timestamp", 1672536219.5),
    ("timestamp", None),
    ("timestamp", {"seconds": 1}),
    ("event_type", 5),
    ("event_data", []),
    ("event_data", "item_id=8258727671"),
    ("event_data", None),
    ("c_user_id", 59078598125872925),
    ("fingerprint", ["x"]),
    ("blockchain", "solana:0x0"),
]


@pytest.mark.parametrize("event_type", DOCUMENTED_TYPES)
@pytest.mark.parametrize(("name", "value"), WRONG_TYPES)
def test_hook_router_validators_reject_wrong_type(event_type, name, value):
    doc = event(event_type, **{name: value})
    errors = VALIDATORS_.check("endu", event_type, doc)
    assert name in fields(errors)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"p_user_id": 702877938567086080, "platform_type": "Discord"}, "p_user_id"),
        ({"p_user_id": "7", "platform_type": 1}, "platform_type"),
        ({"blockchain": {"chain_type": 1, "chain_account": "0x0"}}, "blockchain.chain_type"),
        (
            {"blockchain": {"chain_type": "solana", "chain_account": None}},
            "blockchain.chain_account",
        ),
    ],
)
def test_hook_router_validators_reject_wrong_identity_type(changes, field):
    assert field in fields(check(event(**changes)))


@pytest.mark.parametrize(
    "name", ["property_id", "organization_id", "event_type", "c_user_id", "fingerprint"]
)
def test_hook_router_validators_reject_empty_string(name):
    assert name in fields(check(event(**{"fingerprint": "f", name: ""})))


@pytest.mark.parametrize("platform", ["discord", "TELEGRAM", "Slack", ""])
def test_hook_router_validators_reject_unknown_platform_type(platform):
    errors = check(event(p_user_id="7", platform_type=platform))
    assert "platform_type" in fields(errors)


def test_hook_router_validators_documented_type_spec_pins_event_type():
    errors = VALIDATORS_.check("endu", "ITEM_PURCHASED", event("PAGE_VIEW"))
    assert fields(errors) == {"event_type"}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"p_user_id": "702877938567086080"}, "p_user_id"),
        ({"platform_type": "Discord"}, "platform_type"),
        ({"blockchain": {"chain_type": "solana"}}, "blockchain.chain_account"),
        ({"blockchain": {"chain_account": "0x0"}}, "blockchain.chain_type"),
    ],
)
def test_hook_router_validators_identity_parts_come_together(changes, field):
    assert field in fields(check(event(**{"c_user_id": DROP, **changes})))


@pytest.mark.parametrize("timestamp", ["0", "1672536219", "9999999999", 0, 1672536219, 9999999999])
def test_hook_router_validators_accept_unix_seconds(timestamp):
    assert check(event(timestamp=timestamp)) == []


@pytest.mark.parametrize(
    "timestamp",
    ["1672536219000", 1672536219000, "-1", -1, "1672536219.5", " 1672536219", "", "2023-01-01"],
)
def test_hook_router_validators_reject_bad_timestamp(timestamp):
    # Milliseconds (13 digits) are refused rather than read as the year 54,000.
    assert fields(check(event(timestamp=timestamp))) == {"timestamp"}


def test_hook_router_validators_allow_undocumented_fields():
    doc = event(session="abc", blockchain={"chain_type": "solana", "chain_account": "0x0", "x": 1})
    assert check(doc) == []


def test_hook_router_validators_event_without_type_uses_fallback():
    doc = event(event_type=DROP)
    assert CODEC.event_type(doc) is None
    assert fields(check(doc)) == {"event_type"}


# --------------------------------------------------------------------------
# Source
# --------------------------------------------------------------------------


@pytest.fixture
def source():
    return EnduSource("endu-in", {"plugin": "endu", "auth": {"keys": ["k"]}})


def request(body: bytes = b"{}", **headers: str) -> IngestRequest:
    return IngestRequest(
        "POST", DEFAULT_PATH, {k.replace("_", "-"): v for k, v in headers.items()}, body
    )


def test_hook_router_sources_declares_one_post_route():
    assert [(r.method, r.path, r.name, r.handler) for r in EnduSource.routes] == [
        ("POST", "/api/events/record", "ingest", None)
    ]
    assert EnduSource.events_field is None
    assert EnduSource.default_on_invalid == "reject"
    assert EnduSource.credential_header == "authorization"


@pytest.mark.parametrize("name", VALID_EXAMPLES)
def test_hook_router_sources_split_one_event(source, name):
    body = load(name)
    envelope = source.split(request(), body)
    assert list(envelope.events) == [body]
    assert envelope.meta == {}


def test_hook_router_sources_split_refuses_an_array(source):
    with pytest.raises(BadRequest, match="one event per request"):
        source.split(request(), [BASE, BASE])


@pytest.mark.parametrize("body", ["event", 5, None, True])
def test_hook_router_sources_split_refuses_non_object(source, body):
    with pytest.raises(BadRequest, match="must be a JSON object"):
        source.split(request(), body)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"authorization": "Bearer s3cret"}, "s3cret"),
        ({"authorization": "bearer  s3cret "}, "s3cret"),
        ({"authorization": "s3cret"}, "s3cret"),
        ({"x_chatsight_api_auth": "s3cret"}, None),
        ({}, None),
    ],
)
def test_hook_router_sources_credential_from_authorization(source, headers, expected):
    assert source.credential(request(**headers)) == expected


def test_hook_router_sources_credential_from_configured_header(source):
    options = {"plugin": "endu", "auth": {"keys": ["k"], "header": "X-Chatsight-Api-Auth"}}
    source = EnduSource("endu-in", options, quarantine=source.quarantine)
    assert source.credential(request(x_chatsight_api_auth="s3cret")) == "s3cret"
    assert source.credential(request(authorization="Bearer s3cret")) is None


@pytest.mark.parametrize(
    ("key", "expected"),
    [("property_id", "D#1007491775344160808"), ("organization_id", "848WN4oEUgisKrV9dY9Ni6")],
)
def test_hook_router_sources_rate_limit_keys(source, key, expected):
    assert key in EnduSource.rate_limit_keys
    assert source.rate_limit_key(key, request(), Envelope([BASE])) == expected


@pytest.mark.parametrize(
    ("key", "body"),
    [("property_id", {**BASE, "property_id": 5}), ("property_id", {}), ("c_user_id", BASE)],
)
def test_hook_router_sources_rate_limit_key_unusable(source, key, body):
    assert source.rate_limit_key(key, request(), Envelope([body])) is None


def test_hook_router_sources_accepted_is_an_empty_200(source):
    reply = source.accepted(request(), IngestResult(Envelope([BASE]), ["0190-id"]))
    assert (reply.status, reply.body) == (200, b"")
    assert not reply.content_type.startswith("application/json")


def test_hook_router_sources_accepted_quarantined_event_is_still_an_empty_200(source):
    failed = {0: [FieldError(("timestamp",), "required field")]}
    reply = source.accepted(request(), IngestResult(Envelope([{}]), [None], failed))
    assert (reply.status, reply.body) == (200, b"")


def test_hook_router_sources_error_validation_failed(source):
    error = ValidationFailed(
        "timestamp: required field",
        errors=[
            (0, FieldError(("timestamp",), "required field")),
            (0, FieldError(("blockchain", "chain_type"), "required field")),
        ],
    )
    reply = source.error(request(), error)
    assert reply.status == 400
    assert reply.body == {
        "success": False,
        "error": {
            "code": 400,
            "title": "Bad Request",
            "message": "timestamp: required field",
            "fields": [
                {"field": "timestamp", "message": "required field"},
                {"field": "blockchain.chain_type", "message": "required field"},
            ],
        },
    }
    assert orjson.loads(orjson.dumps(reply.body)) == reply.body


def test_hook_router_sources_error_passes_headers_through(source):
    error = RateLimited("slow down", headers={"Retry-After": "3", "X-RateLimit-Limit": "10"})
    reply = source.error(request(), error)
    assert reply.status == 429
    assert reply.headers == {"Retry-After": "3", "X-RateLimit-Limit": "10"}
    assert reply.body == {
        "success": False,
        "error": {"code": 429, "title": "Too Many Requests", "message": "slow down"},
    }


def test_hook_router_sources_error_unauthorized(source):
    reply = source.error(request(), Unauthorized("missing API key"))
    assert reply.status == 401
    assert reply.body["error"]["message"] == "missing API key"
    assert "fields" not in reply.body["error"]


# --------------------------------------------------------------------------
# Sink
# --------------------------------------------------------------------------

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


def test_hook_router_sinks_declares_single_event_delivery():
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
def test_hook_router_sinks_options_schema_accepts(options):
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
def test_hook_router_sinks_options_schema_rejects(options, field):
    assert field in options_errors(options)


def test_hook_router_sinks_build_request_default_path_and_bearer_key():
    body = orjson.dumps(event())
    url, content, headers = make_sink().build_request([body])
    assert url == "https://sux.chatsight.ai/api/events/record"
    assert orjson.loads(content) == event()
    assert headers == {"content-type": "application/json", "authorization": "Bearer k-123"}


def test_hook_router_sinks_build_request_custom_path_and_header():
    sink = make_sink(
        url="http://127.0.0.1:8081/base/", path="/v2/submit", api_key_header="X-Chatsight-Api-Auth"
    )
    url, content, headers = sink.build_request([b'{"a":1}'])
    assert url == "http://127.0.0.1:8081/base/v2/submit"
    assert content == b'{"a":1}'
    assert headers["x-chatsight-api-auth"] == "k-123"
    assert "authorization" not in headers


@pytest.mark.parametrize("batch", [[], [b"{}", b"{}"]])
async def test_hook_router_sinks_send_takes_exactly_one_event(batch):
    # The guard is the core's (Sink.send), from max_batch_events = 1.
    with pytest.raises(ValueError, match="one event per request"):
        await make_sink().send(batch)


def test_hook_router_sinks_encode_uses_sink_options():
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


async def test_hook_router_sinks_send_posts_the_event():
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
async def test_hook_router_sinks_send_maps_upstream_errors(status, error):
    def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(status, text="nope")

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(error):
            await make_sink(client).send([orjson.dumps(BASE)])
