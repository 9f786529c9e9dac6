"""The moloco plugin: hooks, validators, the PostUserEvent source and the sink.

The codec is tested in ``test_moloco_codec.py``.
"""

from __future__ import annotations

import copy
from pathlib import Path

import cerberus
import httpx
import orjson
import pluggy
import pytest
import router_plugins.moloco
from router_plugins.moloco.codec import MolocoCodec
from router_plugins.moloco.ingest import MolocoSource
from router_plugins.moloco.schema import (
    CHANNEL_TYPES,
    EVENT_TYPES,
    ITEM_EVENT_TYPES,
    VALIDATORS,
)
from router_plugins.moloco.sink import MolocoSink

import router
import router.hookspecs
from router import (
    BadRequest,
    Envelope,
    FieldError,
    Forbidden,
    HeadersTooLarge,
    IngestRequest,
    IngestResult,
    InternalError,
    MethodNotAllowed,
    NotFound,
    Overloaded,
    PayloadTooLarge,
    RateLimited,
    Reply,
    RequestTimeout,
    Unauthorized,
    ValidationFailed,
)
from router.quarantine import Quarantine
from router.validation import Validators

PAYLOADS = Path(__file__).parent.parent / "data" / "payloads" / "moloco"
EXAMPLES = sorted(PAYLOADS.glob("*.json"))

VALIDATORS_ = Validators(VALIDATORS)
CODEC = MolocoCodec()


def load(path: Path) -> dict:
    return orjson.loads(path.read_bytes())


def check(doc) -> list[FieldError]:
    return VALIDATORS_.check("moloco", CODEC.event_type(doc), doc)


def fields(errors: list[FieldError]) -> set[str]:
    return {e.field for e in errors}


# ---------------------------------------------------------------------- hooks


@pytest.fixture
def pm():
    pm = pluggy.PluginManager("router")
    pm.add_hookspecs(router.hookspecs)
    pm.register(router_plugins.moloco, name="moloco")
    return pm


def test_hook_router_codecs_registers_the_moloco_codec(pm):
    (codecs,) = pm.hook.router_codecs()
    assert [type(c) for c in codecs] == [MolocoCodec]
    assert codecs[0].vendor == "moloco"


def test_hook_router_validators_cover_every_event_type_and_fallback(pm):
    (specs,) = pm.hook.router_validators()
    assert {s.vendor for s in specs} == {"moloco"}
    assert sorted(s.event_type for s in specs) == sorted([*EVENT_TYPES, "*"])
    assert all(s.allow_unknown for s in specs)
    assert all(s.require_any == (("user_id", "device.persistent_id", "custom_id"),) for s in specs)
    # Every spec compiles with cerberus.
    Validators(specs)


def test_hook_router_sources_registers_the_post_user_event_api(pm):
    (sources,) = pm.hook.router_sources()
    assert sources == [MolocoSource]
    (route,) = MolocoSource.routes
    assert (route.method, route.path, route.handler) == (
        "POST",
        "/rmp/event/v1/platforms/<platform>/userevents",
        None,
    )
    assert MolocoSource.vendor == "moloco"
    assert MolocoSource.events_field is None
    assert MolocoSource.credential_header == "x-api-key"
    assert MolocoSource.default_on_invalid == "reject"


def test_hook_router_sinks_registers_the_moloco_sink(pm):
    (sinks,) = pm.hook.router_sinks()
    assert sinks == [MolocoSink]
    assert (MolocoSink.kind, MolocoSink.vendor, MolocoSink.max_batch_events) == (
        "moloco",
        "moloco",
        1,
    )
    assert MolocoSink.delivery_defaults["max_concurrency"] > 1


def test_plugin_module_exposes_only_hookimpls():
    hooks = {n for n in dir(router_plugins.moloco) if n.startswith("router_")}
    assert hooks == {"router_codecs", "router_validators", "router_sources", "router_sinks"}
    pm = pluggy.PluginManager("router")
    pm.add_hookspecs(router.hookspecs)
    pm.register(router_plugins.moloco, name="moloco")
    pm.check_pending()


# ---------------------------------------------------------------- validators

#: A valid event with every field of v1Event set; valid for every event type.
FULL = {
    "id": "evt-1",
    "event_type": "PURCHASE",
    "timestamp": "1617870506121",
    "channel_type": "SITE",
    "domain": "shop.example.com",
    "user_id": "u-1",
    "device": {
        "os": "ios",
        "os_version": "14.4.1",
        "advertising_id": "7acefbed-d1f6-4e4e-aa26-74e93dd017e4",
        "unique_device_id": "udid-1",
        "persistent_id": "pid-1",
        "model": "iPhone 11 Pro",
        "ua": "Mozilla/5.0",
        "language": "en",
    },
    "items": [
        {
            "id": "sku-1",
            "price": {"currency": "USD", "amount": 12.34},
            "quantity": 1,
            "item_group_id": "g-1",
            "seller_id": "s-1",
            "price_seller": {"currency": "USD", "amount": 10},
        }
    ],
    "revenue": {"currency": "USD", "amount": 12.34},
    "search_query": "shoes",
    "session_id": "sess-1",
    "custom_id": "c-1",
    "page_id": "electronics",
    "referrer_page_id": "home",
    "shipping_charge": {"currency": "USD", "amount": 3},
    "decision_track_id": "track-1",
    "personalization_mode": "STANDARD",
}

#: The least each event type needs.
MINIMAL = {
    "event_type": None,
    "timestamp": "1617870506121",
    "channel_type": "APP",
    "custom_id": "c-1",
}
_TYPE_FIELDS = {
    **{t: {"items": [{"id": "sku-1"}]} for t in ITEM_EVENT_TYPES},
    "SEARCH": {"search_query": "shoes"},
    "PAGE_VIEW": {"page_id": "electronics"},
}


def minimal(event_type: str) -> dict:
    return {**MINIMAL, "event_type": event_type, **_TYPE_FIELDS.get(event_type, {})}


def full(event_type: str) -> dict:
    return {**copy.deepcopy(FULL), "event_type": event_type}


def _walk(doc, path: str):
    parts = [int(p) if p.isdigit() else p for p in path.split(".")]
    for part in parts[:-1]:
        doc = doc[part]
    return doc, parts[-1]


def set_path(doc: dict, path: str, value) -> dict:
    parent, key = _walk(doc, path)
    parent[key] = value
    return doc


def del_path(doc: dict, path: str) -> dict:
    parent, key = _walk(doc, path)
    del parent[key]
    return doc


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_hook_router_validators_accept_every_documented_example(path):
    assert check(load(path)) == []


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_hook_router_validators_accept_every_event_type(event_type):
    assert check(minimal(event_type)) == []
    assert check(full(event_type)) == []


@pytest.mark.parametrize("event_type", EVENT_TYPES)
@pytest.mark.parametrize("field", ["event_type", "timestamp", "channel_type"])
def test_hook_router_validators_require_the_spec_required_fields(event_type, field):
    errors = check(del_path(full(event_type), field))
    assert field in fields(errors)


@pytest.mark.parametrize(
    ("event_type", "field"),
    [
        *[(t, "items") for t in ITEM_EVENT_TYPES],
        ("SEARCH", "search_query"),
        ("PAGE_VIEW", "page_id"),
    ],
)
def test_hook_router_validators_require_the_fields_of_each_type(event_type, field):
    assert fields(check(del_path(minimal(event_type), field))) == {field}
    empty = [] if field == "items" else ""
    assert fields(check(set_path(minimal(event_type), field, empty))) == {field}


@pytest.mark.parametrize(
    ("event_type", "field"),
    [
        (t, f)
        for t in EVENT_TYPES
        for f in ("items", "search_query", "page_id")
        if f not in _TYPE_FIELDS.get(t, {})
    ],
)
def test_hook_router_validators_do_not_require_other_types_fields(event_type, field):
    assert check(del_path(full(event_type), field)) == []


#: (path, bad value, the field reported).
BROKEN = [
    # enums
    ("channel_type", "WEB", "channel_type"),
    ("channel_type", "site", "channel_type"),
    ("personalization_mode", "FULL", "personalization_mode"),
    ("revenue.currency", "XYZ", "revenue.currency"),
    ("revenue.currency", "usd", "revenue.currency"),
    ("shipping_charge.currency", "NOK", "shipping_charge.currency"),
    ("items.0.price.currency", "NOK", "items[0].price.currency"),
    ("items.0.price_seller.currency", "NOK", "items[0].price_seller.currency"),
    # wrong types
    ("id", 17, "id"),
    ("timestamp", 1617870506121, "timestamp"),
    ("channel_type", 1, "channel_type"),
    ("domain", ["a"], "domain"),
    ("user_id", 42, "user_id"),
    ("device", "iPhone", "device"),
    ("device.os", 14, "device.os"),
    ("device.os_version", 14.4, "device.os_version"),
    ("device.advertising_id", None, "device.advertising_id"),
    ("device.unique_device_id", 1, "device.unique_device_id"),
    ("device.persistent_id", 1, "device.persistent_id"),
    ("device.model", {}, "device.model"),
    ("device.ua", 1, "device.ua"),
    ("device.language", True, "device.language"),
    ("items", {"id": "sku-1"}, "items"),
    ("items.0", "sku-1", "items[0]"),
    ("items.0.id", 1001, "items[0].id"),
    ("items.0.price", 12.34, "items[0].price"),
    ("items.0.quantity", 1.5, "items[0].quantity"),
    ("items.0.quantity", "2", "items[0].quantity"),
    ("items.0.item_group_id", 1, "items[0].item_group_id"),
    ("items.0.seller_id", 1, "items[0].seller_id"),
    ("items.0.price_seller", "10", "items[0].price_seller"),
    ("revenue", 12.34, "revenue"),
    ("revenue.amount", "12.34", "revenue.amount"),
    ("revenue.amount", True, "revenue.amount"),
    ("revenue.amount", None, "revenue.amount"),
    ("search_query", 1, "search_query"),
    ("session_id", 1, "session_id"),
    ("custom_id", 1, "custom_id"),
    ("page_id", 1, "page_id"),
    ("referrer_page_id", 1, "referrer_page_id"),
    ("shipping_charge", "3", "shipping_charge"),
    ("decision_track_id", 1, "decision_track_id"),
    ("personalization_mode", 1, "personalization_mode"),
    # timestamp: decimal digits only (Unix ms as an int64 string)
    ("timestamp", "", "timestamp"),
    ("timestamp", "1617870506121.5", "timestamp"),
    ("timestamp", "-1617870506121", "timestamp"),
    ("timestamp", " 1617870506121", "timestamp"),
    ("timestamp", "1617870506121\n", "timestamp"),
    ("timestamp", "2021-04-08T08:28:26Z", "timestamp"),
    ("timestamp", "١٦١٧٨٧٠٥٠٦١٢١", "timestamp"),
    ("timestamp", "1" * 20, "timestamp"),
    # int32 range
    ("items.0.quantity", 2**31, "items[0].quantity"),
    ("items.0.quantity", -(2**31) - 1, "items[0].quantity"),
    # maxLength 128
    ("id", "x" * 129, "id"),
    ("user_id", "x" * 129, "user_id"),
    ("session_id", "x" * 129, "session_id"),
    ("custom_id", "x" * 129, "custom_id"),
    ("device.unique_device_id", "x" * 129, "device.unique_device_id"),
    ("device.persistent_id", "x" * 129, "device.persistent_id"),
    # required inside objects
    ("items.0.id", "", "items[0].id"),
]

#: (path removed, the field reported).
REMOVED = [
    ("items.0.id", "items[0].id"),
    ("items.0.price.currency", "items[0].price.currency"),
    ("items.0.price.amount", "items[0].price.amount"),
    ("items.0.price_seller.amount", "items[0].price_seller.amount"),
    ("revenue.currency", "revenue.currency"),
    ("revenue.amount", "revenue.amount"),
    ("shipping_charge.currency", "shipping_charge.currency"),
    ("shipping_charge.amount", "shipping_charge.amount"),
]


@pytest.mark.parametrize("event_type", EVENT_TYPES)
@pytest.mark.parametrize(("path", "value", "field"), BROKEN)
def test_hook_router_validators_name_the_broken_field(event_type, path, value, field):
    errors = check(set_path(full(event_type), path, value))
    assert field in fields(errors), errors


@pytest.mark.parametrize("event_type", EVENT_TYPES)
@pytest.mark.parametrize(("path", "field"), REMOVED)
def test_hook_router_validators_name_the_missing_nested_field(event_type, path, field):
    errors = check(del_path(full(event_type), path))
    assert field in fields(errors), errors


@pytest.mark.parametrize("value", ["PURCHASED", "purchase", "", 5, None])
def test_hook_router_validators_report_an_unknown_event_type(value):
    doc = set_path(full("PURCHASE"), "event_type", value)
    assert CODEC.event_type(doc) in (None, value)
    assert "event_type" in fields(check(doc))


def test_hook_router_validators_fallback_reports_other_problems_too():
    doc = {"event_type": "PURCHASED", "channel_type": "WEB", "custom_id": "c"}
    assert fields(check(doc)) == {"event_type", "timestamp", "channel_type"}


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_hook_router_validators_require_one_user_id(event_type):
    doc = full(event_type)
    for path in ("user_id", "device.persistent_id", "custom_id"):
        del_path(doc, path)
    assert check(doc) == [
        FieldError((), "at least one of user_id, device.persistent_id, custom_id is required")
    ]
    doc["user_id"] = ""
    doc["custom_id"] = ""
    doc["device"]["persistent_id"] = ""
    assert fields(check(doc)) == {""}  # the event as a whole, not one field
    # session_id and unique_device_id do not count: the spec names these three.
    assert doc["session_id"] and doc["device"]["unique_device_id"]


@pytest.mark.parametrize("path", ["user_id", "device.persistent_id", "custom_id"])
def test_hook_router_validators_accept_any_one_user_id(path):
    doc = minimal("HOME")
    del doc["custom_id"]
    doc["device"] = {}
    assert fields(check(doc)) == {""}
    set_path(doc, path, "someone")
    assert check(doc) == []


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("id", "x" * 128),
        ("user_id", "x" * 128),
        ("custom_id", "ü" * 128),
        ("device.persistent_id", "x" * 128),
        ("items.0.quantity", 2**31 - 1),
        ("items.0.quantity", -(2**31)),
        ("items.0.quantity", 0),
        ("timestamp", "0"),
        ("timestamp", "0001617870506121"),
        ("timestamp", "9" * 19),
        ("revenue.amount", 0),
        ("revenue.amount", -1.5),
        ("revenue.amount", 1e300),
        ("revenue.currency", "UNKNOWN_CURRENCY"),
        ("channel_type", "UNKNOWN_CHANNEL_TYPE"),
        ("personalization_mode", "UNKNOWN_PERSONALIZATION_MODE"),
        ("personalization_mode", "ID_LESS"),
        ("domain", ""),
        ("page_id", "/classes/foo/lectures/bar."),
        ("x_unknown", {"nested": [1, None]}),
        ("device.x_unknown", 1),
        ("items.0.x_unknown", [1]),
        ("revenue.x_unknown", "y"),
    ],
)
def test_hook_router_validators_accept_unusual_but_valid_values(path, value):
    assert check(set_path(full("PURCHASE"), path, value)) == []


@pytest.mark.parametrize("body", [[], "event", 5, None, [FULL]])
def test_hook_router_validators_reject_a_non_object(body):
    assert check(body) == [FieldError((), "must be a JSON object")]


def test_hook_router_validators_schemas_are_independent():
    """Making a field required for one type must not leak into others."""
    by_type = {s.event_type: s.schema for s in VALIDATORS}
    assert by_type["PAGE_VIEW"]["page_id"].get("required") is True
    assert "required" not in by_type["PAGE_VIEW"]["domain"]
    assert "required" not in by_type["SEARCH"]["page_id"]
    assert "required" not in by_type["*"]["items"]


# -------------------------------------------------------------------- source


@pytest.fixture
def quarantine():
    q = Quarantine(None)
    yield q
    q.close()


def make_source(quarantine, **options) -> MolocoSource:
    return MolocoSource("moloco-in", options, quarantine=quarantine)


DEFAULT_HEADERS = {"x-api-key": "secret", "content-type": "application/json"}


def request(body: bytes = b"{}", *, platform: str = "ACME", headers=None) -> IngestRequest:
    return IngestRequest(
        method="POST",
        path=f"/rmp/event/v1/platforms/{platform}/userevents",
        headers=headers if headers is not None else DEFAULT_HEADERS,
        body=body,
        path_params={"platform": platform},
        request_id="req-1",
    )


def test_hook_router_sources_credential_is_the_x_api_key_header(quarantine):
    source = make_source(quarantine)
    assert source.credential(request()) == "secret"
    assert source.credential(request(headers={})) is None


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_hook_router_sources_split_one_event_with_the_platform(quarantine, path):
    body = load(path)
    envelope = make_source(quarantine).split(request(path.read_bytes()), body)
    assert list(envelope.events) == [body]
    assert envelope.events[0] is body
    assert envelope.meta == {"platform": "ACME"}


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ([FULL], "an array"),
        ("event", "a string"),
        (5, "a number"),
        (None, "null"),
        (True, "a boolean"),
    ],
)
def test_hook_router_sources_split_rejects_a_non_object(quarantine, body, kind):
    with pytest.raises(BadRequest) as info:
        make_source(quarantine).split(request(orjson.dumps(body)), body)
    assert info.value.status == 400
    assert info.value.message == f"request body must be a JSON object (one v1Event), not {kind}"


def test_hook_router_sources_authorize_any_platform_by_default(quarantine):
    source = make_source(quarantine)
    source.authorize(request(), Envelope([FULL], {"platform": "ANY"}))


def test_hook_router_sources_authorize_only_listed_platforms(quarantine):
    source = make_source(quarantine, platforms=["ACME", "OTHER"])
    source.authorize(request(), Envelope([FULL], {"platform": "ACME"}))
    with pytest.raises(Forbidden, match="'EVIL' is not served here"):
        source.authorize(request(platform="EVIL"), Envelope([FULL], {"platform": "EVIL"}))


def test_hook_router_sources_options_schema_is_valid_cerberus():
    validator = cerberus.Validator(MolocoSource.options_schema)
    assert validator.validate({})
    assert validator.validate({"platforms": ["ACME"]})
    assert not validator.validate({"platforms": []})
    assert not validator.validate({"platforms": "ACME"})
    assert not validator.validate({"platforms": [""]})


def test_hook_router_sources_rate_limit_keys(quarantine):
    source = make_source(quarantine)
    assert set(source.rate_limit_keys) == {"platform", "user"}
    envelope = Envelope([FULL], {"platform": "ACME"})
    assert source.rate_limit_key("platform", request(), envelope) == "ACME"
    assert source.rate_limit_key("user", request(), envelope) == "user_id:u-1"
    only_device = {"device": {"persistent_id": "pid"}, "custom_id": "c"}
    assert source.rate_limit_key("user", request(), Envelope([only_device])) == (
        "device.persistent_id:pid"
    )
    assert source.rate_limit_key("user", request(), Envelope([{"custom_id": "c"}])) == "custom_id:c"
    assert source.rate_limit_key("user", request(), Envelope([{"user_id": 5}])) is None
    assert source.rate_limit_key("user", request(), Envelope([{"device": "x"}])) is None
    assert source.rate_limit_key("other", request(), envelope) is None


def test_hook_router_sources_accepted_is_200_with_an_empty_object(quarantine):
    envelope = Envelope([FULL], {"platform": "ACME"})
    result = IngestResult(envelope, ids=["evt-1"])
    reply = make_source(quarantine).accepted(request(), result)
    assert (reply.status, reply.body) == (200, {})
    assert reply.content_type == "application/json"


async def test_hook_router_sources_accepted_after_quarantine_is_still_200(quarantine):
    """on_invalid: quarantine -- the event is kept, Moloco's client still sees 200 {}."""
    bad = {"event_type": "SEARCH"}
    errors = [FieldError(("search_query",), "required field")]
    await quarantine.add("moloco-in", 1, [(bad, [str(e) for e in errors])])
    result = IngestResult(Envelope([bad], {"platform": "ACME"}), ids=[None], failed={0: errors})
    reply = make_source(quarantine).accepted(request(), result)
    assert (reply.status, reply.body) == (200, {})
    total, (kept,) = await quarantine.list("moloco-in")
    assert (total, kept.event) == (1, bad)


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (BadRequest("request body is not valid JSON"), 400, 3),
        (Unauthorized("missing x-api-key"), 401, 16),
        (Forbidden("invalid x-api-key"), 403, 7),
        (NotFound("no such route"), 404, 5),
        (RateLimited("too many requests", headers={"Retry-After": "3"}), 429, 8),
        (InternalError("plugin crashed"), 500, 13),
        (MethodNotAllowed("use POST", headers={"Allow": "POST"}), 405, 12),
        (PayloadTooLarge("body over 1 MiB"), 413, 8),
        (RequestTimeout("body too slow"), 408, 4),
        (HeadersTooLarge("head over 16 KiB"), 431, 8),
        (Overloaded("spool full", headers={"Retry-After": "1"}), 503, 14),
    ],
)
def test_hook_router_sources_error_is_an_rpc_status(quarantine, error, status, code):
    reply = make_source(quarantine).error(request(), error)
    assert reply.status == status
    assert reply.body == {"code": code, "message": error.message, "details": []}
    assert reply.headers == error.headers
    assert reply.content_type == "application/json"


def test_hook_router_sources_error_headers_are_a_copy(quarantine):
    error = RateLimited("slow down", headers={"Retry-After": "3", "X-RateLimit-Remaining": "0"})
    reply = make_source(quarantine).error(request(), error)
    reply.headers["x"] = "y"
    assert error.headers == {"Retry-After": "3", "X-RateLimit-Remaining": "0"}


def test_hook_router_sources_error_for_an_unlisted_status_is_unknown(quarantine):
    class Teapot(BadRequest):
        status = 418

    reply = make_source(quarantine).error(request(), Teapot("short and stout"))
    assert (reply.status, reply.body["code"]) == (418, 2)


def test_hook_router_sources_validation_error_names_every_field(quarantine):
    doc = set_path(full("PURCHASE"), "items.0.id", 5)
    del doc["channel_type"]
    errors = check(doc)
    error = ValidationFailed("event 0 is invalid", errors=[(0, e) for e in errors])
    reply = make_source(quarantine).error(request(), error)
    assert reply.status == 400
    assert reply.body["code"] == 3
    assert reply.body["details"] == []
    assert reply.body["message"] == (
        "invalid event: channel_type: required field; items[0].id: must be of string type"
    )


def test_hook_router_sources_validation_error_without_fields_keeps_the_message(quarantine):
    reply = make_source(quarantine).error(request(), ValidationFailed("event is invalid"))
    assert reply.body == {"code": 3, "message": "event is invalid", "details": []}


def test_hook_router_sources_replies_are_json_serializable(quarantine):
    source = make_source(quarantine)
    replies: list[Reply] = [
        source.accepted(request(), IngestResult(Envelope([FULL]), ids=["a"])),
        source.error(request(), RateLimited("x", headers={"Retry-After": "1"})),
    ]
    for reply in replies:
        assert orjson.loads(orjson.dumps(reply.body)) == reply.body


# ---------------------------------------------------------------------- sink

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
def test_hook_router_sinks_build_request(path):
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
def test_hook_router_sinks_url(url, platform, expected):
    assert make_sink(url=url, platform=platform).build_request([b"{}"])[0] == expected


@pytest.mark.parametrize("size", [0, 2])
async def test_hook_router_sinks_send_takes_one_event(size):
    # The guard is the core's (Sink.send), from max_batch_events = 1.
    with pytest.raises(ValueError, match="one event per request"):
        await make_sink().send([b"{}"] * size)


def test_hook_router_sinks_build_request_headers_are_a_copy():
    sink = make_sink()
    sink.build_request([b"{}"])[2]["x-api-key"] = "changed"
    assert sink.build_request([b"{}"])[2]["x-api-key"] == "k-1"


async def test_hook_router_sinks_send_posts_the_built_request():
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


async def test_hook_router_sinks_send_maps_rejection():
    def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"code": 3, "message": "bad", "details": []})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(router.SinkRejected) as info:
            await make_sink(client).send([b"{}"])
    assert info.value.status == 400


def test_hook_router_sinks_encode_uses_the_codec_with_the_sink_options():
    event = CODEC.decode(load(PAYLOADS / "land.json"), id="r", received_at=0, meta={})
    sink = make_sink(type_map={"land": "HOME"})
    assert sink.encode(event)["event_type"] == "HOME"


def test_hook_router_sinks_options_schema_accepts_a_full_config():
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
def test_hook_router_sinks_options_schema_rejects(change, field):
    options = {**SINK_OPTIONS, **change}
    options = {k: v for k, v in options.items() if v is not None}
    validator = cerberus.Validator(MolocoSink.options_schema)
    assert not validator.validate(options)
    assert field in validator.errors


def test_channel_types_offered_to_the_sink_exclude_unknown():
    allowed = MolocoSink.options_schema["channel_type"]["allowed"]
    assert allowed == [c for c in CHANNEL_TYPES if c != "UNKNOWN_CHANNEL_TYPE"]
