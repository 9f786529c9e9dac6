"""Cerberus schemas of Moloco's ``v1Event`` (the request body of PostUserEvent).

Transcribed from the official OpenAPI spec (``moloco-event-openapi.yml``):
enums, ``required``, ``maxLength`` and the ``format: int32``/``int64`` ranges.
``additionalProperties: true`` everywhere, so unknown fields are allowed (the
core's ``allow_unknown=True``, inherited by every nested schema).

What the spec only says in prose is added per event type: ``items`` for the
item events, ``search_query`` for SEARCH, ``page_id`` for PAGE_VIEW, and one of
``user_id``, ``device.persistent_id``, ``custom_id`` for every event. Moloco is a
gRPC service behind a JSON gateway (proto3), where an empty string or list is
the same as an absent field, so "required" fields must also be non-empty.

Only plain cerberus rules are used (see the vendor brief): the schema compiler
supports exactly those.
"""

from __future__ import annotations

import copy
from typing import Any

from router import ValidatorSpec

__all__ = [
    "CHANNEL_TYPES",
    "CURRENCIES",
    "EVENT_SCHEMA",
    "EVENT_TYPES",
    "IDENTITY_FIELDS",
    "ITEM_EVENT_TYPES",
    "MAX_ID_LENGTH",
    "PERSONALIZATION_MODES",
    "VALIDATORS",
    "VENDOR",
    "schema_for",
]

VENDOR = "moloco"

#: ``EventEventType``.
EVENT_TYPES = [
    "UNKNOWN_EVENT_TYPE",
    "SEARCH",
    "ITEM_PAGE_VIEW",
    "ADD_TO_CART",
    "PURCHASE",
    "ADD_TO_WISHLIST",
    "HOME",
    "LAND",
    "PAGE_VIEW",
]

#: Event types whose ``items`` are required.
ITEM_EVENT_TYPES = ["ADD_TO_CART", "ADD_TO_WISHLIST", "ITEM_PAGE_VIEW", "PURCHASE"]

#: ``commonChannelType``.
CHANNEL_TYPES = ["UNKNOWN_CHANNEL_TYPE", "APP", "SITE", "DESKTOP_SITE", "MOBILE_SITE"]

#: ``commonCurrency``.
CURRENCIES = [
    "UNKNOWN_CURRENCY",
    "USD",
    "KRW",
    "JPY",
    "EUR",
    "GBP",
    "SEK",
    "INR",
    "THB",
    "IDR",
    "CNY",
    "CAD",
    "RUB",
    "BRL",
    "SGD",
    "HKD",
    "AUD",
    "PLN",
    "DKK",
    "VND",
    "MYR",
    "PHP",
    "TRY",
    "VES",
    "AED",
    "CHF",
]

#: ``commonPersonalizationMode``.
PERSONALIZATION_MODES = ["UNKNOWN_PERSONALIZATION_MODE", "STANDARD", "METRIC_ONLY", "ID_LESS"]

#: ``maxLength`` of every id field in the spec.
MAX_ID_LENGTH = 128

#: At least one of these must be non-empty (``custom_id``'s description).
IDENTITY_FIELDS = ("user_id", "device.persistent_id", "custom_id")

#: ``format: int64`` as a JSON string: unsigned decimal digits, no sign, no
#: whitespace (``\Z``: cerberus appends ``$``, which would accept a trailing
#: newline). 19 digits bound it near the int64 maximum.
TIMESTAMP_REGEX = r"[0-9]{1,19}\Z"

_INT32_MIN = -(2**31)
_INT32_MAX = 2**31 - 1

_STRING = {"type": "string"}
_ID = {"type": "string", "maxlength": MAX_ID_LENGTH}

_MONEY = {
    "type": "dict",
    "schema": {
        "currency": {"type": "string", "required": True, "allowed": CURRENCIES},
        "amount": {"type": "number", "required": True},
    },
}

_ITEM = {
    "type": "dict",
    "schema": {
        "id": {"type": "string", "required": True, "empty": False},
        "price": _MONEY,
        "quantity": {"type": "integer", "min": _INT32_MIN, "max": _INT32_MAX},
        "item_group_id": _STRING,
        "seller_id": _STRING,
        "price_seller": _MONEY,
    },
}

_DEVICE = {
    "type": "dict",
    "schema": {
        "os": _STRING,
        "os_version": _STRING,
        "advertising_id": _STRING,
        "unique_device_id": _ID,
        "persistent_id": _ID,
        "model": _STRING,
        "ua": _STRING,
        "language": _STRING,
    },
}

#: The whole ``v1Event``, valid for every event type (the ``"*"`` spec).
EVENT_SCHEMA: dict[str, Any] = {
    "id": _ID,
    "event_type": {"type": "string", "required": True, "allowed": EVENT_TYPES},
    "timestamp": {"type": "string", "required": True, "regex": TIMESTAMP_REGEX},
    "channel_type": {"type": "string", "required": True, "allowed": CHANNEL_TYPES},
    "domain": _STRING,
    "user_id": _ID,
    "device": _DEVICE,
    "items": {"type": "list", "schema": _ITEM},
    "revenue": _MONEY,
    "search_query": _STRING,
    "session_id": _ID,
    "custom_id": _ID,
    "page_id": _STRING,
    "referrer_page_id": _STRING,
    "shipping_charge": _MONEY,
    "decision_track_id": _STRING,
    "personalization_mode": {"type": "string", "allowed": PERSONALIZATION_MODES},
}

#: Fields each event type requires beyond the spec's ``required`` list.
_REQUIRED_BY_TYPE: dict[str, tuple[str, ...]] = {
    **{t: ("items",) for t in ITEM_EVENT_TYPES},
    "SEARCH": ("search_query",),
    "PAGE_VIEW": ("page_id",),
}


def schema_for(event_type: str) -> dict[str, Any]:
    """A fresh copy of the schema of one event type (``"*"``: the base schema)."""
    schema = copy.deepcopy(EVENT_SCHEMA)
    for name in _REQUIRED_BY_TYPE.get(event_type, ()):
        # A new dict: rule sets are shared between fields (``_STRING``).
        schema[name] = {**schema[name], "required": True, "empty": False}
    return schema


#: One spec per ``EventEventType`` plus the ``"*"`` fallback, which reports a
#: missing or unknown ``event_type`` along with any other problem.
VALIDATORS: list[ValidatorSpec] = [
    ValidatorSpec(VENDOR, event_type, schema_for(event_type), require_any=(IDENTITY_FIELDS,))
    for event_type in [*EVENT_TYPES, "*"]
]
