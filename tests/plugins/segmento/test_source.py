"""SegmentoSource: envelope, success and error bodies, and the failed-events listing."""

from __future__ import annotations

import json
from pathlib import Path

import cerberus
import pytest
from router_plugins.segmento.ingest import MAX_PER_PAGE, SegmentoSource

from router import (
    BadRequest,
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
from router.quarantine import Quarantine

PAYLOADS = Path(__file__).parents[2] / "data" / "payloads" / "segmento"
POST = IngestRequest(
    "POST", "/api/v5/segmento/user-events", {"authkey": "k-1", "content-type": "application/json"}
)


def get(**query: str) -> IngestRequest:
    return IngestRequest("GET", "/api/v5/segmento/user-events/failed", {}, query=query)


@pytest.fixture
def quarantine():
    store = Quarantine(None)
    yield store
    store.close()


@pytest.fixture
def source(quarantine) -> SegmentoSource:
    return SegmentoSource("shop", {}, quarantine=quarantine)


def test_class_declares_the_api():
    assert SegmentoSource.vendor == "segmento"
    assert SegmentoSource.events_field == "data"
    assert SegmentoSource.credential_header == "authkey"
    assert SegmentoSource.default_on_invalid == "quarantine"
    routes = {route.name: route for route in SegmentoSource.routes}
    assert set(routes) == {"ingest", "failed"}
    assert (routes["ingest"].method, routes["ingest"].path) == (
        "POST",
        "/api/v5/segmento/user-events",
    )
    assert routes["ingest"].handler is None
    assert (routes["failed"].method, routes["failed"].path) == (
        "GET",
        "/api/v5/segmento/user-events/failed",
    )
    assert callable(getattr(SegmentoSource, routes["failed"].handler))


def test_credential_is_the_authkey_header(source):
    assert source.credential(POST) == "k-1"
    assert source.credential(get()) is None


@pytest.mark.parametrize(
    ("options", "ok"),
    [({}, True), ({"failed_per_page": 10}, True), ({"failed_per_page": 0}, False)],
)
def test_options_schema(options, ok):
    assert cerberus.Validator(SegmentoSource.options_schema).validate(options) is ok


# ====================================================================== split


@pytest.mark.parametrize("path", sorted(PAYLOADS.glob("*.json")), ids=lambda p: p.stem)
def test_split_documented_bodies(source, path):
    body = json.loads(path.read_text())
    envelope = source.split(POST, body)
    assert list(envelope.events) == body["data"]
    assert dict(envelope.meta) == {}


def test_split_keeps_malformed_events_for_validation(source):
    # A non-object element is an invalid event (quarantined), not a bad request.
    envelope = source.split(POST, {"data": [{"event_name": "x"}, "oops", None]})
    assert list(envelope.events) == [{"event_name": "x"}, "oops", None]


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ([{"event_name": "x"}], "body", "request body must be a JSON object"),
        ("data", "body", "request body must be a JSON object"),
        ({}, "data", "data is required: an array of events"),
        ({"events": []}, "data", "data is required: an array of events"),
        ({"data": {"event_name": "x"}}, "data", "data must be an array of events"),
        ({"data": None}, "data", "data must be an array of events"),
        ({"data": []}, "data", "data must hold at least one event"),
    ],
)
def test_split_malformed_envelope_is_bad_request(source, body, field, message):
    with pytest.raises(BadRequest) as info:
        source.split(POST, body)
    assert info.value.status == 400
    assert info.value.message == message
    assert info.value.errors == [(None, FieldError((field,), message))]
    reply = source.error(POST, info.value)
    assert reply.body["errors"] == {field: [message]}


# ====================================================================== accepted


def test_accepted_all(source):
    envelope = source.split(POST, {"data": [{"event_name": "a"}, {"event_name": "b"}]})
    reply = source.accepted(POST, IngestResult(envelope, ["id-0", "id-1"]))
    assert reply.status == 200
    assert reply.content_type == "application/json"
    assert reply.body == {
        "status": "success",
        "hasError": False,
        "message": "2 events accepted, 0 failed",
        "data": {"accepted": 2, "failed": 0, "failed_events": []},
    }


def test_accepted_with_failed_events(source):
    events = [
        {"event_name": "product-viewed", "visitor_id": "v", "event_properties": {}},
        {"event_name": "page-view", "visitor_id": "v", "event_properties": {"title": "T"}},
        "not an event",
        {"visitor_id": "v"},
    ]
    envelope = source.split(POST, {"data": events})
    failed = {
        3: [
            FieldError(("event_name",), "required field"),
            FieldError(("event_properties",), "required field"),
        ],
        0: [FieldError(("event_properties", "product_id"), "required field")],
        2: [FieldError((), "must be a JSON object")],
    }
    reply = source.accepted(POST, IngestResult(envelope, [None, "id-1", None, None], failed))
    assert reply.status == 200
    assert reply.body == {
        "status": "success",
        "hasError": False,
        "message": "1 events accepted, 3 failed",
        "data": {
            "accepted": 1,
            "failed": 3,
            "failed_events": [
                {
                    "index": 0,
                    "event_name": "product-viewed",
                    "reason": "event_properties.product_id: required field",
                },
                {"index": 2, "event_name": None, "reason": "must be a JSON object"},
                {
                    "index": 3,
                    "event_name": None,
                    "reason": "event_name: required field; event_properties: required field",
                },
            ],
        },
    }


# ====================================================================== error


def test_error_validation_failed_names_index_and_field(source):
    error = ValidationFailed(
        "data[1].event_properties.products[0].product_id: required field",
        errors=[
            (1, FieldError(("event_properties", "products", 0, "product_id"), "required field")),
            (1, FieldError(("visitor_id",), "must be of string type")),
            (1, FieldError(("visitor_id",), "empty values not allowed")),
            (4, FieldError((), "must be a JSON object")),
        ],
    )
    reply = source.error(POST, error)
    assert reply.status == 400
    assert reply.headers == {}
    assert reply.body == {
        "status": "fail",
        "hasError": True,
        "code": 400,
        "message": "data[1].event_properties.products[0].product_id: required field",
        "errors": {
            "data[1].event_properties.products[0].product_id": ["required field"],
            "data[1].visitor_id": ["must be of string type", "empty values not allowed"],
            "data[4]": ["must be a JSON object"],
        },
    }


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (BadRequest("body is not valid JSON"), 400),
        (Unauthorized("authkey header is required"), 401),
        (Forbidden("authkey is not valid"), 403),
        (NotFound("no such route"), 404),
        (MethodNotAllowed("use POST", headers={"Allow": "POST"}), 405),
        (PayloadTooLarge("body over 1048576 bytes"), 413),
        (
            RateLimited(
                "too many requests",
                headers={
                    "Retry-After": "3",
                    "X-RateLimit-Limit": "100",
                    "X-RateLimit-Remaining": "0",
                },
            ),
            429,
        ),
        (InternalError("plugin failed"), 500),
        (Overloaded("spool full", headers={"Retry-After": "1"}), 503),
    ],
    ids=lambda v: str(v) if isinstance(v, int) else type(v).__name__,
)
def test_error_shape_and_headers(source, error, status):
    reply = source.error(POST, error)
    assert reply.status == status
    assert reply.headers == error.headers
    assert reply.headers is not error.headers
    assert reply.content_type == "application/json"
    assert reply.body == {
        "status": "fail",
        "hasError": True,
        "code": status,
        "message": error.message,
        "errors": {},
    }


# ====================================================================== failed events


async def _fill(quarantine: Quarantine, source: str, count: int) -> None:
    await quarantine.add(
        source,
        1_714_558_530_999,
        [
            (
                {"event_name": "product-viewed", "visitor_id": f"v{i}", "event_properties": {}},
                ["event_properties.product_id: required field"],
            )
            for i in range(count)
        ],
    )


async def test_failed_events_lists_this_source_only(source, quarantine):
    await _fill(quarantine, "shop", 2)
    await _fill(quarantine, "other-source", 3)
    await quarantine.add("shop", 0, [("oops", ["must be a JSON object", "second reason"])])
    reply = await source.failed_events(get())
    assert reply.status == 200
    assert reply.body["status"] == "success"
    assert reply.body["hasError"] is False
    data = reply.body["data"]
    assert (data["total"], data["page"], data["per_page"]) == (3, 1, 50)
    rows = data["failed_events"]
    assert [row["event"] for row in rows] == [
        {"event_name": "product-viewed", "visitor_id": "v0", "event_properties": {}},
        {"event_name": "product-viewed", "visitor_id": "v1", "event_properties": {}},
        "oops",
    ]
    assert rows[0]["error"] == "event_properties.product_id: required field"
    assert rows[0]["created_at"] == "2024-05-01 10:15:30"
    assert rows[2] == {
        "id": rows[2]["id"],
        "created_at": "1970-01-01 00:00:00",
        "event": "oops",
        "error": "must be a JSON object; second reason",
    }
    assert rows[0]["id"] < rows[1]["id"] < rows[2]["id"]


async def test_failed_events_pages(source, quarantine):
    await _fill(quarantine, "shop", 5)
    first = (await source.failed_events(get(page="1", per_page="2"))).body["data"]
    third = (await source.failed_events(get(page="3", per_page="2"))).body["data"]
    beyond = (await source.failed_events(get(page="4", per_page="2"))).body["data"]
    assert [r["event"]["visitor_id"] for r in first["failed_events"]] == ["v0", "v1"]
    assert [r["event"]["visitor_id"] for r in third["failed_events"]] == ["v4"]
    assert beyond["failed_events"] == []
    assert first["total"] == third["total"] == beyond["total"] == 5


async def test_failed_events_page_size_from_options(quarantine):
    await _fill(quarantine, "shop", 4)
    source = SegmentoSource("shop", {"failed_per_page": 3}, quarantine=quarantine)
    data = (await source.failed_events(get())).body["data"]
    assert (data["per_page"], len(data["failed_events"])) == (3, 3)


async def test_failed_events_empty(source):
    data = (await source.failed_events(get())).body["data"]
    assert data == {"total": 0, "page": 1, "per_page": 50, "failed_events": []}


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({"page": "0"}, "page", "page must be a positive integer"),
        ({"page": "-1"}, "page", "page must be a positive integer"),
        ({"page": "two"}, "page", "page must be a positive integer"),
        ({"page": ""}, "page", "page must be a positive integer"),
        ({"page": "\uff11"}, "page", "page must be a positive integer"),
        ({"page": "1" * 5000}, "page", "page must be a positive integer"),
        ({"per_page": "1.5"}, "per_page", "per_page must be a positive integer"),
        (
            {"per_page": str(MAX_PER_PAGE + 1)},
            "per_page",
            f"per_page must be at most {MAX_PER_PAGE}",
        ),
    ],
)
async def test_failed_events_bad_query_is_400(source, query, field, message):
    reply = await source.failed_events(get(**query))
    assert reply.status == 400
    assert reply.body == {
        "status": "fail",
        "hasError": True,
        "code": 400,
        "message": message,
        "errors": {field: [message]},
    }
