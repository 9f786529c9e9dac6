"""The conscent plugin: the ingest Source."""

from __future__ import annotations

import json
from pathlib import Path

import cerberus
import orjson
import pytest
from router_plugins.conscent.ingest import ConscentSource

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
    Unauthorized,
    ValidationFailed,
)

PAYLOADS = Path(__file__).parents[2] / "data" / "payloads" / "conscent"


def load(name: str):
    return json.loads((PAYLOADS / name).read_text())


def make_source(**options):
    return ConscentSource("web", options)


def request(body: bytes = b"") -> IngestRequest:
    return IngestRequest("POST", "/collect/event", {"content-type": "application/json"}, body=body)


@pytest.mark.parametrize("name", ["request.json", "request-messageheader.json"])
def test_split_keeps_events_and_headers_as_sent(name):
    body = load(name)
    envelope = make_source().split(request(), body)
    assert list(envelope.events) == body["messageBody"]
    # The whole body comes back from the envelope, whichever spelling was used.
    assert {"messageBody": list(envelope.events), **envelope.meta} == body


def test_split_meta_spelling():
    assert make_source().split(request(), load("request-messageheader.json")).meta == {
        "messageheader": {"source": "web", "appVersion": "2.4.1"}
    }
    assert make_source().split(request(), load("request.json")).meta == {"messageHeaders": {}}


def test_split_without_headers():
    envelope = make_source().split(request(), {"messageBody": [{"eventType": "PING"}]})
    assert envelope.meta == {}
    assert list(envelope.events) == [{"eventType": "PING"}]


def test_split_keeps_invalid_events_for_validation():
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
def test_split_malformed(body, message):
    with pytest.raises(BadRequest) as info:
        make_source().split(request(), body)
    assert info.value.message == message
    assert info.value.status == 400


def test_split_refuses_more_than_max_events():
    source = make_source(max_events=2)
    assert len(source.split(request(), {"messageBody": [{}, {}]}).events) == 2
    with pytest.raises(PayloadTooLarge) as info:
        source.split(request(), {"messageBody": [{}, {}, {}]})
    assert info.value.message == "messageBody holds 3 events; at most 2 per request"


def test_no_credential_header():
    assert make_source().credential(request()) is None


def events_of(*client_ids):
    return Envelope([{"clientId": c, "eventType": "PING"} for c in client_ids])


@pytest.mark.parametrize("auth", [None, {"keys": ["k"], "header": "x-key"}])
def test_authorize_without_allow_list_accepts_any_client(auth):
    make_source(auth=auth).authorize(request(), events_of("anyone", "else"))
    make_source().authorize(request(), Envelope([{}, 5]))


def test_authorize_allow_list():
    source = make_source(auth={"client_ids": ["client-a", "client-b"]})
    source.authorize(request(), events_of("client-a", "client-b", "client-a"))
    with pytest.raises(Forbidden) as info:
        source.authorize(request(), events_of("client-a", "client-c"))
    assert info.value.status == 403
    assert info.value.message == "messageBody[1].clientId: client id not allowed"


@pytest.mark.parametrize("sent", ["client-", "client-aa", "CLIENT-A", "clïent-a"])
def test_authorize_exact_match(sent):
    source = make_source(auth={"client_ids": ["client-a"]})
    with pytest.raises(Forbidden, match=r"messageBody\[0\]\.clientId"):
        source.authorize(request(), events_of(sent))


@pytest.mark.parametrize("event", [{}, {"clientId": ""}, {"clientId": 5}, "PING", None])
def test_authorize_missing_client_id(event):
    source = make_source(auth={"client_ids": ["client-a"]})
    with pytest.raises(Unauthorized) as info:
        source.authorize(request(), Envelope([{"clientId": "client-a"}, event]))
    assert info.value.message == "messageBody[1].clientId: a client id is required"


def test_rate_limit_key_is_the_client_id():
    source = make_source()
    envelope = Envelope([{}, {"clientId": ""}, {"clientId": "client-b"}, {"clientId": "x"}])
    assert source.rate_limit_key("client_id", request(), envelope) == "client-b"
    assert source.rate_limit_key("client_id", request(), Envelope([{}, 3])) is None
    assert source.rate_limit_key("remote_addr", request(), envelope) is None


def test_accepted_matches_the_documented_response():
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


def test_accepted_tells_which_events_were_quarantined():
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
def test_error_body_has_the_documented_shape(error, status, title):
    reply = make_source().error(request(), error)
    assert reply.status == status
    assert reply.body == {"error": title, "message": error.message, "statusCode": status}
    assert reply.body.keys() == load("error-400.json").keys()


def test_error_example_from_the_doc():
    reply = make_source().error(request(), BadRequest("invalid event type"))
    assert reply.body == load("error-400.json")


def test_error_passes_rate_limit_headers_through():
    headers = {
        "X-RateLimit-Limit": "1000",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "1672766785",
        "Retry-After": "12",
    }
    reply = make_source().error(request(), RateLimited("rate limit exceeded", headers=headers))
    assert reply.status == 429
    assert reply.headers == headers


def test_error_passes_retry_after_through():
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
def test_options_schema(options, valid):
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
def test_auth_schema(auth, valid):
    assert cerberus.Validator(ConscentSource.auth_schema).validate(auth) is valid
