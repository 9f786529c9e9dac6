"""The moloco plugin: the codec."""

from __future__ import annotations

import copy
from decimal import Decimal
from pathlib import Path

import jsonschema
import orjson
import pytest
import yaml
from router_plugins.moloco.codec import CANONICAL_TO_TYPE, TYPE_TO_CANONICAL, MolocoCodec
from router_plugins.moloco.schema import CURRENCIES, EVENT_TYPES, VALIDATORS

from router import (
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

DATA = Path(__file__).parents[2] / "data"
EXAMPLES = sorted((DATA / "payloads" / "moloco").glob("*.json"))

CODEC = MolocoCodec()
VALIDATORS_ = Validators(VALIDATORS)

_SPEC = yaml.safe_load((DATA / "moloco-event-openapi.yml").read_text())
#: v1Event from the official spec, its $refs resolved against the spec's
#: components (OpenAPI 3.0 schemas are draft-4 style).
SPEC_VALIDATOR = jsonschema.Draft4Validator(
    {"$ref": "#/components/schemas/v1Event", "components": _SPEC["components"]}
)


def load(path: Path) -> dict:
    return orjson.loads(path.read_bytes())


def decode(raw: dict, *, id: str = "router-id", received_at: int = 1_700_000_000_000, meta=None):
    return CODEC.decode(raw, id=id, received_at=received_at, meta=meta or {"platform": "ACME"})


def as_json(doc) -> bytes:
    """What goes on the wire; tells 12 from 12.0 and 1 from True, unlike ``==``."""
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


def assert_valid_for_moloco(doc: dict) -> None:
    """Valid per the official spec and per the plugin's validators."""
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in SPEC_VALIDATOR.iter_errors(doc)]
    assert errors == []
    assert doc["timestamp"].isdigit() and doc["timestamp"].isascii()  # format: int64
    assert VALIDATORS_.check("moloco", CODEC.event_type(doc), doc) == []
    orjson.dumps(doc)  # serializable as is


def assert_round_trip(raw: dict) -> Event:
    assert VALIDATORS_.check("moloco", CODEC.event_type(raw), raw) == [], "not a valid case"
    event = decode(raw)
    assert as_json(CODEC.encode(event, {})) == as_json(raw)
    # Also after the canonical event went through its JSON form (spool, replay).
    again = Event.from_dict(orjson.loads(orjson.dumps(event.to_dict())))
    assert as_json(CODEC.encode(again, {})) == as_json(raw)
    return event


# ---------------------------------------------------------------- the spec


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_documented_examples_conform_to_the_official_spec(path):
    assert_valid_for_moloco(load(path))


def test_the_schemas_enums_match_the_official_spec():
    schemas = _SPEC["components"]["schemas"]
    assert schemas["EventEventType"]["enum"] == EVENT_TYPES
    assert schemas["commonCurrency"]["enum"] == CURRENCIES
    by_type = {s.event_type: s.schema for s in VALIDATORS}
    base = by_type["*"]
    assert base["channel_type"]["allowed"] == schemas["commonChannelType"]["enum"]
    assert base["personalization_mode"]["allowed"] == (schemas["commonPersonalizationMode"]["enum"])
    assert sorted(k for k, v in base.items() if v.get("required")) == sorted(
        schemas["v1Event"]["required"]
    )
    for name, prop in schemas["v1Event"]["properties"].items():
        assert name in base
        if "maxLength" in prop:
            assert base[name]["maxlength"] == prop["maxLength"]
    for name, prop in schemas["EventDevice"]["properties"].items():
        assert name in base["device"]["schema"]
        if "maxLength" in prop:
            assert base["device"]["schema"][name]["maxlength"] == prop["maxLength"]
    assert set(schemas["EventItem"]["properties"]) == set(base["items"]["schema"]["schema"])


#: Invalid per the spec: our validators and the official spec must both say so.
SPEC_INVALID = [
    {"event_type": "CLICK"},
    {"channel_type": "WEB"},
    {"timestamp": 1617870506121},
    {"personalization_mode": "FULL"},
    {"user_id": "x" * 129},
    {"custom_id": "x" * 129},
    {"session_id": "x" * 129},
    {"id": "x" * 129},
    {"device": {"persistent_id": "x" * 129, "os": "ios"}},
    {"device": {"unique_device_id": "x" * 129, "os": "ios"}},
    {"revenue": {"currency": "NOK", "amount": 1}},
    {"revenue": {"currency": "USD"}},
    {"revenue": {"amount": 1}},
    {"revenue": {"currency": "USD", "amount": "1"}},
    {"revenue": {"currency": "USD", "amount": True}},
    {"items": [{"price": {"currency": "USD", "amount": 1}}]},
    {"items": [{"id": "a", "quantity": 1.5}]},
    {"items": [{"id": "a", "quantity": "1"}]},
    {"items": [{"id": "a", "price_seller": {"currency": "XXX", "amount": 1}}]},
    {"shipping_charge": {"currency": "USD", "amount": None}},
    {"search_query": 5},
    {"device": "ios"},
]


@pytest.mark.parametrize("change", SPEC_INVALID, ids=lambda c: orjson.dumps(c).decode()[:60])
def test_validators_agree_with_the_official_spec_on_invalid_events(change):
    doc = {**load(DATA / "payloads" / "moloco" / "home.json"), **change}
    assert list(SPEC_VALIDATOR.iter_errors(doc)) != []
    assert VALIDATORS_.check("moloco", CODEC.event_type(doc), doc) != []


# ----------------------------------------------------------- round trip


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_round_trip_every_documented_example(path):
    assert_round_trip(load(path))


BASE = {"event_type": "HOME", "timestamp": "1617870506121", "channel_type": "APP", "user_id": "u"}


def item(**fields) -> dict:
    return {"event_type": "PURCHASE", **{k: v for k, v in BASE.items() if k != "event_type"},
            "items": [{"id": "sku", **fields}]}  # fmt: skip


def money(amount, currency="USD", **extra) -> dict:
    return {"currency": currency, "amount": amount, **extra}


EDGE_CASES = {
    "minimal": BASE,
    "no id": BASE,
    "empty id": {**BASE, "id": ""},
    "id 128 chars": {**BASE, "id": "i" * 128},
    "timestamp leading zeros": {**BASE, "timestamp": "0001617870506121"},
    "timestamp zero": {**BASE, "timestamp": "0"},
    "timestamp 00": {**BASE, "timestamp": "00"},
    "timestamp 19 digits": {**BASE, "timestamp": "9223372036854775807"},
    "unknown channel": {**BASE, "channel_type": "UNKNOWN_CHANNEL_TYPE"},
    "desktop site": {**BASE, "channel_type": "DESKTOP_SITE"},
    "empty device": {**BASE, "device": {}},
    "device only persistent_id": {**BASE, "device": {"persistent_id": "p"}},
    "only persistent_id": {
        **{k: v for k, v in BASE.items() if k != "user_id"},
        "device": {"persistent_id": "p"},
    },
    "device unique_device_id and unknown": {
        **BASE,
        "device": {"unique_device_id": "udid", "x_battery": 0.5, "os": "android"},
    },
    "device empty strings": {**BASE, "device": {"os": "", "ua": "", "language": ""}},
    "empty strings": {
        **BASE,
        "domain": "",
        "search_query": "",
        "session_id": "",
        "custom_id": "",
        "page_id": "",
        "referrer_page_id": "",
        "decision_track_id": "",
    },
    "empty user_id with custom_id": {**BASE, "user_id": "", "custom_id": "c"},
    "every identity": {
        **BASE,
        "session_id": "s",
        "custom_id": "c",
        "device": {"persistent_id": "p", "advertising_id": "a"},
    },
    "session_id without custom_id": {**BASE, "session_id": "s"},
    "empty items": {**BASE, "items": []},
    "items on HOME": {**BASE, "items": [{"id": "a"}, {"id": "b", "quantity": 0}]},
    "item unknown fields": item(color="red", tags=["a"], meta={"k": None}),
    "item every field": item(
        price=money(1.5),
        quantity=3,
        item_group_id="g",
        seller_id="s",
        price_seller=money(1, "KRW"),
    ),
    "item price extra keys": item(price=money(2, "EUR", micros=2000000)),
    "item price unknown currency": item(price=money(2, "UNKNOWN_CURRENCY")),
    "item negative quantity": item(quantity=-(2**31)),
    "item max quantity": item(quantity=2**31 - 1),
    "int amount": {**BASE, "revenue": money(12)},
    "float integral amount": {**BASE, "revenue": money(12.0)},
    "float amount": {**BASE, "revenue": money(12.34)},
    "zero amounts": {**BASE, "revenue": money(0), "shipping_charge": money(0.0)},
    "negative float amount": {**BASE, "revenue": money(-0.5)},
    "tiny float amount": {**BASE, "revenue": money(1.5e-07)},
    "huge float amount": {**BASE, "revenue": money(1e20)},
    # A float whose shortest text has no fraction digits once the exponent is applied.
    "integral float amount of 17 digits": {**BASE, "revenue": money(1.4727522855350092e16)},
    "integral float item price of 17 digits": item(price=money(1.2345678901234567e16)),
    "max float amount": {**BASE, "revenue": money(1.7976931348623157e308)},
    "u64 int amount": {**BASE, "revenue": money(18446744073709551615)},
    "unknown currency": {**BASE, "revenue": money(1, "UNKNOWN_CURRENCY")},
    "revenue extra keys": {**BASE, "revenue": money(5, "JPY", note="tax incl.")},
    "shipping extra keys": {**BASE, "shipping_charge": money(5, "GBP", x=[1])},
    "personalization modes": {**BASE, "personalization_mode": "UNKNOWN_PERSONALIZATION_MODE"},
    "unknown fields": {**BASE, "x_null": None, "x_list": [1, "a", {}], "x_obj": {"a": {"b": 1}}},
    "unknown fields named like extras keys": {
        **BASE,
        "fields": 1,
        "wire": {"id": None},
        "platform": "P",
        "device_fields": [],
    },
    "unicode": {**BASE, "user_id": "ü" * 128, "search_query": "日本語 🙂", "page_id": "/ページ"},
    "unknown event type": {**BASE, "event_type": "UNKNOWN_EVENT_TYPE"},
    "search": {**BASE, "event_type": "SEARCH", "search_query": "q"},
    "page view": {**BASE, "event_type": "PAGE_VIEW", "page_id": "p"},
}


@pytest.mark.parametrize("raw", EDGE_CASES.values(), ids=EDGE_CASES.keys())
def test_round_trip_edge_cases(raw):
    assert_round_trip(raw)


@pytest.mark.parametrize("raw", EDGE_CASES.values(), ids=EDGE_CASES.keys())
def test_round_trip_output_conforms_to_the_spec(raw):
    assert_valid_for_moloco(CODEC.encode(decode(raw), {}))


def test_round_trip_with_an_unrelated_sink_option():
    raw = load(DATA / "payloads" / "moloco" / "purchase.json")
    options = {"default_item_id": "x", "unsupported_currency": "unknown", "type_map": {"a": "HOME"}}
    assert as_json(CODEC.encode(decode(raw), options)) == as_json(raw)


# ----------------------------------------------------------------- decode


def test_event_type_is_read_from_the_raw_event_or_none():
    assert CODEC.event_type({"event_type": "SEARCH"}) == "SEARCH"
    assert CODEC.event_type({"event_type": "NOPE"}) == "NOPE"
    assert CODEC.event_type({}) is None
    assert CODEC.event_type({"event_type": 3}) is None
    assert CODEC.event_type([{"event_type": "SEARCH"}]) is None


def test_type_tables_are_inverse_and_canonical():
    from router import EVENT_TYPES as CANONICAL

    assert set(TYPE_TO_CANONICAL) == set(EVENT_TYPES)
    assert set(TYPE_TO_CANONICAL.values()) <= set(CANONICAL)
    assert {v: k for k, v in CANONICAL_TO_TYPE.items()} == TYPE_TO_CANONICAL


@pytest.mark.parametrize(
    ("moloco", "canonical"),
    [
        ("SEARCH", "search"),
        ("ITEM_PAGE_VIEW", "product_viewed"),
        ("ADD_TO_CART", "add_to_cart"),
        ("PURCHASE", "purchase"),
        ("ADD_TO_WISHLIST", "add_to_wishlist"),
        ("HOME", "home"),
        ("LAND", "land"),
        ("PAGE_VIEW", "page_view"),
        ("UNKNOWN_EVENT_TYPE", "unknown"),
    ],
)
def test_decode_type(moloco, canonical):
    raw = {
        **BASE,
        "event_type": moloco,
        "items": [{"id": "a"}],
        "search_query": "q",
        "page_id": "p",
    }
    event = decode(raw)
    assert (event.type, event.custom) == (canonical, False)


def test_decode_home_example():
    raw = load(DATA / "payloads" / "moloco" / "home.json")
    event = decode(raw, id="ignored", received_at=42, meta={"platform": "ACME"})
    assert event.id == raw["id"]
    assert (event.type, event.vendor, event.custom) == ("home", "moloco", False)
    assert (event.timestamp, event.received_at) == (1617870506121, 42)
    assert event.identity == Identity(
        user_id="a1b2c3d4e5f60718293a4b5c6d7e8f90",
        persistent_id="4c9f1e0b7d2a8e3f6a5b4c3d2e1f0a9b",
    )
    assert event.context == Context(
        channel="app",
        device=Device(
            os="ios",
            os_version="14.4.1",
            model="iPhone 11 Pro",
            user_agent=raw["device"]["ua"],
            language="en",
            advertising_id="7acefbed-d1f6-4e4e-aa26-74e93dd017e4",
        ),
    )
    assert event.extras == {
        "moloco": {
            "fields": {"personalization_mode": "STANDARD"},
            "device": {},
            "platform": "ACME",
        }
    }


def test_decode_purchase_example():
    raw = load(DATA / "payloads" / "moloco" / "purchase.json")
    event = decode(raw)
    assert event.type == "purchase"
    assert event.context.channel == "site"
    assert event.context.domain == "shop.example.com"
    assert event.revenue == Money(Decimal("29.68"), "USD")
    assert str(event.revenue.amount) == "29.68"
    assert event.shipping == Money(Decimal("3.5"), "USD")
    first, second = event.items
    assert first == Item(
        id="sku-1001",
        group_id="group-1001",
        seller_id="seller-7",
        quantity=2,
        price=Money(Decimal("12.34"), "USD"),
        extra={"price_seller": {"currency": "USD", "amount": 10}},
    )
    assert second.price == Money(Decimal("5.0"), "USD")
    assert second.extra == {}
    assert event.extras["moloco"]["fields"] == {
        "decision_track_id": "track-3f2e1d",
        "personalization_mode": "METRIC_ONLY",
    }


def test_decode_search_page_and_land():
    search = decode(load(DATA / "payloads" / "moloco" / "search.json"))
    assert (search.type, search.search_query) == ("search", "wireless headphones")
    assert search.context.page_id == "search"
    page = decode(load(DATA / "payloads" / "moloco" / "page_view.json"))
    assert (page.context.page_id, page.context.referrer) == (
        "/classes/foo/lectures/bar.",
        "azd911d",
    )
    assert page.context.channel == "desktop_site"
    land = decode(load(DATA / "payloads" / "moloco" / "land.json"))
    assert land.identity == Identity(custom_id="9b8a7c6d5e4f3a2b1c0d9e8f7a6b5c4d")
    assert land.context.channel == "mobile_site"


def test_decode_unknown_type_and_channel():
    raw = load(DATA / "payloads" / "moloco" / "unknown_event_type.json")
    event = decode(raw, id="router-id")
    assert (event.type, event.custom, event.id) == ("unknown", False, "router-id")
    assert event.context.channel is None
    assert event.extras["moloco"]["wire"] == {"id": None, "channel_type": "UNKNOWN_CHANNEL_TYPE"}


def test_decode_keeps_non_canonical_forms_in_extras():
    raw = {
        **BASE,
        "id": "",
        "timestamp": "007",
        "device": {"unique_device_id": "u", "x": 1},
        "items": [{"id": "a", "price": money(1, "UNKNOWN_CURRENCY", x=1), "y": 2}],
        "revenue": money(2, "EUR", z=3),
    }
    event = decode(raw, id="router-id")
    assert (event.id, event.timestamp) == ("router-id", 7)
    assert event.context.device is None
    assert event.items[0].price == Money(Decimal("1"), None)
    assert event.items[0].extra == {"price": raw["items"][0]["price"], "y": 2}
    assert event.revenue == Money(Decimal("2"), "EUR")
    assert event.extras["moloco"] == {
        "device": {"unique_device_id": "u", "x": 1},
        "platform": "ACME",
        "wire": {"id": "", "timestamp": "007", "revenue": raw["revenue"]},
    }


def test_decode_without_meta_has_no_platform():
    event = CODEC.decode(BASE, id="r", received_at=0, meta={})
    assert "platform" not in event.extras["moloco"]


# ------------------------------------------------- encode from any source


def foreign(**fields) -> Event:
    """A canonical event as another vendor's codec would make it."""
    defaults = {
        "id": "018f3c2e-7a4b-7c1d-9e2f-3a4b5c6d7e8f",
        "type": "home",
        "timestamp": 1_700_000_000_123,
        "received_at": 1_700_000_000_500,
        "vendor": "segmento",
        "identity": Identity(user_id="visitor-1"),
        "context": Context(channel="site"),
    }
    return Event(**{**defaults, **fields})


def encode(event: Event, **options) -> dict:
    before = copy.deepcopy(event)
    out = CODEC.encode(event, options)
    assert event == before, "encode mutated the event"
    assert_valid_for_moloco(out)
    return out


def test_encode_a_minimal_foreign_event():
    assert encode(foreign()) == {
        "id": "018f3c2e-7a4b-7c1d-9e2f-3a4b5c6d7e8f",
        "event_type": "HOME",
        "timestamp": "1700000000123",
        "channel_type": "SITE",
        "user_id": "visitor-1",
    }


@pytest.mark.parametrize(("canonical", "moloco"), sorted(CANONICAL_TO_TYPE.items()))
def test_encode_every_mapped_type(canonical, moloco):
    event = foreign(
        type=canonical,
        items=[Item(id="p-1")],
        search_query="q",
        context=Context(channel="app", page_id="p"),
    )
    assert encode(event)["event_type"] == moloco


@pytest.mark.parametrize(
    "canonical",
    ["heartbeat", "click", "exit", "product_clicked", "product_list_viewed", "remove_from_cart",
     "payment_info", "transaction", "order_refunded", "registration", "validation"],
)  # fmt: skip
def test_encode_unmapped_type_is_untranslatable(canonical):
    with pytest.raises(Untranslatable) as info:
        CODEC.encode(foreign(type=canonical), {})
    assert info.value.vendor == "moloco"
    assert info.value.field == "event_type"
    assert f"canonical event type {canonical!r}" in info.value.reason
    assert "type_map" in info.value.reason


def test_encode_type_map_overrides_defaults_and_maps_custom_types():
    assert encode(foreign(type="home"), type_map={"home": "LAND"})["event_type"] == "LAND"
    assert encode(foreign(type="click"), type_map={"click": "HOME"})["event_type"] == "HOME"
    custom = foreign(type="ITEM_PURCHASED", custom=True, vendor="endu")
    with pytest.raises(Untranslatable, match="custom event type 'ITEM_PURCHASED' of endu"):
        CODEC.encode(custom, {})
    assert encode(custom, type_map={"ITEM_PURCHASED": "HOME"})["event_type"] == "HOME"


def test_encode_custom_type_named_like_a_canonical_one_needs_type_map():
    with pytest.raises(Untranslatable):
        CODEC.encode(foreign(type="search", custom=True, search_query="q"), {})


@pytest.mark.parametrize(
    ("channel", "expected"),
    [
        ("app", "APP"),
        ("site", "SITE"),
        ("desktop_site", "DESKTOP_SITE"),
        ("mobile_site", "MOBILE_SITE"),
    ],
)
def test_encode_channel(channel, expected):
    assert encode(foreign(context=Context(channel=channel)))["channel_type"] == expected
    # The event's own channel wins over the sink's default.
    event = foreign(context=Context(channel=channel))
    assert encode(event, channel_type="APP")["channel_type"] == expected


@pytest.mark.parametrize("channel", [None, "web", ""])
def test_encode_channel_from_the_sink_option(channel):
    event = foreign(context=Context(channel=channel))
    with pytest.raises(Untranslatable) as info:
        CODEC.encode(event, {})
    assert info.value.field == "channel_type"
    assert "sink option channel_type" in info.value.reason
    assert encode(event, channel_type="MOBILE_SITE")["channel_type"] == "MOBILE_SITE"


def test_encode_sink_channel_fills_moloco_unknown_channel():
    event = decode(load(DATA / "payloads" / "moloco" / "unknown_event_type.json"))
    assert encode(event)["channel_type"] == "UNKNOWN_CHANNEL_TYPE"
    assert encode(event, channel_type="SITE")["channel_type"] == "SITE"


def test_encode_timestamp_and_id():
    out = encode(foreign(timestamp=5))
    assert out["timestamp"] == "5"
    assert encode(foreign(id="x" * 128))["id"] == "x" * 128
    assert "id" not in encode(foreign(id="x" * 129))


def test_encode_identity_mapping():
    event = foreign(
        identity=Identity(
            user_id="u",
            persistent_id="p",
            custom_id="c",
            session_id="s",
            anonymous_id="anon",
            fingerprint="fp",
            platform_ids={"discord": "7028"},
            wallet=Wallet(chain="solana", account="0x0"),
        )
    )
    out = encode(event)
    assert (out["user_id"], out["device"], out["custom_id"], out["session_id"]) == (
        "u",
        {"persistent_id": "p"},
        "c",
        "s",
    )
    assert "anon" not in orjson.dumps(out).decode()


@pytest.mark.parametrize(
    ("identity", "custom_id"),
    [
        (Identity(anonymous_id="anon", fingerprint="fp", session_id="s"), "anon"),
        (Identity(fingerprint="fp", session_id="s"), "fp"),
        (Identity(session_id="ping-1"), "ping-1"),
    ],
)
def test_encode_custom_id_fallback(identity, custom_id):
    out = encode(foreign(identity=identity))
    assert out["custom_id"] == custom_id
    assert "user_id" not in out


def test_encode_custom_id_fallback_only_without_moloco_ids():
    out = encode(foreign(identity=Identity(user_id="u", anonymous_id="anon")))
    assert "custom_id" not in out


@pytest.mark.parametrize(
    "identity",
    [
        Identity(),
        Identity(platform_ids={"discord": "7028"}),
        Identity(wallet=Wallet(chain="solana", account="0x0")),
        Identity(user_id="", custom_id="", anonymous_id=""),
    ],
)
def test_encode_without_a_usable_id_is_untranslatable(identity):
    with pytest.raises(Untranslatable) as info:
        CODEC.encode(foreign(identity=identity), {})
    assert info.value.field == "custom_id"
    assert "no user id" in info.value.reason


def test_encode_device_and_context():
    device = Device(os="android", os_version="13", model="Pixel 7", user_agent="UA", language="de",
                    advertising_id="ad")  # fmt: skip
    context = Context(channel="app", domain="d.example", referrer="https://ref.example/",
                      page_id="pg", page_url="https://x/", page_title="T", location="PAYWALL",
                      device=device)  # fmt: skip
    out = encode(foreign(context=context, identity=Identity(persistent_id="p")))
    assert out["device"] == {
        "os": "android",
        "os_version": "13",
        "model": "Pixel 7",
        "ua": "UA",
        "language": "de",
        "advertising_id": "ad",
        "persistent_id": "p",
    }
    assert (out["domain"], out["referrer_page_id"], out["page_id"]) == (
        "d.example",
        "https://ref.example/",
        "pg",
    )


def test_encode_empty_foreign_device_is_left_out():
    out = encode(foreign(context=Context(channel="site", device=Device())))
    assert "device" not in out


@pytest.mark.parametrize(
    ("context", "page_id"),
    [
        (Context(page_id="p", page_url="https://u/", page_title="T"), "p"),
        (Context(page_url="https://shop.example/c/12?x=1", page_title="T"), "https://shop.example/c/12?x=1"),
        (Context(page_title="Electronics", location="PAGE"), "Electronics"),
        (Context(location="PAYWALL"), "PAYWALL"),
    ],
)  # fmt: skip
def test_encode_page_view_page_id(context, page_id):
    context.channel = "site"
    out = encode(foreign(type="page_view", context=context))
    assert (out["event_type"], out["page_id"]) == ("PAGE_VIEW", page_id)


def test_encode_page_view_without_any_page_is_untranslatable():
    with pytest.raises(Untranslatable) as info:
        CODEC.encode(foreign(type="page_view", context=Context(channel="site", page_id="")), {})
    assert info.value.field == "page_id"


def test_encode_page_id_is_derived_only_for_page_view():
    out = encode(foreign(type="home", context=Context(channel="site", page_url="https://u/")))
    assert "page_id" not in out


def test_encode_search():
    assert encode(foreign(type="search", search_query="red shirt"))["search_query"] == "red shirt"
    for query in (None, ""):
        with pytest.raises(Untranslatable) as info:
            CODEC.encode(foreign(type="search", search_query=query), {})
        assert info.value.field == "search_query"


def test_encode_segmento_like_add_to_cart():
    event = foreign(
        type="add_to_cart",
        properties={"cart_id": "cart-9"},
        items=[
            Item(id="p-1", sku="SKU1", name="Red shirt", brand="B", category="Shirts",
                 variant="red", price=Money(Decimal("12.50")), quantity=2, coupon="C",
                 position=3, url="https://u/", image_url="https://i/", extra={"size": "M"}),
        ],
    )  # fmt: skip
    out = encode(event)
    assert out["items"] == [
        {"id": "p-1", "price": {"currency": "UNKNOWN_CURRENCY", "amount": 12.5}, "quantity": 2}
    ]
    assert "cart-9" not in orjson.dumps(out).decode()
    out = encode(event, currency="INR")
    assert out["items"][0]["price"] == {"currency": "INR", "amount": 12.5}


def test_encode_segmento_like_purchase_uses_total_without_revenue():
    event = foreign(
        type="purchase",
        order_id="o-1",
        items=[Item(id="p-1", price=Money(Decimal("10"), "EUR"), quantity=1)],
        total=Money(Decimal("13.90"), "eur"),
        shipping=Money(Decimal("3.90"), "EUR"),
        tax=Money(Decimal("2.00"), "EUR"),
    )
    out = encode(event)
    assert out["revenue"] == {"currency": "EUR", "amount": 13.9}
    assert out["shipping_charge"] == {"currency": "EUR", "amount": 3.9}
    assert out["items"][0]["price"] == {"currency": "EUR", "amount": 10}
    event.revenue = Money(Decimal("10.00"), "EUR")
    assert encode(event)["revenue"] == {"currency": "EUR", "amount": 10.0}


def test_encode_unsupported_currency():
    event = foreign(revenue=Money(Decimal("99"), "NOK"))
    with pytest.raises(Untranslatable) as info:
        CODEC.encode(event, {})
    assert (info.value.field, "'NOK'" in info.value.reason) == ("revenue.currency", True)
    assert "unsupported_currency: unknown" in info.value.reason
    out = encode(event, unsupported_currency="unknown")
    assert out["revenue"] == {"currency": "UNKNOWN_CURRENCY", "amount": 99}
    item_event = foreign(items=[Item(id="a", price=Money(Decimal("1"), "NOK"))])
    with pytest.raises(Untranslatable) as info:
        CODEC.encode(item_event, {})
    assert info.value.field == "items[0].price.currency"


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        (Decimal("12.50"), b"12.5"),
        (Decimal("100"), b"100"),
        (Decimal("100.00"), b"100.0"),
        (Decimal("-3"), b"-3"),
        (Decimal("0"), b"0"),
        (Decimal("1E+2"), b"100.0"),
        (Decimal("0.1"), b"0.1"),
        (Decimal("123456789012345678901234567890"), b"1.2345678901234568e+29"),
        (12, b"12"),
        (12.5, b"12.5"),
    ],
)
def test_encode_amounts_as_json_numbers(amount, expected):
    out = encode(foreign(revenue=Money(amount, "USD")))
    assert orjson.dumps(out["revenue"]["amount"]) == expected


@pytest.mark.parametrize("amount", [Decimal("NaN"), Decimal("Infinity"), Decimal("-1E+400")])
def test_encode_non_finite_amount_is_untranslatable(amount):
    with pytest.raises(Untranslatable) as info:
        CODEC.encode(foreign(shipping=Money(amount, "USD")), {})
    assert info.value.field == "shipping_charge.amount"


@pytest.mark.parametrize(
    "canonical", ["add_to_cart", "add_to_wishlist", "product_viewed", "purchase"]
)
def test_encode_item_event_without_items(canonical):
    """A Conscent PURCHASE has a purchaseId but no items: Moloco cannot take it as is."""
    event = foreign(
        type=canonical,
        vendor="conscent",
        order_id="purchase-1",
        identity=Identity(anonymous_id="4f9a", user_id="u-7", session_id="ping-1"),
        context=Context(location="PAYWALL"),
    )
    with pytest.raises(Untranslatable) as info:
        CODEC.encode(event, {"channel_type": "SITE"})
    assert info.value.field == "items"
    assert "default_item_id" in info.value.reason
    out = encode(event, channel_type="SITE", default_item_id="subscription")
    assert out["items"] == [{"id": "subscription"}]
    assert (out["user_id"], out["session_id"], out["channel_type"]) == ("u-7", "ping-1", "SITE")
    assert "purchase-1" not in orjson.dumps(out).decode()


def test_encode_item_without_id_is_untranslatable():
    event = foreign(items=[Item(id="a"), Item(sku="only-sku")])
    with pytest.raises(Untranslatable) as info:
        CODEC.encode(event, {})
    assert info.value.field == "items[1].id"


def test_encode_ignores_other_vendors_extras():
    event = foreign(
        extras={
            "segmento": {"fields": {"leak": 1}, "wire": {"id": None}, "device": {"leak": 2}},
            "conscent": {"clientId": "c"},
        },
        items=[Item(id="a", extra={"price_seller": {"currency": "USD", "amount": 1}})],
    )
    out = encode(event)
    assert out["id"] == event.id
    assert "device" not in out
    assert out["items"] == [{"id": "a"}]
    assert b"leak" not in orjson.dumps(out)


def test_encode_endu_like_event():
    event = foreign(
        type="ITEM_PURCHASED",
        custom=True,
        vendor="endu",
        timestamp=1_672_536_219_000,
        identity=Identity(user_id="59078598125872925", fingerprint="xuauwiaufjwaj"),
        context=Context(),
        properties={"item_id": "8258727671"},
        extras={"endu": {"property_id": "D#1", "organization_id": "848WN"}},
    )
    options = {"type_map": {"ITEM_PURCHASED": "PURCHASE"}, "channel_type": "APP"}
    with pytest.raises(Untranslatable, match="items"):
        CODEC.encode(event, options)
    out = encode(event, **options, default_item_id="endu-item")
    assert out == {
        "id": event.id,
        "event_type": "PURCHASE",
        "timestamp": "1672536219000",
        "channel_type": "APP",
        "user_id": "59078598125872925",
        "items": [{"id": "endu-item"}],
    }


def test_encode_does_not_mutate_a_moloco_event():
    event = decode(load(DATA / "payloads" / "moloco" / "purchase.json"))
    before = copy.deepcopy(event)
    first = CODEC.encode(event, {})
    CODEC.encode(
        event, {"type_map": {"purchase": "HOME"}, "currency": "EUR", "channel_type": "APP"}
    )
    assert event == before
    # The output's containers are its own (verbatim unknown values may be shared).
    first["event_type"] = "HOME"
    first["items"].clear()
    first["revenue"]["amount"] = 0
    assert event == before
    assert as_json(CODEC.encode(event, {})) == as_json(
        load(DATA / "payloads" / "moloco" / "purchase.json")
    )


def test_type_map_catch_all_applies_only_without_entry_or_default():
    type_map = {"*": "UNKNOWN_EVENT_TYPE", "click": "PAGE_VIEW"}
    custom = foreign(type="LEVEL_UP", custom=True, vendor="endu")
    assert encode(custom, type_map=type_map)["event_type"] == "UNKNOWN_EVENT_TYPE"
    assert encode(foreign(type="home"), type_map=type_map)["event_type"] == "HOME"
    clicked = foreign(type="click", context=Context(channel="site", page_id="p1"))
    assert encode(clicked, type_map=type_map)["event_type"] == "PAGE_VIEW"
    with pytest.raises(Untranslatable):
        CODEC.encode(custom, {})
