"""Moloco events for the plugin's tests: a full one, the least each type needs, path edits."""

from __future__ import annotations

import copy

from router_plugins.moloco.schema import ITEM_EVENT_TYPES

#: A valid event with every field of v1Event set; valid for every event type.
FULL = {
    "id": "evt-1",
    "event_type": "PURCHASE",
    "timestamp": "1617870506121",
    "channel_type": "SITE",
    "domain": "shop.example.com",
    "user_id": "u-1",
    "device": {
        "os": "ios",
        "os_version": "14.4.1",
        "advertising_id": "7acefbed-d1f6-4e4e-aa26-74e93dd017e4",
        "unique_device_id": "udid-1",
        "persistent_id": "pid-1",
        "model": "iPhone 11 Pro",
        "ua": "Mozilla/5.0",
        "language": "en",
    },
    "items": [
        {
            "id": "sku-1",
            "price": {"currency": "USD", "amount": 12.34},
            "quantity": 1,
            "item_group_id": "g-1",
            "seller_id": "s-1",
            "price_seller": {"currency": "USD", "amount": 10},
        }
    ],
    "revenue": {"currency": "USD", "amount": 12.34},
    "search_query": "shoes",
    "session_id": "sess-1",
    "custom_id": "c-1",
    "page_id": "electronics",
    "referrer_page_id": "home",
    "shipping_charge": {"currency": "USD", "amount": 3},
    "decision_track_id": "track-1",
    "personalization_mode": "STANDARD",
}

#: The least each event type needs.
MINIMAL = {
    "event_type": None,
    "timestamp": "1617870506121",
    "channel_type": "APP",
    "custom_id": "c-1",
}
TYPE_FIELDS = {
    **{t: {"items": [{"id": "sku-1"}]} for t in ITEM_EVENT_TYPES},
    "SEARCH": {"search_query": "shoes"},
    "PAGE_VIEW": {"page_id": "electronics"},
}


def minimal(event_type: str) -> dict:
    return {**MINIMAL, "event_type": event_type, **TYPE_FIELDS.get(event_type, {})}


def full(event_type: str) -> dict:
    return {**copy.deepcopy(FULL), "event_type": event_type}


def _walk(doc, path: str):
    parts = [int(p) if p.isdigit() else p for p in path.split(".")]
    for part in parts[:-1]:
        doc = doc[part]
    return doc, parts[-1]


def set_path(doc: dict, path: str, value) -> dict:
    parent, key = _walk(doc, path)
    parent[key] = value
    return doc


def del_path(doc: dict, path: str) -> dict:
    parent, key = _walk(doc, path)
    del parent[key]
    return doc
