"""Source: the defaults a vendor's source inherits, and the request a source sees."""

from __future__ import annotations

import pytest
from router_plugins.conscent.ingest import ConscentSource
from router_plugins.segmento.ingest import SegmentoSource

from router import BadRequest, IngestRequest, Source
from router.errors import RateLimited
from router.source import Envelope, IngestResult, IngestRoute, Reply

SECRET = "s3cret-value-1234"


class Minimal(Source):
    """A source that declares only what it must."""

    vendor = "minimal"
    routes = (IngestRoute("POST", "/in"),)


class Headered(Minimal):
    credential_header = "X-Api-Key"


def request(headers: dict[str, str] | None = None) -> IngestRequest:
    return IngestRequest("POST", "/in", headers or {})


def test_a_source_needs_no_quarantine_to_split():
    """``router translate`` splits request bodies with no storage at all."""
    exit_event = {"clientId": "c1", "eventType": "EXIT", "eventLocation": "PAGE"}
    source = ConscentSource("cli", {})
    assert source.quarantine is None
    envelope = source.split(request(), {"messageBody": [exit_event], "extra": 1})
    assert envelope.events == [exit_event]
    assert SegmentoSource("cli", {}).quarantine is None


def test_the_default_split_takes_one_object_and_refuses_anything_else():
    assert Minimal("m", {}).split(request(), {"a": 1}) == Envelope([{"a": 1}])
    for body in ([{"a": 1}], "a", 3, None):
        with pytest.raises(BadRequest, match="must be a JSON object"):
            Minimal("m", {}).split(request(), body)


def test_the_credential_is_read_from_auth_header_else_credential_header():
    headers = {"x-api-key": "from-class", "x-other": "from-config"}
    assert Minimal("m", {}).credential(request(headers)) is None
    assert Headered("h", {}).credential(request(headers)) == "from-class"
    configured = Headered("h", {"auth": {"keys": ["k"], "header": "X-Other"}})
    assert configured.credential(request(headers)) == "from-config"
    assert Headered("h", {"auth": None}).credential(request({})) is None


def test_the_request_schema_wraps_the_event_in_events_field():
    event = {"type": "object"}
    assert Minimal("m", {}).request_schema(event) is event

    class Batched(Minimal):
        events_field = "events"

    assert Batched("b", {}).request_schema(event) == {
        "type": "object",
        "required": ["events"],
        "properties": {"events": {"type": "array", "minItems": 1, "items": event}},
    }


def test_the_default_replies_and_their_headers():
    source = Minimal("m", {})
    result = IngestResult(Envelope([{}]), ["id-1"])
    assert source.accepted(request(), result) == Reply(200, {})
    error = RateLimited("slow down", headers={"Retry-After": "2"})
    reply = source.error(request(), error)
    assert reply == Reply(
        429, {"error": "Too Many Requests", "message": "slow down"}, {"Retry-After": "2"}
    )
    reply.headers["X"] = "y"
    assert error.headers == {"Retry-After": "2"}  # the reply has its own copy


def test_the_hooks_with_nothing_to_say_say_nothing():
    source = Minimal("m", {})
    envelope = Envelope([{}])
    assert source.authorize(request(), envelope) is None
    assert source.rate_limit_key("user", request(), envelope) is None
    assert source.error_statuses() == {}
    assert source.query_operation(Minimal.routes[0]) is None


def test_accepted_counts_the_events_that_got_an_id():
    assert IngestResult(Envelope([{}, {}, {}]), ["a", None, "c"]).accepted == 2


def test_ingest_request_repr_shows_no_header_value_query_value_or_body():
    ingest = IngestRequest(
        "POST",
        "/v1/events",
        {"x-api-key": SECRET, "content-type": "application/json"},
        body=b'{"user": "' + SECRET.encode() + b'"}',
        query={"token": SECRET},
    )
    text = repr(ingest)
    assert SECRET not in text
    assert "x-api-key" in text and "token" in text and "bytes" in text
