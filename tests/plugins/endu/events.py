"""Endu events for the plugin's tests: a valid one and variations of it."""

from __future__ import annotations

BASE = {
    "property_id": "D#1007491775344160808",
    "organization_id": "848WN4oEUgisKrV9dY9Ni6",
    "timestamp": "1672536219",
    "event_type": "ITEM_PURCHASED",
    "c_user_id": "59078598125872925",
    "event_data": {"item_id": "8258727671"},
}
DROP = object()


def event(event_type: str | None = None, /, **changes) -> dict:
    """BASE with ``event_type`` set and ``changes`` applied (``DROP`` removes a key)."""
    doc = {**BASE, **({"event_type": event_type} if event_type else {}), **changes}
    return {k: v for k, v in doc.items() if v is not DROP}
