"""Moloco ``v1Event`` to and from the canonical event.

``docs/translation/moloco.md`` is the table this module implements.

What has no canonical home is kept in ``event.extras["moloco"]`` so that
``encode(decode(raw), {}) == raw``::

    fields        top-level fields with no canonical home, verbatim
                  (decision_track_id, personalization_mode, unknown fields)
    device        the same for ``device`` (unique_device_id, unknown fields);
                  present whenever the raw event had a ``device`` object
    wire          known fields whose raw form the canonical value cannot
                  reproduce: ``id`` (absent -> None, or ""), a ``timestamp``
                  with leading zeros, ``channel_type`` UNKNOWN_CHANNEL_TYPE,
                  ``revenue``/``shipping_charge`` carrying extra keys, an
                  empty ``items`` list
    platform      the ``platform`` path parameter of the request

Item fields with no canonical home go to ``Item.extra`` verbatim
(``price_seller``, unknown keys, and ``price`` itself when it has extra keys).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from router import (
    Codec,
    Context,
    Device,
    Event,
    Identity,
    Item,
    Money,
    Requirement,
    Untranslatable,
    money_of,
    number_of,
)

from .schema import (
    CHANNEL_TYPES,
    CURRENCIES,
    EVENT_TYPES,
    ITEM_EVENT_TYPES,
    MAX_ID_LENGTH,
    VENDOR,
)

__all__ = ["CANONICAL_TO_TYPE", "TYPE_TO_CANONICAL", "MolocoCodec"]


#: Moloco event type -> canonical type. Every Moloco type has a home.
TYPE_TO_CANONICAL: dict[str, str] = {
    "UNKNOWN_EVENT_TYPE": "unknown",
    "SEARCH": "search",
    "ITEM_PAGE_VIEW": "product_viewed",
    "ADD_TO_CART": "add_to_cart",
    "PURCHASE": "purchase",
    "ADD_TO_WISHLIST": "add_to_wishlist",
    "HOME": "home",
    "LAND": "land",
    "PAGE_VIEW": "page_view",
}
#: Canonical type -> Moloco event type (the defaults; ``type_map`` overrides).
CANONICAL_TO_TYPE: dict[str, str] = {v: k for k, v in TYPE_TO_CANONICAL.items()}

_CHANNEL_TO_CANONICAL = {
    "APP": "app",
    "SITE": "site",
    "DESKTOP_SITE": "desktop_site",
    "MOBILE_SITE": "mobile_site",
}
_CANONICAL_TO_CHANNEL = {v: k for k, v in _CHANNEL_TO_CANONICAL.items()}

_CURRENCIES = frozenset(CURRENCIES)
_UNKNOWN_CURRENCY = "UNKNOWN_CURRENCY"
_ITEM_EVENT_TYPES = frozenset(ITEM_EVENT_TYPES)

#: Top-level fields with a canonical home; anything else goes to extras verbatim.
_MAPPED = frozenset(
    {
        "id",
        "event_type",
        "timestamp",
        "channel_type",
        "domain",
        "user_id",
        "device",
        "items",
        "revenue",
        "search_query",
        "session_id",
        "custom_id",
        "page_id",
        "referrer_page_id",
        "shipping_charge",
    }
)
#: ``device`` field -> ``Device`` attribute (``persistent_id`` goes to Identity).
_DEVICE_FIELDS = {
    "os": "os",
    "os_version": "os_version",
    "advertising_id": "advertising_id",
    "model": "model",
    "ua": "user_agent",
    "language": "language",
}
_DEVICE_MAPPED = frozenset({*_DEVICE_FIELDS, "persistent_id"})
_ITEM_MAPPED = frozenset({"id", "price", "quantity", "item_group_id", "seller_id"})
_MONEY_KEYS = frozenset({"currency", "amount"})

_TYPE_NAMES = ", ".join(EVENT_TYPES)
_CHANNEL_NAMES = ", ".join(c for c in CHANNEL_TYPES if c != "UNKNOWN_CHANNEL_TYPE")


#: Canonical fields of decoded Moloco events (require_any: user_id, persistent_id, custom_id).
_ALWAYS_ALL = frozenset(
    {
        "identity.user_id|identity.persistent_id|identity.custom_id",
        # UNKNOWN_CHANNEL_TYPE has no canonical channel: it is kept in extras.
        "context.channel|extras.moloco",
    }
)
_REQUIRED_FIELDS = {"items": "items", "search_query": "search_query", "page_id": "context.page_id"}
_ALWAYS: dict[str, frozenset[str]] = {
    event_type: _ALWAYS_ALL | {_REQUIRED_FIELDS[f] for f in fields}
    for event_type, fields in {
        **{t: () for t in TYPE_TO_CANONICAL},
        **{t: ("items",) for t in ITEM_EVENT_TYPES},
        "SEARCH": ("search_query",),
        "PAGE_VIEW": ("page_id",),
    }.items()
}
_SOMETIMES_ALL = frozenset(
    {
        "identity.user_id",
        "identity.persistent_id",
        "identity.custom_id",
        "identity.session_id",
        "context.channel",
        "context.page_id",
        "context.referrer",
        "context.domain",
        "context.device",
        "items",
        "search_query",
        "revenue",
        "shipping",
        "extras.moloco",
    }
)
_SOMETIMES = {event_type: _SOMETIMES_ALL for event_type in TYPE_TO_CANONICAL}
_NEEDS: dict[str, tuple[Requirement, ...]] = {
    "*": (
        Requirement(
            "a channel",
            ("context.channel", "extras.moloco"),
            "set the sink option channel_type",
            option="channel_type",
        ),
        Requirement(
            "a user id",
            tuple(
                f"identity.{name}"
                for name in (
                    "user_id",
                    "persistent_id",
                    "custom_id",
                    "anonymous_id",
                    "fingerprint",
                    "session_id",
                )
            ),
            "no sink option supplies one",
        ),
        Requirement(
            "currencies Moloco accepts",
            (),
            "set the sink option unsupported_currency: unknown",
            option="unsupported_currency",
            risky=("revenue", "total", "shipping", "items"),
        ),
        Requirement("an id on every item", (), "no sink option supplies one", risky=("items",)),
    ),
    **{
        event_type: (
            Requirement(
                "items",
                ("items",),
                "set the sink option default_item_id, or map the type to one without "
                "items in type_map",
                option="default_item_id",
            ),
        )
        for event_type in ITEM_EVENT_TYPES
    },
    "SEARCH": (
        Requirement("a search query", ("search_query",), "map the type to another in type_map"),
    ),
    "PAGE_VIEW": (
        Requirement(
            "a page id",
            ("context.page_id", "context.page_url", "context.page_title", "context.location"),
            "map the type to another in type_map",
        ),
    ),
}


class MolocoCodec(Codec):
    """Moloco ``v1Event`` <-> canonical :class:`~router.Event`.

    Encoding reads these sink options (all optional):

    ``type_map``
        canonical (or another vendor's custom) type -> Moloco event type;
        overrides the defaults in :data:`CANONICAL_TO_TYPE`.
    ``channel_type``
        Moloco channel for events whose ``context.channel`` is not a
        canonical channel.
    ``currency``
        currency of amounts whose source gave none (default
        ``UNKNOWN_CURRENCY``).
    ``unsupported_currency``
        ``"reject"`` (default: the event is untranslatable) or ``"unknown"``
        (send ``UNKNOWN_CURRENCY``) for a currency outside Moloco's enum.
    ``default_item_id``
        the one item sent with an item event (ADD_TO_CART, ADD_TO_WISHLIST,
        ITEM_PAGE_VIEW, PURCHASE) that has no items.
    """

    vendor = VENDOR
    default_types = CANONICAL_TO_TYPE
    decoded_types = TYPE_TO_CANONICAL
    always = _ALWAYS
    sometimes = _SOMETIMES
    needs = _NEEDS

    def event_type(self, raw: Any) -> str | None:
        """``event_type`` when it is a string."""
        if not isinstance(raw, dict):
            return None
        value = raw.get("event_type")
        return value if isinstance(value, str) else None

    # ------------------------------------------------------------------ decode

    def decode(
        self, raw: Mapping[str, Any], *, id: str, received_at: int, meta: Mapping[str, Any]
    ) -> Event:
        """Wire details that JSON would lose go in ``extras`` so encode gives them back."""
        mx: dict[str, Any] = {}
        wire: dict[str, Any] = {}

        fields = {k: v for k, v in raw.items() if k not in _MAPPED}
        if fields:
            mx["fields"] = fields
        platform = meta.get("platform")
        if platform is not None:
            mx["platform"] = platform

        raw_id = raw.get("id")
        if not raw_id:
            wire["id"] = raw_id  # None: the event had no id; "": an empty one
        event_type = raw["event_type"]
        canonical_type = TYPE_TO_CANONICAL.get(event_type)

        timestamp = raw["timestamp"]
        ms = int(timestamp)
        if str(ms) != timestamp:
            wire["timestamp"] = timestamp

        channel_type = raw["channel_type"]
        channel = _CHANNEL_TO_CANONICAL.get(channel_type)
        if channel is None:
            wire["channel_type"] = channel_type

        device, persistent_id = _device_in(raw.get("device"), mx)
        items = []
        raw_items = raw.get("items")
        if raw_items is not None:
            if not raw_items:
                wire["items"] = []
            items = [_item_in(item) for item in raw_items]

        revenue = _money_in(raw.get("revenue"), "revenue", wire)
        shipping = _money_in(raw.get("shipping_charge"), "shipping_charge", wire)

        if wire:
            mx["wire"] = wire
        return Event(
            id=raw_id or id,
            type=canonical_type or event_type,
            custom=canonical_type is None,
            timestamp=ms,
            received_at=received_at,
            vendor=VENDOR,
            identity=Identity(
                user_id=raw.get("user_id"),
                persistent_id=persistent_id,
                custom_id=raw.get("custom_id"),
                session_id=raw.get("session_id"),
            ),
            context=Context(
                channel=channel,
                page_id=raw.get("page_id"),
                referrer=raw.get("referrer_page_id"),
                domain=raw.get("domain"),
                device=device,
            ),
            items=items,
            search_query=raw.get("search_query"),
            revenue=revenue,
            shipping=shipping,
            extras={VENDOR: mx} if mx else {},
        )

    # ------------------------------------------------------------------ encode

    #: Sink options that can change how this vendor's own events are encoded.
    _REWRITING_OPTIONS = (
        "type_map",
        "channel_type",
        "currency",
        "unsupported_currency",
        "default_item_id",
    )

    def passthrough(self, options: Mapping[str, Any]) -> bool:
        """Own events come out unchanged unless a rewriting option is set."""
        return not any(options.get(key) for key in self._REWRITING_OPTIONS)

    def encode(self, event: Event, options: Mapping[str, Any]) -> dict[str, Any]:
        """One ``v1Event``; ``Untranslatable`` names the sink option that would help."""
        mx = event.extras.get(VENDOR) or {}
        wire = mx.get("wire") or {}
        identity = event.identity
        context = event.context
        out: dict[str, Any] = {}

        event_id = wire.get("id", event.id)
        if event_id is not None and ("id" in wire or len(event_id) <= MAX_ID_LENGTH):
            out["id"] = event_id

        event_type = _event_type(self, event, options)
        out["event_type"] = event_type

        timestamp = wire.get("timestamp")
        if timestamp is None or int(timestamp) != event.timestamp:
            timestamp = str(event.timestamp)
        out["timestamp"] = timestamp

        out["channel_type"] = _channel_type(event, options, wire)

        if context.domain is not None:
            out["domain"] = context.domain
        if identity.user_id is not None:
            out["user_id"] = identity.user_id

        device = _device_out(context.device, identity.persistent_id, mx.get("device"))
        if device is not None:
            out["device"] = device

        items = _items_out(event, event_type, options, wire)
        if items is not None:
            out["items"] = items

        revenue = event.revenue if event.revenue is not None else event.total
        if revenue is not None:
            out["revenue"] = _money_out(revenue, options, "revenue", wire.get("revenue"))

        if not event.search_query and event_type == "SEARCH":
            raise Untranslatable(
                VENDOR,
                f"SEARCH requires search_query and the {event.type!r} event from "
                f"{event.vendor} has none",
                field="search_query",
            )
        if event.search_query is not None:
            out["search_query"] = event.search_query

        if identity.session_id is not None:
            out["session_id"] = identity.session_id
        custom_id = _custom_id(event)
        if custom_id is not None:
            out["custom_id"] = custom_id

        page_id = _page_id(event, event_type)
        if page_id is not None:
            out["page_id"] = page_id
        if context.referrer is not None:
            out["referrer_page_id"] = context.referrer

        if event.shipping is not None:
            out["shipping_charge"] = _money_out(
                event.shipping, options, "shipping_charge", wire.get("shipping_charge")
            )

        fields = mx.get("fields")
        if fields:
            out.update(fields)
        return out


# ---------------------------------------------------------------------- helpers


def _device_in(
    raw_device: Mapping[str, Any] | None, mx: dict[str, Any]
) -> tuple[Device | None, str | None]:
    """The canonical device and persistent id; the fields Moloco has and Event lacks go
    in ``mx["device"]``."""
    if raw_device is None:
        return None, None
    mx["device"] = {k: v for k, v in raw_device.items() if k not in _DEVICE_MAPPED}
    device = None
    if any(k in raw_device for k in _DEVICE_FIELDS):
        device = Device(
            os=raw_device.get("os"),
            os_version=raw_device.get("os_version"),
            model=raw_device.get("model"),
            user_agent=raw_device.get("ua"),
            language=raw_device.get("language"),
            advertising_id=raw_device.get("advertising_id"),
        )
    return device, raw_device.get("persistent_id")


def _items_out(
    event: Event, event_type: str, options: Mapping[str, Any], wire: Mapping[str, Any]
) -> list[dict[str, Any]] | None:
    """The ``items`` to send (None: none); an item event without items gets
    ``default_item_id``, or is untranslatable."""
    if event.items:
        own = event.vendor == VENDOR
        return [_item_out(item, i, own, options) for i, item in enumerate(event.items)]
    if event_type in _ITEM_EVENT_TYPES:
        default_item_id = options.get("default_item_id")
        if not default_item_id:
            raise Untranslatable(
                VENDOR,
                f"{event_type} requires items and the {event.type!r} event from "
                f"{event.vendor} has none; set the sink option default_item_id, or map "
                f"{event.type!r} to an event type without items in type_map",
                field="items",
            )
        return [{"id": default_item_id}]
    return [] if "items" in wire else None


def _custom_id(event: Event) -> str | None:
    """``custom_id``, or the first id Moloco accepts when the event has no user id of its."""
    identity = event.identity
    custom_id = identity.custom_id
    if identity.user_id or identity.persistent_id or custom_id:
        return custom_id
    custom_id = identity.anonymous_id or identity.fingerprint or identity.session_id
    if not custom_id:
        raise Untranslatable(
            VENDOR,
            f"the {event.type!r} event from {event.vendor} has no user id Moloco "
            "accepts: one of user_id, persistent_id, custom_id, anonymous_id, "
            "fingerprint or session_id is required",
            field="custom_id",
        )
    return custom_id


def _page_id(event: Event, event_type: str) -> str | None:
    """``page_id``; a PAGE_VIEW without one takes the page URL, title or location."""
    context = event.context
    if event_type != "PAGE_VIEW" or context.page_id:
        return context.page_id
    page_id = context.page_url or context.page_title or context.location
    if not page_id:
        raise Untranslatable(
            VENDOR,
            f"PAGE_VIEW requires page_id and the {event.type!r} event from "
            f"{event.vendor} has no page id, page URL, page title or location",
            field="page_id",
        )
    return page_id


def _event_type(codec: Codec, event: Event, options: Mapping[str, Any]) -> str:
    mapped = codec.resolve_type(event.type, options, custom=event.custom)
    if mapped is not None:
        return mapped
    if event.custom:
        kind = f"custom event type {event.type!r} of {event.vendor}"
    else:
        kind = f"canonical event type {event.type!r}"
    raise Untranslatable(
        VENDOR,
        f"Moloco has no event type for the {kind}; map it in the sink option "
        f"type_map (to one of {_TYPE_NAMES})",
        field="event_type",
    )


def _channel_type(event: Event, options: Mapping[str, Any], wire: Mapping[str, Any]) -> str:
    channel = event.context.channel
    if channel and channel in _CANONICAL_TO_CHANNEL:
        return _CANONICAL_TO_CHANNEL[channel]
    channel = options.get("channel_type") or wire.get("channel_type")
    if channel:
        return channel
    raise Untranslatable(
        VENDOR,
        f"Moloco requires channel_type and the {event.type!r} event from {event.vendor} "
        f"has no channel ({event.context.channel!r}); set the sink option channel_type "
        f"(one of {_CHANNEL_NAMES})",
        field="channel_type",
    )


def _device_out(
    device: Device | None, persistent_id: str | None, extra: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    if device is not None:
        for name, attr in _DEVICE_FIELDS.items():
            value = getattr(device, attr)
            if value is not None:
                out[name] = value
    if persistent_id is not None:
        out["persistent_id"] = persistent_id
    if extra is not None:
        out.update(extra)
    elif not out:
        return None
    return out


def _item_in(raw: Mapping[str, Any]) -> Item:
    extra = {k: v for k, v in raw.items() if k not in _ITEM_MAPPED}
    price = raw.get("price")
    if price is not None and not _MONEY_KEYS.issuperset(price):
        extra["price"] = price
    return Item(
        id=raw["id"],
        group_id=raw.get("item_group_id"),
        price=_money(price) if price is not None else None,
        quantity=raw.get("quantity"),
        seller_id=raw.get("seller_id"),
        extra=extra,
    )


def _item_out(item: Item, index: int, own: bool, options: Mapping[str, Any]) -> dict[str, Any]:
    if not item.id:
        raise Untranslatable(
            VENDOR, f"item {index} has no id, which Moloco requires", field=f"items[{index}].id"
        )
    out: dict[str, Any] = {"id": item.id}
    # Item.extra holds the source vendor's own item fields: only ours are sent.
    extra = item.extra if own else {}
    if item.price is not None:
        out["price"] = _money_out(item.price, options, f"items[{index}].price", extra.get("price"))
    if item.quantity is not None:
        out["quantity"] = item.quantity
    if item.group_id is not None:
        out["item_group_id"] = item.group_id
    if item.seller_id is not None:
        out["seller_id"] = item.seller_id
    for name, value in extra.items():
        if name != "price":
            out[name] = value
    return out


def _money(raw: Mapping[str, Any]) -> Money:
    currency = raw["currency"]
    # The Decimal remembers int or float, so encoding gives back the same type.
    return money_of(raw["amount"], None if currency == _UNKNOWN_CURRENCY else currency)


def _money_in(raw: Mapping[str, Any] | None, name: str, wire: dict[str, Any]) -> Money | None:
    if raw is None:
        return None
    if not _MONEY_KEYS.issuperset(raw):
        wire[name] = raw
    return _money(raw)


def _money_out(
    money: Money, options: Mapping[str, Any], field: str, raw: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    if raw is not None and _money(raw) == money:
        return dict(raw)
    currency = money.currency
    if currency is None:
        currency = options.get("currency") or _UNKNOWN_CURRENCY
    else:
        currency = currency.upper()
        if currency not in _CURRENCIES:
            if options.get("unsupported_currency") != "unknown":
                raise Untranslatable(
                    VENDOR,
                    f"currency {money.currency!r} of {field} is not one Moloco accepts; set "
                    "the sink option unsupported_currency: unknown to send it as "
                    "UNKNOWN_CURRENCY",
                    field=f"{field}.currency",
                )
            currency = _UNKNOWN_CURRENCY
    return {"currency": currency, "amount": _number(money.amount, field)}


def _number(amount: Any, field: str) -> int | float:
    """A Decimal as a JSON number of the type it was decoded from (``router.number_of``).

    ``Decimal("12")`` -> 12, ``Decimal("12.0")`` -> 12.0, ``Decimal("1E+20")`` -> 1e20.
    """
    if not isinstance(amount, Decimal):
        amount = Decimal(str(amount))
    try:
        return number_of(amount)
    except ValueError:
        raise Untranslatable(
            VENDOR, f"amount {amount} of {field} is not a finite number", field=f"{field}.amount"
        ) from None
