"""Validators: which spec checks an event, require_any, and cerberus's errors as FieldErrors."""

from __future__ import annotations

import pytest

from router.errors import FieldError
from router.validation import Validators, ValidatorSpec, flatten_errors, missing_any

CLICK = ValidatorSpec(
    "v", "click", {"type": {"type": "string"}, "x": {"type": "integer", "required": True}}
)
ANY = ValidatorSpec("v", "*", {"type": {"type": "string", "required": True}})
IDENTIFIED = ValidatorSpec("w", "*", {}, require_any=(("user_id", "device.id"), ("session",)))


@pytest.fixture(scope="module")
def validators() -> Validators:
    return Validators([CLICK, ANY, IDENTIFIED])


def test_an_event_is_checked_by_its_types_spec(validators):
    assert validators.check("v", "click", {"type": "click", "x": 1}) == []
    assert validators.check("v", "click", {"type": "click"}) == [
        FieldError(("x",), "required field")
    ]


def test_an_unknown_or_missing_type_falls_back_to_the_vendors_star_spec(validators):
    assert validators.check("v", "other", {"type": "other"}) == []
    assert validators.check("v", None, {}) == [FieldError(("type",), "required field")]


def test_a_vendor_without_specs_takes_any_object_but_only_an_object(validators):
    assert validators.check("nobody", "x", {"anything": [1]}) == []
    assert validators.check("nobody", "x", [1]) == [FieldError((), "must be a JSON object")]
    assert validators.check("v", "click", "text") == [FieldError((), "must be a JSON object")]


def test_require_any_wants_one_non_empty_path_per_group(validators):
    assert validators.check("w", None, {"user_id": "u", "session": "s"}) == []
    assert validators.check("w", None, {"device": {"id": "d"}, "session": "s"}) == []
    errors = validators.check("w", None, {"user_id": "", "device": {"id": {}}, "session": "s"})
    assert [str(e) for e in errors] == ["at least one of user_id, device.id is required"]
    assert [str(e) for e in missing_any({"device": "flat"}, IDENTIFIED.require_any)] == [
        "at least one of user_id, device.id is required",
        "at least one of session is required",
    ]


def test_require_any_is_checked_only_once_the_schema_holds():
    spec = ValidatorSpec("w", "*", {"n": {"type": "integer"}}, require_any=(("user_id",),))
    errors = Validators([spec]).check("w", None, {"n": "one"})
    assert errors == [FieldError(("n",), "must be of integer type")]


def test_unknown_fields_are_refused_only_when_the_spec_says_so():
    closed = ValidatorSpec("c", "*", {"a": {"type": "string"}}, allow_unknown=False)
    assert Validators([closed]).check("c", None, {"a": "x", "b": 1}) == [
        FieldError(("b",), "unknown field")
    ]


def test_vendors_and_event_types_leave_out_the_fallback(validators):
    assert validators.vendors() == {"v", "w"}
    assert validators.event_types("v") == ["click"]
    assert validators.event_types("w") == []


def test_flatten_errors_walks_nested_fields_and_list_items_in_order():
    tree = {"items": [{0: [{"price": ["must be of float type"]}]}], "a": ["required field"]}
    assert flatten_errors(tree) == [
        FieldError(("a",), "required field"),
        FieldError(("items", 0, "price"), "must be of float type"),
    ]


# -- check_all: a request's events in one loop ------------------------------------------

TYPED = ValidatorSpec("v", "view", {"type": {"type": "string"}, "n": {"type": "integer"}})
NAMED = ValidatorSpec("v", "named", {"name": {"type": "string"}}, require_any=(("name",),))


def type_of(doc):
    if isinstance(doc, dict) and doc.get("type") == "boom":
        raise KeyError("boom")
    return doc.get("type") if isinstance(doc, dict) and isinstance(doc.get("type"), str) else None


def test_the_quick_path_agrees_with_the_compiled_checks_event_by_event():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    validators = Validators([CLICK, ANY, IDENTIFIED, TYPED, NAMED])
    assert validators.statistics().typed  # the quick path is there to be compared
    slow = Validators([CLICK, ANY, IDENTIFIED, TYPED, NAMED])
    slow._quick.clear()  # the compiled checks alone: what the quick path must agree with
    value = st.one_of(st.none(), st.integers(), st.text(max_size=3), st.lists(st.integers()))
    doc = st.one_of(
        st.fixed_dictionaries(
            {"type": st.sampled_from(["click", "view", "named", "other", "boom", 7])},
            optional={"x": value, "n": value, "name": value, "user_id": value, "session": value},
        ),
        value,
    )

    @settings(max_examples=300, deadline=None)
    @given(st.sampled_from(["v", "w", "nobody"]), st.lists(doc, max_size=8))
    def same(vendor, docs):
        expected = {}
        for i, d in enumerate(docs):
            try:
                errors = slow.check(vendor, type_of(d), d)
            except KeyError as exc:
                errors = [FieldError((), f"{vendor} plugin failed: {exc!r}")]
            if errors:
                expected[i] = errors
        assert validators.check_all(vendor, type_of, docs) == expected
        for i, d in enumerate(docs):
            if not isinstance(d, dict) or d.get("type") != "boom":
                assert validators.check(vendor, type_of(d), d) == expected.get(i, [])

    same()
