"""Cerberus schemas of Endu's "Submit an event" body.

Endu event types are user-defined, so every type shares one schema: the base
keys (``property_id``, ``organization_id``, ``timestamp``, ``event_type``,
``event_data``) plus at least one identity variation (platform, unique,
blockchain, fingerprint), in any combination. The documented types
(``ITEM_PURCHASED``, ``PAGE_VIEW``) get a spec of their own that pins
``event_type``; every other type, and an event with no usable type, is
checked by the ``"*"`` spec. Fields the doc does not name are allowed.

See ``docs/vendors/endu.md`` for every decision taken where the doc is vague.
"""

from __future__ import annotations

from typing import Any

from router import ValidatorSpec

__all__ = [
    "DOCUMENTED_TYPES",
    "EVENT_SCHEMA",
    "IDENTITY_FIELDS",
    "PLATFORM_TYPES",
    "VALIDATORS",
    "VENDOR",
]

VENDOR = "endu"

#: The event types the Endu doc shows in its examples.
DOCUMENTED_TYPES = ("ITEM_PURCHASED", "PAGE_VIEW")

#: ``platform_type`` values, exactly as the doc spells them.
PLATFORM_TYPES = ("Discord", "Telegram")

#: The identity variations: an event needs at least one of these.
IDENTITY_FIELDS = ("p_user_id", "c_user_id", "blockchain", "fingerprint")

#: Unix seconds, as the doc's string of digits or as a JSON integer. Ten digits
#: reach the year 2286, so a millisecond timestamp (13 digits) is refused.
MAX_TIMESTAMP = 9_999_999_999
TIMESTAMP_DIGITS = r"[0-9]{1,10}"

_ID = {"type": "string", "empty": False}

#: The schema shared by every event type.
EVENT_SCHEMA: dict[str, Any] = {
    "property_id": {**_ID, "required": True},
    "organization_id": {**_ID, "required": True},
    "timestamp": {
        "type": ["string", "integer"],
        "required": True,
        "regex": TIMESTAMP_DIGITS,
        "min": 0,
        "max": MAX_TIMESTAMP,
    },
    "event_type": {**_ID, "required": True},
    "event_data": {"type": "dict", "required": True},
    # Platform identity: p_user_id and platform_type come together.
    "p_user_id": {**_ID, "dependencies": ["platform_type"]},
    "platform_type": {
        "type": "string",
        "allowed": list(PLATFORM_TYPES),
        "dependencies": ["p_user_id"],
    },
    # Unique identity: the Chatsight-assigned id.
    "c_user_id": dict(_ID),
    # Blockchain identity: both keys are required.
    "blockchain": {
        "type": "dict",
        "schema": {
            "chain_type": {**_ID, "required": True},
            "chain_account": {**_ID, "required": True},
        },
    },
    # Fingerprint identity (Endu's JS agent).
    "fingerprint": dict(_ID),
}


def _spec(event_type: str, schema: dict[str, Any]) -> ValidatorSpec:
    return ValidatorSpec(
        vendor=VENDOR,
        event_type=event_type,
        schema=schema,
        require_any=(IDENTITY_FIELDS,),
    )


#: One spec per documented type, plus ``"*"`` for every user-defined type and
#: for events whose ``event_type`` is missing or not a string.
VALIDATORS: list[ValidatorSpec] = [
    *(
        _spec(name, {**EVENT_SCHEMA, "event_type": {**_ID, "required": True, "allowed": [name]}})
        for name in DOCUMENTED_TYPES
    ),
    _spec("*", EVENT_SCHEMA),
]
