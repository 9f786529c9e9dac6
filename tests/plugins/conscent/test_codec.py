"""The conscent plugin: the codec."""

from __future__ import annotations

import copy
import json
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
import router_plugins.conscent
from router_plugins.conscent.codec import ANON_ID_NAMESPACE, ConscentCodec, derive_uuid
from router_plugins.conscent.schema import EVENT_TYPES

from router import Context, Event, Identity, Item, Money, Untranslatable, Wallet
from router.validation import Validators

PAYLOADS = Path(__file__).parents[2] / "data" / "payloads" / "conscent"
EXAMPLES = [f"{t.lower()}.json" for t in EVENT_TYPES]
ANON = "0b7e8a52-3c1d-4f7e-9a6b-2d4c8e1f5a90"
PING_ID = "c523aa41-9f0f-4fc2-bc96-5a8ff5520b78"
RECEIVED = 1_700_000_123_456
OPTIONS = {"client_id": "client-x"}

codec = ConscentCodec()
validators = Validators(router_plugins.conscent.router_validators())


def load(name: str):
    return json.loads((PAYLOADS / name).read_text())


def decode(raw, meta=None):
    return codec.decode(raw, id="evt-1", received_at=RECEIVED, meta=meta or {})


def valid(doc) -> bool:
    return validators.check("conscent", codec.event_type(doc), doc) == []


def base(**fields):
    return {
        "clientId": "6335a6e6b8a4f2f3c1e8d9a0",
        "eventLocation": "PAGE",
        "anonId": ANON,
        **fields,
    }


# Unusual but valid events: optional fields absent/present/empty, odd values, extra fields.
EDGE_CASES = [
    base(eventType="PING", pingId=PING_ID, active=0),
    base(eventType="PING", pingId=PING_ID.upper(), active=1, anonId=ANON.upper()),
    base(eventType="PING", pingId=PING_ID, active=1, userId=""),
    base(eventType="PING", pingId=PING_ID, active=1, userId=None),
    base(eventType="PING", pingId=PING_ID, active=0, clickAction="SUBS", purchaseId="o-1"),
    base(eventType="CLICK"),
    base(eventType="CLICK", clickAction="POPUP_CLOSE", userId="u-1", eventLocation="FAV_ICON"),
    base(eventType="CLICK", userId=""),
    base(eventType="EXIT", userId=None, eventLocation="RECOMMENDATION_POPUP"),
    base(eventType="EXIT", pingId=PING_ID, active=1),
    base(eventType="PURCHASE", userId="u", purchaseId="0", amount="12.50", currency="INR"),
    base(eventType="PURCHASE", userId="u", purchaseId="p", transactionId="t", price=12.5),
    base(eventType="TRANSACTION", userId="u", transactionId="t", purchaseId="p"),
    base(eventType="TRANSACTION", userId="u", transactionId="  spaced  "),
    base(eventType="REGISTRATION", userId="u@example.com", extra={"nested": [1, {"a": None}]}),
    base(eventType="VALIDATION", userId="u", clientId="ü-client", flags=[], empty={}, n=None),
    base(eventType="VALIDATION", userId="u", eventLocation="UDB_OTP", timestamp=1672536219),
]


@pytest.mark.parametrize("raw", [*(load(n) for n in EXAMPLES), *EDGE_CASES])
def test_round_trip_is_exact(raw):
    assert valid(raw)
    snapshot = copy.deepcopy(raw)
    out = codec.encode(decode(raw), {})
    assert out == raw
    assert [type(out[k]) for k in raw] == [type(raw[k]) for k in raw]
    assert raw == snapshot


@pytest.mark.parametrize("raw", [load(n) for n in EXAMPLES])
def test_round_trip_ignores_sink_options(raw):
    options = {"client_id": "other", "default_event_location": "POPUP", "type_map": {}}
    assert codec.encode(decode(raw), options) == raw


@pytest.mark.parametrize("name", ["request.json", "request-messageheader.json"])
def test_round_trip_of_request_bodies(name):
    body = load(name)
    meta = {k: v for k, v in body.items() if k != "messageBody"}
    events = [decode(raw, meta) for raw in body["messageBody"]]
    assert {"messageBody": [codec.encode(e, {}) for e in events], **meta} == body


@pytest.mark.parametrize("raw", [*(load(n) for n in EXAMPLES), *EDGE_CASES])
def test_round_trip_through_to_dict(raw):
    """The spool stores ``to_dict()``; decoding that again changes nothing."""
    event = Event.from_dict(json.loads(json.dumps(decode(raw).to_dict())))
    assert codec.encode(event, {}) == raw


def test_event_type_is_read_from_the_raw_event_or_none():
    assert codec.event_type(load("ping.json")) == "PING"
    assert codec.event_type({"eventType": "FOO"}) == "FOO"
    assert codec.event_type({"eventType": 3}) is None
    assert codec.event_type({}) is None
    assert codec.event_type(["PING"]) is None


def test_decode_ping():
    event = decode(load("ping.json"))
    assert (event.id, event.type, event.custom, event.vendor) == (
        "evt-1",
        "heartbeat",
        False,
        "conscent",
    )
    assert event.timestamp == event.received_at == RECEIVED
    assert event.identity == Identity(user_id="u-1029", anonymous_id=ANON, session_id=PING_ID)
    assert event.context == Context(location="PAGE")
    assert event.properties == {"active": 1}
    assert event.extras == {"conscent": {"clientId": "6335a6e6b8a4f2f3c1e8d9a0"}}


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("ping.json", "heartbeat"),
        ("click.json", "click"),
        ("exit.json", "exit"),
        ("purchase.json", "purchase"),
        ("transaction.json", "transaction"),
        ("registration.json", "registration"),
        ("validation.json", "validation"),
    ],
)
def test_decode_types(name, canonical):
    event = decode(load(name))
    assert event.type == canonical
    assert not event.custom


def test_decode_click_purchase_transaction():
    click = decode(load("click.json"))
    assert click.properties == {"click_action": "BUY_NOW"}
    assert click.identity.user_id is None
    assert click.context.location == "PAYWALL"
    purchase = decode(load("purchase.json"))
    assert (purchase.order_id, purchase.transaction_id) == ("ord-77120", None)
    assert purchase.identity.user_id == "u-1029"
    transaction = decode(load("transaction.json"))
    assert (transaction.transaction_id, transaction.order_id) == ("txn-5521", None)


def test_decode_keeps_the_unknown_and_the_request_headers():
    raw = base(eventType="EXIT", userId="", purchaseId="p", note={"a": 1})
    meta = {"messageheader": {"source": "web"}}
    event = decode(raw, meta)
    assert event.identity.user_id is None
    assert event.order_id is None  # purchaseId is not an EXIT field
    assert event.extras["conscent"] == {
        "clientId": "6335a6e6b8a4f2f3c1e8d9a0",
        "fields": {"userId": "", "purchaseId": "p", "note": {"a": 1}},
        "meta": {"messageheader": {"source": "web"}},
    }


# --------------------------------------------------------------------------
# Encoding events from other vendors
# --------------------------------------------------------------------------


def foreign(type_="purchase", **kwargs):
    """An event as another vendor's codec would decode it."""
    defaults = {
        "id": "0190b3c4-0000-7000-8000-000000000001",
        "type": type_,
        "timestamp": 1_700_000_000_000,
        "received_at": RECEIVED,
        "vendor": "moloco",
        "identity": Identity(user_id="user-7", persistent_id="device-9"),
        "extras": {"moloco": {"channel_type": "SITE", "clientId": "not-ours"}},
    }
    return Event(**{**defaults, **kwargs})


def test_encode_foreign_purchase():
    event = foreign(
        order_id="order-1",
        items=[Item(id="sku-1", price=Money(Decimal("12.50"), "USD"), quantity=1)],
        revenue=Money(Decimal("12.50"), "USD"),
    )
    snapshot = copy.deepcopy(event)
    out = codec.encode(event, OPTIONS)
    assert out == {
        "clientId": "client-x",
        "eventType": "PURCHASE",
        "eventLocation": "PAGE",
        "anonId": derive_uuid("persistent_id", "device-9"),
        "userId": "user-7",
        "purchaseId": "order-1",
    }
    assert valid(out)
    assert event == snapshot  # not mutated


@pytest.mark.parametrize(
    ("canonical", "conscent"),
    [
        ("heartbeat", "PING"),
        ("click", "CLICK"),
        ("exit", "EXIT"),
        ("purchase", "PURCHASE"),
        ("transaction", "TRANSACTION"),
        ("registration", "REGISTRATION"),
        ("validation", "VALIDATION"),
    ],
)
def test_encode_default_types(canonical, conscent):
    out = codec.encode(foreign(canonical), OPTIONS)
    assert out["eventType"] == conscent
    assert valid(out)


@pytest.mark.parametrize(
    "canonical",
    [
        "page_view",
        "home",
        "land",
        "search",
        "product_viewed",
        "add_to_cart",
        "add_to_wishlist",
        "payment_info",
        "order_refunded",
        "unknown",
    ],
)
def test_encode_unmapped_type_is_untranslatable(canonical):
    with pytest.raises(Untranslatable) as info:
        codec.encode(foreign(canonical), OPTIONS)
    assert info.value.vendor == "conscent"
    assert info.value.field == "type"
    assert "type_map" in info.value.reason
    assert repr(canonical) in info.value.reason


def test_encode_type_map():
    options = {**OPTIONS, "type_map": {"page_view": "PING", "purchase": "TRANSACTION"}}
    ping = codec.encode(foreign("page_view"), options)
    assert ping["eventType"] == "PING"
    assert valid(ping)
    transaction = codec.encode(foreign("purchase", order_id="o-1"), options)
    assert (transaction["eventType"], transaction["transactionId"]) == ("TRANSACTION", "o-1")
    assert "purchaseId" not in transaction


def test_encode_custom_types_need_type_map():
    event = foreign("ITEM_PURCHASED", custom=True, vendor="endu")
    with pytest.raises(Untranslatable, match="endu custom type 'ITEM_PURCHASED'"):
        codec.encode(event, OPTIONS)
    # A custom type is never mistaken for the canonical type of the same name.
    with pytest.raises(Untranslatable):
        codec.encode(foreign("purchase", custom=True), OPTIONS)
    out = codec.encode(event, {**OPTIONS, "type_map": {"ITEM_PURCHASED": "PURCHASE"}})
    assert out["eventType"] == "PURCHASE"
    assert out["purchaseId"] == event.id


def test_encode_needs_a_client_id():
    with pytest.raises(Untranslatable) as info:
        codec.encode(foreign(), {})
    assert info.value.field == "clientId"
    assert "client_id" in info.value.reason


def test_encode_keeps_a_conscent_events_own_client_id():
    assert codec.encode(decode(load("exit.json")), OPTIONS)["clientId"] == (
        "6335a6e6b8a4f2f3c1e8d9a0"
    )


@pytest.mark.parametrize(
    ("location", "options", "expected"),
    [
        ("PAYWALL", {}, "PAYWALL"),
        (None, {}, "PAGE"),
        ("checkout", {}, "PAGE"),
        ("paywall", {"default_event_location": "POPUP"}, "POPUP"),
        (None, {"default_event_location": "SRP"}, "SRP"),
        ("SSO_LOGIN", {"default_event_location": "SRP"}, "SSO_LOGIN"),
    ],
)
def test_encode_event_location(location, options, expected):
    event = foreign("exit", context=Context(location=location, page_url="https://x/y"))
    assert codec.encode(event, {**OPTIONS, **options})["eventLocation"] == expected


@pytest.mark.parametrize(
    ("identity", "expected"),
    [
        (Identity(anonymous_id=ANON, user_id="u"), ANON),
        (Identity(anonymous_id="anon-1", persistent_id="d"), derive_uuid("anonymous_id", "anon-1")),
        (
            Identity(persistent_id="d", custom_id="c", user_id="u"),
            derive_uuid("persistent_id", "d"),
        ),
        (Identity(custom_id="c", fingerprint="f", user_id="u"), derive_uuid("custom_id", "c")),
        (Identity(fingerprint="f", user_id="u"), derive_uuid("fingerprint", "f")),
        (Identity(user_id="u", session_id="s"), derive_uuid("user_id", "u")),
        (
            Identity(
                platform_ids={"telegram": "9", "discord": "7"},
                wallet=Wallet(chain="sol", account="0x"),
            ),
            derive_uuid("platform:discord", "7"),
        ),
        (
            Identity(wallet=Wallet(chain="solana", account="0x0")),
            derive_uuid("wallet", "solana:0x0"),
        ),
    ],
)
def test_encode_anon_id(identity, expected):
    out = codec.encode(foreign("click", identity=identity), OPTIONS)
    assert out["anonId"] == expected
    assert valid(out)


def test_derived_ids_are_documented_uuid5s():
    assert uuid.uuid5(uuid.NAMESPACE_URL, "urn:event-router:conscent") == ANON_ID_NAMESPACE
    assert derive_uuid("user_id", "u") == str(uuid.uuid5(ANON_ID_NAMESPACE, "user_id:u"))
    assert derive_uuid("user_id", "u") != derive_uuid("custom_id", "u")
    assert uuid.UUID(derive_uuid("user_id", "u")).version == 5


@pytest.mark.parametrize("identity", [Identity(), Identity(session_id="s-1")])
def test_encode_without_user_identifier_is_untranslatable(identity):
    with pytest.raises(Untranslatable) as info:
        codec.encode(foreign("click", identity=identity), OPTIONS)
    assert info.value.field == "anonId"


@pytest.mark.parametrize("type_", ["purchase", "transaction", "registration", "validation"])
def test_encode_user_id_required(type_):
    event = foreign(type_, identity=Identity(persistent_id="d"))
    with pytest.raises(Untranslatable) as info:
        codec.encode(event, OPTIONS)
    assert info.value.field == "userId"


@pytest.mark.parametrize("type_", ["heartbeat", "click", "exit"])
def test_encode_user_id_optional(type_):
    out = codec.encode(foreign(type_, identity=Identity(persistent_id="d")), OPTIONS)
    assert "userId" not in out
    assert valid(out)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"order_id": "o", "transaction_id": "t"}, "o"),
        ({"transaction_id": "t"}, "t"),
        ({}, "0190b3c4-0000-7000-8000-000000000001"),
    ],
)
def test_encode_purchase_id(kwargs, expected):
    assert codec.encode(foreign("purchase", **kwargs), OPTIONS)["purchaseId"] == expected


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"order_id": "o", "transaction_id": "t"}, "t"),
        ({"order_id": "o"}, "o"),
        ({}, "0190b3c4-0000-7000-8000-000000000001"),
    ],
)
def test_encode_transaction_id(kwargs, expected):
    assert codec.encode(foreign("transaction", **kwargs), OPTIONS)["transactionId"] == expected


@pytest.mark.parametrize(
    ("session_id", "expected"),
    [
        (PING_ID, PING_ID),
        ("sess-42", derive_uuid("session_id", "sess-42")),
    ],
)
def test_encode_ping_id_from_session(session_id, expected):
    event = foreign("heartbeat", identity=Identity(user_id="u", session_id=session_id))
    out = codec.encode(event, OPTIONS)
    assert out["pingId"] == expected
    assert valid(out)


def test_encode_ping_id_without_session_is_per_user_and_day():
    day = 1_700_000_000_000 // 86_400_000
    event = foreign("heartbeat", identity=Identity(anonymous_id=ANON))
    assert codec.encode(event, OPTIONS)["pingId"] == derive_uuid("day", f"{ANON}:{day}")
    later = foreign(
        "heartbeat", identity=Identity(anonymous_id=ANON), timestamp=(day + 1) * 86_400_000 - 1
    )
    next_day = foreign(
        "heartbeat", identity=Identity(anonymous_id=ANON), timestamp=(day + 1) * 86_400_000
    )
    assert codec.encode(later, OPTIONS)["pingId"] == codec.encode(event, OPTIONS)["pingId"]
    assert codec.encode(next_day, OPTIONS)["pingId"] != codec.encode(event, OPTIONS)["pingId"]


@pytest.mark.parametrize(
    ("properties", "expected"),
    [
        ({}, 1),
        ({"active": 0}, 0),
        ({"active": 1}, 1),
        ({"active": True}, 1),
        ({"active": False}, 0),
    ],
)
def test_encode_active(properties, expected):
    out = codec.encode(foreign("heartbeat", properties=properties), OPTIONS)
    assert out["active"] == expected
    assert type(out["active"]) is int


@pytest.mark.parametrize("bad", [2, "1", 1.0, None])
def test_encode_bad_active_is_untranslatable(bad):
    with pytest.raises(Untranslatable) as info:
        codec.encode(foreign("heartbeat", properties={"active": bad}), OPTIONS)
    assert info.value.field == "active"


@pytest.mark.parametrize(
    ("action", "expected"),
    [("BUY_NOW", "BUY_NOW"), ("buy_now", None), ("share", None), (None, None)],
)
def test_encode_click_action(action, expected):
    out = codec.encode(foreign("click", properties={"click_action": action}), OPTIONS)
    assert out.get("clickAction") == expected
    assert valid(out)


def test_encode_ignores_other_vendors_extras_and_properties():
    event = foreign(
        "exit",
        properties={"cart_id": "c", "click_action": "SUBS", "active": 0},
        extras={"moloco": {"fields": {"x": 1}, "clientId": "m"}, "segmento": {"type": "track"}},
        search_query="shoes",
    )
    assert set(codec.encode(event, OPTIONS)) == {
        "clientId",
        "eventType",
        "eventLocation",
        "anonId",
        "userId",
    }


def test_encode_does_not_mutate():
    events = [decode(load(n), {"messageHeaders": {"a": "b"}}) for n in EXAMPLES]
    events.append(foreign("heartbeat", properties={"active": True}))
    options = {**OPTIONS, "type_map": {"heartbeat": "PING"}}
    for event in events:
        snapshot = copy.deepcopy(event)
        codec.encode(event, options)
        assert event == snapshot


def test_encode_then_decode_keeps_canonical_fields():
    event = foreign(
        "purchase",
        identity=Identity(user_id="u", anonymous_id=ANON),
        order_id="o",
        context=Context(location="PAYWALL"),
    )
    back = decode(codec.encode(event, OPTIONS))
    assert (back.type, back.order_id, back.context.location) == ("purchase", "o", "PAYWALL")
    assert (back.identity.user_id, back.identity.anonymous_id) == ("u", ANON)
    assert back.extras["conscent"] == {"clientId": "client-x"}


def test_type_map_catch_all_applies_only_without_entry_or_default():
    from router import Event, Identity

    options = {"client_id": "c1", "type_map": {"*": "CLICK", "page_view": "PING"}}

    def event(type_, custom=False):
        return Event(
            id="e1",
            type=type_,
            custom=custom,
            timestamp=1,
            received_at=1,
            vendor="endu",
            identity=Identity(user_id="u1", anonymous_id=ANON),
        )

    assert codec.encode(event("LEVEL_UP", custom=True), options)["eventType"] == "CLICK"
    assert codec.encode(event("page_view"), options)["eventType"] == "PING"
    assert codec.encode(event("exit"), options)["eventType"] == "EXIT"
