"""The moloco plugin: the validators (cerberus schemas) of each event type."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from router_plugins.moloco.codec import MolocoCodec
from router_plugins.moloco.schema import EVENT_TYPES, ITEM_EVENT_TYPES, VALIDATORS

from router import FieldError
from router.validation import Validators
from tests.plugins.moloco.events import FULL, TYPE_FIELDS, del_path, full, minimal, set_path

PAYLOADS = Path(__file__).parents[2] / "data" / "payloads" / "moloco"
EXAMPLES = sorted(PAYLOADS.glob("*.json"))

VALIDATORS_ = Validators(VALIDATORS)
CODEC = MolocoCodec()


def load(path: Path) -> dict:
    return orjson.loads(path.read_bytes())


def check(doc) -> list[FieldError]:
    return VALIDATORS_.check("moloco", CODEC.event_type(doc), doc)


def fields(errors: list[FieldError]) -> set[str]:
    return {e.field for e in errors}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_accept_every_documented_example(path):
    assert check(load(path)) == []


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_accept_every_event_type(event_type):
    assert check(minimal(event_type)) == []
    assert check(full(event_type)) == []


@pytest.mark.parametrize("event_type", EVENT_TYPES)
@pytest.mark.parametrize("field", ["event_type", "timestamp", "channel_type"])
def test_require_the_spec_required_fields(event_type, field):
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
def test_require_the_fields_of_each_type(event_type, field):
    assert fields(check(del_path(minimal(event_type), field))) == {field}
    empty = [] if field == "items" else ""
    assert fields(check(set_path(minimal(event_type), field, empty))) == {field}


@pytest.mark.parametrize(
    ("event_type", "field"),
    [
        (t, f)
        for t in EVENT_TYPES
        for f in ("items", "search_query", "page_id")
        if f not in TYPE_FIELDS.get(t, {})
    ],
)
def test_do_not_require_other_types_fields(event_type, field):
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
def test_name_the_broken_field(event_type, path, value, field):
    errors = check(set_path(full(event_type), path, value))
    assert field in fields(errors), errors


@pytest.mark.parametrize("event_type", EVENT_TYPES)
@pytest.mark.parametrize(("path", "field"), REMOVED)
def test_name_the_missing_nested_field(event_type, path, field):
    errors = check(del_path(full(event_type), path))
    assert field in fields(errors), errors


@pytest.mark.parametrize("value", ["PURCHASED", "purchase", "", 5, None])
def test_report_an_unknown_event_type(value):
    doc = set_path(full("PURCHASE"), "event_type", value)
    assert CODEC.event_type(doc) in (None, value)
    assert "event_type" in fields(check(doc))


def test_fallback_reports_other_problems_too():
    doc = {"event_type": "PURCHASED", "channel_type": "WEB", "custom_id": "c"}
    assert fields(check(doc)) == {"event_type", "timestamp", "channel_type"}


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_require_one_user_id(event_type):
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
def test_accept_any_one_user_id(path):
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
def test_accept_unusual_but_valid_values(path, value):
    assert check(set_path(full("PURCHASE"), path, value)) == []


@pytest.mark.parametrize("body", [[], "event", 5, None, [FULL]])
def test_reject_a_non_object(body):
    assert check(body) == [FieldError((), "must be a JSON object")]


def test_schemas_are_independent():
    """Making a field required for one type must not leak into others."""
    by_type = {s.event_type: s.schema for s in VALIDATORS}
    assert by_type["PAGE_VIEW"]["page_id"].get("required") is True
    assert "required" not in by_type["PAGE_VIEW"]["domain"]
    assert "required" not in by_type["SEARCH"]["page_id"]
    assert "required" not in by_type["*"]["items"]
