"""SegmentoCodec: exact round trips, the canonical mapping, and encoding from any source."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path

import pytest
from router_plugins.segmento.codec import (
    CANONICAL_TYPES,
    SEGMENTO_TYPES,
    SegmentoCodec,
    format_timestamp,
)
from router_plugins.segmento.schema import DEFAULT_EVENTS
from router_plugins.segmento.schema import VALIDATORS as SPECS

from router import EVENT_TYPES, Context, Event, Identity, Item, Money, Untranslatable
from router.validation import Validators

PAYLOADS = Path(__file__).parents[2] / "data" / "payloads" / "segmento"
CODEC = SegmentoCodec()
VALIDATORS = Validators(SPECS)
RECEIVED_AT = 1_714_558_530_123  # 2024-05-01 10:15:30.123 UTC
MAY_1 = 1_714_558_530_000  # 2024-05-01 10:15:30 UTC


def example(name: str) -> dict:
    return json.loads((PAYLOADS / f"{name}.json").read_text())["data"][0]


def decode(raw: dict) -> Event:
    return CODEC.decode(raw, id="evt-1", received_at=RECEIVED_AT, meta={})


def valid(doc: dict) -> dict:
    """``doc``, after asserting that Segmento's own validators accept it."""
    assert VALIDATORS.check("segmento", CODEC.event_type(doc), doc) == []
    return doc


def round_trip(raw: dict) -> None:
    valid(raw)
    original = copy.deepcopy(raw)
    out = CODEC.encode(decode(raw), {})
    assert out == original
    assert json.dumps(out, sort_keys=True) == json.dumps(original, sort_keys=True)  # same types
    assert raw == original  # decode did not mutate its input


def other_vendor_event(type: str, **fields) -> Event:
    """An event as another vendor's codec would decode it."""
    fields.setdefault("identity", Identity(user_id="u-1"))
    return Event(
        id="evt-2",
        type=type,
        timestamp=MAY_1 + 999,
        received_at=MAY_1 + 5000,
        vendor="moloco",
        extras={"moloco": {"platform": "web", "event_timestamp": "nope"}},
        **fields,
    )


# ====================================================================== round trip


@pytest.mark.parametrize("path", sorted(PAYLOADS.glob("*.json")), ids=lambda p: p.stem)
def test_round_trip_every_payload_example(path):
    for raw in json.loads(path.read_text())["data"]:
        round_trip(raw)


def _edit(name: str, **changes) -> dict:
    doc = example(name)
    for key, value in changes.items():
        where = doc["event_properties"] if key.startswith("p_") else doc
        key = key.removeprefix("p_")
        if value is None:
            where.pop(key, None)
        else:
            where[key] = value
    return doc


EDGE_CASES = {
    "no timestamp": _edit("product-viewed", event_timestamp=None),
    "impossible date": _edit("product-viewed", event_timestamp="2023-02-29 10:00:00"),
    "year zero": _edit("page-view", event_timestamp="0000-01-01 00:00:00"),
    "epoch": _edit("page-view", event_timestamp="1970-01-01 00:00:00"),
    "type and context": _edit("product-viewed", type="identify", context={"os": "ios"}),
    "type track": _edit("product-viewed", type="track"),
    "created_at sent": _edit("product-viewed", created_at="2024-05-01 10:15:31"),
    "unknown top field": _edit("payment-info", source={"a": [1, 2]}),
    "product id only": _edit("product-viewed", p_sku=None, p_price=None, p_name=None),
    "non-numeric price": _edit("product-viewed", p_price="free"),
    "price with comma": _edit("product-viewed", p_price="1,299.00"),
    "price exponent": _edit("product-viewed", p_price="1E+3"),
    "price tiny": _edit("product-viewed", p_price="0.0000001"),
    "price spaced": _edit("product-viewed", p_price=" 12.50"),
    "price plus sign": _edit("product-viewed", p_price="+12.50"),
    "price underscore": _edit("product-viewed", p_price="1_000"),
    "price nan": _edit("product-viewed", p_price="NaN"),
    "price negative zero": _edit("product-viewed", p_price="-0.00"),
    "price empty": _edit("product-viewed", p_price=""),
    "quantity leading zero": _edit("product-viewed", p_quantity="02"),
    "quantity decimal": _edit("product-viewed", p_quantity="1.5"),
    "quantity full-width": _edit("product-viewed", p_quantity="\uff13"),
    "quantity negative": _edit("product-viewed", p_quantity="-1"),
    "position words": _edit("product-viewed", p_position="top"),
    "empty optional strings": _edit("product-viewed", p_sku="", p_coupon="", p_url=""),
    "unknown product keys": _edit("product-viewed", p_color="red", p_stock=3),
    "wishlist without product": {
        "event_name": "product-added-to-wishlist",
        "visitor_id": "v",
        "event_properties": {"wishlist_id": "W-1"},
    },
    "wishlist only coupon": {
        "event_name": "product-added-to-wishlist",
        "visitor_id": "v",
        "event_properties": {"coupon": "X"},
    },
    "remove from cart with product": _edit("remove-from-cart", p_product_id="P-1", p_price="3"),
    "order total int": _edit("order-completed", p_total=45),
    "order total float integral": _edit("order-completed", p_total=45.0),
    "order total huge float": _edit("order-completed", p_total=1.2345678901234567e16),
    "order total 1e20": _edit("order-completed", p_total=1e20),
    "order total tiny float": _edit("order-completed", p_total=5e-324),
    "order total negative zero": _edit("order-completed", p_total=-0.0),
    "order total big int": _edit("order-completed", p_total=10**30),
    "order no currency": _edit("order-completed", p_currency=None),
    "order currency no money": _edit(
        "order-cancelled", p_total=None, p_coupon=None, p_currency="EUR"
    ),
    "order no money no currency": _edit("order-cancelled", p_total=None, p_currency=None),
    "order empty products": _edit("order-completed", p_products=[]),
    "order-updated empty products": _edit("order-updated", p_products=[]),
    "order-updated no products": _edit("order-updated", p_products=None),
    "order undocumented money": _edit("order-updated", p_discount=1.5),
    "order undocumented money text": _edit("order-updated", p_discount="1.5"),
    "order product unknown keys": _edit(
        "order-completed", p_products=[{"product_id": "P", "size": 42, "price": "x"}]
    ),
    "order id on product event": _edit("product-viewed", p_order_id="O-1"),
    "order id not a string": _edit("product-viewed", p_order_id=17),
    "query on other event": _edit("page-view", p_query="shoes"),
    "money on product event": _edit("product-viewed", p_total=3, p_currency="USD"),
    "currency on product event": _edit("product-viewed", p_currency="USD"),
    "currency not a string": _edit("product-viewed", p_currency=978, p_total=1),
    "page-view title only": {
        "event_name": "page-view",
        "visitor_id": "v",
        "event_properties": {"title": "Home"},
    },
    "page-view canonical channel": _edit("page-view", p_channel="site"),
    "page-view other channel": _edit("page-view", p_channel="Web"),
    "page-view empty meta": _edit("page-view", p_meta=[]),
    "review minimal": {
        "event_name": "product-reviewed",
        "visitor_id": "v",
        "event_properties": {"product_id": "P", "review_id": "R"},
    },
    "custom empty properties": _edit("custom-event", event_properties={}),
    "custom named like a canonical type": _edit("custom-event", event_name="purchase"),
    "custom with default keys": _edit(
        "custom-event", event_properties={"products": [], "total": "x", "title": 5, "query": 1}
    ),
    "custom nested": _edit("custom-event", event_properties={"a": {"b": {"c": [None, 1.5]}}}),
    "unicode": _edit(
        "product-viewed", visitor_id="\u0935\u093f", p_name="\u00e9t\u00e9 \U0001f600"
    ),
}


@pytest.mark.parametrize("raw", EDGE_CASES.values(), ids=EDGE_CASES.keys())
def test_round_trip_edge_cases(raw):
    round_trip(raw)


def test_round_trip_keeps_float_and_int_types_apart():
    raw = _edit("order-completed", p_total=45.0, p_revenue=40, p_tax=1.2345678901234567e16)
    props = CODEC.encode(decode(raw), {})["event_properties"]
    assert [type(props[k]) for k in ("total", "revenue", "tax")] == [float, int, float]
    assert props["tax"] == 1.2345678901234567e16


@pytest.mark.parametrize("path", sorted(PAYLOADS.glob("*.json")), ids=lambda p: p.stem)
def test_round_trip_survives_event_to_dict_and_back(path):
    # The spool may keep canonical events as dicts; extras must survive that.
    for raw in json.loads(path.read_text())["data"]:
        event = Event.from_dict(decode(raw).to_dict())
        assert CODEC.encode(event, {}) == raw


# ====================================================================== decode


@pytest.mark.parametrize(("name", "canonical"), CANONICAL_TYPES.items())
def test_decode_default_event_type(name, canonical):
    event = decode(example(name))
    assert (event.type, event.custom) == (canonical, False)
    assert canonical in EVENT_TYPES


def test_decode_common_fields():
    event = decode(example("product-viewed"))
    assert event.id == "evt-1"
    assert event.vendor == "segmento"
    assert event.identity == Identity(user_id="9198XXXXXX21")
    assert event.timestamp == MAY_1
    assert event.received_at == RECEIVED_AT


def test_decode_timestamp_is_utc():
    raw = _edit("product-viewed", event_timestamp="2000-02-29 23:59:59")
    assert decode(raw).timestamp == 951_868_799_000


@pytest.mark.parametrize("stamp", [None, "2023-02-29 10:00:00", "2024-04-31 00:00:00"])
def test_decode_without_usable_timestamp_uses_received_at(stamp):
    event = decode(_edit("product-viewed", event_timestamp=stamp))
    assert event.timestamp == RECEIVED_AT
    if stamp:
        assert event.extras["segmento"]["event_timestamp"] == stamp


def test_decode_single_product_to_items():
    event = decode(example("product-viewed"))
    assert event.items == [
        Item(
            id="P-1001",
            sku="SKU-RED-M",
            name="Red shirt",
            brand="Acme",
            category="Shirts",
            variant="Medium",
            variant_id="V-1001-M",
            price=Money(Decimal("12.50")),
            quantity=2,
            coupon="SUMMER10",
            position=3,
            url="https://shop.example.com/p/1001",
            image_url="https://shop.example.com/i/1001.jpg",
        )
    ]
    assert str(event.items[0].price.amount) == "12.50"
    assert event.properties == {}


def test_decode_add_to_cart():
    event = decode(example("add-to-cart"))
    assert event.properties == {"cart_id": "CART-9"}
    assert event.items[0].id == "P-1001"


@pytest.mark.parametrize(
    ("price", "quantity", "position"),
    [
        ("1,299.00", "02", "top"),
        ("1E+3", "1.5", " 3"),
        ("NaN", "+2", "\uff13"),
        (" 12.50", "", "-"),
        ("12.", "2 ", "3.0"),
    ],
)
def test_decode_unparsable_product_values_stay_in_item_extra(price, quantity, position):
    raw = _edit("product-viewed", p_price=price, p_quantity=quantity, p_position=position)
    item = decode(raw).items[0]
    assert (item.price, item.quantity, item.position) == (None, None, None)
    assert item.extra == {"price": price, "quantity": quantity, "position": position}


@pytest.mark.parametrize(
    ("price", "amount"),
    [("12.50", "12.50"), ("0", "0"), ("-0.00", "-0.00"), ("0.0000001", "1E-7"), ("100", "100")],
)
def test_decode_exact_price_becomes_money(price, amount):
    item = decode(_edit("product-viewed", p_price=price)).items[0]
    assert item.price == Money(Decimal(price))
    assert str(item.price.amount) == amount
    assert item.extra == {}


def test_decode_search():
    event = decode(example("product-searched"))
    assert event.search_query == "red shirt"
    assert event.properties == {}


def test_decode_review():
    event = decode(example("product-reviewed"))
    assert event.items == [Item(id="P-1001")]
    assert event.properties == {"review_id": "R-42", "review_body": "Fits well", "rating": "5"}


def test_decode_checkout_events():
    for name in ("payment-info", "remove-from-cart"):
        event = decode(example(name))
        assert event.order_id == "O-5001"
        assert event.properties["checkout_id"] == "C-77"
        assert set(event.properties) == {"checkout_id", "shipping_method", "payment_method"}
        assert event.items == []


def test_decode_order_completed():
    event = decode(example("order-completed"))
    assert event.order_id == "O-5001"
    assert event.total == Money(Decimal("45.0"), "INR")
    assert event.revenue == Money(Decimal(40), "INR")
    assert event.shipping == Money(Decimal(5), "INR")
    assert event.tax == Money(Decimal("2.25"), "INR")
    assert event.discount == Money(Decimal("2.5"), "INR")
    assert event.properties == {"checkout_id": "C-77", "coupon": "SUMMER10"}
    assert [item.id for item in event.items] == ["P-1001", "P-2002"]
    assert event.items[1].price == Money(Decimal("20.00"), "INR")
    assert event.items[1].coupon == ""


def test_decode_currency_without_money_stays_in_properties():
    raw = _edit("order-cancelled", p_total=None, p_currency="EUR")
    event = decode(raw)
    assert event.properties["currency"] == "EUR"
    assert event.items[0].price.currency == "EUR"


def test_decode_product_list():
    event = decode(example("product-list-viewed"))
    assert event.properties == {"list_id": "L-shirts", "category": "Shirts"}
    assert [item.id for item in event.items] == ["P-1001", "P-2002"]


def test_decode_page_view():
    event = decode(example("page-view"))
    assert event.context == Context(
        page_title="Red shirt | Acme", page_url="https://shop.example.com/p/1001"
    )
    assert event.properties == {
        "name": "Product page",
        "channel": "web",
        "meta": [{"referrer": "https://www.example.org/"}],
    }


def test_decode_page_view_canonical_channel():
    event = decode(_edit("page-view", p_channel="app"))
    assert event.context.channel == "app"
    assert "channel" not in event.properties


def test_decode_custom_event():
    raw = example("custom-event")
    event = decode(raw)
    assert (event.type, event.custom) == ("newsletter-subscribed", True)
    assert event.properties == raw["event_properties"]
    assert event.items == []
    assert event.extras == {
        "segmento": {
            "event_timestamp": "2024-05-01 10:15:30",
            "type": "track",
            "context": {"ip": "203.0.113.7", "user_agent": "Mozilla/5.0"},
        }
    }


def test_event_type_is_read_from_the_raw_event_or_none():
    assert CODEC.event_type(example("page-view")) == "page-view"
    assert CODEC.event_type(example("custom-event")) == "newsletter-subscribed"
    for bad in ({}, {"event_name": ""}, {"event_name": 3}, ["event_name"], None):
        assert CODEC.event_type(bad) is None


# ====================================================================== encode from any source


def encode(event: Event, **options) -> dict:
    before = copy.deepcopy(event)
    out = CODEC.encode(event, options)
    assert event == before  # encode never mutates
    return valid(out)


def test_encode_mapping_covers_every_default_event():
    assert set(SEGMENTO_TYPES.values()) == set(DEFAULT_EVENTS)
    assert set(SEGMENTO_TYPES) <= set(EVENT_TYPES)


def test_encode_ignores_other_vendors_extras_and_derives_top_level_fields():
    event = other_vendor_event("product_viewed", items=[Item(id="P-1")])
    assert encode(event) == {
        "event_name": "product-viewed",
        "visitor_id": "u-1",
        "event_properties": {"product_id": "P-1"},
        "event_timestamp": "2024-05-01 10:15:30",
    }


def test_encode_product_event_from_canonical_item():
    item = Item(
        id="P-1",
        group_id="G",
        sku="S",
        name="Shoe",
        brand="B",
        category="C",
        variant="V",
        variant_id="VI",
        price=Money(Decimal("1E+1"), "USD"),
        quantity=3,
        coupon="K",
        position=0,
        url="u",
        image_url="i",
        seller_id="seller",
        extra={"colour": "red", "price_micros": 10_000_000},
    )
    out = encode(other_vendor_event("add_to_cart", items=[item], properties={"cart_id": 77}))
    assert out["event_properties"] == {
        "product_id": "P-1",
        "sku": "S",
        "category": "C",
        "name": "Shoe",
        "brand": "B",
        "variant": "V",
        "variant_id": "VI",
        "price": "10",
        "quantity": "3",
        "coupon": "K",
        "position": "0",
        "url": "u",
        "image_url": "i",
        "colour": "red",
        "price_micros": 10_000_000,
        "currency": "USD",
        "cart_id": "77",
    }


def test_encode_single_product_event_uses_first_item():
    items = [Item(id="P-1"), Item(id="P-2")]
    out = encode(other_vendor_event("product_clicked", items=items))
    assert out["event_properties"] == {"product_id": "P-1"}


def test_encode_purchase():
    event = other_vendor_event(
        "purchase",
        order_id="O-1",
        revenue=Money(Decimal("12.50"), "EUR"),
        tax=Money(Decimal(2)),
        items=[Item(id="A", price=Money(Decimal("12.50"), "EUR"), quantity=1)],
        properties={"coupon": "K", "affiliation": 5, "gift": True},
    )
    assert encode(event)["event_properties"] == {
        "products": [{"product_id": "A", "price": "12.50", "quantity": "1"}],
        "order_id": "O-1",
        "revenue": 12.5,
        "tax": 2,
        "currency": "EUR",
        "coupon": "K",
        "affiliation": 5,  # not in the order-completed table: passed as is
        "gift": True,
    }


def test_encode_order_without_items_sends_empty_products():
    out = encode(other_vendor_event("order_refunded", order_id="O-1"))
    assert out["event_properties"] == {"order_id": "O-1", "products": []}


def test_encode_currency_from_items_when_no_money_field():
    event = other_vendor_event(
        "order_cancelled", items=[Item(id="A", price=Money(Decimal("3.10"), "GBP"))]
    )
    assert encode(event)["event_properties"]["currency"] == "GBP"


def test_encode_page_view():
    event = other_vendor_event(
        "page_view",
        context=Context(page_title="Home", page_url="https://x.example/", channel="app"),
        properties={"meta": "not a list"},
    )
    assert encode(event)["event_properties"] == {
        "title": "Home",
        "url": "https://x.example/",
        "channel": "app",
    }


def test_encode_search():
    out = encode(other_vendor_event("search", search_query="boots"))
    assert (out["event_name"], out["event_properties"]) == ("product-searched", {"query": "boots"})


def test_encode_review_rating_number_becomes_string():
    event = other_vendor_event(
        "product_reviewed", items=[Item(id="P")], properties={"review_id": "R", "rating": 4.5}
    )
    assert encode(event)["event_properties"] == {
        "product_id": "P",
        "review_id": "R",
        "rating": "4.5",
    }


def test_encode_remove_from_cart_takes_checkout_id_from_cart_id():
    event = other_vendor_event(
        "remove_from_cart", items=[Item(id="P")], properties={"cart_id": "K"}
    )
    assert encode(event)["event_properties"] == {
        "product_id": "P",
        "cart_id": "K",
        "checkout_id": "K",
    }


def test_encode_order_updated_total():
    event = other_vendor_event("order_updated", total=Money(Decimal("9.99"), "INR"))
    assert encode(event)["event_properties"] == {"total": 9.99, "currency": "INR"}


@pytest.mark.parametrize(
    ("canonical", "fields", "missing"),
    [
        ("product_viewed", {}, "product_id"),
        ("product_viewed", {"items": [Item(sku="S")]}, "product_id"),
        ("product_clicked", {"items": [Item(id="")]}, "product_id"),
        ("add_to_cart", {"items": [Item(id="P")]}, "cart_id"),
        ("add_to_cart", {"properties": {"cart_id": "K"}}, "product_id"),
        ("remove_from_cart", {"items": [Item(id="P")]}, "checkout_id"),
        ("product_reviewed", {"items": [Item(id="P")]}, "review_id"),
        ("search", {"properties": {"query": None}}, "query"),
        ("order_updated", {"revenue": Money(Decimal(1))}, "total"),
        ("page_view", {"context": Context(page_url="https://x.example/")}, "title"),
    ],
)
def test_encode_missing_required_property_is_untranslatable(canonical, fields, missing):
    with pytest.raises(Untranslatable) as info:
        CODEC.encode(other_vendor_event(canonical, **fields), {})
    assert info.value.vendor == "segmento"
    assert info.value.field == f"event_properties.{missing}"
    assert missing in info.value.reason
    assert "type_map" in info.value.reason


@pytest.mark.parametrize("canonical", ["purchase", "product_list_viewed"])
def test_encode_item_without_id_in_products_is_untranslatable(canonical):
    event = other_vendor_event(canonical, items=[Item(id="A"), Item(name="no id")])
    with pytest.raises(Untranslatable) as info:
        CODEC.encode(event, {})
    assert info.value.field == "event_properties.products[1].product_id"


def test_encode_missing_required_property_can_be_avoided_with_type_map():
    event = other_vendor_event("add_to_cart", items=[Item(id="P")])
    out = encode(event, type_map={"add_to_cart": "added-to-cart"})
    assert out["event_name"] == "added-to-cart"
    assert out["event_properties"] == {"product": [{"product_id": "P"}]}


@pytest.mark.parametrize(
    "canonical", sorted(set(EVENT_TYPES) - set(SEGMENTO_TYPES)), ids=lambda t: t
)
def test_encode_type_without_default_event_becomes_custom_event(canonical):
    out = encode(other_vendor_event(canonical, properties={"k": 1}))
    assert out["event_name"] == canonical.replace("_", "-")
    assert out["event_name"] not in DEFAULT_EVENTS
    assert out["event_properties"] == {"k": 1}


def test_encode_vendor_custom_type_keeps_its_name():
    event = other_vendor_event("PAYWALL_SHOWN", custom=True, properties={"plan": "gold"})
    out = encode(event)
    assert (out["event_name"], out["event_properties"]) == ("PAYWALL_SHOWN", {"plan": "gold"})


def test_encode_custom_event_carries_canonical_fields():
    event = other_vendor_event(
        "transaction",
        transaction_id="T-1",
        order_id="O-1",
        search_query="q",
        total=Money(Decimal("1.50"), "USD"),
        items=[Item(id="A", quantity=2), Item(name="B")],
        properties={"order_id": "from properties"},
    )
    assert encode(event)["event_properties"] == {
        "order_id": "from properties",
        "product": [{"product_id": "A", "quantity": "2"}, {"name": "B"}],
        "transaction_id": "T-1",
        "query": "q",
        "total": 1.5,
        "currency": "USD",
    }


def test_encode_type_map_overrides_defaults():
    event = other_vendor_event("purchase", items=[Item(id="A")])
    with pytest.raises(Untranslatable):  # order-updated needs a total this event lacks
        CODEC.encode(event, {"type_map": {"purchase": "order-updated"}})
    out = encode(event, type_map={"purchase": "checkout-finished"})
    assert out["event_name"] == "checkout-finished"


def test_encode_type_map_to_default_event_uses_its_layout():
    event = other_vendor_event("click", items=[Item(id="P", price=Money(Decimal("2.00")))])
    out = encode(event, type_map={"click": "product-clicked"})
    assert out["event_properties"] == {"product_id": "P", "price": "2.00"}


def test_encode_type_map_applies_to_vendor_custom_types():
    event = other_vendor_event("VIEW", custom=True, context=Context(page_title="T"))
    out = encode(event, type_map={"VIEW": "page-view"})
    assert out["event_properties"] == {"title": "T"}


@pytest.mark.parametrize(
    ("identity", "expected"),
    [
        (Identity(user_id="u", anonymous_id="a", custom_id="c"), "u"),
        (Identity(anonymous_id="a", custom_id="c"), "a"),
        (Identity(user_id="", custom_id="c", persistent_id="p"), "c"),
        (Identity(persistent_id="p", fingerprint="f"), "p"),
        (Identity(fingerprint="f", session_id="s"), "f"),
    ],
)
def test_encode_visitor_id_order(identity, expected):
    out = encode(other_vendor_event("home", identity=identity))
    assert out["visitor_id"] == expected


def test_encode_visitor_id_from_option():
    identity = Identity(user_id="u", session_id="s")
    out = encode(other_vendor_event("home", identity=identity), visitor_id_from=["session_id"])
    assert out["visitor_id"] == "s"


@pytest.mark.parametrize(
    "identity",
    [Identity(), Identity(session_id="s", platform_ids={"discord": "d"}), Identity(user_id="")],
)
def test_encode_without_visitor_id_is_untranslatable(identity):
    with pytest.raises(Untranslatable) as info:
        CODEC.encode(other_vendor_event("home", identity=identity), {})
    assert info.value.field == "visitor_id"
    assert "visitor_id_from" in info.value.reason


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "1970-01-01 00:00:00"),
        (999, "1970-01-01 00:00:00"),
        (-1, "1969-12-31 23:59:59"),
        (MAY_1 + 999, "2024-05-01 10:15:30"),
        (951_868_799_000, "2000-02-29 23:59:59"),
        (-62_135_596_800_000, "0001-01-01 00:00:00"),
        (253_402_300_799_999, "9999-12-31 23:59:59"),
    ],
)
def test_format_timestamp(ms, text):
    assert format_timestamp(ms) == text


@pytest.mark.parametrize("ms", [253_402_300_800_000, -62_135_596_800_001, 10**20])
def test_encode_timestamp_out_of_range_is_untranslatable(ms):
    event = other_vendor_event("home")
    event.timestamp = ms
    with pytest.raises(Untranslatable) as info:
        CODEC.encode(event, {})
    assert info.value.field == "event_timestamp"


def test_encode_nan_amount_is_untranslatable():
    event = other_vendor_event("order_updated", total=Money(Decimal("NaN")))
    with pytest.raises(Untranslatable) as info:
        CODEC.encode(event, {})
    assert info.value.field == "event_properties.total"


def test_encode_infinite_price_is_untranslatable():
    event = other_vendor_event("purchase", items=[Item(id="A", price=Money(Decimal("Infinity")))])
    with pytest.raises(Untranslatable) as info:
        CODEC.encode(event, {})
    assert info.value.field == "event_properties.products[0].price"


def test_encode_decimal_property_printed_plain():
    event = other_vendor_event(
        "product_reviewed",
        items=[Item(id="P")],
        properties={"review_id": "R", "rating": Decimal("5E+0"), "review_body": Decimal("1E+1")},
    )
    props = encode(event)["event_properties"]
    assert (props["rating"], props["review_body"]) == ("5", "10")


@pytest.mark.parametrize("canonical", sorted(SEGMENTO_TYPES))
def test_encode_full_canonical_event_is_valid_segmento(canonical):
    event = other_vendor_event(
        canonical,
        items=[Item(id="A", price=Money(Decimal("1.00"), "USD"), quantity=1, position=2)],
        order_id="O",
        search_query="q",
        total=Money(Decimal(3), "USD"),
        context=Context(page_title="T", page_url="https://x.example/", channel="site"),
        properties={"cart_id": "K", "checkout_id": "C", "review_id": "R", "rating": 5},
    )
    out = encode(event)
    assert out["event_name"] == SEGMENTO_TYPES[canonical]
    assert CODEC.event_type(out) == SEGMENTO_TYPES[canonical]


def test_segmento_event_relayed_keeps_its_own_top_level_fields():
    # A Segmento event through a sink with a type_map still restores type/context.
    raw = _edit("product-viewed", type="page", context={"ip": "203.0.113.9"})
    out = CODEC.encode(decode(raw), {"type_map": {"product_viewed": "product-clicked"}})
    assert out["event_name"] == "product-clicked"
    assert (out["type"], out["context"]) == ("page", {"ip": "203.0.113.9"})
    assert out["event_properties"] == raw["event_properties"]
