"""Segment calls <-> canonical events.

- ``track``: ``event`` is the type, through Segment's e-commerce spec names
  (``Order Completed`` -> ``purchase``); any other name is a custom type.
- ``page`` -> ``page_view``; ``identify`` -> the custom type ``identify``,
  its ``traits`` as properties.
- ``userId`` / ``anonymousId`` -> identity; ``timestamp`` (ISO 8601) -> ms.
- Everything else (``messageId``, ``context``, ``integrations``, the original
  ``timestamp`` text, an empty ``properties``…) is kept in
  ``extras["segment"]``, so a Segment-to-Segment relay sends the call as received.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from router import Codec, Event, Identity, Untranslatable

from router_segment.schema import VENDOR

#: Segment's e-commerce spec event names for the canonical types.
SPEC_NAMES = {
    "purchase": "Order Completed",
    "order_updated": "Order Updated",
    "order_cancelled": "Order Cancelled",
    "order_refunded": "Order Refunded",
    "product_viewed": "Product Viewed",
    "product_clicked": "Product Clicked",
    "product_list_viewed": "Product List Viewed",
    "product_reviewed": "Product Reviewed",
    "add_to_cart": "Product Added",
    "remove_from_cart": "Product Removed",
    "add_to_wishlist": "Product Added to Wishlist",
    "payment_info": "Payment Info Entered",
    "search": "Products Searched",
    "registration": "Signed Up",
}
_CANONICAL = {name: canonical for canonical, name in SPEC_NAMES.items()}
#: The fields decoded into the canonical event; the rest go to extras.
_DECODED = ("userId", "anonymousId", "event", "properties", "traits")


class SegmentCodec(Codec):
    """Segment ``track``/``identify``/``page`` calls, as ``/v1/batch`` items."""

    vendor = VENDOR
    default_types = SPEC_NAMES

    def event_type(self, raw: Any) -> str | None:
        kind = raw.get("type") if isinstance(raw, Mapping) else None
        return kind if isinstance(kind, str) else None

    def decode(
        self,
        raw: Mapping[str, Any],
        *,
        id: str,
        received_at: int,
        meta: Mapping[str, Any],
    ) -> Event:
        kind = raw["type"]
        if kind == "track":
            name = raw["event"]
            event_type, custom = _CANONICAL.get(name, name), name not in _CANONICAL
        elif kind == "page":
            event_type, custom = "page_view", False
        else:
            event_type, custom = "identify", True
        props = raw.get("traits" if kind == "identify" else "properties")
        # Kept when empty: {} and absent are two things on the wire.
        extras = {k: v for k, v in raw.items() if k not in _DECODED or v == {}}
        return Event(
            id=raw.get("messageId") or id,
            type=event_type,
            custom=custom,
            timestamp=_ms(raw.get("timestamp"), received_at),
            received_at=received_at,
            vendor=VENDOR,
            identity=Identity(
                user_id=raw.get("userId"), anonymous_id=raw.get("anonymousId")
            ),
            properties=dict(props or {}),
            extras={VENDOR: extras},
        )

    def passthrough(self, options: Mapping[str, Any]) -> bool:
        # Only a type_map renames Segment's own events.
        return not options.get("type_map")

    def encode(self, event: Event, options: Mapping[str, Any]) -> dict[str, Any]:
        own = event.extras.get(VENDOR)
        out: dict[str, Any] = dict(own) if own is not None else {}
        kind = out.get("type") or _kind(event)
        out["type"] = kind
        identity = event.identity
        if identity.user_id:
            out["userId"] = identity.user_id
        if identity.anonymous_id:
            out["anonymousId"] = identity.anonymous_id
        if "userId" not in out and "anonymousId" not in out:
            raise Untranslatable(
                VENDOR, "Segment needs a userId or an anonymousId", field="userId"
            )
        if kind == "track":
            default = event.type if event.custom else None
            out["event"] = (
                self.resolve_type(
                    event.type, options, custom=event.custom, default=default
                )
                or event.type
            )
        props = dict(event.properties) if own is not None else _properties(event)
        if props:
            out["traits" if kind == "identify" else "properties"] = props
        if own is None:
            out["messageId"] = event.id
            out["timestamp"] = _iso(event.timestamp)
        return out


def _kind(event: Event) -> str:
    if event.type == "page_view":
        return "page"
    if event.type == "identify" and event.custom:
        return "identify"
    return "track"


def _properties(event: Event) -> dict[str, Any]:
    """Another vendor's event as Segment spec properties."""
    props = dict(event.properties)
    for name, value in (
        ("order_id", event.order_id),
        ("query", event.search_query),
        ("url", event.context.page_url),
        ("title", event.context.page_title),
    ):
        if value is not None:
            props.setdefault(name, value)
    for name, money in (("revenue", event.revenue), ("total", event.total)):
        if money is not None:
            props.setdefault(name, _number(money.amount, name))
            if money.currency:
                props.setdefault("currency", money.currency)
    if event.items:
        props.setdefault(
            "products",
            [
                {
                    k: v
                    for k, v in {
                        "product_id": item.id,
                        "sku": item.sku,
                        "name": item.name,
                        "brand": item.brand,
                        "category": item.category,
                        "quantity": item.quantity,
                        "price": None
                        if item.price is None
                        else _number(item.price.amount, "price"),
                    }.items()
                    if v is not None
                }
                for item in event.items
            ],
        )
    return props


def _number(amount: Decimal, field: str) -> float:
    number = float(amount)
    if not math.isfinite(number):
        raise Untranslatable(
            VENDOR, f"{field} {amount} is not a finite number", field=field
        )
    return number


def _ms(text: Any, default: int) -> int:
    if not isinstance(text, str):
        return default
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return (
            default  # matched the pattern but is no date (month 13): the arrival time
        )
    return int(moment.timestamp() * 1000)


def _iso(ms: int) -> str:
    try:
        moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise Untranslatable(
            VENDOR, f"timestamp {ms} ms is outside years 1-9999"
        ) from exc
    # Not strftime: %Y gives year 1 as "1", which is no ISO 8601.
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:"
        f"{moment.minute:02d}:{moment.second:02d}.{moment.microsecond // 1000:03d}Z"
    )
