"""The conscent plugin: hooks, validators, the ingest Source and the Sink.

The codec has its own file, ``test_conscent_codec.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import cerberus
import httpx
import orjson
import pluggy
import pytest
import router_plugins.conscent
from router_plugins.conscent.codec import ConscentCodec
from router_plugins.conscent.ingest import ConscentSource
from router_plugins.conscent.schema import CLICK_ACTIONS, EVENT_LOCATIONS, EVENT_TYPES, schema_for
from router_plugins.conscent.sink import ConscentSink

import router
import router.hookspecs
from router import (
    BadRequest,
    Envelope,
    FieldError,
    Forbidden,
    IngestRequest,
    IngestResult,
    InternalError,
    MethodNotAllowed,
    NotFound,
    Overloaded,
    PayloadTooLarge,
    RateLimited,
    SinkRejected,
    SinkUnavailable,
    Unauthorized,
    ValidationFailed,
)
from router.validation import Validators

PAYLOADS = Path(__file__).parent.parent / "data" / "payloads" / "conscent"
EXAMPLES = {t: f"{t.lower()}.json" for t in EVENT_TYPES}
UUID = "c523aa41-9f0f-4fc2-bc96-5a8ff5520b78"


def load(name: str):
    return json.loads((PAYLOADS / name).read_text())


@pytest.fixture
def pm():
    pm = pluggy.PluginManager("router")
    pm.add_hookspecs(router.hookspecs)
    pm.register(router_plugins.conscent, name="conscent")
    return pm


@pytest.fixture(scope="module")
def validators():
    return Validators(router_plugins.conscent.router_validators())


def check(validators, doc):
    return validators.check("conscent", ConscentCodec().event_type(doc), doc)


def fields(errors):
    return {error.field for error in errors}


# --------------------------------------------------------------------------
# Registration hooks
# --------------------------------------------------------------------------


def test_hook_router_codecs_registers_the_conscent_codec(pm):
    codecs = [c for result in pm.hook.router_codecs() for c in result]
    assert [type(c) for c in codecs] == [ConscentCodec]
    assert codecs[0].vendor == "conscent"


def test_hook_router_validators_one_spec_per_type_and_a_fallback(pm):
    specs = [s for result in pm.hook.router_validators() for s in result]
    assert {s.vendor for s in specs} == {"conscent"}
    assert sorted(s.event_type for s in specs) == sorted([*EVENT_TYPES, "*"])
    assert Validators(specs).event_types("conscent") == sorted(EVENT_TYPES)


def test_hook_router_sources_registers_the_collect_event_api(pm):
    sources = [s for result in pm.hook.router_sources() for s in result]
    assert sources == [ConscentSource]
    source = sources[0]
    assert source.vendor == "conscent"
    assert [(r.method, r.path, r.name, r.handler) for r in source.routes] == [
        ("POST", "/collect/event", "ingest", None)
    ]
    assert source.events_field == "messageBody"
    assert source.default_on_invalid == "reject"
    assert source.credential_header is None
    assert source.rate_limit_keys == ("client_id",)


def test_hook_router_sinks_registers_the_conscent_sink(pm):
    sinks = [s for result in pm.hook.router_sinks() for s in result]
    assert sinks == [ConscentSink]
    assert sinks[0].kind == sinks[0].vendor == "conscent"
    assert sinks[0].max_batch_events == 100
    assert sinks[0].delivery_defaults["batch"]["max_events"] <= sinks[0].max_batch_events


def test_hooks_take_no_config_argument(pm):
    for name in ("router_codecs", "router_validators", "router_sources", "router_sinks"):
        (impl,) = getattr(pm.hook, name).get_hookimpls()
        assert impl.argnames == ()


# --------------------------------------------------------------------------
# Validators
# --------------------------------------------------------------------------

REQUIRED = {
    "PING": ["clientId", "eventType", "eventLocation", "anonId", "pingId", "active"],
    "CLICK": ["clientId", "eventType", "eventLocation", "anonId"],
    "EXIT": ["clientId", "eventType", "eventLocation", "anonId"],
    "PURCHASE": ["clientId", "eventType", "eventLocation", "anonId", "userId", "purchaseId"],
    "TRANSACTION": [
        "clientId",
        "eventType",
        "eventLocation",
        "anonId",
        "userId",
        "transactionId",
    ],
    "REGISTRATION": ["clientId", "eventType", "eventLocation", "anonId", "userId"],
    "VALIDATION": ["clientId", "eventType", "eventLocation", "anonId", "userId"],
}


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_hook_router_validators_accepts_every_documented_type(validators, event_type):
    assert check(validators, load(EXAMPLES[event_type])) == []


@pytest.mark.parametrize("name", ["request.json", "request-messageheader.json"])
def test_hook_router_validators_accepts_the_request_examples(validators, name):
    for event in load(name)["messageBody"]:
        assert check(validators, event) == []


@pytest.mark.parametrize(
    ("event_type", "field"),
    [(t, f) for t, required in REQUIRED.items() for f in required if f != "eventType"],
)
def test_hook_router_validators_required_field_missing(validators, event_type, field):
    doc = load(EXAMPLES[event_type])
    del doc[field]
    errors = check(validators, doc)
    assert [(e.field, e.message) for e in errors] == [(field, "required field")]


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_hook_router_validators_every_type_lists_exactly_the_documented_required_fields(
    validators, event_type
):
    """Only the required fields of the doc: the rest of an example can go."""
    doc = {f: v for f, v in load(EXAMPLES[event_type]).items() if f in REQUIRED[event_type]}
    assert check(validators, doc) == []
    assert fields(validators.check("conscent", event_type, {})) == set(REQUIRED[event_type])


@pytest.mark.parametrize("event_type", EVENT_TYPES)
@pytest.mark.parametrize("bad", ["FOO", "page", "", None])
def test_hook_router_validators_event_location_enum(validators, event_type, bad):
    doc = {**load(EXAMPLES[event_type]), "eventLocation": bad}
    assert fields(check(validators, doc)) == {"eventLocation"}


@pytest.mark.parametrize("location", EVENT_LOCATIONS)
def test_hook_router_validators_every_event_location_allowed(validators, location):
    assert check(validators, {**load("exit.json"), "eventLocation": location}) == []


@pytest.mark.parametrize("action", CLICK_ACTIONS)
def test_hook_router_validators_every_click_action_allowed(validators, action):
    assert check(validators, {**load("click.json"), "clickAction": action}) == []


@pytest.mark.parametrize("bad", ["FOO", "buy_now", "", None, 3])
def test_hook_router_validators_click_action_enum(validators, bad):
    errors = check(validators, {**load("click.json"), "clickAction": bad})
    assert fields(errors) == {"clickAction"}


def test_hook_router_validators_unknown_value_message(validators):
    errors = check(validators, {**load("click.json"), "eventLocation": "FOO"})
    assert [str(e) for e in errors] == ["eventLocation: unallowed value FOO"]


# JSON booleans are not integers (router.validation.SchemaValidator), even if true == 1.
@pytest.mark.parametrize("bad", [2, -1, "1", 1.0, None, True, False])
def test_hook_router_validators_active_is_0_or_1(validators, bad):
    assert fields(check(validators, {**load("ping.json"), "active": bad})) == {"active"}


@pytest.mark.parametrize("value", [0, 1])
def test_hook_router_validators_active_values(validators, value):
    assert check(validators, {**load("ping.json"), "active": value}) == []


@pytest.mark.parametrize(
    ("event_type", "field"), [*((t, "anonId") for t in EVENT_TYPES), ("PING", "pingId")]
)
@pytest.mark.parametrize(
    "bad",
    [
        "not-a-uuid",
        "c523aa419f0f4fc2bc965a8ff5520b78",  # no hyphens
        "c523aa41-9f0f-4fc2-bc96-5a8ff5520b7",  # one digit short
        "c523aa41-9f0f-4fc2-bc96-5a8ff5520b78a",
        "c523aa41-9f0f-4fc2-bc96-5a8ff5520b78\n",
        "{c523aa41-9f0f-4fc2-bc96-5a8ff5520b78}",
        "g523aa41-9f0f-4fc2-bc96-5a8ff5520b78",
        "",
        42,
    ],
)
def test_hook_router_validators_uuid_fields(validators, event_type, field, bad):
    doc = {**load(EXAMPLES[event_type]), field: bad}
    assert fields(check(validators, doc)) == {field}


@pytest.mark.parametrize("good", [UUID.upper(), "00000000-0000-0000-0000-000000000000"])
def test_hook_router_validators_uuid_any_case_and_version(validators, good):
    assert check(validators, {**load("ping.json"), "anonId": good, "pingId": good}) == []


# A wrong-typed value for every field of every type.
WRONG_TYPES = {
    "clientId": 123,
    "eventLocation": 1,
    "anonId": ["x"],
    "userId": 1029,
    "pingId": 5,
    "active": "1",
    "clickAction": ["BUY_NOW"],
    "purchaseId": 77120,
    "transactionId": {"id": "t"},
}


@pytest.mark.parametrize(
    ("event_type", "field"),
    [(t, f) for t in EVENT_TYPES for f in schema_for(t) if f != "eventType"],
)
def test_hook_router_validators_wrong_type(validators, event_type, field):
    doc = {**load(EXAMPLES[event_type]), field: WRONG_TYPES[field]}
    assert fields(check(validators, doc)) == {field}


@pytest.mark.parametrize(
    ("event_type", "field"),
    [
        *((t, "clientId") for t in EVENT_TYPES),
        *((t, "userId") for t in ("PURCHASE", "TRANSACTION", "REGISTRATION", "VALIDATION")),
        ("PURCHASE", "purchaseId"),
        ("TRANSACTION", "transactionId"),
    ],
)
@pytest.mark.parametrize("bad", ["", None])
def test_hook_router_validators_ids_are_non_empty_strings(validators, event_type, field, bad):
    doc = {**load(EXAMPLES[event_type]), field: bad}
    assert fields(check(validators, doc)) == {field}


@pytest.mark.parametrize("event_type", ["PING", "CLICK", "EXIT"])
@pytest.mark.parametrize("user_id", ["", None, "u-1"])
def test_hook_router_validators_optional_user_id_may_be_empty(validators, event_type, user_id):
    assert check(validators, {**load(EXAMPLES[event_type]), "userId": user_id}) == []


def test_hook_router_validators_unknown_fields_allowed(validators):
    doc = {**load("purchase.json"), "amount": "12.50", "meta": {"plan": "annual"}}
    assert check(validators, doc) == []


def test_hook_router_validators_type_spec_rejects_another_type(validators):
    errors = validators.check("conscent", "PING", {**load("ping.json"), "eventType": "CLICK"})
    assert [str(e) for e in errors] == ["eventType: unallowed value CLICK"]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"clientId": "c"}, "eventType: required field"),
        ({"eventType": "FOO"}, "eventType: unallowed value FOO"),
        ({"eventType": "ping"}, "eventType: unallowed value ping"),
        ({"eventType": 7}, "eventType: must be of string type"),
        ({"eventType": None}, "eventType: null value not allowed"),
    ],
)
def test_hook_router_validators_fallback_reports_missing_or_unknown_type(validators, doc, message):
    assert [str(e) for e in check(validators, doc)] == [message]


def test_hook_router_validators_non_object_event(validators):
    assert [str(e) for e in check(validators, ["PING"])] == ["must be a JSON object"]


# --------------------------------------------------------------------------
# Source
# --------------------------------------------------------------------------


def make_source(**options):
    return ConscentSource("web", options)


def request(body: bytes = b"") -> IngestRequest:
    return IngestRequest("POST", "/collect/event", {"content-type": "application/json"}, body=body)


@pytest.mark.parametrize("name", ["request.json", "request-messageheader.json"])
def test_hook_router_sources_split_keeps_events_and_headers_as_sent(name):
    body = load(name)
    envelope = make_source().split(request(), body)
    assert list(envelope.events) == body["messageBody"]
    # The whole body comes back from the envelope, whichever spelling was used.
    assert {"messageBody": list(envelope.events), **envelope.meta} == body


def test_hook_router_sources_split_meta_spelling():
    assert make_source().split(request(), load("request-messageheader.json")).meta == {
        "messageheader": {"source": "web", "appVersion": "2.4.1"}
    }
    assert make_source().split(request(), load("request.json")).meta == {"messageHeaders": {}}


def test_hook_router_sources_split_without_headers():
    envelope = make_source().split(request(), {"messageBody": [{"eventType": "PING"}]})
    assert envelope.meta == {}
    assert list(envelope.events) == [{"eventType": "PING"}]


def test_hook_router_sources_split_keeps_invalid_events_for_validation():
    envelope = make_source().split(request(), {"messageBody": [1, "x", None]})
    assert list(envelope.events) == [1, "x", None]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([{"eventType": "PING"}], "request body must be a JSON object"),
        ("messageBody", "request body must be a JSON object"),
        (None, "request body must be a JSON object"),
        ({}, "messageBody is required"),
        ({"messageheader": {}}, "messageBody is required"),
        ({"messageBody": {"eventType": "PING"}}, "messageBody must be an array of events"),
        ({"messageBody": "[]"}, "messageBody must be an array of events"),
        ({"messageBody": None}, "messageBody must be an array of events"),
        ({"messageBody": []}, "messageBody must not be empty"),
        ({"messageBody": [{}], "messageHeaders": []}, "messageHeaders must be an object"),
        ({"messageBody": [{}], "messageheader": "x"}, "messageheader must be an object"),
    ],
)
def test_hook_router_sources_split_malformed(body, message):
    with pytest.raises(BadRequest) as info:
        make_source().split(request(), body)
    assert info.value.message == message
    assert info.value.status == 400


def test_hook_router_sources_max_events():
    source = make_source(max_events=2)
    assert len(source.split(request(), {"messageBody": [{}, {}]}).events) == 2
    with pytest.raises(PayloadTooLarge) as info:
        source.split(request(), {"messageBody": [{}, {}, {}]})
    assert info.value.message == "messageBody holds 3 events; at most 2 per request"


def test_hook_router_sources_no_credential_header():
    assert make_source().credential(request()) is None


def events_of(*client_ids):
    return Envelope([{"clientId": c, "eventType": "PING"} for c in client_ids])


@pytest.mark.parametrize("auth", [None, {"keys": ["k"], "header": "x-key"}])
def test_hook_router_sources_authorize_without_allow_list_accepts_any_client(auth):
    make_source(auth=auth).authorize(request(), events_of("anyone", "else"))
    make_source().authorize(request(), Envelope([{}, 5]))


def test_hook_router_sources_authorize_allow_list():
    source = make_source(auth={"client_ids": ["client-a", "client-b"]})
    source.authorize(request(), events_of("client-a", "client-b", "client-a"))
    with pytest.raises(Forbidden) as info:
        source.authorize(request(), events_of("client-a", "client-c"))
    assert info.value.status == 403
    assert info.value.message == "messageBody[1].clientId: client id not allowed"


@pytest.mark.parametrize("sent", ["client-", "client-aa", "CLIENT-A", "clïent-a"])
def test_hook_router_sources_authorize_exact_match(sent):
    source = make_source(auth={"client_ids": ["client-a"]})
    with pytest.raises(Forbidden, match=r"messageBody\[0\]\.clientId"):
        source.authorize(request(), events_of(sent))


@pytest.mark.parametrize("event", [{}, {"clientId": ""}, {"clientId": 5}, "PING", None])
def test_hook_router_sources_authorize_missing_client_id(event):
    source = make_source(auth={"client_ids": ["client-a"]})
    with pytest.raises(Unauthorized) as info:
        source.authorize(request(), Envelope([{"clientId": "client-a"}, event]))
    assert info.value.message == "messageBody[1].clientId: a client id is required"


def test_hook_router_sources_rate_limit_key_is_the_client_id():
    source = make_source()
    envelope = Envelope([{}, {"clientId": ""}, {"clientId": "client-b"}, {"clientId": "x"}])
    assert source.rate_limit_key("client_id", request(), envelope) == "client-b"
    assert source.rate_limit_key("client_id", request(), Envelope([{}, 3])) is None
    assert source.rate_limit_key("remote_addr", request(), envelope) is None


def test_hook_router_sources_accepted_matches_the_documented_response():
    body = load("request.json")
    envelope = make_source().split(request(), body)
    reply = make_source().accepted(request(), IngestResult(envelope, ["id-0", "id-1"]))
    assert reply.status == 201
    assert reply.content_type == "application/json"
    documented = load("response-201.json")
    assert len(reply.body) == 2
    for record in reply.body:
        assert record.keys() == documented[0].keys()
        assert record["headers"] == {}
        assert isinstance(record["value"], str)
    assert [json.loads(r["value"]) for r in reply.body] == body["messageBody"]
    # JSON-serializable as it stands.
    assert orjson.loads(orjson.dumps(reply.body)) == reply.body


def test_hook_router_sources_accepted_tells_which_events_were_quarantined():
    events = [load("ping.json"), {**load("click.json"), "eventLocation": "FOO"}, {"x": 1}, 7]
    result = IngestResult(
        Envelope(events),
        ["id-0", None, None, None],
        failed={
            1: [FieldError(("eventLocation",), "unallowed value FOO")],
            2: [
                FieldError(("anonId",), "required field"),
                FieldError(("eventType",), "required field"),
            ],
            3: [FieldError((), "must be a JSON object")],
        },
    )
    reply = make_source(on_invalid="quarantine").accepted(request(), result)
    assert reply.status == 201
    assert [r["headers"] for r in reply.body] == [
        {},
        {"status": "quarantined", "message": "messageBody[1].eventLocation: unallowed value FOO"},
        {
            "status": "quarantined",
            "message": "messageBody[2].anonId: required field; "
            "messageBody[2].eventType: required field",
        },
        {"status": "quarantined", "message": "messageBody[3]: must be a JSON object"},
    ]
    assert [json.loads(r["value"]) for r in reply.body] == events


ERRORS = [
    (BadRequest("messageBody must not be empty"), 400, "Bad Request"),
    (
        ValidationFailed("messageBody[2].eventLocation: unallowed value FOO"),
        400,
        "Bad Request",
    ),
    (Unauthorized("messageBody[0].clientId: a client id is required"), 401, "Unauthorized"),
    (Forbidden("messageBody[1].clientId: client id not allowed"), 403, "Forbidden"),
    (NotFound("no route"), 404, "Not Found"),
    (MethodNotAllowed("use POST"), 405, "Method Not Allowed"),
    (PayloadTooLarge("body exceeds 1048576 bytes"), 413, "Payload Too Large"),
    (RateLimited("rate limit exceeded"), 429, "Too Many Requests"),
    (InternalError("internal error"), 500, "Internal Server Error"),
    (Overloaded("spool full"), 503, "Service Unavailable"),
]


@pytest.mark.parametrize(("error", "status", "title"), ERRORS)
def test_hook_router_sources_error_body(error, status, title):
    reply = make_source().error(request(), error)
    assert reply.status == status
    assert reply.body == {"error": title, "message": error.message, "statusCode": status}
    assert reply.body.keys() == load("error-400.json").keys()


def test_hook_router_sources_error_example_from_the_doc():
    reply = make_source().error(request(), BadRequest("invalid event type"))
    assert reply.body == load("error-400.json")


def test_hook_router_sources_error_passes_rate_limit_headers_through():
    headers = {
        "X-RateLimit-Limit": "1000",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "1672766785",
        "Retry-After": "12",
    }
    reply = make_source().error(request(), RateLimited("rate limit exceeded", headers=headers))
    assert reply.status == 429
    assert reply.headers == headers


def test_hook_router_sources_error_passes_retry_after_through():
    reply = make_source().error(request(), Overloaded("spool full", headers={"Retry-After": "1"}))
    assert (reply.status, reply.headers) == (503, {"Retry-After": "1"})


@pytest.mark.parametrize(
    ("options", "valid"),
    [
        ({}, True),
        ({"max_events": 500}, True),
        ({"max_events": None}, True),
        ({"max_events": 0}, False),
        ({"max_events": "10"}, False),
        ({"max_event": 10}, False),
    ],
)
def test_hook_router_sources_options_schema(options, valid):
    assert cerberus.Validator(ConscentSource.options_schema).validate(options) is valid


@pytest.mark.parametrize(
    ("auth", "valid"),
    [
        ({"client_ids": ["a", "b"]}, True),
        ({"client_ids": []}, False),
        ({"client_ids": [""]}, False),
        ({"client_ids": "a"}, False),
        ({"client_ids": [1]}, False),
    ],
)
def test_hook_router_sources_auth_schema(auth, valid):
    assert cerberus.Validator(ConscentSource.auth_schema).validate(auth) is valid


# --------------------------------------------------------------------------
# Sink
# --------------------------------------------------------------------------

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


def test_hook_router_sinks_build_request():
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
def test_hook_router_sinks_url_joins_the_path(url):
    assert make_sink(url=url).build_request(encoded("exit.json"))[0] == (
        "https://collections.conscent.in/collect/event"
    )


def test_hook_router_sinks_url_keeps_a_path_prefix():
    sink = make_sink(url="http://127.0.0.1:8080/conscent/")
    assert sink.build_request(encoded("exit.json"))[0] == (
        "http://127.0.0.1:8080/conscent/collect/event"
    )


def test_hook_router_sinks_api_key_header():
    _, _, headers = make_sink(api_key="s3cret").build_request(encoded("exit.json"))
    assert headers["x-api-key"] == "s3cret"
    sink = make_sink(api_key="s3cret", api_key_header="Authorization")
    _, _, headers = sink.build_request(encoded("exit.json"))
    assert headers == {"content-type": "application/json", "authorization": "s3cret"}


def test_hook_router_sinks_build_request_does_not_share_headers():
    sink = make_sink(api_key="s3cret")
    sink.build_request(encoded("exit.json"))[2]["x-api-key"] = "changed"
    assert sink.build_request(encoded("exit.json"))[2]["x-api-key"] == "s3cret"


def test_hook_router_sinks_encode_uses_the_sink_options():
    event = ConscentCodec().decode(
        load("exit.json"), id="e1", received_at=1_700_000_000_000, meta={}
    )
    event.extras.clear()  # as if it came from another vendor
    assert make_sink().encode(event)["clientId"] == "client-a"


async def test_hook_router_sinks_send_posts_the_built_request():
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
async def test_hook_router_sinks_send_maps_upstream_errors(status, error):
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
def test_hook_router_sinks_options_schema(options, valid):
    assert cerberus.Validator(ConscentSink.options_schema).validate(options) is valid
