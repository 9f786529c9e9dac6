"""Cerberus schemas of Segmento user events (MSG91 CDP "Create User Events").

One spec per default event (its ``event_properties`` table from the vendor
document) and a ``"*"`` spec for custom events, which get only the checks
every event gets. Plain rules only: validation never normalizes, so the
``type`` default (``track``) is the codec's business, not cerberus's.

"string" in the vendor tables means a JSON string (prices and quantities
included: ``"12.50"``, ``"2"``); "numeric" means a JSON number.
"""

from __future__ import annotations

from typing import Any

from router import ValidatorSpec

__all__ = [
    "DEFAULT_EVENTS",
    "EVENT_PROPERTIES",
    "PRODUCT_KEYS",
    "REQUIRED_PROPERTIES",
    "TIMESTAMP_PATTERN",
    "VALIDATORS",
    "VENDOR",
]

VENDOR = "segmento"

#: ``YYYY-MM-DD HH:MM:SS`` with month 01-12, day 01-31, hour 00-23, minute and
#: second 00-59; ASCII digits only. ``\Z`` because cerberus anchors with
#: ``$``, which would also let a trailing newline through. Day-of-month
#: against the month (Feb 30) is not checked here; the codec copes with it.
TIMESTAMP_PATTERN = (
    r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01]) ([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]\Z"
)

_STRING: dict[str, Any] = {"type": "string"}
_ID: dict[str, Any] = {"type": "string", "required": True, "empty": False}
_NUMBER: dict[str, Any] = {"type": "number"}

#: The product keys, in the vendor's table order.
PRODUCT_KEYS = (
    "product_id",
    "sku",
    "category",
    "name",
    "brand",
    "variant",
    "variant_id",
    "price",
    "quantity",
    "coupon",
    "position",
    "url",
    "image_url",
)

#: One product as it appears flat in ``event_properties`` (product-viewed…).
_PRODUCT: dict[str, Any] = dict.fromkeys(PRODUCT_KEYS, _STRING)

#: One element of ``products``: ``product_id`` is always required there.
_PRODUCTS_ITEM: dict[str, Any] = {
    "type": "dict",
    "schema": {**_PRODUCT, "product_id": _ID},
}


def _products(required: bool) -> dict[str, Any]:
    return {"type": "list", "required": required, "schema": _PRODUCTS_ITEM}


_ORDER: dict[str, Any] = {
    "order_id": _STRING,
    "total": _NUMBER,
    "coupon": _STRING,
    "currency": _STRING,
}
_CHECKOUT: dict[str, Any] = {
    "checkout_id": _STRING,
    "order_id": _STRING,
    "shipping_method": _STRING,
    "payment_method": _STRING,
}

#: The ``event_properties`` schema of each default event, by event name.
EVENT_PROPERTIES: dict[str, dict[str, Any]] = {
    "product-clicked": {**_PRODUCT, "product_id": _ID},
    "product-searched": {"query": _ID},
    # The vendor table lists checkout fields only, while its text says the
    # removed product's details are sent: both are accepted.
    "remove-from-cart": {**_PRODUCT, **_CHECKOUT, "checkout_id": _ID},
    "add-to-cart": {"cart_id": _ID, **_PRODUCT, "product_id": _ID},
    "payment-info": _CHECKOUT,
    "product-added-to-wishlist": {"wishlist_id": _STRING, "wishlist_name": _STRING, **_PRODUCT},
    "product-viewed": {**_PRODUCT, "product_id": _ID},
    "product-reviewed": {
        **_PRODUCT,
        "product_id": _ID,
        "review_id": _ID,
        "review_body": _STRING,
        "rating": _STRING,
    },
    "product-list-viewed": {"list_id": _STRING, "category": _STRING, "products": _products(True)},
    "order-updated": {
        **_ORDER,
        "affiliation": _STRING,
        "total": {**_NUMBER, "required": True},
        "revenue": _NUMBER,
        "shipping": _NUMBER,
        "tax": _NUMBER,
        "products": _products(False),
    },
    "order-completed": {
        **_ORDER,
        "checkout_id": _STRING,
        "revenue": _NUMBER,
        "shipping": _NUMBER,
        "discount": _NUMBER,
        "tax": _NUMBER,
        "products": _products(True),
    },
    "order-cancelled": {**_ORDER, "products": _products(True)},
    "order-refunded": {**_ORDER, "products": _products(True)},
    "page-view": {
        "title": _ID,
        "url": _STRING,
        "name": _STRING,
        "channel": _STRING,
        "meta": {"type": "list"},
    },
}

#: The default (pre-registered, validated) event names.
DEFAULT_EVENTS = tuple(EVENT_PROPERTIES)

#: The required ``event_properties`` keys of each default event.
REQUIRED_PROPERTIES: dict[str, tuple[str, ...]] = {
    name: tuple(key for key, rules in schema.items() if rules.get("required"))
    for name, schema in EVENT_PROPERTIES.items()
}

#: What every event is checked for, custom or default.
_EVENT: dict[str, Any] = {
    "event_name": _ID,
    "visitor_id": _ID,
    "event_properties": {"type": "dict", "required": True},
    "event_timestamp": {"type": "string", "regex": TIMESTAMP_PATTERN},
    "context": {"type": "dict"},
    "type": {"type": "string", "empty": False},
}


#: One spec per default event, plus ``"*"`` for custom events and a missing name.
VALIDATORS: list[ValidatorSpec] = [
    *(
        ValidatorSpec(
            VENDOR,
            name,
            {
                **_EVENT,
                "event_properties": {"type": "dict", "required": True, "schema": properties},
            },
        )
        for name, properties in EVENT_PROPERTIES.items()
    ),
    ValidatorSpec(VENDOR, "*", _EVENT),
]
