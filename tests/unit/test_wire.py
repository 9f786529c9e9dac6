"""router.wire: type-exact numbers, money, ISO timestamps, and raw-form notes."""

from __future__ import annotations

import math
from decimal import Decimal

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from router import (
    ABSENT,
    Money,
    amount_of,
    decimal_of,
    exact_decimal,
    exact_int,
    field_of,
    format_iso,
    money_of,
    number_of,
    parse_iso,
    recall,
    remember,
    same_json,
)

JSON_INTS = st.integers(min_value=-(2**63), max_value=2**64 - 1)
FINITE_FLOATS = st.floats(allow_nan=False, allow_infinity=False)


@given(st.one_of(JSON_INTS, FINITE_FLOATS))
def test_a_json_number_comes_back_with_its_type(value):
    back = number_of(decimal_of(value))
    assert type(back) is type(value)
    assert orjson.dumps(back) == orjson.dumps(value)


@given(st.one_of(JSON_INTS, FINITE_FLOATS))
def test_the_decimal_survives_its_text_form(value):
    # Events reach the spool as JSON, where a Decimal is its str().
    assert orjson.dumps(number_of(Decimal(str(decimal_of(value))))) == orjson.dumps(value)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (12, "12"),
        (12.0, "12.0"),
        (12.34, "12.34"),
        (1.4727522855350092e16, "14727522855350092.0"),
        (1e20, "100000000000000000000.0"),
        (1.5e-07, "1.5E-7"),
    ],
)
def test_decimal_of_writes_floats_with_a_fraction(value, text):
    assert str(decimal_of(value)) == text


@pytest.mark.parametrize("value", [True, "12", None, Decimal("1")])
def test_decimal_of_takes_only_json_numbers(value):
    with pytest.raises(TypeError, match="expected a JSON number"):
        decimal_of(value)


@pytest.mark.parametrize(
    ("amount", "number"),
    [
        (Decimal("1E+2"), 100.0),
        (Decimal("18446744073709551616"), 1.8446744073709552e19),
        (Decimal("-9223372036854775809"), -9.223372036854776e18),
    ],
)
def test_number_of_gives_floats_past_the_json_integer_range(amount, number):
    back = number_of(amount)
    assert type(back) is float and back == number


def test_number_of_without_a_bound_keeps_big_integers():
    assert number_of(Decimal(10**30), max_int=None) == 10**30


@pytest.mark.parametrize("amount", [Decimal("NaN"), Decimal("Infinity"), Decimal("1E+400")])
def test_number_of_refuses_what_json_cannot_hold(amount):
    with pytest.raises(ValueError, match=r"finite|too large"):
        number_of(amount)


def test_money_round_trip_keeps_int_and_float():
    assert money_of(12, "EUR") == Money(Decimal("12"), "EUR")
    assert type(amount_of(money_of(12))) is int
    assert type(amount_of(money_of(12.0))) is float


@pytest.mark.parametrize(
    ("text", "exact"),
    [("12.50", Decimal("12.50")), ("1E+3", None), ("NaN", None), (" 1", None), (1, None)],
)
def test_exact_decimal_only_for_text_that_prints_back(text, exact):
    assert exact_decimal(text) == exact


@pytest.mark.parametrize(
    ("text", "exact"), [("2", 2), ("-2", -2), ("02", None), ("+2", None), (str(2**63), None)]
)
def test_exact_int_only_for_text_that_prints_back(text, exact):
    assert exact_int(text) == exact


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("1970-01-01T00:00:00Z", 0),
        ("2021-04-08T08:28:26.121Z", 1617870506121),
        ("2021-04-08 10:28:26.121+02:00", 1617870506121),
        ("2021-04-08T08:28:26.121999", 1617870506121),
        ("2021-02-30T00:00:00Z", None),
        ("yesterday", None),
        (1617870506121, None),
    ],
)
def test_parse_iso(text, ms):
    assert parse_iso(text) == ms


@given(st.integers(min_value=-62135596800000, max_value=253402300799999))
def test_format_iso_then_parse_iso_is_the_identity(ms):
    assert parse_iso(format_iso(ms)) == ms


def test_format_iso_layouts():
    ms = 1617870506121
    assert format_iso(ms) == "2021-04-08T08:28:26.121Z"
    assert format_iso(ms, sep=" ", millis=False, zone="") == "2021-04-08 08:28:26"
    with pytest.raises(ValueError, match="outside years 1-9999"):
        format_iso(10**18)


@given(st.integers(min_value=-62135596800000, max_value=253402300799999))
def test_format_iso_to_the_second_is_the_floor_of_the_time(ms):
    # Cached by second: every millisecond of a second writes what its first one does.
    floored = parse_iso(format_iso(ms, millis=False))
    assert floored <= ms < floored + 1000
    assert floored % 1000 == 0
    assert format_iso(ms, millis=False) == format_iso(floored, millis=False)


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        (1, 1.0, False),
        (1, True, False),
        ({"a": [1, 2.0]}, {"a": [1, 2.0]}, True),
        ({"a": [1, 2]}, {"a": [1, 2.0]}, False),
        ([1], [1, 2], False),
        (math.inf, math.inf, True),
    ],
)
def test_same_json_compares_with_types(a, b, equal):
    assert same_json(a, b) is equal


@pytest.mark.parametrize(
    ("raw", "rebuilt", "note"),
    [
        ({}, ABSENT, None),  # absent and left out: nothing to note
        ({"id": "x"}, "x", None),  # the canonical value gives it back
        ({}, "router-id", []),  # absent, but encoding would write one
        ({"id": ""}, "router-id", [""]),  # empty, not absent
        ({"id": None}, "router-id", [None]),  # a JSON null
        ({"n": 1.0}, 1, [1.0]),  # same value, another type
        ({"n": 1}, ABSENT, [1]),
    ],
)
def test_remember_and_recall_give_back_the_raw_form(raw, rebuilt, note):
    key = next(iter(raw), "id")
    notes: dict = {}
    remember(notes, key, field_of(raw, key), rebuilt)
    assert notes.get(key) == note
    # What is noted survives JSON (it sits in Event.extras, in the spool).
    notes = orjson.loads(orjson.dumps(notes))
    assert same_json(recall(notes, key, rebuilt), field_of(raw, key))


def test_recall_without_notes_gives_the_rebuilt_value():
    assert recall(None, "id", "x") == "x"
    assert recall({}, "id", ABSENT) is ABSENT
    assert repr(ABSENT) == "ABSENT"
