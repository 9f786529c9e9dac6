"""The moloco plugin: the ingest Source."""

from __future__ import annotations

from pathlib import Path

import cerberus
import orjson
import pytest
from router_plugins.moloco.codec import MolocoCodec
from router_plugins.moloco.ingest import MolocoSource
from router_plugins.moloco.schema import VALIDATORS

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
from tests.plugins.moloco.events import FULL, full, set_path

PAYLOADS = Path(__file__).parents[2] / "data" / "payloads" / "moloco"
EXAMPLES = sorted(PAYLOADS.glob("*.json"))

VALIDATORS_ = Validators(VALIDATORS)
CODEC = MolocoCodec()


def load(path: Path) -> dict:
    return orjson.loads(path.read_bytes())


def check(doc) -> list[FieldError]:
    return VALIDATORS_.check("moloco", CODEC.event_type(doc), doc)


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


def test_credential_is_the_x_api_key_header(quarantine):
    source = make_source(quarantine)
    assert source.credential(request()) == "secret"
    assert source.credential(request(headers={})) is None


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_split_one_event_with_the_platform(quarantine, path):
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
def test_split_rejects_a_non_object(quarantine, body, kind):
    with pytest.raises(BadRequest) as info:
        make_source(quarantine).split(request(orjson.dumps(body)), body)
    assert info.value.status == 400
    assert info.value.message == f"request body must be a JSON object (one v1Event), not {kind}"


def test_authorize_any_platform_by_default(quarantine):
    source = make_source(quarantine)
    source.authorize(request(), Envelope([FULL], {"platform": "ANY"}))


def test_authorize_only_listed_platforms(quarantine):
    source = make_source(quarantine, platforms=["ACME", "OTHER"])
    source.authorize(request(), Envelope([FULL], {"platform": "ACME"}))
    with pytest.raises(Forbidden, match="'EVIL' is not served here"):
        source.authorize(request(platform="EVIL"), Envelope([FULL], {"platform": "EVIL"}))


def test_options_schema_is_valid_cerberus():
    validator = cerberus.Validator(MolocoSource.options_schema)
    assert validator.validate({})
    assert validator.validate({"platforms": ["ACME"]})
    assert not validator.validate({"platforms": []})
    assert not validator.validate({"platforms": "ACME"})
    assert not validator.validate({"platforms": [""]})


def test_rate_limit_keys(quarantine):
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


def test_accepted_is_200_with_an_empty_object(quarantine):
    envelope = Envelope([FULL], {"platform": "ACME"})
    result = IngestResult(envelope, ids=["evt-1"])
    reply = make_source(quarantine).accepted(request(), result)
    assert (reply.status, reply.body) == (200, {})
    assert reply.content_type == "application/json"


async def test_accepted_after_quarantine_is_still_200(quarantine):
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
def test_error_is_an_rpc_status(quarantine, error, status, code):
    reply = make_source(quarantine).error(request(), error)
    assert reply.status == status
    assert reply.body == {"code": code, "message": error.message, "details": []}
    assert reply.headers == error.headers
    assert reply.content_type == "application/json"


def test_error_headers_are_a_copy(quarantine):
    error = RateLimited("slow down", headers={"Retry-After": "3", "X-RateLimit-Remaining": "0"})
    reply = make_source(quarantine).error(request(), error)
    reply.headers["x"] = "y"
    assert error.headers == {"Retry-After": "3", "X-RateLimit-Remaining": "0"}


def test_error_for_an_unlisted_status_is_unknown(quarantine):
    class Teapot(BadRequest):
        status = 418

    reply = make_source(quarantine).error(request(), Teapot("short and stout"))
    assert (reply.status, reply.body["code"]) == (418, 2)


def test_validation_error_names_every_field(quarantine):
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


def test_validation_error_without_fields_keeps_the_message(quarantine):
    reply = make_source(quarantine).error(request(), ValidationFailed("event is invalid"))
    assert reply.body == {"code": 3, "message": "event is invalid", "details": []}


def test_replies_are_json_serializable(quarantine):
    source = make_source(quarantine)
    replies: list[Reply] = [
        source.accepted(request(), IngestResult(Envelope([FULL]), ids=["a"])),
        source.error(request(), RateLimited("x", headers={"Retry-After": "1"})),
    ]
    for reply in replies:
        assert orjson.loads(orjson.dumps(reply.body)) == reply.body
