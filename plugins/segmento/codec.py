"""Segmento user events to and from the canonical Event.

``docs/translation/segmento.md`` is the table this module implements. In short:

- ``visitor_id`` is ``identity.user_id``; ``event_name`` picks the type.
- A default event's ``event_properties`` are spread over canonical fields
  (products to ``items``, money to Money, ``query`` to ``search_query``…); the
  keys left over go to ``properties`` unchanged. A custom event's
  ``event_properties`` are its ``properties``, unchanged.
- The other top-level fields (``event_timestamp``, ``type``, ``context`` and
  any the client added) are kept verbatim in ``extras["segmento"]``; that a
  Segmento event has this key at all is what tells ``encode`` to restore them
  rather than derive them from canonical fields.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from router import (
    EVENT_TYPES,
    Codec,
    Event,
    Identity,
    Item,
    Money,
    Requirement,
    Untranslatable,
    exact_decimal,
    exact_int,
    format_iso,
    money_of,
    number_of,
)

from .schema import EVENT_PROPERTIES, PRODUCT_KEYS, REQUIRED_PROPERTIES, VENDOR

__all__ = [
    "CANONICAL_TYPES",
    "DEFAULT_VISITOR_ID_FROM",
    "SEGMENTO_TYPES",
    "SegmentoCodec",
    "format_timestamp",
]

#: Segmento default event -> canonical type.
CANONICAL_TYPES: dict[str, str] = {
    "product-clicked": "product_clicked",
    "product-searched": "search",
    "remove-from-cart": "remove_from_cart",
    "add-to-cart": "add_to_cart",
    "payment-info": "payment_info",
    "product-added-to-wishlist": "add_to_wishlist",
    "product-viewed": "product_viewed",
    "product-reviewed": "product_reviewed",
    "product-list-viewed": "product_list_viewed",
    "order-updated": "order_updated",
    "order-completed": "purchase",
    "order-cancelled": "order_cancelled",
    "order-refunded": "order_refunded",
    "page-view": "page_view",
}
#: Canonical type -> Segmento default event. Other canonical types are sent
#: as custom events named after the type (``registration``, ``land``…).
SEGMENTO_TYPES: dict[str, str] = {v: k for k, v in CANONICAL_TYPES.items()}
#: Canonical type -> the Segmento event name it is sent as: a default event, or
#: a custom event named after it.
_DEFAULT_NAMES: dict[str, str] = {
    name: SEGMENTO_TYPES.get(name) or name.replace("_", "-") for name in EVENT_TYPES
}

#: The identity fields ``visitor_id`` is taken from, first non-empty wins,
#: unless the sink option ``visitor_id_from`` says otherwise.
DEFAULT_VISITOR_ID_FROM = ("user_id", "anonymous_id", "custom_id", "persistent_id", "fingerprint")

#: Events carrying one product flat in ``event_properties`` (-> ``items[0]``).
_ONE_PRODUCT = frozenset(
    name for name, schema in EVENT_PROPERTIES.items() if "product_id" in schema
)
#: Events carrying a ``products`` array (-> ``items``).
_PRODUCTS = frozenset(name for name, schema in EVENT_PROPERTIES.items() if "products" in schema)
_MONEY = ("total", "revenue", "shipping", "tax", "discount")
#: Top-level fields with a canonical home; the rest go to extras verbatim.
_MAPPED_FIELDS = frozenset(("event_name", "visitor_id", "event_properties"))
#: Where encode looks for each required key, for Untranslatable reasons.
_SOURCES = {
    "product_id": "items[0].id",
    "query": "search_query",
    "checkout_id": "properties.checkout_id or properties.cart_id",
    "cart_id": "properties.cart_id",
    "review_id": "properties.review_id",
    "total": "total",
    "title": "context.page_title",
}
#: ``router.event.CHANNELS``, which ``router`` does not export: a page-view
#: ``channel`` with one of these values becomes ``context.channel``.
_CHANNELS = ("app", "site", "desktop_site", "mobile_site")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


#: The canonical fields encode fills each required ``event_properties`` key from.
_REQUIRED_FROM: dict[str, tuple[str, ...]] = {
    "product_id": ("items",),
    "query": ("search_query",),
    "checkout_id": ("properties.checkout_id", "properties.cart_id"),
    "cart_id": ("properties.cart_id",),
    "review_id": ("properties.review_id",),
    "total": ("total",),
    "title": ("context.page_title",),
}
_ALWAYS_ALL = frozenset({"identity.user_id", "extras.segmento"})
#: What decoding a default event makes of each required key (``products`` may be empty).
_DECODED_FROM = {**_REQUIRED_FROM, "checkout_id": ("properties.checkout_id",)}
_ALWAYS: dict[str, frozenset[str]] = {
    "*": _ALWAYS_ALL,
    **{
        name: _ALWAYS_ALL
        | {field for key in required if key in _DECODED_FROM for field in _DECODED_FROM[key]}
        for name, required in REQUIRED_PROPERTIES.items()
    },
}
#: ``event_properties`` is open: a key of any name may land anywhere in ``properties``.
_SOMETIMES: dict[str, frozenset[str]] = {name: frozenset({"*"}) for name in _ALWAYS}
_NEEDS: dict[str, tuple[Requirement, ...]] = {
    "*": (
        Requirement(
            "a visitor_id",
            tuple(f"identity.{name}" for name in DEFAULT_VISITOR_ID_FROM),
            "set the sink option visitor_id_from to identity fields the events have",
            fields_option="visitor_id_from",
        ),
    ),
    **{
        name: tuple(
            Requirement(
                f"event_properties.{key}",
                _REQUIRED_FROM[key],
                f"map the type to a custom event name in type_map to send it without {key}",
            )
            for key in required
            if key in _REQUIRED_FROM
        )
        for name, required in REQUIRED_PROPERTIES.items()
    },
}


class SegmentoCodec(Codec):
    """Translates Segmento user events (``data`` items)."""

    vendor = VENDOR
    default_types = _DEFAULT_NAMES
    decoded_types = CANONICAL_TYPES
    custom_types = True
    always = _ALWAYS
    sometimes = _SOMETIMES
    needs = _NEEDS

    def event_type(self, raw: Any) -> str | None:
        """``event_name`` when it is a non-empty string."""
        name = raw.get("event_name") if isinstance(raw, dict) else None
        return name if isinstance(name, str) and name else None

    # ------------------------------------------------------------------ decode

    def decode(
        self, raw: Mapping[str, Any], *, id: str, received_at: int, meta: Mapping[str, Any]
    ) -> Event:
        """A default event's properties become canonical fields; the rest stay in ``properties``."""
        name = raw["event_name"]
        fields = {k: v for k, v in raw.items() if k not in _MAPPED_FIELDS}
        timestamp = _parse_timestamp(fields.get("event_timestamp"))
        event = Event(
            id=id,
            type=name,
            timestamp=received_at if timestamp is None else timestamp,
            received_at=received_at,
            vendor=VENDOR,
            identity=Identity(user_id=raw["visitor_id"]),
            extras={VENDOR: fields},
        )
        props = dict(raw["event_properties"])
        canonical = CANONICAL_TYPES.get(name)
        if canonical is None:
            event.custom = True
            event.properties = props
            return event
        event.type = canonical
        currency = props.get("currency")
        currency = currency if isinstance(currency, str) else None
        if name in _ONE_PRODUCT:
            product = {k: props.pop(k) for k in PRODUCT_KEYS if k in props}
            if product:
                event.items = [_item(product, currency)]
        elif name in _PRODUCTS and isinstance(props.get("products"), list) and props["products"]:
            event.items = [_item(p, currency) for p in props.pop("products")]
        if isinstance(props.get("order_id"), str):
            event.order_id = props.pop("order_id")
        if isinstance(props.get("query"), str):
            event.search_query = props.pop("query")
        for key in _MONEY:
            value = props.get(key)
            if type(value) in (int, float):
                setattr(event, key, money_of(props.pop(key), currency))
        if currency is not None and any(getattr(event, key) is not None for key in _MONEY):
            del props["currency"]
        if name == "page-view":
            context = event.context
            context.page_title = props.pop("title", None)
            context.page_url = props.pop("url", None)
            if props.get("channel") in _CHANNELS:
                context.channel = props.pop("channel")
        event.properties = props
        return event

    # ------------------------------------------------------------------ encode

    #: Sink options that can change how this vendor's own events are encoded.
    _REWRITING_OPTIONS = ("type_map", "visitor_id_from")

    def passthrough(self, options: Mapping[str, Any]) -> bool:
        """Own events come out unchanged unless a rewriting option is set."""
        return not any(options.get(key) for key in self._REWRITING_OPTIONS)

    def encode(self, event: Event, options: Mapping[str, Any]) -> dict[str, Any]:
        """A default event when the name is one, else a custom event named after the type."""
        name = _segmento_name(self, event, options)
        fields = event.extras.get(VENDOR)
        out: dict[str, Any] = {
            "event_name": name,
            "visitor_id": _visitor_id(event, options),
        }
        if name in EVENT_PROPERTIES:
            out["event_properties"] = _default_properties(name, event)
        else:
            out["event_properties"] = _custom_properties(event)
        if fields is None:
            out["event_timestamp"] = format_timestamp(event.timestamp)
        else:
            out.update(fields)
        return out


# ---------------------------------------------------------------------- decoding


@functools.lru_cache(maxsize=1024)  # a batch's events often share their second
def _parse_timestamp(value: Any) -> int | None:
    """``YYYY-MM-DD HH:MM:SS`` (UTC) as ms, or ``None`` if it is no real time (Feb 30)."""
    try:
        moment = datetime(
            int(value[0:4]),
            int(value[5:7]),
            int(value[8:10]),
            int(value[11:13]),
            int(value[14:16]),
            int(value[17:19]),
            tzinfo=UTC,
        )
    except (TypeError, ValueError):
        return None
    return (moment - _EPOCH) // _MS


def _item(product: Mapping[str, Any], currency: str | None) -> Item:
    """One Segmento product as an Item; what does not parse exactly stays in ``extra``."""
    item = Item()
    extra = {}
    for key, value in product.items():
        if key == "product_id":
            item.id = value
        elif key == "price" and (amount := exact_decimal(value)) is not None:
            item.price = Money(amount, currency)
        elif key in ("quantity", "position") and (number := exact_int(value)) is not None:
            setattr(item, key, number)
        elif key in _ITEM_STRINGS:
            setattr(item, key, value)
        else:
            extra[key] = value
    item.extra = extra
    return item


_ITEM_STRINGS = frozenset(PRODUCT_KEYS) - {"product_id", "price", "quantity", "position"}


def format_timestamp(ms: int) -> str:
    """Milliseconds since the epoch as Segmento's ``YYYY-MM-DD HH:MM:SS`` (UTC, floored)."""
    try:
        return format_iso(ms, sep=" ", millis=False, zone="")
    except ValueError as exc:
        raise Untranslatable(VENDOR, str(exc), field="event_timestamp") from exc


def _segmento_name(codec: Codec, event: Event, options: Mapping[str, Any]) -> str:
    # Segmento takes any custom event name, so another vendor's custom type keeps its own.
    default = event.type if event.custom else None
    mapped = codec.resolve_type(event.type, options, custom=event.custom, default=default)
    return mapped or event.type.replace("_", "-")


def _visitor_id(event: Event, options: Mapping[str, Any]) -> str:
    names = options.get("visitor_id_from") or DEFAULT_VISITOR_ID_FROM
    identity = event.identity
    for field in names:
        value = getattr(identity, field)
        if value:
            return value
    raise Untranslatable(
        VENDOR,
        f"no visitor_id: the event has none of identity {', '.join(names)}"
        " (sink option visitor_id_from lists the identity fields to try)",
        field="visitor_id",
    )


def _default_properties(name: str, event: Event) -> dict[str, Any]:
    """``event_properties`` of a default event: canonical fields first, then ``properties``."""
    schema = EVENT_PROPERTIES[name]
    out: dict[str, Any] = {}
    if name in _ONE_PRODUCT:
        if event.items:
            out.update(_product(event.items[0]))
    elif name in _PRODUCTS and event.items:
        out["products"] = [_product(item, index) for index, item in enumerate(event.items)]
    if event.order_id is not None:
        out["order_id"] = event.order_id
    if event.search_query is not None:
        out["query"] = event.search_query
    _put_money(out, event)
    if name == "page-view":
        context = event.context
        if context.page_title is not None:
            out["title"] = context.page_title
        if context.page_url is not None:
            out["url"] = context.page_url
    for key, value in event.properties.items():
        if key in out:
            continue
        rules = schema.get(key)
        fitted = _fit(value, rules["type"]) if rules else value
        if fitted is not _MISSING:
            out[key] = fitted
    if name == "page-view" and "channel" not in out and event.context.channel is not None:
        out["channel"] = event.context.channel
    if name == "remove-from-cart" and "checkout_id" not in out:
        cart_id = _fit(event.properties.get("cart_id"), "string")
        if cart_id is not _MISSING:
            out["checkout_id"] = cart_id
    if name in _PRODUCTS and "products" not in out and schema["products"].get("required"):
        out["products"] = []
    for key in REQUIRED_PROPERTIES[name]:
        if out.get(key) in (None, ""):
            raise Untranslatable(
                VENDOR,
                f"{event.type} becomes {name}, which requires event_properties.{key}, taken "
                f"from {_SOURCES[key]}; this event has none. Map {event.type} to a custom "
                "event name in the sink's type_map to send it anyway",
                field=f"event_properties.{key}",
            )
    return out


def _custom_properties(event: Event) -> dict[str, Any]:
    """``event_properties`` of a custom event: ``properties``, then canonical fields."""
    out = dict(event.properties)
    if event.items:
        out.setdefault("product", [_product(item) for item in event.items])
    if event.order_id is not None:
        out.setdefault("order_id", event.order_id)
    if event.transaction_id is not None:
        out.setdefault("transaction_id", event.transaction_id)
    if event.search_query is not None:
        out.setdefault("query", event.search_query)
    money: dict[str, Any] = {}
    _put_money(money, event)
    for key, value in money.items():
        out.setdefault(key, value)
    return out


def _put_money(out: dict[str, Any], event: Event) -> None:
    """Money fields as JSON numbers, and ``currency`` from the first one that has one.

    With no event-level currency, the first item price's currency is used.
    """
    currency = None
    for key in _MONEY:
        money = getattr(event, key)
        if money is not None:
            out[key] = _number(money.amount, key)
            currency = currency or money.currency
    if currency is None:
        currency = next((i.price.currency for i in event.items if i.price), None)
    if currency is not None and "currency" not in event.properties:
        out["currency"] = currency


def _number(amount: Decimal, key: str) -> int | float:
    """A Decimal as a JSON number of the type it was decoded from (``router.number_of``)."""
    try:
        # Segmento's JSON may hold integers past 64 bits (an order total of 10**30).
        return number_of(amount, max_int=None)
    except ValueError:
        raise Untranslatable(
            VENDOR, f"{key} is {amount}", field=f"event_properties.{key}"
        ) from None


def _product(item: Item, index: int | None = None) -> dict[str, Any]:
    """One Item as a Segmento product (all values strings); ``index`` when in ``products``."""
    if index is not None and not item.id:
        raise Untranslatable(
            VENDOR,
            f"items[{index}] has no id, and every Segmento product needs a product_id",
            field=f"event_properties.products[{index}].product_id",
        )
    out: dict[str, Any] = {}
    if item.id is not None:
        out["product_id"] = item.id
    for key in _ITEM_STRINGS_ORDERED:
        value = getattr(item, key)
        if value is not None:
            out[key] = value
    if item.price is not None:
        amount = item.price.amount
        if not amount.is_finite():
            where = "event_properties" if index is None else f"event_properties.products[{index}]"
            raise Untranslatable(VENDOR, f"a product price is {amount}", field=f"{where}.price")
        out["price"] = format(amount, "f")
    if item.quantity is not None:
        out["quantity"] = str(item.quantity)
    if item.position is not None:
        out["position"] = str(item.position)
    for key, value in item.extra.items():
        if key in out:
            continue
        fitted = _fit(value, "string") if key in _ITEM_KEYS else value
        if fitted is not _MISSING:
            out[key] = fitted
    return out


_ITEM_KEYS = frozenset(PRODUCT_KEYS)
_ITEM_STRINGS_ORDERED = tuple(k for k in PRODUCT_KEYS if k in _ITEM_STRINGS)
_MISSING: Any = object()


def _fit(value: Any, kind: str) -> Any:
    """``value`` as the JSON type a vendor table names, or ``_MISSING`` if it has none.

    Numbers become strings where Segmento wants strings (``rating: 5`` ->
    ``"5"``); a value of any other wrong type is left out.
    """
    if kind == "string":
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, Decimal) and value.is_finite():
            return format(value, "f")
        if isinstance(value, float):
            return repr(value)
        return _MISSING
    if kind == "number":
        if isinstance(value, Decimal):
            return _number(value, "amount")
        return value if type(value) in (int, float) else _MISSING
    if kind == "list":
        return value if isinstance(value, list) else _MISSING
    return value
