"""The conscent plugin: the validators (cerberus schemas) of each event type."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import router_plugins.conscent
from router_plugins.conscent.codec import ConscentCodec
from router_plugins.conscent.schema import CLICK_ACTIONS, EVENT_LOCATIONS, EVENT_TYPES, schema_for

from router.validation import Validators

PAYLOADS = Path(__file__).parents[2] / "data" / "payloads" / "conscent"
EXAMPLES = {t: f"{t.lower()}.json" for t in EVENT_TYPES}
UUID = "c523aa41-9f0f-4fc2-bc96-5a8ff5520b78"


def load(name: str):
    return json.loads((PAYLOADS / name).read_text())


@pytest.fixture(scope="module")
def validators():
    return Validators(router_plugins.conscent.router_validators())


def check(validators, doc):
    return validators.check("conscent", ConscentCodec().event_type(doc), doc)


def fields(errors):
    return {error.field for error in errors}


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
def test_accepts_every_documented_type(validators, event_type):
    assert check(validators, load(EXAMPLES[event_type])) == []


@pytest.mark.parametrize("name", ["request.json", "request-messageheader.json"])
def test_accepts_the_request_examples(validators, name):
    for event in load(name)["messageBody"]:
        assert check(validators, event) == []


@pytest.mark.parametrize(
    ("event_type", "field"),
    [(t, f) for t, required in REQUIRED.items() for f in required if f != "eventType"],
)
def test_required_field_missing(validators, event_type, field):
    doc = load(EXAMPLES[event_type])
    del doc[field]
    errors = check(validators, doc)
    assert [(e.field, e.message) for e in errors] == [(field, "required field")]


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_type_lists_exactly_the_documented_required_fields(validators, event_type):
    """Only the required fields of the doc: the rest of an example can go."""
    doc = {f: v for f, v in load(EXAMPLES[event_type]).items() if f in REQUIRED[event_type]}
    assert check(validators, doc) == []
    assert fields(validators.check("conscent", event_type, {})) == set(REQUIRED[event_type])


@pytest.mark.parametrize("event_type", EVENT_TYPES)
@pytest.mark.parametrize("bad", ["FOO", "page", "", None])
def test_event_location_enum(validators, event_type, bad):
    doc = {**load(EXAMPLES[event_type]), "eventLocation": bad}
    assert fields(check(validators, doc)) == {"eventLocation"}


@pytest.mark.parametrize("location", EVENT_LOCATIONS)
def test_every_event_location_allowed(validators, location):
    assert check(validators, {**load("exit.json"), "eventLocation": location}) == []


@pytest.mark.parametrize("action", CLICK_ACTIONS)
def test_every_click_action_allowed(validators, action):
    assert check(validators, {**load("click.json"), "clickAction": action}) == []


@pytest.mark.parametrize("bad", ["FOO", "buy_now", "", None, 3])
def test_click_action_enum(validators, bad):
    errors = check(validators, {**load("click.json"), "clickAction": bad})
    assert fields(errors) == {"clickAction"}


def test_unknown_value_message(validators):
    errors = check(validators, {**load("click.json"), "eventLocation": "FOO"})
    assert [str(e) for e in errors] == ["eventLocation: unallowed value FOO"]


# JSON booleans are not integers (router.validation.SchemaValidator), even if true == 1.
@pytest.mark.parametrize("bad", [2, -1, "1", 1.0, None, True, False])
def test_active_is_0_or_1(validators, bad):
    assert fields(check(validators, {**load("ping.json"), "active": bad})) == {"active"}


@pytest.mark.parametrize("value", [0, 1])
def test_active_values(validators, value):
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
def test_uuid_fields(validators, event_type, field, bad):
    doc = {**load(EXAMPLES[event_type]), field: bad}
    assert fields(check(validators, doc)) == {field}


@pytest.mark.parametrize("good", [UUID.upper(), "00000000-0000-0000-0000-000000000000"])
def test_uuid_any_case_and_version(validators, good):
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
def test_a_wrongly_typed_field_is_named(validators, event_type, field):
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
def test_ids_are_non_empty_strings(validators, event_type, field, bad):
    doc = {**load(EXAMPLES[event_type]), field: bad}
    assert fields(check(validators, doc)) == {field}


@pytest.mark.parametrize("event_type", ["PING", "CLICK", "EXIT"])
@pytest.mark.parametrize("user_id", ["", None, "u-1"])
def test_optional_user_id_may_be_empty(validators, event_type, user_id):
    assert check(validators, {**load(EXAMPLES[event_type]), "userId": user_id}) == []


def test_unknown_fields_allowed(validators):
    doc = {**load("purchase.json"), "amount": "12.50", "meta": {"plan": "annual"}}
    assert check(validators, doc) == []


def test_type_spec_rejects_another_type(validators):
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
def test_fallback_reports_missing_or_unknown_type(validators, doc, message):
    assert [str(e) for e in check(validators, doc)] == [message]


def test_non_object_event(validators):
    assert [str(e) for e in check(validators, ["PING"])] == ["must be a JSON object"]
