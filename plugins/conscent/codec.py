"""Conscent events <-> the canonical event.

``docs/translation/conscent.md`` is the table this module implements.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

from router import Codec, Context, Event, Identity, Requirement, Untranslatable

from .schema import CLICK_ACTIONS, EVENT_LOCATIONS, FIELDS, UUID_REGEX, VENDOR

__all__ = ["ANON_ID_NAMESPACE", "TO_CANONICAL", "ConscentCodec", "derive_uuid"]

#: Conscent eventType -> canonical type. Every Conscent type has a canonical twin.
TO_CANONICAL: dict[str, str] = {
    "PING": "heartbeat",
    "CLICK": "click",
    "EXIT": "exit",
    "PURCHASE": "purchase",
    "TRANSACTION": "transaction",
    "REGISTRATION": "registration",
    "VALIDATION": "validation",
}
_FROM_CANONICAL = {canonical: conscent for conscent, canonical in TO_CANONICAL.items()}

#: Types whose userId is required.
_NEEDS_USER = frozenset({"PURCHASE", "TRANSACTION", "REGISTRATION", "VALIDATION"})

#: Namespace of the UUIDv5s derived for anonId and pingId (documented; never change it:
#: the same source identifier must keep giving the same anonId).
ANON_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:event-router:conscent")

_LOCATIONS = frozenset(EVENT_LOCATIONS)
_CLICK_ACTIONS = frozenset(CLICK_ACTIONS)
_UUID = re.compile(UUID_REGEX)
_DAY_MS = 86_400_000


def _is_uuid(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 36 and _UUID.match(value) is not None


def derive_uuid(kind: str, value: str) -> str:
    """The UUIDv5 of ``"<kind>:<value>"`` in :data:`ANON_ID_NAMESPACE`."""
    return str(uuid.uuid5(ANON_ID_NAMESPACE, f"{kind}:{value}"))


#: Canonical fields every decoded Conscent event has, and those of each type.
_ALWAYS_ALL = frozenset({"identity.anonymous_id", "context.location", "extras.conscent"})
_ALWAYS: dict[str, frozenset[str]] = {
    "PING": _ALWAYS_ALL | {"identity.session_id", "properties.active"},
    "CLICK": _ALWAYS_ALL,
    "EXIT": _ALWAYS_ALL,
    "PURCHASE": _ALWAYS_ALL | {"identity.user_id", "order_id"},
    "TRANSACTION": _ALWAYS_ALL | {"identity.user_id", "transaction_id"},
    "REGISTRATION": _ALWAYS_ALL | {"identity.user_id"},
    "VALIDATION": _ALWAYS_ALL | {"identity.user_id"},
}
#: userId is optional on PING, CLICK and EXIT ("" or null: not logged in).
_SOMETIMES: dict[str, frozenset[str]] = {
    **{event_type: frozenset() for event_type in _ALWAYS},
    "PING": frozenset({"identity.user_id"}),
    "CLICK": frozenset({"identity.user_id", "properties.click_action"}),
    "EXIT": frozenset({"identity.user_id"}),
}
_USER = Requirement(
    "a userId",
    ("identity.user_id",),
    "map the type to one that needs no userId (PING, CLICK, EXIT) in type_map",
)
_NEEDS: dict[str, tuple[Requirement, ...]] = {
    "*": (
        Requirement(
            "a clientId", ("extras.conscent",), "set the sink option client_id", option="client_id"
        ),
        Requirement(
            "a user identifier to derive anonId from",
            tuple(
                f"identity.{name}"
                for name in (
                    "anonymous_id",
                    "persistent_id",
                    "custom_id",
                    "fingerprint",
                    "user_id",
                    "platform_ids",
                    "wallet",
                )
            ),
            "no sink option supplies one",
        ),
    ),
    **{event_type: (_USER,) for event_type in sorted(_NEEDS_USER)},
}


class ConscentCodec(Codec):
    """Translates Conscent ``messageBody`` events."""

    vendor = VENDOR
    default_types = _FROM_CANONICAL
    decoded_types = TO_CANONICAL
    always = _ALWAYS
    sometimes = _SOMETIMES
    needs = _NEEDS

    def event_type(self, raw: Any) -> str | None:
        """``eventType`` when it is a string."""
        if isinstance(raw, dict):
            event_type = raw.get("eventType")
            if isinstance(event_type, str):
                return event_type
        return None

    def decode(
        self, raw: Mapping[str, Any], *, id: str, received_at: int, meta: Mapping[str, Any]
    ) -> Event:
        """Fields this type does not define are kept in ``extras`` and sent back on encode."""
        event_type = raw["eventType"]
        known = FIELDS[event_type]
        # Fields this type does not define go back verbatim on encode.
        fields = {} if raw.keys() <= known else {k: v for k, v in raw.items() if k not in known}
        identity = Identity(anonymous_id=raw["anonId"])
        user_id = raw.get("userId")
        if user_id:
            identity.user_id = user_id
        elif "userId" in raw:
            fields["userId"] = user_id  # "" or null: not logged in
        properties: dict[str, Any] = {}
        order_id = transaction_id = None
        if event_type == "PING":
            identity.session_id = raw["pingId"]
            properties["active"] = raw["active"]
        elif event_type == "CLICK":
            if "clickAction" in raw:
                properties["click_action"] = raw["clickAction"]
        elif event_type == "PURCHASE":
            order_id = raw["purchaseId"]
        elif event_type == "TRANSACTION":
            transaction_id = raw["transactionId"]
        own: dict[str, Any] = {"clientId": raw["clientId"]}
        if fields:
            own["fields"] = fields
        if meta:
            own["meta"] = meta if isinstance(meta, dict) else dict(meta)
        return Event(
            id=id,
            type=TO_CANONICAL[event_type],
            timestamp=received_at,
            received_at=received_at,
            vendor=VENDOR,
            identity=identity,
            context=Context(location=raw["eventLocation"]),
            properties=properties,
            order_id=order_id,
            transaction_id=transaction_id,
            extras={VENDOR: own},
        )

    #: Sink options that can change how this vendor's own events are encoded.
    _REWRITING_OPTIONS = ("type_map",)

    def passthrough(self, options: Mapping[str, Any]) -> bool:
        """Own events come out unchanged unless a rewriting option is set."""
        return not any(options.get(key) for key in self._REWRITING_OPTIONS)

    def encode(self, event: Event, options: Mapping[str, Any]) -> dict[str, Any]:
        """One Conscent event; ``Untranslatable`` names the sink option that would help."""
        own = event.extras.get(VENDOR)
        event_type = _conscent_type(self, event, options)
        client_id = (own or {}).get("clientId") or options.get("client_id")
        if not client_id:
            raise Untranslatable(
                VENDOR,
                f"{event.vendor} events carry no Conscent clientId: set the sink option client_id",
                field="clientId",
            )
        location = event.context.location
        if location not in _LOCATIONS:
            location = options.get("default_event_location") or "PAGE"
        identity = event.identity
        anon_id = _anon_id(identity)
        out: dict[str, Any] = {
            "clientId": client_id,
            "eventType": event_type,
            "eventLocation": location,
            "anonId": anon_id,
        }
        if identity.user_id:
            out["userId"] = identity.user_id
        elif event_type in _NEEDS_USER:
            raise Untranslatable(
                VENDOR, f"Conscent {event_type} needs a userId (identity.user_id)", field="userId"
            )
        if event_type == "PING":
            out["pingId"] = _ping_id(identity.session_id, anon_id, event.timestamp)
            out["active"] = _active(event.properties.get("active", 1), own is not None)
        elif event_type == "CLICK":
            action = event.properties.get("click_action")
            if action in _CLICK_ACTIONS:
                out["clickAction"] = action
        elif event_type == "PURCHASE":
            out["purchaseId"] = event.order_id or event.transaction_id or event.id
        elif event_type == "TRANSACTION":
            out["transactionId"] = event.transaction_id or event.order_id or event.id
        if own is not None and "fields" in own:
            for key, value in own["fields"].items():
                out.setdefault(key, value)
        return out


def _conscent_type(codec: Codec, event: Event, options: Mapping[str, Any]) -> str:
    mapped = codec.resolve_type(event.type, options, custom=event.custom)
    if mapped is not None:
        return mapped
    kind = "custom type" if event.custom else "type"
    raise Untranslatable(
        VENDOR,
        f"no Conscent eventType for {event.vendor} {kind} {event.type!r}: "
        f"add it to the sink option type_map ({{{event.type}: {'|'.join(TO_CANONICAL)}}})",
        field="type",
    )


def _anon_id(identity: Identity) -> str:
    """``anonymous_id`` if it is a UUID, else a UUIDv5 of the most browser-like identifier."""
    anonymous_id = identity.anonymous_id
    if _is_uuid(anonymous_id):
        return anonymous_id  # type: ignore[return-value]
    for kind in ("anonymous_id", "persistent_id", "custom_id", "fingerprint", "user_id"):
        value = getattr(identity, kind)
        if value:
            return derive_uuid(kind, value)
    if identity.platform_ids:
        platform = min(identity.platform_ids)
        return derive_uuid(f"platform:{platform}", identity.platform_ids[platform])
    if identity.wallet is not None:
        wallet = identity.wallet
        return derive_uuid("wallet", f"{wallet.chain}:{wallet.account}")
    raise Untranslatable(
        VENDOR,
        "Conscent needs an anonId and the event has no user identifier to derive one from",
        field="anonId",
    )


def _ping_id(session_id: str | None, anon_id: str, timestamp: int) -> str:
    """``session_id`` if a UUID, its UUIDv5 if not, else one pseudo-session per user and UTC day."""
    if session_id:
        return session_id if _is_uuid(session_id) else derive_uuid("session_id", session_id)
    return derive_uuid("day", f"{anon_id}:{timestamp // _DAY_MS}")


def _active(value: Any, own: bool) -> Any:
    """``properties.active`` as Conscent's 0/1; a Conscent event's own value is kept as is."""
    if type(value) is bool and not own:
        return int(value)
    if type(value) in (int, bool) and value in (0, 1):
        return value
    raise Untranslatable(VENDOR, f"properties.active must be 0 or 1, not {value!r}", field="active")
