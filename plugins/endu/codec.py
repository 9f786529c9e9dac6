"""Endu events to and from the canonical Event.

Decoding (Endu -> canonical):

- ``event_type`` -> ``Event.type`` through :data:`CANONICAL_TYPES` (matched
  case-insensitively), else the exact name with ``custom=True``;
- ``c_user_id`` -> ``identity.user_id``; ``p_user_id`` + ``platform_type`` ->
  ``identity.platform_ids[platform_type.lower()]``; ``blockchain`` ->
  ``identity.wallet``; ``fingerprint`` -> ``identity.fingerprint``;
- ``timestamp`` (Unix seconds, string or integer) -> ms;
- ``event_data`` -> ``properties``, unchanged. Keys of the router's own
  ``event_data`` scheme (``item_id``, ``items``, ``order_id``, money objects,
  ``context``, ``identity``; see ``docs/translation/endu.md``) are also
  lifted into their canonical fields when their shape fits, so an Endu
  purchase reaches other vendors with its items;
- everything needed to rebuild the event exactly goes to ``extras["endu"]``:
  ``property_id``, ``organization_id``, the original ``event_type`` and
  ``timestamp``, unknown keys inside ``blockchain`` (``blockchain``) and
  unknown top-level fields (``fields``).

Encoding (canonical -> Endu) is the inverse for events decoded by this codec
(``extras["endu"]`` present). For events from other vendors, ``event_data`` is
``properties`` plus the canonical fields Endu has no place for, in the scheme
above, and the identity and ids come from the sink's options.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from router import (
    EVENT_TYPES,
    Codec,
    Context,
    Device,
    Event,
    Identity,
    Item,
    Money,
    Requirement,
    Untranslatable,
    Wallet,
)

from .schema import IDENTITY_FIELDS, VENDOR

__all__ = ["CANONICAL_TYPES", "ENDU_TYPES", "EnduCodec", "endu_type_name"]

#: The Endu type sent for each canonical type unless the sink's ``type_map``
#: says otherwise: the canonical name in upper case, except ``purchase``,
#: which the Endu doc itself calls ``ITEM_PURCHASED``.
ENDU_TYPES: dict[str, str] = {name: name.upper() for name in EVENT_TYPES}
ENDU_TYPES["purchase"] = "ITEM_PURCHASED"

#: The canonical type of each Endu type name (keys upper case; lookup is
#: case-insensitive). ``PURCHASE`` is an extra alias of ``purchase``.
CANONICAL_TYPES: dict[str, str] = {endu: name for name, endu in ENDU_TYPES.items()}
CANONICAL_TYPES["PURCHASE"] = "purchase"

#: ``platform_type`` -> the key of ``Identity.platform_ids``, and back.
PLATFORM_KEYS = {"Discord": "discord", "Telegram": "telegram"}
PLATFORM_TYPES = {key: name for name, key in PLATFORM_KEYS.items()}

#: Top-level keys with a home in the canonical event or in ``extras["endu"]``.
_KNOWN = frozenset(
    {
        "property_id",
        "organization_id",
        "timestamp",
        "event_type",
        "event_data",
        "p_user_id",
        "platform_type",
        "c_user_id",
        "blockchain",
        "fingerprint",
    }
)
_CHAIN_KEYS = ("chain_type", "chain_account")
_IDENTITY_KEYS = frozenset(IDENTITY_FIELDS)

_MONEY_FIELDS = ("revenue", "total", "shipping", "tax", "discount")
_EVENT_STR_FIELDS = ("order_id", "transaction_id", "search_query")
_ITEM_STR_FIELDS = (
    "id",
    "group_id",
    "sku",
    "name",
    "brand",
    "category",
    "variant",
    "variant_id",
    "coupon",
    "url",
    "image_url",
    "seller_id",
)
_ITEM_INT_FIELDS = ("quantity", "position")
_ITEM_STR_FIELDS_SET = frozenset(_ITEM_STR_FIELDS)
_ITEM_INT_FIELDS_SET = frozenset(_ITEM_INT_FIELDS)
_CONTEXT_STR_FIELDS = (
    "channel",
    "location",
    "page_id",
    "page_url",
    "page_title",
    "referrer",
    "domain",
)
_DEVICE_FIELDS = ("os", "os_version", "model", "user_agent", "language", "advertising_id")
#: Identifiers Endu has no field for; sent in ``event_data.identity``.
_OTHER_IDS = ("anonymous_id", "persistent_id", "custom_id", "session_id")

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NON_WORD = re.compile(r"[^A-Za-z0-9]+")


def endu_type_name(name: str) -> str:
    """An UPPER_SNAKE Endu type for another vendor's type name (``productReviewed``,
    ``product-clicked`` -> ``PRODUCT_REVIEWED``, ``PRODUCT_CLICKED``)."""
    snake = _NON_WORD.sub("_", _CAMEL.sub("_", name)).strip("_").upper()
    return snake or name


def _canonical_type(endu_type: str) -> str:
    """The ``Event.type`` an Endu type decodes to."""
    return CANONICAL_TYPES.get(endu_type.upper(), endu_type)


#: Every decoded Endu event has one identity (require_any) and its own ids in extras.
_ALWAYS_ALL = frozenset(
    {
        "identity.user_id|identity.platform_ids|identity.wallet|identity.fingerprint",
        "extras.endu",
    }
)
#: ``event_data`` is open, and its keys of the router's scheme are lifted.
_SOMETIMES_ALL = frozenset({"*"})


def _needs_id(key: str) -> Requirement:
    return Requirement(f"a {key}", ("extras.endu",), f"set the sink option {key}", option=key)


_NEEDS: dict[str, tuple[Requirement, ...]] = {
    "*": (
        _needs_id("property_id"),
        _needs_id("organization_id"),
        Requirement(
            "an Endu identity (c_user_id, a Discord/Telegram id, a wallet or a fingerprint)",
            ("identity.platform_ids", "identity.wallet", "identity.fingerprint", "extras.endu"),
            "set the sink option user_id_is_c_user_id: true, or fingerprint_from",
            counts_with={"user_id_is_c_user_id": ("identity.user_id",), "fingerprint_from": None},
        ),
    ),
}


class EnduCodec(Codec):
    """Endu's single-event "Submit an event" body."""

    vendor = VENDOR
    default_types = ENDU_TYPES
    decoded_types = CANONICAL_TYPES
    custom_types = True
    always = dict.fromkeys([*CANONICAL_TYPES, "*"], _ALWAYS_ALL)
    sometimes = dict.fromkeys([*CANONICAL_TYPES, "*"], _SOMETIMES_ALL)
    needs = _NEEDS

    def event_type(self, raw: Any) -> str | None:
        """``event_type`` when it is a string."""
        if not isinstance(raw, dict):
            return None
        name = raw.get("event_type")
        return name if isinstance(name, str) and name else None

    # -- decode ----------------------------------------------------------------

    def decode(
        self, raw: Mapping[str, Any], *, id: str, received_at: int, meta: Mapping[str, Any]
    ) -> Event:
        """Identity, event data and known ``event_data`` keys become canonical fields."""
        name = raw["event_type"]
        canonical = CANONICAL_TYPES.get(name.upper())
        timestamp = raw["timestamp"]
        own: dict[str, Any] = {
            "property_id": raw["property_id"],
            "organization_id": raw["organization_id"],
            "event_type": name,
            "timestamp": timestamp,
        }
        identity = Identity(user_id=raw.get("c_user_id"), fingerprint=raw.get("fingerprint"))
        p_user_id = raw.get("p_user_id")
        if p_user_id is not None:
            identity.platform_ids = {PLATFORM_KEYS[raw["platform_type"]]: p_user_id}
        chain = raw.get("blockchain")
        if chain is not None:
            identity.wallet = Wallet(chain=chain["chain_type"], account=chain["chain_account"])
            if len(chain) > 2:
                own["blockchain"] = {k: v for k, v in chain.items() if k not in _CHAIN_KEYS}
        if not _KNOWN.issuperset(raw):
            own["fields"] = {k: v for k, v in raw.items() if k not in _KNOWN}
        data = raw["event_data"]
        event = Event(
            id=id,
            type=canonical or name,
            custom=canonical is None,
            timestamp=int(timestamp) * 1000,
            received_at=received_at,
            vendor=VENDOR,
            identity=identity,
            properties=data,
            extras={VENDOR: own},
        )
        if data:
            _lift(data, event)
        return event

    # -- encode ----------------------------------------------------------------

    #: Sink options that can change how this vendor's own events are encoded.
    _REWRITING_OPTIONS = ("type_map", "override_ids")

    def passthrough(self, options: Mapping[str, Any]) -> bool:
        """Own events come out unchanged unless a rewriting option is set."""
        return not any(options.get(key) for key in self._REWRITING_OPTIONS)

    def encode(self, event: Event, options: Mapping[str, Any]) -> dict[str, Any]:
        """One Endu event; ``Untranslatable`` names the sink option that would help."""
        own = event.extras.get(VENDOR)
        out: dict[str, Any] = {
            "property_id": _setting(own, options, "property_id"),
            "organization_id": _setting(own, options, "organization_id"),
            "timestamp": _timestamp(event, own),
            "event_type": _type_name(self, event, own, options),
        }
        if own is not None:
            # Decoded by this codec: identity and event_data as received.
            _own_identity(event.identity, own, out)
            out["event_data"] = event.properties
            fields = own.get("fields")
            if fields:
                for key, value in fields.items():
                    out.setdefault(key, value)
            return out
        others = _foreign_identity(event, options, out)
        out["event_data"] = _event_data(event, others)
        return out


# --------------------------------------------------------------------------
# Encoding helpers
# --------------------------------------------------------------------------


def _setting(own: Mapping[str, Any] | None, options: Mapping[str, Any], key: str) -> str:
    """``property_id``/``organization_id``: the event's own unless ``override_ids``."""
    mine = own.get(key) if own is not None else None
    configured = options.get(key)
    value = (configured or mine) if options.get("override_ids") else (mine or configured)
    if not value:
        raise Untranslatable(
            VENDOR,
            f"no {key}: the event did not come from Endu; set the sink option {key}",
            field=key,
        )
    return value


def _timestamp(event: Event, own: Mapping[str, Any] | None) -> str | int:
    """Unix seconds as a string of digits; the original form for an Endu event."""
    seconds = event.timestamp // 1000
    if own is not None:
        original = own.get("timestamp")
        if original is not None and int(original) == seconds:
            return original
    if not 0 <= seconds < 10**10:
        # Endu takes 1 to 10 digits: another vendor's far past or future does not fit.
        raise Untranslatable(
            VENDOR, f"timestamp {seconds} s is not 0 to 10 digits of Unix time", field="timestamp"
        )
    return str(seconds)


def _type_name(
    codec: Codec, event: Event, own: Mapping[str, Any] | None, options: Mapping[str, Any]
) -> str:
    # An Endu event keeps the spelling it came with; Endu takes any type name,
    # so another vendor's custom type is sent as its UPPER_SNAKE form.
    default = None
    if own is not None:
        original = own.get("event_type")
        if original and _canonical_type(original) == event.type:
            default = original
    if default is None and event.custom:
        default = endu_type_name(event.type)
    mapped = codec.resolve_type(event.type, options, custom=event.custom, default=default)
    return mapped or endu_type_name(event.type)


def _own_identity(identity: Identity, own: Mapping[str, Any], out: dict[str, Any]) -> None:
    """The identity of an event decoded by this codec, as it was received."""
    if identity.user_id:
        out["c_user_id"] = identity.user_id
    _platform(identity, out)
    wallet = identity.wallet
    if wallet is not None:
        chain = {"chain_type": wallet.chain, "chain_account": wallet.account}
        extra = own.get("blockchain")
        if extra:
            chain = {**extra, **chain}
        out["blockchain"] = chain
    if identity.fingerprint:
        out["fingerprint"] = identity.fingerprint


def _platform(identity: Identity, out: dict[str, Any]) -> str | None:
    """Set ``p_user_id``/``platform_type`` from the first Discord or Telegram id."""
    ids = identity.platform_ids
    if not ids:
        return None
    for key, name in PLATFORM_TYPES.items():
        value = ids.get(key)
        if value:
            out["p_user_id"] = value
            out["platform_type"] = name
            return key
    return None


def _foreign_identity(
    event: Event, options: Mapping[str, Any], out: dict[str, Any]
) -> dict[str, Any]:
    """Endu identity fields for another vendor's event.

    Sets the fields in ``out`` and returns the identifiers left over, for
    ``event_data.identity``. Raises Untranslatable if no Endu identity results.
    """
    identity = event.identity
    others: dict[str, Any] = {}
    if identity.user_id:
        if options.get("user_id_is_c_user_id"):
            out["c_user_id"] = identity.user_id
        else:
            others["user_id"] = identity.user_id
    used_platform = _platform(identity, out)
    if identity.platform_ids:
        rest = {k: v for k, v in identity.platform_ids.items() if k != used_platform}
        if rest:
            others["platform_ids"] = rest
    if identity.wallet is not None:
        out["blockchain"] = {
            "chain_type": identity.wallet.chain,
            "chain_account": identity.wallet.account,
        }
    fingerprint_from = None
    if identity.fingerprint:
        out["fingerprint"] = identity.fingerprint
    else:
        for name in options.get("fingerprint_from") or ():
            value = getattr(identity, name)
            if value:
                out["fingerprint"] = value
                fingerprint_from = name
                break
    for name in _OTHER_IDS:
        value = getattr(identity, name)
        if value and name != fingerprint_from:
            others[name] = value
    if not _IDENTITY_KEYS.intersection(out):
        raise Untranslatable(VENDOR, _no_identity_reason(others), field="identity")
    return others


def _no_identity_reason(others: Mapping[str, Any]) -> str:
    has = ", ".join(others) if others else "no identifier at all"
    return (
        "no Endu identity (c_user_id, a Discord/Telegram user id, a wallet or a fingerprint); "
        f"the event has {has}. Set the sink option user_id_is_c_user_id: true if user_id is "
        "a Chatsight c_user_id, or fingerprint_from: [anonymous_id, persistent_id, custom_id] "
        "to send one of those as fingerprint"
    )


def _event_data(event: Event, others: Mapping[str, Any]) -> dict[str, Any]:
    """``properties`` plus the canonical fields Endu has no place for."""
    data = dict(event.properties)
    if event.items:
        data["items"] = [_item_data(item) for item in event.items]
    for name in _EVENT_STR_FIELDS:
        value = getattr(event, name)
        if value is not None:
            data[name] = value
    for name in _MONEY_FIELDS:
        money = getattr(event, name)
        if money is not None:
            data[name] = _money_data(money)
    context = _context_data(event.context)
    if context:
        data["context"] = context
    if others:
        data["identity"] = dict(others)
    return data


def _money_data(money: Money) -> dict[str, str]:
    out = {"amount": str(money.amount)}
    if money.currency:
        out["currency"] = money.currency
    return out


def _item_data(item: Item) -> dict[str, Any]:
    out = dict(item.extra)
    for name in _ITEM_STR_FIELDS:
        value = getattr(item, name)
        if value is not None:
            out[name] = value
    for name in _ITEM_INT_FIELDS:
        value = getattr(item, name)
        if value is not None:
            out[name] = value
    if item.price is not None:
        out["price"] = _money_data(item.price)
    return out


def _context_data(context: Context) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in _CONTEXT_STR_FIELDS:
        value = getattr(context, name)
        if value is not None:
            out[name] = value
    device = context.device
    if device is not None:
        fields = {n: getattr(device, n) for n in _DEVICE_FIELDS if getattr(device, n) is not None}
        if fields:
            out["device"] = fields
    return out


# --------------------------------------------------------------------------
# Decoding helpers: read the router's event_data scheme back, where it fits
# --------------------------------------------------------------------------


def _lift(data: Mapping[str, Any], event: Event) -> None:
    """Fill canonical fields from ``event_data`` keys of the router's scheme.

    Only values of the right shape are lifted; ``properties`` keeps them all.
    """
    items = data.get("items")
    if isinstance(items, list) and items and all(isinstance(i, dict) for i in items):
        event.items = [_item(i) for i in items]
    else:
        item_id = data.get("item_id")
        if isinstance(item_id, str) and item_id:
            event.items = [Item(id=item_id)]
    for name in _EVENT_STR_FIELDS:
        value = data.get(name)
        if isinstance(value, str):
            setattr(event, name, value)
    for name in _MONEY_FIELDS:
        value = data.get(name)
        if value is not None:
            money = _money(value)
            if money is not None:
                setattr(event, name, money)
    context = data.get("context")
    if isinstance(context, dict):
        event.context = _context(context)
    identity = data.get("identity")
    if isinstance(identity, dict):
        for name in _OTHER_IDS:
            value = identity.get(name)
            if isinstance(value, str) and value:
                setattr(event.identity, name, value)


def _money(value: Any) -> Money | None:
    if not isinstance(value, dict):
        return None
    amount = _decimal(value.get("amount"))
    if amount is None:
        return None
    currency = value.get("currency")
    return Money(amount, currency if isinstance(currency, str) and currency else None)


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def _item(data: Mapping[str, Any]) -> Item:
    item = Item()
    extra = {}
    for key, value in data.items():
        if _fits(key, value):
            setattr(item, key, value)
        elif key == "price" and (price := _money(value)) is not None:
            item.price = price
        else:
            extra[key] = value
    item.extra = extra
    return item


def _fits(key: str, value: Any) -> bool:
    """Whether an ``event_data.items[]`` value fits the Item field of that name."""
    if key in _ITEM_STR_FIELDS_SET:
        return isinstance(value, str)
    if key in _ITEM_INT_FIELDS_SET:
        return isinstance(value, int) and not isinstance(value, bool)
    return False


def _context(data: Mapping[str, Any]) -> Context:
    context = Context()
    for name in _CONTEXT_STR_FIELDS:
        value = data.get(name)
        if isinstance(value, str):
            setattr(context, name, value)
    device = data.get("device")
    if isinstance(device, dict):
        fields = {n: device[n] for n in _DEVICE_FIELDS if isinstance(device.get(n), str)}
        context.device = Device(**fields)
    return context
