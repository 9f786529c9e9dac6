"""The endu plugin: the ingest Source."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from router_plugins.endu.ingest import DEFAULT_PATH, EnduSource

from router import (
    BadRequest,
    Envelope,
    FieldError,
    IngestRequest,
    IngestResult,
    RateLimited,
    Unauthorized,
    ValidationFailed,
)
from tests.plugins.endu.events import BASE

PAYLOADS = Path(__file__).parents[2] / "data" / "payloads" / "endu"
VALID_EXAMPLES = sorted(p.name for p in PAYLOADS.glob("*.json") if p.stem != "base_insufficient")


def load(name: str) -> dict:
    return json.loads((PAYLOADS / name).read_text())


def fields(errors: list[FieldError]) -> set[str]:
    return {e.field for e in errors}


@pytest.fixture
def source():
    return EnduSource("endu-in", {"plugin": "endu", "auth": {"keys": ["k"]}})


def request(body: bytes = b"{}", **headers: str) -> IngestRequest:
    return IngestRequest(
        "POST", DEFAULT_PATH, {k.replace("_", "-"): v for k, v in headers.items()}, body
    )


def test_declares_one_post_route():
    assert [(r.method, r.path, r.name, r.handler) for r in EnduSource.routes] == [
        ("POST", "/api/events/record", "ingest", None)
    ]
    assert EnduSource.events_field is None
    assert EnduSource.default_on_invalid == "reject"
    assert EnduSource.credential_header == "authorization"


@pytest.mark.parametrize("name", VALID_EXAMPLES)
def test_split_one_event(source, name):
    body = load(name)
    envelope = source.split(request(), body)
    assert list(envelope.events) == [body]
    assert envelope.meta == {}


def test_split_refuses_an_array(source):
    with pytest.raises(BadRequest, match="one event per request"):
        source.split(request(), [BASE, BASE])


@pytest.mark.parametrize("body", ["event", 5, None, True])
def test_split_refuses_non_object(source, body):
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
def test_credential_from_authorization(source, headers, expected):
    assert source.credential(request(**headers)) == expected


def test_credential_from_configured_header(source):
    options = {"plugin": "endu", "auth": {"keys": ["k"], "header": "X-Chatsight-Api-Auth"}}
    source = EnduSource("endu-in", options, quarantine=source.quarantine)
    assert source.credential(request(x_chatsight_api_auth="s3cret")) == "s3cret"
    assert source.credential(request(authorization="Bearer s3cret")) is None


@pytest.mark.parametrize(
    ("key", "expected"),
    [("property_id", "D#1007491775344160808"), ("organization_id", "848WN4oEUgisKrV9dY9Ni6")],
)
def test_rate_limit_keys(source, key, expected):
    assert key in EnduSource.rate_limit_keys
    assert source.rate_limit_key(key, request(), Envelope([BASE])) == expected


@pytest.mark.parametrize(
    ("key", "body"),
    [("property_id", {**BASE, "property_id": 5}), ("property_id", {}), ("c_user_id", BASE)],
)
def test_rate_limit_key_unusable(source, key, body):
    assert source.rate_limit_key(key, request(), Envelope([body])) is None


def test_accepted_is_an_empty_200(source):
    reply = source.accepted(request(), IngestResult(Envelope([BASE]), ["0190-id"]))
    assert (reply.status, reply.body) == (200, b"")
    assert not reply.content_type.startswith("application/json")


def test_accepted_quarantined_event_is_still_an_empty_200(source):
    failed = {0: [FieldError(("timestamp",), "required field")]}
    reply = source.accepted(request(), IngestResult(Envelope([{}]), [None], failed))
    assert (reply.status, reply.body) == (200, b"")


def test_error_validation_failed(source):
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


def test_error_passes_headers_through(source):
    error = RateLimited("slow down", headers={"Retry-After": "3", "X-RateLimit-Limit": "10"})
    reply = source.error(request(), error)
    assert reply.status == 429
    assert reply.headers == {"Retry-After": "3", "X-RateLimit-Limit": "10"}
    assert reply.body == {
        "success": False,
        "error": {"code": 429, "title": "Too Many Requests", "message": "slow down"},
    }


def test_error_unauthorized(source):
    reply = source.error(request(), Unauthorized("missing API key"))
    assert reply.status == 401
    assert reply.body["error"]["message"] == "missing API key"
    assert "fields" not in reply.body["error"]
