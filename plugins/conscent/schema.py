"""Cerberus schemas of Conscent's event types (``conscent-event-types``).

One :class:`ValidatorSpec` per ``eventType`` plus a ``"*"`` fallback that
reports a missing or unknown ``eventType``. Only plain rules, no
normalization: validation never changes an event.
"""

from __future__ import annotations

from typing import Any

from router import ValidatorSpec

__all__ = [
    "CLICK_ACTIONS",
    "EVENT_LOCATIONS",
    "EVENT_TYPES",
    "FIELDS",
    "UUID_REGEX",
    "VALIDATORS",
    "VENDOR",
    "schema_for",
]

VENDOR = "conscent"

#: Every ``eventType`` Conscent documents.
EVENT_TYPES = (
    "PING",
    "CLICK",
    "EXIT",
    "PURCHASE",
    "TRANSACTION",
    "REGISTRATION",
    "VALIDATION",
)

#: The ``eventLocation`` enum, shared by every event type.
EVENT_LOCATIONS = (
    "PAGE",
    "PAYWALL",
    "CONTENT_FLOW_LOGIN",
    "CONTENT_FLOW_OTP",
    "CONTENT_FLOW_ADD_MONEY_PAGE",
    "CONTENT_FLOW_PAYMENT_GATEWAY",
    "SSO_LOGIN",
    "SSO_OTP",
    "UDB",
    "UDB_LOGIN",
    "UDB_OTP",
    "SUBS_LOGIN",
    "SUBS_OTP",
    "POPUP",
    "SLP",
    "SAP",
    "SRP",
    "SUBS_PAYMENT_GATEWAY",
    "FAV",
    "FAV_ICON",
    "USER_BAR",
    "RECOMMENDATION_POPUP",
)

#: The ``clickAction`` enum (CLICK only).
CLICK_ACTIONS = (
    "P2P",
    "ADD_MONEY_TO_WALLET",
    "PAYMENT_GATEWAY_CROSS_BTN",
    "LOGIN_FLOW_CROSSBTN",
    "CONTENT",
    "PASS",
    "SUBS",
    "MOBILE",
    "EMAIL",
    "GOOGLE",
    "FACEBOOK",
    "BUY_NOW",
    "RENEW_BTN",
    "CHANGE_PLAN",
    "ADD_ADDRESS",
    "COUPON",
    "POPUP_REDIRECT",
    "POPUP_CLOSE",
)

#: A hyphenated UUID, any version, either case. Paired with ``maxlength: 36``
#: because ``$`` also matches before a trailing newline.
UUID_REGEX = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"

_UUID = {"required": True, "type": "string", "regex": UUID_REGEX, "maxlength": 36}
_ID = {"required": True, "type": "string", "empty": False}

#: Fields of every event type.
_COMMON: dict[str, dict[str, Any]] = {
    "clientId": _ID,
    "eventLocation": {"required": True, "type": "string", "allowed": list(EVENT_LOCATIONS)},
    "anonId": _UUID,
    # Optional on PING/CLICK/EXIT: "" or null mean "not logged in" there.
    "userId": {"type": "string", "nullable": True},
}

#: Fields specific to each event type (they override ``_COMMON``).
_SPECIFIC: dict[str, dict[str, dict[str, Any]]] = {
    "PING": {
        "pingId": _UUID,
        "active": {"required": True, "type": "integer", "allowed": [0, 1]},
    },
    "CLICK": {
        "clickAction": {"type": "string", "allowed": list(CLICK_ACTIONS)},
    },
    "EXIT": {},
    "PURCHASE": {"userId": _ID, "purchaseId": _ID},
    "TRANSACTION": {"userId": _ID, "transactionId": _ID},
    "REGISTRATION": {"userId": _ID},
    "VALIDATION": {"userId": _ID},
}


def schema_for(event_type: str) -> dict[str, dict[str, Any]]:
    """The cerberus schema of one Conscent event type."""
    return {
        "eventType": {"required": True, "type": "string", "allowed": [event_type]},
        **_COMMON,
        **_SPECIFIC[event_type],
    }


#: The fields each type defines (the rest of an event is kept verbatim in extras).
FIELDS: dict[str, frozenset[str]] = {t: frozenset(schema_for(t)) for t in EVENT_TYPES}

VALIDATORS: list[ValidatorSpec] = [
    *(ValidatorSpec(VENDOR, t, schema_for(t)) for t in EVENT_TYPES),
    # Events with a missing, non-string or unknown eventType.
    ValidatorSpec(
        VENDOR,
        "*",
        {"eventType": {"required": True, "type": "string", "allowed": list(EVENT_TYPES)}},
    ),
]
