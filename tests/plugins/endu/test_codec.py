"""The endu plugin: the codec."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path

import pytest
from router_plugins.endu.codec import CANONICAL_TYPES, ENDU_TYPES, EnduCodec, endu_type_name
from router_plugins.endu.schema import VALIDATORS

from router import (
    EVENT_TYPES,
    Context,
    Device,
    Event,
    Identity,
    Item,
    Money,
    Untranslatable,
    Wallet,
)
from router.validation import Validators
from tests.plugins.endu.events import BASE

PAYLOADS = Path(__file__).parents[2] / "data" / "payloads" / "endu"
VALID_EXAMPLES = sorted(p.name for p in PAYLOADS.glob("*.json") if p.stem != "base_insufficient")

CODEC = EnduCodec()
CHECK = Validators(VALIDATORS)
RECEIVED = 1_700_000_000_123
OPTIONS = {"property_id": "D#router", "organization_id": "org-router"}


def load(name: str) -> dict:
    return json.loads((PAYLOADS / name).read_text())


def errors(raw: dict) -> list:
    return CHECK.check("endu", CODEC.event_type(raw), raw)


def decode(raw: dict) -> Event:
    assert errors(raw) == [], "test input must be a valid Endu event"
    return CODEC.decode(raw, id="evt-1", received_at=RECEIVED, meta={})


def foreign(**fields) -> Event:
    """An event as another vendor's codec would decode it."""
    fields.setdefault("type", "page_view")
    fields.setdefault("identity", Identity(fingerprint="fp-1"))
    return Event(
        id="evt-2", timestamp=1672536219999, received_at=RECEIVED, vendor="conscent", **fields
    )


# --------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------


def test_event_type_is_read_from_the_raw_event_or_none():
    assert CODEC.event_type(BASE) == "ITEM_PURCHASED"
    assert CODEC.event_type({**BASE, "event_type": ""}) is None
    assert CODEC.event_type({**BASE, "event_type": 5}) is None
    assert CODEC.event_type({}) is None
    assert CODEC.event_type([BASE]) is None


def test_decode_platform_identity():
    event = decode(load("platform_identity.json"))
    assert event.id == "evt-1"
    assert event.vendor == "endu"
    assert (event.type, event.custom) == ("purchase", False)
    assert event.timestamp == 1672536219000
    assert event.received_at == RECEIVED
    assert event.identity == Identity(platform_ids={"discord": "702877938567086080"})
    assert event.properties == {"item_id": "8258727671"}
    assert event.items == [Item(id="8258727671")]
    assert event.extras == {
        "endu": {
            "property_id": "D#1007491775344160808",
            "organization_id": "848WN4oEUgisKrV9dY9Ni6",
            "event_type": "ITEM_PURCHASED",
            "timestamp": "1672536219",
        }
    }


def test_decode_unique_identity():
    event = decode(load("unique_identity.json"))
    assert event.identity == Identity(user_id="59078598125872925")


def test_decode_blockchain():
    event = decode(load("blockchain.json"))
    assert event.identity == Identity(wallet=Wallet(chain="solana", account="0x0"))
    assert "blockchain" not in event.extras["endu"]


def test_decode_fingerprint_page_view():
    event = decode(load("fingerprint.json"))
    assert (event.type, event.custom) == ("page_view", False)
    assert event.identity == Identity(fingerprint="xuauwiaufjwaj")


def test_decode_combined_identities():
    event = decode(load("combined_platform_blockchain.json"))
    assert event.identity == Identity(
        platform_ids={"discord": "702877938567086080"},
        wallet=Wallet(chain="solana", account="0x0"),
    )


def test_decode_telegram():
    event = decode({**BASE, "p_user_id": "42", "platform_type": "Telegram"})
    assert event.identity.platform_ids == {"telegram": "42"}


@pytest.mark.parametrize(
    ("endu_type", "canonical"),
    [
        ("PAGE_VIEW", "page_view"),
        ("ITEM_PURCHASED", "purchase"),
        ("PURCHASE", "purchase"),
        ("ADD_TO_CART", "add_to_cart"),
        ("SEARCH", "search"),
        ("PRODUCT_VIEWED", "product_viewed"),
        ("REGISTRATION", "registration"),
        ("page_view", "page_view"),
        ("Item_Purchased", "purchase"),
    ],
)
def test_decode_alias_types(endu_type, canonical):
    event = decode({**BASE, "event_type": endu_type})
    assert (event.type, event.custom) == (canonical, False)


@pytest.mark.parametrize("endu_type", ["LEVEL_UP", "Wallet Connected", "ITEM_PURCHASED_2", "ß"])
def test_decode_custom_type_keeps_exact_name(endu_type):
    event = decode({**BASE, "event_type": endu_type})
    assert (event.type, event.custom) == (endu_type, True)


def test_alias_table_covers_every_canonical_type():
    assert set(ENDU_TYPES) == set(EVENT_TYPES)
    for canonical, endu in ENDU_TYPES.items():
        assert CANONICAL_TYPES[endu] == canonical


@pytest.mark.parametrize(
    ("timestamp", "ms"),
    [("1672536219", 1672536219000), (1672536219, 1672536219000), ("0", 0), ("0000000007", 7000)],
)
def test_decode_timestamp_seconds_to_ms(timestamp, ms):
    assert decode({**BASE, "timestamp": timestamp}).timestamp == ms


def test_decode_keeps_unknown_fields_in_extras():
    raw = {
        **BASE,
        "session": {"id": "s1"},
        "blockchain": {"chain_type": "ethereum", "chain_account": "0xab", "network": "mainnet"},
    }
    own = decode(raw).extras["endu"]
    assert own["fields"] == {"session": {"id": "s1"}}
    assert own["blockchain"] == {"network": "mainnet"}


def test_decode_lifts_the_event_data_scheme():
    data = {
        "items": [
            {
                "id": "sku-1",
                "name": "Mug",
                "price": {"amount": "12.50", "currency": "EUR"},
                "quantity": 2,
                "colour": "blue",
            },
            {"id": 7, "quantity": "3", "price": "cheap"},
        ],
        "order_id": "o-1",
        "transaction_id": "t-1",
        "search_query": "mugs",
        "revenue": {"amount": 25, "currency": "EUR"},
        "tax": {"amount": "4.75"},
        "discount": "10%",
        "context": {
            "page_url": "https://shop/x",
            "channel": "site",
            "referrer": 5,
            "device": {"os": "iOS", "model": 12},
        },
        "identity": {"anonymous_id": "anon-1", "session_id": "", "user_id": "u-1"},
        "level": 3,
    }
    event = decode({**BASE, "event_data": data})
    assert event.properties is data
    assert event.items == [
        Item(
            id="sku-1",
            name="Mug",
            price=Money(Decimal("12.50"), "EUR"),
            quantity=2,
            extra={"colour": "blue"},
        ),
        Item(extra={"id": 7, "quantity": "3", "price": "cheap"}),
    ]
    assert (event.order_id, event.transaction_id, event.search_query) == ("o-1", "t-1", "mugs")
    assert event.revenue == Money(Decimal("25"), "EUR")
    assert event.tax == Money(Decimal("4.75"))
    assert event.discount is None
    assert event.context == Context(
        page_url="https://shop/x", channel="site", device=Device(os="iOS")
    )
    # c_user_id stays the only source of user_id; other ids are lifted.
    assert event.identity.user_id == "59078598125872925"
    assert event.identity.anonymous_id == "anon-1"
    assert event.identity.session_id is None


@pytest.mark.parametrize(
    "data",
    [
        {"items": "sku-1"},
        {"items": [{"id": "a"}, "b"]},
        {"items": []},
        {"item_id": 8258727671},
        {"revenue": {"amount": "NaN"}},
        {"revenue": {"amount": "lots"}},
        {"revenue": {"amount": True}},
        {"context": "web"},
    ],
)
def test_decode_leaves_other_shapes_in_properties(data):
    event = decode({**BASE, "event_data": data})
    assert event.properties == data
    assert event.items == []
    assert event.revenue is None
    assert event.context == Context()


def test_decode_items_win_over_item_id():
    event = decode({**BASE, "event_data": {"item_id": "a", "items": [{"id": "b"}]}})
    assert [i.id for i in event.items] == ["b"]


# --------------------------------------------------------------------------
# Round trip: encode(decode(raw)) == raw
# --------------------------------------------------------------------------

EDGE_CASES = {
    "integer timestamp": {**BASE, "timestamp": 1672536219},
    "zero timestamp": {**BASE, "timestamp": "0"},
    "zero integer timestamp": {**BASE, "timestamp": 0},
    "leading zeros": {**BASE, "timestamp": "0001672536"},
    "max timestamp": {**BASE, "timestamp": "9999999999"},
    "telegram": {**BASE, "c_user_id": "1", "p_user_id": "42", "platform_type": "Telegram"},
    "all identities": {
        **BASE,
        "p_user_id": "702877938567086080",
        "platform_type": "Discord",
        "blockchain": {"chain_type": "ethereum", "chain_account": "0xAbC"},
        "fingerprint": "fp",
    },
    "blockchain extra keys": {
        **{k: v for k, v in BASE.items() if k != "c_user_id"},
        "blockchain": {"chain_type": "solana", "chain_account": "0x0", "network": {"id": 1}},
    },
    "unknown fields": {**BASE, "session": None, "tags": ["a", 1, 2.5, True], "v": 2},
    "empty event_data": {**BASE, "event_data": {}},
    "nested event_data": {
        **BASE,
        "event_data": {"a": {"b": [1, {"c": None}]}, "price": "12.50", "n": 1.0},
    },
    "scheme event_data": {
        **BASE,
        "event_data": {
            "items": [{"id": "1", "price": {"amount": "12.50", "currency": "EUR"}, "x": 1}],
            "revenue": {"amount": "12.50", "currency": "EUR"},
            "order_id": "o-1",
            "context": {"page_url": "https://x", "device": {"os": "iOS", "n": 1}},
            "identity": {"anonymous_id": "a", "user_id": "u"},
        },
    },
    "odd scheme shapes": {
        **BASE,
        "event_data": {"items": [1, 2], "revenue": 12.5, "context": [], "identity": "x"},
    },
    "lowercase alias": {**BASE, "event_type": "add_to_cart"},
    "mixed-case alias": {**BASE, "event_type": "Page_View"},
    "purchase alias": {**BASE, "event_type": "PURCHASE"},
    "custom type": {**BASE, "event_type": "LEVEL_UP"},
    "custom type with spaces": {**BASE, "event_type": "wallet connected!"},
    "unicode": {**BASE, "event_type": "Ünïcode 事件", "c_user_id": "ü", "event_data": {"ü": "事"}},
    "fingerprint only": {
        **{k: v for k, v in BASE.items() if k != "c_user_id"},
        "fingerprint": "xuauwiaufjwaj",
    },
}


@pytest.mark.parametrize("name", VALID_EXAMPLES)
def test_round_trip_documented_examples(name):
    raw = load(name)
    assert CODEC.encode(decode(raw), {}) == raw


@pytest.mark.parametrize("name", sorted(EDGE_CASES))
def test_round_trip_edge_cases(name):
    raw = EDGE_CASES[name]
    encoded = CODEC.encode(decode(copy.deepcopy(raw)), {})
    assert encoded == raw
    assert [type(encoded[k]) for k in raw] == [type(v) for v in raw.values()]


@pytest.mark.parametrize("name", sorted(EDGE_CASES))
def test_round_trip_through_event_dict(name):
    # The canonical event survives its own serialization (spool, translate).
    raw = EDGE_CASES[name]
    event = Event.from_dict(decode(copy.deepcopy(raw)).to_dict())
    assert CODEC.encode(event, {}) == raw


@pytest.mark.parametrize("name", sorted(EDGE_CASES))
def test_encode_does_not_mutate(name):
    event = decode(copy.deepcopy(EDGE_CASES[name]))
    before = copy.deepcopy(event)
    CODEC.encode(event, OPTIONS)
    CODEC.encode(event, {"type_map": {event.type: "X"}, "override_ids": True, **OPTIONS})
    assert event == before


# --------------------------------------------------------------------------
# Encoding an Endu event with sink options
# --------------------------------------------------------------------------


def test_encode_keeps_own_ids_by_default():
    out = CODEC.encode(decode(BASE), OPTIONS)
    assert (out["property_id"], out["organization_id"]) == (
        BASE["property_id"],
        BASE["organization_id"],
    )


def test_encode_override_ids():
    out = CODEC.encode(decode(BASE), {**OPTIONS, "override_ids": True})
    assert (out["property_id"], out["organization_id"]) == ("D#router", "org-router")


def test_encode_override_ids_only_what_is_configured():
    out = CODEC.encode(decode(BASE), {"property_id": "D#router", "override_ids": True})
    assert (out["property_id"], out["organization_id"]) == ("D#router", BASE["organization_id"])


def test_encode_type_map_wins_over_original_name():
    out = CODEC.encode(decode(BASE), {"type_map": {"purchase": "ORDER_COMPLETED"}})
    assert out["event_type"] == "ORDER_COMPLETED"


def test_encode_changed_type_drops_original_name():
    event = decode(BASE)
    event.type = "add_to_cart"
    assert CODEC.encode(event, {})["event_type"] == "ADD_TO_CART"


def test_encode_changed_timestamp_drops_original_form():
    event = decode({**BASE, "timestamp": 1672536219})
    event.timestamp = 1672536300500
    assert CODEC.encode(event, {})["timestamp"] == "1672536300"


def test_encode_endu_event_ignores_identity_fallbacks():
    # An Endu event keeps its own identity: fallbacks are for other vendors.
    raw = {**BASE, "event_data": {"identity": {"anonymous_id": "a"}}}
    options = {"fingerprint_from": ["anonymous_id"], "user_id_is_c_user_id": False}
    assert CODEC.encode(decode(raw), options) == raw


# --------------------------------------------------------------------------
# Encoding events of other vendors
# --------------------------------------------------------------------------


@pytest.mark.parametrize("canonical", sorted(EVENT_TYPES))
def test_encode_every_canonical_type(canonical):
    out = CODEC.encode(foreign(type=canonical), OPTIONS)
    assert out["event_type"] == ENDU_TYPES[canonical]
    assert errors(out) == []


def test_encode_purchase_is_item_purchased():
    assert CODEC.encode(foreign(type="purchase"), OPTIONS)["event_type"] == "ITEM_PURCHASED"


@pytest.mark.parametrize(
    ("custom", "expected"),
    [
        ("PING", "PING"),
        ("productReviewed", "PRODUCT_REVIEWED"),
        ("product-clicked", "PRODUCT_CLICKED"),
        ("Video Played", "VIDEO_PLAYED"),
        ("checkout.v2", "CHECKOUT_V2"),
        ("!!!", "!!!"),
    ],
)
def test_encode_custom_type_as_upper_snake(custom, expected):
    assert endu_type_name(custom) == expected
    assert CODEC.encode(foreign(type=custom, custom=True), OPTIONS)["event_type"] == expected


def test_encode_type_map():
    options = {**OPTIONS, "type_map": {"page_view": "SCREEN", "PING": "HEARTBEAT"}}
    assert CODEC.encode(foreign(type="page_view"), options)["event_type"] == "SCREEN"
    assert CODEC.encode(foreign(type="PING", custom=True), options)["event_type"] == "HEARTBEAT"
    assert CODEC.encode(foreign(type="search"), options)["event_type"] == "SEARCH"


@pytest.mark.parametrize(("ms", "seconds"), [(1672536219999, "1672536219"), (999, "0"), (0, "0")])
def test_encode_timestamp_seconds_string(ms, seconds):
    event = foreign()
    event.timestamp = ms
    assert CODEC.encode(event, OPTIONS)["timestamp"] == seconds


@pytest.mark.parametrize("missing", ["property_id", "organization_id"])
def test_encode_needs_ids_from_options(missing):
    options = {k: v for k, v in OPTIONS.items() if k != missing}
    with pytest.raises(Untranslatable) as info:
        CODEC.encode(foreign(), options)
    assert info.value.field == missing
    assert f"set the sink option {missing}" in info.value.reason


def test_encode_direct_identities():
    identity = Identity(
        fingerprint="fp",
        platform_ids={"telegram": "42"},
        wallet=Wallet(chain="ethereum", account="0xab"),
    )
    out = CODEC.encode(foreign(identity=identity), OPTIONS)
    assert out["fingerprint"] == "fp"
    assert (out["p_user_id"], out["platform_type"]) == ("42", "Telegram")
    assert out["blockchain"] == {"chain_type": "ethereum", "chain_account": "0xab"}
    assert "c_user_id" not in out
    assert "identity" not in out["event_data"]
    assert errors(out) == []


def test_encode_prefers_discord_and_keeps_other_platform_ids():
    identity = Identity(platform_ids={"telegram": "42", "discord": "7", "slack": "U1"})
    out = CODEC.encode(foreign(identity=identity), OPTIONS)
    assert (out["p_user_id"], out["platform_type"]) == ("7", "Discord")
    assert out["event_data"]["identity"] == {"platform_ids": {"telegram": "42", "slack": "U1"}}


def test_encode_user_id_is_not_a_c_user_id_by_default():
    identity = Identity(user_id="u-1", anonymous_id="anon-1", session_id="s-1")
    with pytest.raises(Untranslatable) as info:
        CODEC.encode(foreign(identity=identity), OPTIONS)
    assert info.value.field == "identity"
    assert "user_id, anonymous_id, session_id" in info.value.reason
    assert "user_id_is_c_user_id" in info.value.reason
    assert "fingerprint_from" in info.value.reason


def test_encode_no_identifier_at_all():
    with pytest.raises(Untranslatable, match="no identifier at all"):
        CODEC.encode(foreign(identity=Identity(platform_ids={})), OPTIONS)


def test_encode_user_id_as_c_user_id_when_configured():
    identity = Identity(user_id="u-1", anonymous_id="anon-1")
    out = CODEC.encode(foreign(identity=identity), {**OPTIONS, "user_id_is_c_user_id": True})
    assert out["c_user_id"] == "u-1"
    assert "fingerprint" not in out
    assert out["event_data"]["identity"] == {"anonymous_id": "anon-1"}


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        (["anonymous_id"], "anon-1"),
        (["persistent_id", "anonymous_id"], "dev-1"),
        (["custom_id", "anonymous_id"], "anon-1"),
    ],
)
def test_encode_fingerprint_from(order, expected):
    identity = Identity(user_id="u-1", anonymous_id="anon-1", persistent_id="dev-1")
    out = CODEC.encode(foreign(identity=identity), {**OPTIONS, "fingerprint_from": order})
    assert out["fingerprint"] == expected
    left = {"user_id": "u-1", "anonymous_id": "anon-1", "persistent_id": "dev-1"}
    del left[{"anon-1": "anonymous_id", "dev-1": "persistent_id"}[expected]]
    assert out["event_data"]["identity"] == left
    assert errors(out) == []


def test_encode_own_fingerprint_wins_over_fallback():
    identity = Identity(fingerprint="fp", anonymous_id="anon-1")
    out = CODEC.encode(
        foreign(identity=identity), {**OPTIONS, "fingerprint_from": ["anonymous_id"]}
    )
    assert out["fingerprint"] == "fp"
    assert out["event_data"]["identity"] == {"anonymous_id": "anon-1"}


def test_encode_event_data_scheme():
    event = foreign(
        type="purchase",
        properties={"coupon": "SPRING", "items": "overwritten"},
        items=[
            Item(
                id="sku-1",
                name="Mug",
                price=Money(Decimal("12.50"), "EUR"),
                quantity=2,
                extra={"colour": "blue"},
            ),
            Item(sku="x"),
        ],
        order_id="o-1",
        transaction_id="t-1",
        revenue=Money(Decimal("25.00"), "EUR"),
        shipping=Money(Decimal("0")),
        context=Context(
            channel="site",
            location="PAYWALL",
            page_url="https://shop/x",
            device=Device(os="iOS", user_agent="UA"),
        ),
    )
    out = CODEC.encode(event, OPTIONS)
    assert out == {
        "property_id": "D#router",
        "organization_id": "org-router",
        "timestamp": "1672536219",
        "event_type": "ITEM_PURCHASED",
        "fingerprint": "fp-1",
        "event_data": {
            "coupon": "SPRING",
            "items": [
                {
                    "colour": "blue",
                    "id": "sku-1",
                    "name": "Mug",
                    "quantity": 2,
                    "price": {"amount": "12.50", "currency": "EUR"},
                },
                {"sku": "x"},
            ],
            "order_id": "o-1",
            "transaction_id": "t-1",
            "revenue": {"amount": "25.00", "currency": "EUR"},
            "shipping": {"amount": "0"},
            "context": {
                "channel": "site",
                "location": "PAYWALL",
                "page_url": "https://shop/x",
                "device": {"os": "iOS", "user_agent": "UA"},
            },
        },
    }
    assert event.properties == {"coupon": "SPRING", "items": "overwritten"}
    assert errors(out) == []


def test_encode_ignores_other_vendors_extras():
    event = foreign(extras={"conscent": {"clientId": "c-1", "eventLocation": "PAGE"}})
    out = CODEC.encode(event, OPTIONS)
    assert out["event_data"] == {}
    assert (out["property_id"], out["organization_id"]) == ("D#router", "org-router")


def test_encode_then_decode_recovers_canonical_fields():
    # A Moloco-like purchase relayed through Endu and read back by an Endu source.
    event = foreign(
        type="purchase",
        identity=Identity(user_id="u-1", anonymous_id="anon-1", persistent_id="dev-1"),
        properties={"coupon": "SPRING"},
        items=[Item(id="sku-1", price=Money(Decimal("9.99"), "USD"), quantity=1)],
        order_id="o-1",
        revenue=Money(Decimal("9.99"), "USD"),
        search_query="mug",
        context=Context(page_id="p-1", referrer="r", device=Device(model="Pixel")),
    )
    raw = CODEC.encode(event, {**OPTIONS, "user_id_is_c_user_id": True})
    back = decode(raw)
    assert (back.type, back.timestamp) == ("purchase", 1672536219000)
    assert back.identity == Identity(user_id="u-1", anonymous_id="anon-1", persistent_id="dev-1")
    assert back.items == event.items
    assert (back.order_id, back.revenue, back.search_query) == ("o-1", event.revenue, "mug")
    assert back.context == event.context
    assert back.properties["coupon"] == "SPRING"
