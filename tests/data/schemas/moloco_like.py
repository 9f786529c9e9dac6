"""Shaped like Moloco's PostUserEvent body (shared/vendors/moloco-event-openapi.yml)."""

from router.validation import ValidatorSpec

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
CHANNELS = ["UNKNOWN_CHANNEL_TYPE", "APP", "SITE", "DESKTOP_SITE", "MOBILE_SITE"]
CURRENCIES = ["UNKNOWN_CURRENCY", "USD", "KRW", "JPY", "EUR", "GBP", "SEK", "INR", "THB"]
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
ID = {"type": "string", "maxlength": 128}


def money(**extra):
    return {
        "type": "dict",
        "schema": {
            "currency": {"type": "string", "required": True, "allowed": CURRENCIES},
            "amount": {"type": "number", "required": True, "min": 0},
        },
        **extra,
    }


EVENT = {
    "id": ID,
    "event_type": {"type": "string", "required": True, "allowed": EVENT_TYPES},
    "timestamp": {"type": "string", "required": True, "regex": r"[0-9]{10,13}"},
    "channel_type": {"type": "string", "required": True, "allowed": CHANNELS},
    "domain": {"type": "string"},
    "user_id": ID,
    "device": {
        "type": "dict",
        "schema": {
            "os": {"type": "string", "allowed": ["ios", "android", "web"]},
            "os_version": {"type": "string"},
            "advertising_id": {"type": "string", "regex": UUID},
            "unique_device_id": ID,
            "persistent_id": ID,
            "model": {"type": "string"},
            "ua": {"type": "string"},
            "language": {"type": "string", "regex": "[a-z]{2}"},
        },
    },
    "items": {
        "type": "list",
        "schema": {
            "type": "dict",
            "schema": {
                "id": {"type": "string", "required": True, "empty": False, "maxlength": 128},
                "price": money(),
                "quantity": {"type": "integer", "min": 0, "max": 2**31 - 1},
                "item_group_id": {"type": "string"},
                "seller_id": {"type": "string"},
                "price_seller": money(),
            },
        },
    },
    "revenue": money(dependencies={"event_type": ["PURCHASE", "ADD_TO_CART"]}),
    "search_query": {"type": "string", "dependencies": {"event_type": "SEARCH"}},
    "session_id": ID,
    "custom_id": ID,
    "page_id": {"type": "string"},
    "referrer_page_id": {"type": "string", "dependencies": ["page_id"]},
    "shipping_charge": money(),
    "decision_track_id": {"type": "string"},
    "personalization_mode": {
        "type": "string",
        "allowed": ["UNKNOWN_PERSONALIZATION_MODE", "STANDARD", "METRIC_ONLY", "ID_LESS"],
    },
}

SPECS = [
    ValidatorSpec(
        "moloco_like",
        "*",
        EVENT,
        require_any=(("user_id", "device.persistent_id", "custom_id"),),
    ),
    ValidatorSpec("moloco_like", "strict", EVENT, allow_unknown=False),
]
