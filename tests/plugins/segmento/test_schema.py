"""Segmento validators: every documented table, required field, type and format."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from router_plugins.segmento.schema import (
    DEFAULT_EVENTS,
    EVENT_PROPERTIES,
    REQUIRED_PROPERTIES,
)
from router_plugins.segmento.schema import (
    VALIDATORS as SPECS,
)

from router.validation import Validators

PAYLOADS = Path(__file__).parents[2] / "data" / "payloads" / "segmento"
VALIDATORS = Validators(SPECS)


def example(name: str) -> dict:
    """The documented example of event ``name`` (a default event name or ``custom-event``)."""
    return json.loads((PAYLOADS / f"{name}.json").read_text())["data"][0]


def check(doc: dict) -> list:
    name = doc.get("event_name")
    return VALIDATORS.check("segmento", name if isinstance(name, str) else None, doc)


def fields(errors: list) -> set[str]:
    return {error.field for error in errors}


@pytest.mark.parametrize("name", [*DEFAULT_EVENTS, "custom-event"])
def test_accept_documented_example(name):
    assert check(example(name)) == []


@pytest.mark.parametrize("name", DEFAULT_EVENTS)
def test_accept_only_required_fields(name):
    doc = example(name)
    props = doc["event_properties"]
    keep = {key: props[key] for key in REQUIRED_PROPERTIES[name]}
    for key, value in keep.items():
        if key == "products":
            keep[key] = [{"product_id": p["product_id"]} for p in value]
    minimal = {"event_name": name, "visitor_id": "v1", "event_properties": keep}
    assert check(minimal) == []


def test_required_properties_follow_the_vendor_tables():
    assert REQUIRED_PROPERTIES == {
        "product-clicked": ("product_id",),
        "product-searched": ("query",),
        "remove-from-cart": ("checkout_id",),
        "add-to-cart": ("cart_id", "product_id"),
        "payment-info": (),
        "product-added-to-wishlist": (),
        "product-viewed": ("product_id",),
        "product-reviewed": ("product_id", "review_id"),
        "product-list-viewed": ("products",),
        "order-updated": ("total",),
        "order-completed": ("products",),
        "order-cancelled": ("products",),
        "order-refunded": ("products",),
        "page-view": ("title",),
    }


# ------------------------------------------------------------------ required


@pytest.mark.parametrize("name", [*DEFAULT_EVENTS, "custom-event"])
@pytest.mark.parametrize("key", ["event_name", "visitor_id", "event_properties"])
def test_missing_top_level_field_is_reported(name, key):
    doc = example(name)
    del doc[key]
    errors = check(doc)
    assert key in fields(errors)


REQUIRED_CASES = [(name, key) for name in DEFAULT_EVENTS for key in REQUIRED_PROPERTIES[name]]


@pytest.mark.parametrize(("name", "key"), REQUIRED_CASES)
def test_missing_required_property_is_reported(name, key):
    doc = example(name)
    del doc["event_properties"][key]
    errors = check(doc)
    assert fields(errors) == {f"event_properties.{key}"}
    assert "required" in errors[0].message


@pytest.mark.parametrize(
    ("name", "key"), [(n, k) for n, k in REQUIRED_CASES if k not in ("products", "total")]
)
def test_empty_required_id_is_reported(name, key):
    doc = example(name)
    doc["event_properties"][key] = ""
    assert fields(check(doc)) == {f"event_properties.{key}"}


@pytest.mark.parametrize("key", ["event_name", "visitor_id"])
def test_empty_event_name_or_visitor_id_is_reported(key):
    doc = example("product-viewed")
    doc[key] = ""
    assert key in fields(check(doc))


PRODUCT_LISTS = [name for name in DEFAULT_EVENTS if "products" in EVENT_PROPERTIES[name]]


@pytest.mark.parametrize("name", PRODUCT_LISTS)
def test_product_without_product_id_is_reported(name):
    doc = example(name)
    del doc["event_properties"]["products"][0]["product_id"]
    assert fields(check(doc)) == {"event_properties.products[0].product_id"}


@pytest.mark.parametrize("name", PRODUCT_LISTS)
def test_empty_products_array_is_accepted(name):
    doc = example(name)
    doc["event_properties"]["products"] = []
    assert check(doc) == []


def test_order_updated_products_are_optional():
    doc = example("order-updated")
    del doc["event_properties"]["products"]
    assert check(doc) == []


# ------------------------------------------------------------------ types

WRONG = {"string": 12, "number": "12", "list": "x", "dict": ["x"]}
TYPE_CASES = [
    (name, key, rules["type"])
    for name in DEFAULT_EVENTS
    for key, rules in EVENT_PROPERTIES[name].items()
]


@pytest.mark.parametrize(("name", "key", "kind"), TYPE_CASES)
def test_wrong_property_type_is_reported(name, key, kind):
    doc = example(name)
    doc["event_properties"][key] = WRONG[kind]
    errors = check(doc)
    assert fields(errors) == {f"event_properties.{key}"}
    assert f"must be of {kind} type" in errors[0].message


ITEM_KEYS = list(EVENT_PROPERTIES["order-completed"]["products"]["schema"]["schema"])


@pytest.mark.parametrize("name", PRODUCT_LISTS)
@pytest.mark.parametrize("key", ITEM_KEYS)
def test_wrong_product_field_type_is_reported(name, key):
    doc = example(name)
    products = doc["event_properties"]["products"]
    index = len(products) - 1
    products[index][key] = ["array, not string"]
    assert fields(check(doc)) == {f"event_properties.products[{index}].{key}"}


@pytest.mark.parametrize("name", PRODUCT_LISTS)
def test_product_that_is_not_an_object_is_reported(name):
    doc = example(name)
    doc["event_properties"]["products"].append("P-1")
    index = len(doc["event_properties"]["products"]) - 1
    assert fields(check(doc)) == {f"event_properties.products[{index}]"}


@pytest.mark.parametrize("value", [True, False])
def test_boolean_is_not_a_number(value):
    doc = example("order-completed")
    doc["event_properties"]["total"] = value
    assert fields(check(doc)) == {"event_properties.total"}


@pytest.mark.parametrize("value", [0, -1, 12, 12.5, 1e20])
def test_any_json_number_is_numeric(value):
    doc = example("order-updated")
    doc["event_properties"]["total"] = value
    assert check(doc) == []


@pytest.mark.parametrize("name", [*DEFAULT_EVENTS, "custom-event"])
@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("event_name", 7),
        ("visitor_id", 919812345678),
        ("event_properties", ["x"]),
        ("event_properties", "x"),
        ("event_timestamp", 1714558530),
        ("context", "web"),
        ("type", ["track"]),
    ],
)
def test_wrong_top_level_type_is_reported(name, key, value):
    doc = example(name)
    doc[key] = value
    assert key in fields(check(doc))


def test_null_is_not_accepted_for_an_optional_string():
    doc = example("product-viewed")
    doc["event_properties"]["sku"] = None
    assert fields(check(doc)) == {"event_properties.sku"}


def test_prices_and_quantities_must_be_strings():
    doc = example("product-viewed")
    doc["event_properties"]["price"] = 12.5
    doc["event_properties"]["quantity"] = 2
    assert fields(check(doc)) == {"event_properties.price", "event_properties.quantity"}


def test_unknown_fields_are_allowed_at_every_level():
    doc = example("order-completed")
    doc["source"] = "web"
    doc["event_properties"]["gift_wrap"] = True
    doc["event_properties"]["products"][0]["size"] = 42
    assert check(doc) == []


def test_not_an_object_is_reported():
    assert VALIDATORS.check("segmento", None, ["x"])[0].message == "must be a JSON object"


# ------------------------------------------------------------------ timestamp


@pytest.mark.parametrize(
    "value",
    [
        "2024-05-01 10:15:30",
        "2024-12-31 23:59:59",
        "2024-01-01 00:00:00",
        "1970-01-01 00:00:00",
        "0000-01-01 00:00:00",
        "2024-02-30 10:00:00",  # impossible day: the codec copes, see segmento/test_codec.py
    ],
)
def test_timestamp_format_accepted(value):
    doc = example("product-viewed")
    doc["event_timestamp"] = value
    assert check(doc) == []


@pytest.mark.parametrize(
    "value",
    [
        "2024-13-01 10:00:00",
        "2024-00-01 10:00:00",
        "2024-01-00 10:00:00",
        "2024-01-32 10:00:00",
        "2024-01-01 24:00:00",
        "2024-01-01 10:60:00",
        "2024-01-01 10:00:60",
        "2024-1-01 10:00:00",
        "24-01-01 10:00:00",
        "2024-01-01T10:00:00",
        "2024-01-01 10:00:00Z",
        "2024-01-01 10:00:00.123",
        "2024-01-01 10:00:00\n",
        " 2024-01-01 10:00:00",
        "2024-01-01",
        "\uff12\uff10\uff12\uff14-01-01 10:00:00",  # full-width digits
        "",
    ],
)
def test_timestamp_format_rejected(value):
    doc = example("product-viewed")
    doc["event_timestamp"] = value
    assert fields(check(doc)) == {"event_timestamp"}


# ------------------------------------------------------------------ custom events


def test_custom_event_gets_only_generic_checks():
    doc = example("custom-event")
    doc["event_properties"] = {"product_id": ["not", "checked"], "total": "free text"}
    assert check(doc) == []


def test_custom_event_named_like_a_default_one_in_another_case_is_custom():
    doc = example("custom-event")
    doc["event_name"] = "Product-Viewed"
    assert check(doc) == []


def test_default_event_properties_are_validated_by_name():
    doc = copy.deepcopy(example("custom-event"))
    doc["event_name"] = "product-viewed"
    assert fields(check(doc)) == {"event_properties.product_id"}


def test_missing_event_name_reported_by_fallback():
    doc = example("product-viewed")
    del doc["event_name"]
    errors = VALIDATORS.check("segmento", None, doc)
    assert [(e.field, e.message) for e in errors] == [("event_name", "required field")]
