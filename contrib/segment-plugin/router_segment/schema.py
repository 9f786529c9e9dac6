"""The Segment HTTP Tracking API's events, as cerberus schemas: track, identify, page."""

from __future__ import annotations

from router import ValidatorSpec

VENDOR = "segment"

#: Each call type, and the path it is posted to on its own (``/v1/<type>``).
TYPES = ("track", "identify", "page")

#: ISO 8601 with a time zone, as Segment's libraries send ``timestamp``.
ISO_8601 = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})"

_ID = {"type": "string", "empty": False, "maxlength": 1024}

COMMON = {
    "userId": _ID,
    "anonymousId": _ID,
    "messageId": {"type": "string", "empty": False, "maxlength": 256},
    "timestamp": {"type": "string", "regex": ISO_8601},
    "context": {"type": "dict"},
    "integrations": {"type": "dict"},
}

SCHEMAS = {
    "track": {
        **COMMON,
        "type": {"type": "string", "allowed": ["track"], "required": True},
        "event": {"type": "string", "empty": False, "required": True, "maxlength": 256},
        "properties": {"type": "dict"},
    },
    "identify": {
        **COMMON,
        "type": {"type": "string", "allowed": ["identify"], "required": True},
        "traits": {"type": "dict"},
    },
    "page": {
        **COMMON,
        "type": {"type": "string", "allowed": ["page"], "required": True},
        "name": {"type": "string"},
        "category": {"type": "string"},
        "properties": {"type": "dict"},
    },
}

#: Segment refuses a call with neither id.
REQUIRE_ID = (("userId", "anonymousId"),)

VALIDATORS = [
    *(
        ValidatorSpec(VENDOR, name, schema, require_any=REQUIRE_ID)
        for name, schema in SCHEMAS.items()
    ),
    ValidatorSpec(
        VENDOR,
        "*",
        {"type": {"type": "string", "required": True, "allowed": list(TYPES)}},
    ),
]
