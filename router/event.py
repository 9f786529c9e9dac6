"""The canonical event: the one shape every codec decodes into and encodes from.

A relay from vendor A to vendor B is ``B.encode(A.decode(raw))``. Fields that
mean the same thing at several vendors have a typed home here; fields that only
one vendor knows go to ``extras[vendor]`` so that a round trip through the same
vendor loses nothing. ``docs/event.md`` documents every field and
``docs/translation.md`` which vendor field lands where.

Conventions:

- Times are integers: milliseconds since the Unix epoch, UTC.
- Money amounts are :class:`decimal.Decimal` so ``"12.50"`` stays ``"12.50"``.
- ``None`` means "the source did not say"; empty containers mean the same.
- ``type`` is one of :data:`EVENT_TYPES` or, for a vendor's custom event, the
  vendor's own name for it (``Event.custom`` is then true).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any

__all__ = [
    "CHANNELS",
    "EVENT_TYPES",
    "Context",
    "Device",
    "Event",
    "Identity",
    "Item",
    "Money",
    "Wallet",
    "deterministic",
    "new_event_id",
    "new_event_ids",
    "now_ms",
]

#: The canonical event types. A codec maps each vendor type onto one of these
#: where the meaning matches, and keeps anything else as a custom type.
EVENT_TYPES: dict[str, str] = {
    # navigation and engagement
    "page_view": "A page or screen was viewed.",
    "home": "The home page or app start screen was viewed.",
    "land": "The user landed on the site or app from elsewhere.",
    "heartbeat": "Periodic 'still here' signal while the user is on a page.",
    "click": "The user clicked something of interest (not a product).",
    "exit": "The user left the page, site or flow.",
    "search": "The user searched; ``search_query`` holds the query.",
    # catalogue
    "product_viewed": "One product's page or detail was viewed (items[0]).",
    "product_clicked": "One product was clicked in a list (items[0]).",
    "product_list_viewed": "A list of products was viewed (items).",
    "product_reviewed": "A product was reviewed (items[0], properties.review_*).",
    "add_to_cart": "Product(s) added to a cart (items).",
    "remove_from_cart": "Product(s) removed from a cart.",
    "add_to_wishlist": "Product(s) added to a wishlist (items).",
    # orders and money
    "payment_info": "Payment details were entered.",
    "purchase": "An order was completed (order_id, items, revenue).",
    "transaction": "A wallet or account transaction (transaction_id).",
    "order_updated": "An order was changed.",
    "order_cancelled": "An order was cancelled.",
    "order_refunded": "An order was refunded.",
    # account
    "registration": "A user registered an account.",
    "validation": "A user validated an account or a step of a login flow.",
    "unknown": "The source said explicitly that the type is unknown.",
}

#: Canonical channel values (``Context.channel``).
CHANNELS = ("app", "site", "desktop_site", "mobile_site")


#: The time :func:`deterministic` stands the clock at by default: 2023-11-14T22:13:20Z.
DETERMINISTIC_TIME = 1_700_000_000_000


class _Fixed:
    """The state of :func:`deterministic`: a clock that stands still and an id counter."""

    __slots__ = ("next", "now", "prefix")

    def __init__(self, now: int):
        self.now = now
        self.next = 1
        h = f"{now & 0xFFFF_FFFF_FFFF:012x}"
        self.prefix = f"{h[:8]}-{h[8:]}-7000-8000-"

    def ids(self, n: int) -> list[str]:
        first, self.next = self.next, self.next + n
        return [f"{self.prefix}{i:012x}" for i in range(first, first + n)]


#: Set only inside :func:`deterministic`; one ``is None`` test is its cost when off.
_fixed: _Fixed | None = None


@contextmanager
def deterministic(at: int = DETERMINISTIC_TIME) -> Iterator[None]:
    """Within the block, :func:`now_ms` is ``at`` and event ids count up from 1.

    The ids stay valid UUIDv7s (``018bcfe5-6800-7000-8000-000000000001``, …)
    with ``at`` as their time, so a run's outputs can be compared with
    another's (``router test``, ``router translate --deterministic``). Not
    for a serving daemon: ids repeat in every block.
    """
    global _fixed
    previous, _fixed = _fixed, _Fixed(at)
    try:
        yield
    finally:
        _fixed = previous


def now_ms() -> int:
    """The current wall-clock time in milliseconds since the epoch."""
    if _fixed is not None:
        return _fixed.now
    return time.time_ns() // 1_000_000


def new_event_id() -> str:
    """A new event id: a UUIDv7 string (time-ordered, then 74 random bits).

    The random bits come from a PRNG seeded from the OS (and re-seeded in a
    forked child), not ``os.urandom``: one system call per event cost as much
    as decoding it. Ids need to be unique, not unguessable.
    """
    if _fixed is not None:
        return _fixed.ids(1)[0]
    rand = _random.getrandbits(74)
    value = (time.time_ns() // 1_000_000 & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76
    value |= (rand >> 62) << 64 | 0b10 << 62 | (rand & 0x3FFF_FFFF_FFFF_FFFF)
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def new_event_ids(n: int) -> list[str]:
    """``n`` new event ids at once: UUIDv7s sharing one millisecond and random base.

    The last 48 bits count up from a random start, so the ids are distinct
    and still valid UUIDv7; formatting one id per event was the cost.
    """
    if _fixed is not None:
        return _fixed.ids(n)
    if n <= 1:
        return [new_event_id()] if n else []
    rand = _random.getrandbits(74)
    value = (time.time_ns() // 1_000_000 & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76
    value |= (rand >> 62) << 64 | 0b10 << 62 | (rand & 0x3FFF_FFFF_FFFF_FFFF)
    h = f"{value:032x}"
    # %-formatting one int per id is the cheapest Python way to write them.
    layout = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-%012x"
    start = int(h[20:], 16)
    end = start + n
    if end <= 1 << 48:
        return [layout % value for value in range(start, end)]
    return [layout % (value & 0xFFFF_FFFF_FFFF) for value in range(start, end)]  # wraps


def _reseed() -> None:
    _random.seed(int.from_bytes(os.urandom(32), "big"))


_random = random.Random()
_reseed()
os.register_at_fork(after_in_child=_reseed)


@dataclass(slots=True)
class Money:
    """An amount of money. ``currency`` is an ISO 4217 code or ``None`` if unknown."""

    amount: Decimal
    currency: str | None = None


@dataclass(slots=True, kw_only=True)
class Wallet:
    """A blockchain account (Endu's ``blockchain`` identity)."""

    chain: str
    account: str


@dataclass(slots=True, kw_only=True)
class Identity:
    """Every identifier a source gave for the user. Any subset may be set."""

    #: The signed-in user: Conscent ``userId``, Moloco ``user_id``, Segmento
    #: ``visitor_id``, Endu ``c_user_id``.
    user_id: str | None = None
    #: An anonymous per-browser or per-user id: Conscent ``anonId``.
    anonymous_id: str | None = None
    #: A device-scoped id: Moloco ``device.persistent_id``.
    persistent_id: str | None = None
    #: A vendor-agnostic fallback id: Moloco ``custom_id``.
    custom_id: str | None = None
    #: A session id: Moloco ``session_id``, Conscent ``pingId``.
    session_id: str | None = None
    #: A browser fingerprint: Endu ``fingerprint``.
    fingerprint: str | None = None
    #: User ids on chat platforms, keyed by lower-case platform name
    #: (``{"discord": "7028…"}``): Endu ``p_user_id`` + ``platform_type``.
    platform_ids: dict[str, str] = field(default_factory=dict)
    #: Endu's ``blockchain`` identity.
    wallet: Wallet | None = None

    def any(self) -> bool:
        """True if at least one identifier is set."""
        return bool(
            self.user_id
            or self.anonymous_id
            or self.persistent_id
            or self.custom_id
            or self.session_id
            or self.fingerprint
            or self.platform_ids
            or self.wallet
        )


@dataclass(slots=True, kw_only=True)
class Device:
    """The device the event happened on (Moloco ``device``)."""

    os: str | None = None
    os_version: str | None = None
    model: str | None = None
    user_agent: str | None = None
    language: str | None = None
    advertising_id: str | None = None


@dataclass(slots=True, kw_only=True)
class Context:
    """Where the event happened."""

    #: One of :data:`CHANNELS`, or ``None``.
    channel: str | None = None
    #: A named place in the product (Conscent ``eventLocation``: ``PAYWALL``…).
    location: str | None = None
    #: A stable id of the page or screen (Moloco ``page_id``).
    page_id: str | None = None
    page_url: str | None = None
    page_title: str | None = None
    #: The page the user came from (Moloco ``referrer_page_id``).
    referrer: str | None = None
    #: The site's domain (Moloco ``domain``).
    domain: str | None = None
    device: Device | None = None


@dataclass(slots=True, kw_only=True)
class Item:
    """One product in an event."""

    id: str | None = None
    group_id: str | None = None
    sku: str | None = None
    name: str | None = None
    brand: str | None = None
    category: str | None = None
    variant: str | None = None
    variant_id: str | None = None
    price: Money | None = None
    quantity: int | None = None
    coupon: str | None = None
    position: int | None = None
    url: str | None = None
    image_url: str | None = None
    seller_id: str | None = None
    #: Item fields with no canonical home, as the source sent them.
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True, kw_only=True)
class Event:
    """One event, in the router's own vocabulary.

    ``vendor`` and ``source`` say where it came from; ``extras`` keeps what only
    that vendor understands. Codecs must not mutate an event they encode: the
    same event is encoded once per destination.
    """

    id: str
    type: str
    #: When it happened (ms, UTC). Sources with no timestamp use ``received_at``.
    timestamp: int
    #: When the router accepted it (ms, UTC).
    received_at: int
    #: The codec that decoded it (``"conscent"``…).
    vendor: str
    #: The configured source name it arrived on, or ``""`` outside the daemon.
    source: str = ""
    #: True when ``type`` is the vendor's own name, not one of EVENT_TYPES.
    custom: bool = False
    identity: Identity = field(default_factory=Identity)
    context: Context = field(default_factory=Context)
    #: Event-specific attributes. Well-known keys: ``cart_id``, ``checkout_id``,
    #: ``wishlist_id``, ``list_id``, ``coupon``, ``payment_method``,
    #: ``shipping_method``, ``review_id``, ``review_body``, ``rating``,
    #: ``click_action``, ``active``; anything else is the vendor's own data.
    properties: dict[str, Any] = field(default_factory=dict)
    items: list[Item] = field(default_factory=list)
    order_id: str | None = None
    transaction_id: str | None = None
    search_query: str | None = None
    revenue: Money | None = None
    total: Money | None = None
    shipping: Money | None = None
    tax: Money | None = None
    discount: Money | None = None
    #: Vendor-specific fields with no canonical home, keyed by vendor name.
    extras: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; ``None`` and empty values are left out."""
        return _to_plain(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Event:
        """The inverse of :meth:`to_dict`."""
        return _from_plain(cls, data)


def _to_plain(obj: Any) -> Any:
    kind = type(obj)
    names = _FIELD_NAMES.get(kind)
    if names is None:
        if kind is dict:
            return {k: v if type(v) in _SCALARS else _to_plain(v) for k, v in obj.items()}
        if kind is list:
            return [v if type(v) in _SCALARS else _to_plain(v) for v in obj]
        if kind is Decimal:
            return str(obj)
        return obj
    out = {}
    for name in names:
        value = getattr(obj, name)
        if value is None:
            continue
        kind = type(value)
        if kind in _SCALARS:
            out[name] = value
        elif kind is dict or kind is list:
            if value:
                out[name] = _to_plain(value)
        else:
            plain = _to_plain(value)
            if plain != {}:  # a nested dataclass with nothing set
                out[name] = plain
    return out


#: Each dataclass's field names, so serializing does not call ``fields()`` per object.
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
_SCALARS = frozenset({str, int, float, bool})


_MONEY_FIELDS = ("revenue", "total", "shipping", "tax", "discount")

#: For each dataclass, the fields that hold another dataclass (or a list of them).
_NESTED: dict[type, dict[str, type]] = {
    Event: {"identity": Identity, "context": Context, **dict.fromkeys(_MONEY_FIELDS, Money)},
    Identity: {"wallet": Wallet},
    Context: {"device": Device},
    Item: {"price": Money},
}
_LISTS: dict[type, dict[str, type]] = {Event: {"items": Item}}


def _from_plain(cls: type, data: dict[str, Any]) -> Any:
    nested = _NESTED.get(cls, {})
    lists = _LISTS.get(cls, {})
    kwargs = {}
    for name, value in data.items():
        if name in nested:
            value = _from_plain(nested[name], value)
        elif name in lists:
            value = [_from_plain(lists[name], v) for v in value]
        elif cls is Money and name == "amount":
            value = Decimal(value)
        kwargs[name] = value
    return cls(**kwargs)


for _cls in (Event, Identity, Context, Device, Item, Money, Wallet):
    _FIELD_NAMES[_cls] = tuple(f.name for f in fields(_cls))
