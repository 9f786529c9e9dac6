"""router.source: the defaults a vendor's source inherits, the request it sees, per-route envelopes.

Per-route envelopes, the route name on requests, where routes are served:

A small vendor defined here has two ingest routes with different envelopes
(a batch route and a single-event route) and a canonical-JSON sink: the kind
of third-party plugin the built-ins do not cover.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from router_plugins.conscent.ingest import ConscentSource
from router_plugins.segmento.ingest import SegmentoSource

from router import (
    FROM_SOURCE,
    BadRequest,
    Codec,
    Event,
    Identity,
    IngestRequest,
    IngestRoute,
    Reply,
    Sink,
    SinkRequest,
    Source,
    ValidatorSpec,
    hookimpl,
)
from router.errors import RateLimited
from router.source import Envelope, IngestResult
from router.testing.daemon import running_daemon


class DuoCodec(Codec):
    vendor = "duo"

    def event_type(self, raw: Any) -> str | None:
        return "*"

    def decode(self, raw, *, id, received_at, meta) -> Event:
        return Event(
            id=id,
            type=raw["type"],
            timestamp=received_at,
            received_at=received_at,
            vendor="duo",
            identity=Identity(user_id=raw["user"]),
            properties={"route_meta": dict(meta)},
        )

    def encode(self, event: Event, options: Mapping[str, Any]) -> dict[str, Any]:
        return {"type": event.type, "user": event.identity.user_id}


class DuoSource(Source):
    vendor = "duo"
    routes = (
        IngestRoute("POST", "/duo/batch", name="batch", events_field="batch"),
        IngestRoute("POST", "/duo/one", name="one", events_field=None),
        IngestRoute("POST", "/duo/legacy", name="legacy"),  # the class's events_field
    )
    events_field = "events"
    seen: list[str] = []

    def accepted(self, request: IngestRequest, result) -> Reply:
        self.seen.append(request.route)
        return Reply(200, {"ok": result.accepted})


class CanonicalSink(Sink):
    """A sink with no codec: canonical JSON, renamed by the core's ``type_map``."""

    kind = "canonical"
    options_schema = {"url": {"type": "string", "required": True}}

    def build_request(self, batch: Sequence[bytes]) -> SinkRequest:
        return SinkRequest(self.options["url"] + "/in", b"[" + b",".join(batch) + b"]", {})


DUO = SimpleNamespace(
    router_codecs=hookimpl(lambda: [DuoCodec()]),
    router_validators=hookimpl(
        lambda: [
            ValidatorSpec(
                "duo",
                "*",
                {"type": {"type": "string", "required": True}, "user": {"type": "string"}},
            )
        ]
    ),
    router_sources=hookimpl(lambda: [DuoSource]),
    router_sinks=hookimpl(lambda: [CanonicalSink]),
)


def config(tmp_path, url: str, **source: Any) -> dict[str, Any]:
    return {
        "sources": {"in": {"plugin": "duo", "auth": "none", **source}},
        "sinks": {
            "out": {
                "plugin": "canonical",
                "url": url,
                "batch": {"max_wait": 0.01},
                "type_map": {"page_view": "pageview"},
            }
        },
        "routes": [{"from": "in", "to": "out"}],
    }


@pytest.fixture
async def duo(tmp_path, fake_upstream):
    DuoSource.seen = []
    async with running_daemon(
        config(tmp_path, fake_upstream.url, prefix="/p", paths={"one": "/single"}),
        data_dir=tmp_path / "d",
        plugins=[("duo", DUO)],
    ) as rd:
        yield rd


async def test_each_route_has_its_own_envelope_and_its_name_on_the_request(duo, fake_upstream):
    batch = await duo.client.post(
        "/p/duo/batch", json={"batch": [{"type": "a", "user": "u"}], "sent_by": "sdk"}
    )
    one = await duo.client.post("/p/single", json={"type": "b", "user": "v"})
    legacy = await duo.client.post(
        "/p/duo/legacy", json={"events": [{"type": "c", "user": "w"}, {"type": "d", "user": "x"}]}
    )
    assert [r.json() for r in (batch, one, legacy)] == [{"ok": 1}, {"ok": 1}, {"ok": 2}]
    assert DuoSource.seen == ["batch", "one", "legacy"]
    # The default split: the other body fields are the envelope's meta.
    await fake_upstream.wait_for(lambda up: sum(len(r.json()) for r in up.accepted) == 4)
    sent = [e for r in fake_upstream.accepted for e in r.json()]
    metas = {e["type"]: e["properties"]["route_meta"] for e in sent}
    assert metas == {"a": {"sent_by": "sdk"}, "b": {}, "c": {}, "d": {}}


async def test_a_routes_envelope_names_its_field_in_errors(duo):
    wrong = await duo.client.post("/p/duo/batch", json={"events": [{"type": "a"}]})
    assert wrong.status_code == 400
    assert "batch: must be a non-empty array of events" in wrong.text
    invalid = await duo.client.post("/p/duo/batch", json={"batch": [{"type": "a"}, {"user": 1}]})
    assert invalid.status_code == 400
    assert "batch[1].type" in invalid.text and "batch[1].user" in invalid.text
    invalid = await duo.client.post("/p/single", json={"user": "u"})
    assert invalid.status_code == 400 and "type: required field" in invalid.text
    assert "[0]" not in invalid.text


async def test_openapi_documents_each_routes_envelope(duo):
    doc = (await duo.client.get("/openapi.json")).json()

    def body(path: str) -> dict:
        return doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]

    assert body("/p/duo/batch")["required"] == ["batch"]
    assert body("/p/duo/legacy")["required"] == ["events"]
    assert "required" not in body("/p/single") or body("/p/single")["required"] != ["batch"]


async def test_hook_router_sinks_a_third_party_sink_gets_the_cores_type_map(duo, fake_upstream):
    r = await duo.client.post("/p/single", json={"type": "page_view", "user": "u"})
    assert r.status_code == 200
    await fake_upstream.wait_for(1)
    [event] = fake_upstream.accepted[0].json()
    assert event["type"] == "pageview" and event["custom"] is True


def test_events_field_of_each_route():
    assert DuoSource.events_field_of("batch") == "batch"
    assert DuoSource.events_field_of("one") is None
    assert DuoSource.events_field_of("legacy") == "events"
    assert DuoSource.events_field_of("") == "events"
    assert IngestRoute("POST", "/x").events_field is FROM_SOURCE
    assert repr(FROM_SOURCE) == "FROM_SOURCE"


def test_a_source_reads_where_its_routes_are_served():
    source = DuoSource("in", {"plugin": "duo", "prefix": "/p", "paths": {"one": "/single"}})
    assert (source.prefix, dict(source.paths)) == ("/p", {"one": "/single"})
    assert [source.path_of(r) for r in DuoSource.routes] == [
        "/p/duo/batch",
        "/p/single",
        "/p/duo/legacy",
    ]
    bare = DuoSource("in", {"plugin": "duo"})
    assert (bare.prefix, dict(bare.paths), bare.path_of(DuoSource.routes[0])) == (
        "",
        {},
        "/duo/batch",
    )


def test_default_split_without_a_field_takes_the_body_as_one_event():
    class One(Source):
        vendor = "one"
        routes = (IngestRoute("POST", "/one"),)

    source = One("in", {})
    request = IngestRequest("POST", "/one", {}, route="ingest")
    assert list(source.split(request, {"a": 1}).events) == [{"a": 1}]
    with pytest.raises(BadRequest, match="JSON object"):
        source.split(request, [1])


def test_request_repr_names_the_route_and_hides_values():
    request = IngestRequest("POST", "/x", {"authorization": "secret"}, b"{}", route="batch")
    assert "route='batch'" in repr(request) and "secret" not in repr(request)
    assert orjson.dumps({"route": request.route}) == b'{"route":"batch"}'


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


def test_event_json_is_what_the_core_encoded_or_a_fresh_encoding():
    events = [{"b": 1, "a": [1.5, "é"]}, {}]
    fresh = IngestResult(Envelope(events), ["x", "y"])
    assert [fresh.event_json(i) for i in range(2)] == [b'{"b":1,"a":[1.5,"\xc3\xa9"]}', b"{}"]
    made = IngestResult(Envelope(events), ["x", "y"], dumped=[b"first", b"second"])
    assert made.event_json(1) == b"second"  # the core's bytes, not encoded again


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
