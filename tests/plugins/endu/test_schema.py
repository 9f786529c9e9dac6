"""The endu plugin: the validators (cerberus schemas) of each event type."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from router_plugins.endu.codec import EnduCodec
from router_plugins.endu.schema import DOCUMENTED_TYPES, VALIDATORS

from router import FieldError
from router.validation import Validators
from tests.plugins.endu.events import DROP, event

PAYLOADS = Path(__file__).parents[2] / "data" / "payloads" / "endu"
VALID_EXAMPLES = sorted(p.name for p in PAYLOADS.glob("*.json") if p.stem != "base_insufficient")

CODEC = EnduCodec()
VALIDATORS_ = Validators(VALIDATORS)


def load(name: str) -> dict:
    return json.loads((PAYLOADS / name).read_text())


def check(doc: dict) -> list[FieldError]:
    return VALIDATORS_.check("endu", CODEC.event_type(doc), doc)


def fields(errors: list[FieldError]) -> set[str]:
    return {e.field for e in errors}


@pytest.mark.parametrize("name", VALID_EXAMPLES)
def test_accept_documented_example(name):
    assert check(load(name)) == []


def test_base_request_alone_is_insufficient():
    # The doc: "This base event is insufficient to send as it is".
    errors = check(load("base_insufficient.json"))
    assert fields(errors) == {""}  # the event as a whole, not one field
    assert "at least one of p_user_id, c_user_id, blockchain, fingerprint" in errors[0].message


TYPES = [*DOCUMENTED_TYPES, "LEVEL_UP", "add_to_cart", "Wallet Connected", "ß"]


@pytest.mark.parametrize("event_type", TYPES)
def test_accept_every_event_type(event_type):
    assert check(event(event_type)) == []


@pytest.mark.parametrize(
    "identity",
    [
        {"p_user_id": "702877938567086080", "platform_type": "Discord"},
        {"p_user_id": "12345", "platform_type": "Telegram"},
        {"c_user_id": "59078598125872925"},
        {"blockchain": {"chain_type": "ethereum", "chain_account": "0xabc"}},
        {"fingerprint": "xuauwiaufjwaj"},
        {
            "p_user_id": "1",
            "platform_type": "Telegram",
            "c_user_id": "2",
            "blockchain": {"chain_type": "solana", "chain_account": "0x0"},
            "fingerprint": "f",
        },
    ],
)
def test_accept_each_identity_variation(identity):
    assert check(event(**{"c_user_id": DROP, **identity})) == []


REQUIRED = ["property_id", "organization_id", "timestamp", "event_type", "event_data"]


@pytest.mark.parametrize("event_type", TYPES)
@pytest.mark.parametrize("name", REQUIRED)
def test_require_base_field(event_type, name):
    errors = check(event(event_type, **{name: DROP}))
    assert name in fields(errors)


@pytest.mark.parametrize("event_type", TYPES)
def test_require_an_identity(event_type):
    errors = check(event(event_type, c_user_id=DROP))
    assert fields(errors) == {""}


WRONG_TYPES = [
    ("property_id", 1007491775344160808),
    ("property_id", None),
    ("organization_id", ["848WN4oEUgisKrV9dY9Ni6"]),
    ("timestamp", 1672536219.5),
    ("timestamp", None),
    ("timestamp", {"seconds": 1}),
    ("event_type", 5),
    ("event_data", []),
    ("event_data", "item_id=8258727671"),
    ("event_data", None),
    ("c_user_id", 59078598125872925),
    ("fingerprint", ["x"]),
    ("blockchain", "solana:0x0"),
]


@pytest.mark.parametrize("event_type", DOCUMENTED_TYPES)
@pytest.mark.parametrize(("name", "value"), WRONG_TYPES)
def test_reject_wrong_type(event_type, name, value):
    doc = event(event_type, **{name: value})
    errors = VALIDATORS_.check("endu", event_type, doc)
    assert name in fields(errors)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"p_user_id": 702877938567086080, "platform_type": "Discord"}, "p_user_id"),
        ({"p_user_id": "7", "platform_type": 1}, "platform_type"),
        ({"blockchain": {"chain_type": 1, "chain_account": "0x0"}}, "blockchain.chain_type"),
        (
            {"blockchain": {"chain_type": "solana", "chain_account": None}},
            "blockchain.chain_account",
        ),
    ],
)
def test_reject_wrong_identity_type(changes, field):
    assert field in fields(check(event(**changes)))


@pytest.mark.parametrize(
    "name", ["property_id", "organization_id", "event_type", "c_user_id", "fingerprint"]
)
def test_reject_empty_string(name):
    assert name in fields(check(event(**{"fingerprint": "f", name: ""})))


@pytest.mark.parametrize("platform", ["discord", "TELEGRAM", "Slack", ""])
def test_reject_unknown_platform_type(platform):
    errors = check(event(p_user_id="7", platform_type=platform))
    assert "platform_type" in fields(errors)


def test_documented_type_spec_pins_event_type():
    errors = VALIDATORS_.check("endu", "ITEM_PURCHASED", event("PAGE_VIEW"))
    assert fields(errors) == {"event_type"}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"p_user_id": "702877938567086080"}, "p_user_id"),
        ({"platform_type": "Discord"}, "platform_type"),
        ({"blockchain": {"chain_type": "solana"}}, "blockchain.chain_account"),
        ({"blockchain": {"chain_account": "0x0"}}, "blockchain.chain_type"),
    ],
)
def test_identity_parts_come_together(changes, field):
    assert field in fields(check(event(**{"c_user_id": DROP, **changes})))


@pytest.mark.parametrize("timestamp", ["0", "1672536219", "9999999999", 0, 1672536219, 9999999999])
def test_accept_unix_seconds(timestamp):
    assert check(event(timestamp=timestamp)) == []


@pytest.mark.parametrize(
    "timestamp",
    ["1672536219000", 1672536219000, "-1", -1, "1672536219.5", " 1672536219", "", "2023-01-01"],
)
def test_reject_bad_timestamp(timestamp):
    # Milliseconds (13 digits) are refused rather than read as the year 54,000.
    assert fields(check(event(timestamp=timestamp))) == {"timestamp"}


def test_allow_undocumented_fields():
    doc = event(session="abc", blockchain={"chain_type": "solana", "chain_account": "0x0", "x": 1})
    assert check(doc) == []


def test_event_without_type_uses_fallback():
    doc = event(event_type=DROP)
    assert CODEC.event_type(doc) is None
    assert fields(check(doc)) == {"event_type"}
