"""Shaped like Segmento's user events (shared/vendors/segmento-user-events.txt)."""

from router.validation import ValidatorSpec

PRODUCT = {
    "product_id": {"type": "string", "required": True, "empty": False},
    "sku": {"type": "string"},
    "category": {"type": "string"},
    "name": {"type": "string"},
    "brand": {"type": "string"},
    "variant": {"type": "string"},
    "price": {"type": ["string", "number"]},
    "quantity": {"type": ["string", "integer"]},
    "position": {"type": "string"},
    "url": {"type": "string", "regex": "https?://.+"},
}
EVENT = {
    "event_name": {"type": "string", "required": True, "empty": False, "maxlength": 64},
    "visitor_id": {"type": "string", "required": True, "empty": False},
    "event_properties": {"type": "dict", "required": True},
    "event_timestamp": {
        "type": "string",
        "regex": r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}",
    },
    "context": {"type": "dict", "nullable": True},
    "type": {"type": "string", "default": "track", "allowed": ["track", "identify", "page"]},
}
PRODUCT_CLICKED = {
    **EVENT,
    "event_properties": {"type": "dict", "required": True, "schema": PRODUCT},
}
BATCH = {
    "data": {
        "type": "list",
        "required": True,
        "empty": False,
        "schema": {"type": "dict", "schema": EVENT, "allow_unknown": True},
    }
}

SPECS = [
    ValidatorSpec("segmento_like", "*", EVENT),
    ValidatorSpec("segmento_like", "product-clicked", PRODUCT_CLICKED),
    ValidatorSpec("segmento_like", "batch", BATCH, allow_unknown=False),
]
