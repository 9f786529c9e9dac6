"""router.typedschema: msgspec types accept exactly what cerberus accepts, never more.

The typed check may only refuse a valid event at the cost of speed (the
compiled predicate then decides); accepting an invalid one would be a bug.
So every case asserts that a typed yes is a cerberus yes, and, where the
typed form is meant to be exact, that the two verdicts are equal. The
differential tests run over every spec of ``tests/data/schemas`` and the
built-in plugins' own, and over random schemas.
"""

from __future__ import annotations

import uuid
from typing import Any

import cerberus
import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from router.errors import FieldError
from router.schema import SchemaValidator
from router.testing.strategies import valid_documents, valid_for_spec
from router.typedschema import compile_typed
from router.validation import Validators, ValidatorSpec, flatten_errors, missing_any
from tests.helpers.schemadocs import RANDOM_DOCUMENTS, documents, load_catalog, random_schema

catalog = load_catalog()
SLOW_OK = [HealthCheck.too_slow]
SPECS = catalog.all_specs()
IDS = [catalog.spec_id(s) for s in SPECS]
PLUGIN_SPECS = list(catalog.plugin_specs())


def cerberus_says(schema: Any, doc: Any, *, allow_unknown: Any = False) -> bool:
    """cerberus's verdict; a document it raises on counts as invalid."""
    try:
        return bool(
            SchemaValidator(schema, allow_unknown=allow_unknown).validate(doc, normalize=False)
        )
    except Exception:
        return False


def typed_says(schema: Any, doc: Any, *, allow_unknown: Any = False) -> bool:
    """The typed verdict, asserting it is never a yes where cerberus says no."""
    typed = compile_typed(schema, allow_unknown=allow_unknown)
    assert typed.accepts is not None, typed.reasons
    got = typed.accepts(doc)
    if got:
        assert cerberus_says(schema, doc, allow_unknown=allow_unknown), (schema, doc)
    return got


def exact(schema: Any, doc: Any, *, allow_unknown: Any = False) -> bool:
    """Assert the typed verdict equals cerberus's; return it."""
    expected = cerberus_says(schema, doc, allow_unknown=allow_unknown)
    assert typed_says(schema, doc, allow_unknown=allow_unknown) is expected, (schema, doc)
    return expected


# --------------------------------------------------------------------------
# Rule by rule
# --------------------------------------------------------------------------

TYPE_CASES = [
    # (type, value, cerberus's verdict under router.schema's JSON types)
    ("integer", 1, True),
    ("integer", True, False),  # a boolean is not an integer (msgspec agrees)
    ("integer", 1.0, False),  # nor is a float with an integral value
    ("integer", 2**64 - 1, True),  # the largest orjson parses
    ("integer", 2**64, True),
    ("integer", -(2**63), True),
    ("float", 1, True),  # float means float or int...
    ("float", 1.5, True),
    ("float", True, False),  # ...but not a boolean
    ("float", "1.5", False),
    ("number", 1, True),
    ("number", 1.5, True),
    ("number", False, False),
    ("boolean", True, True),
    ("boolean", 1, False),
    ("boolean", 0, False),
    ("string", "", True),
    ("string", "é😀\u0301", True),
    ("string", 1, False),
    ("list", [], True),
    ("list", [1, "a", None], True),
    ("list", "ab", False),
    ("list", {}, False),
    ("dict", {}, True),
    ("dict", {"a": [1]}, True),
    ("dict", [], False),
    (["string", "integer"], 3, True),
    (["string", "integer"], "3", True),
    (["string", "integer"], 3.5, False),
    (["string", "integer"], True, False),
]


@pytest.mark.parametrize(("type_", "value", "expected"), TYPE_CASES)
def test_type(type_: Any, value: Any, expected: bool) -> None:
    assert exact({"a": {"type": type_}}, {"a": value}) is expected


@pytest.mark.parametrize(
    ("rules", "value", "expected"),
    [
        ({"type": "integer", "min": 0, "max": 9}, 9, True),
        ({"type": "integer", "min": 0, "max": 9}, 10, False),
        ({"type": "integer", "min": 0, "max": 9}, -1, False),
        ({"type": "integer", "min": 0.5}, 0, False),  # a float bound, rounded inwards
        ({"type": "integer", "min": 0.5}, 1, True),
        ({"type": "integer", "max": 2.5}, 3, False),
        ({"type": "integer", "max": 2**63 - 1}, 2**64 - 1, False),  # beyond int64, compared
        ({"type": "integer", "max": 2**64}, 2**64, True),  # a bound beyond int64: residual
        ({"type": "integer", "max": 2**64}, 2**64 + 1, False),
        ({"type": "integer", "max": True}, 2, False),  # True is 1 in a comparison
        ({"type": "integer", "max": "m"}, 5, True),  # 5 > "m" raises TypeError: passes
        ({"type": "float", "min": 0.5}, 0, False),
        ({"type": "float", "min": 0.5}, 0.5, True),
        ({"type": "number", "max": 2.5}, 2.5, True),
        ({"type": "number", "max": 2.5}, 3, False),
        # An int is compared as an int, never through a float that would round.
        ({"type": "number", "max": 2**53}, 2**53 + 1, False),
        ({"type": "float", "max": 2**53 + 1}, 2**53 + 1, True),  # a bound float() rounds
        ({"type": "float", "max": 2**53 + 1}, float(2**53 + 2), False),
        ({"type": "string", "min": "b"}, "a", False),  # strings compare with strings
        ({"type": "string", "min": "b"}, "c", True),
        ({"type": "string", "max": 3}, "zzz", True),
        ({"type": "boolean", "max": 0}, True, False),
        ({"type": "list", "max": [1]}, [2], False),
    ],
)
def test_bounds(rules: dict[str, Any], value: Any, expected: bool) -> None:
    assert exact({"a": rules}, {"a": value}) is expected


@pytest.mark.parametrize(
    ("rules", "value", "expected"),
    [
        # Lengths count code points, as len() does.
        ({"type": "string", "maxlength": 2}, "😀😀", True),
        ({"type": "string", "maxlength": 2}, "😀😀😀", False),
        ({"type": "string", "maxlength": 1}, "e\u0301", False),
        ({"type": "string", "minlength": 1}, "", False),
        ({"type": "string", "empty": False}, "", False),
        ({"type": "string", "empty": False}, " ", True),
        ({"type": "list", "empty": False}, [], False),
        ({"type": "list", "minlength": 2, "maxlength": 3}, [1, 2, 3, 4], False),
        ({"type": "dict", "empty": False}, {}, False),
        ({"type": "dict", "maxlength": 1}, {"x": 1}, True),
        # empty: True drops lengths, regex and allowed for an empty value.
        ({"type": "string", "empty": True, "minlength": 3}, "", True),
        ({"type": "string", "empty": True, "minlength": 3}, "ab", False),
        ({"type": "string", "nullable": True, "empty": True, "regex": "a+"}, "", True),
    ],
)
def test_lengths_and_empty(rules: dict[str, Any], value: Any, expected: bool) -> None:
    assert exact({"a": rules}, {"a": value}) is expected


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("abc", "abc", True),
        ("abc", "abcd", False),  # anchored at the end by an appended $...
        ("abc", "xabc", False),  # ...and at the start by re.match
        ("abc", "abc\n", True),  # but $ also matches before a final newline
        ("abc\\Z", "abc\n", False),
        ("a|b", "ax", True),  # and binds to the last branch only: "a|b$"
        ("a|b", "xb", False),
        ("ab$", "ab", True),
        (r"\d{3}", "\u0661\u0662\u0663", True),  # \d is Unicode-aware (Arabic-Indic digits)
        (r"[0-9]{1,10}", "\u0661", False),
        ("(?i)abc", "ABC", True),  # inline flags: checked by the residual
        ("(?i)abc", "ABD", False),
    ],
)
def test_regex(pattern: str, value: str, expected: bool) -> None:
    assert exact({"a": {"type": "string", "regex": pattern}}, {"a": value}) is expected


@pytest.mark.parametrize(
    ("rules", "value", "expected"),
    [
        ({"type": "string", "allowed": ["a", "b"]}, "a", True),
        ({"type": "string", "allowed": ["a", "b"]}, "c", False),
        ({"type": "string", "allowed": ["a", "bb"], "maxlength": 1}, "bb", False),
        ({"type": "string", "allowed": ["a", "bb"], "regex": "b+"}, "a", False),
        ({"type": "string", "allowed": ["", "a"], "empty": False}, "", False),
        ({"type": "string", "allowed": [1]}, "1", False),
        ({"type": "integer", "allowed": [0, 1]}, 1, True),
        ({"type": "integer", "allowed": [0, 1]}, True, False),  # the type refuses a boolean
        ({"type": "integer", "allowed": [0, 1]}, 1.0, False),
        ({"type": "integer", "allowed": [1.0, True]}, 1, True),  # 1 in [1.0]: equal
        ({"type": "integer", "allowed": [1, 5], "min": 2}, 1, False),
        ({"type": ["string", "integer"], "allowed": ["a", 2]}, 2, True),
        ({"type": ["string", "integer"], "allowed": ["a"]}, 2, False),
        ({"type": "list", "allowed": ["a", "b"]}, ["a", "b", "a"], True),  # every element
        ({"type": "list", "allowed": ["a", "b"]}, ["c"], False),
        ({"type": "number", "allowed": [1.5]}, 1.5, True),
    ],
)
def test_allowed(rules: dict[str, Any], value: Any, expected: bool) -> None:
    assert exact({"a": rules}, {"a": value}) is expected


UUID_RULES = {
    "type": "string",
    "regex": r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
    "maxlength": 36,
}
SAMPLE_UUID = "0f8fad5b-d9cb-469f-a165-70867728950e"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (SAMPLE_UUID, True),
        (SAMPLE_UUID.upper(), True),
        (SAMPLE_UUID.replace("-", ""), False),  # msgspec's UUID takes it; the regex does not
        (SAMPLE_UUID + "\n", False),  # the regex's $ would, maxlength does not
        ("{" + SAMPLE_UUID + "}", False),
        ("urn:uuid:" + SAMPLE_UUID, False),
        (SAMPLE_UUID[:8] + SAMPLE_UUID[9:13] + "-" + SAMPLE_UUID[13:], False),  # hyphen moved
        (SAMPLE_UUID.replace("0", "\uff10"), False),  # full-width digit
        (SAMPLE_UUID[:-1] + "g", False),
        ("", False),
    ],
)
def test_uuid_regex_keeps_its_hyphens(value: str, expected: bool) -> None:
    schema = {"id": UUID_RULES}
    typed = compile_typed(schema, allow_unknown=False)
    assert typed.residual_schema is not None  # the type is uuid.UUID, the hyphens residual
    assert exact(schema, {"id": value}) is expected


def test_a_hyphenless_uuid_gets_cerberus_own_message() -> None:
    spec = ValidatorSpec("v", "*", {"id": UUID_RULES})
    validators = Validators([spec])
    assert validators.statistics().typed == (("v", "*"),)
    hyphenless = uuid.UUID(SAMPLE_UUID).hex
    [error] = validators.check("v", "*", {"id": hyphenless})
    assert error.path == ("id",)
    assert error.message.startswith("value does not match regex")
    assert validators.check("v", "*", {"id": SAMPLE_UUID}) == []


def test_a_uuid_regex_without_a_length_refuses_only_what_cerberus_takes_oddly() -> None:
    """Without ``maxlength`` the ``$`` lets a final newline through: the typed
    check refuses it (stricter), and the predicate behind it accepts it."""
    rules = {key: value for key, value in UUID_RULES.items() if key != "maxlength"}
    schema = {"id": rules}
    doc = {"id": SAMPLE_UUID + "\n"}
    assert cerberus_says(schema, doc) is True
    assert typed_says(schema, doc) is False
    assert Validators([ValidatorSpec("v", "*", schema)]).check("v", "*", doc) == []


@pytest.mark.parametrize(
    ("rules", "value", "expected"),
    [
        ({"type": "string"}, None, False),
        ({"type": "string", "nullable": True}, None, True),
        ({"type": "integer", "nullable": True, "min": 3, "allowed": [5]}, None, True),
        ({"type": "integer", "nullable": True, "min": 3, "allowed": [5]}, 4, False),
        ({}, None, False),  # no type: any value but null
        ({}, [None], True),
        ({"nullable": True}, None, True),
        ({"type": "dict", "nullable": True, "schema": {"x": {"required": True}}}, None, True),
        ({"type": "dict", "nullable": True, "schema": {"x": {"required": True}}}, {}, False),
    ],
)
def test_nullable(rules: dict[str, Any], value: Any, expected: bool) -> None:
    assert exact({"a": rules}, {"a": value}) is expected


def test_required_and_unknown_fields() -> None:
    schema = {"a": {"required": True}, "b": {"type": "integer"}}
    assert exact(schema, {"a": 1}) is True
    assert exact(schema, {"b": 1}) is False
    assert exact(schema, {"a": None}) is False
    assert exact(schema, {"a": 1, "z": 1}) is False
    assert exact(schema, {"a": 1, "z": 1}, allow_unknown=True) is True
    assert exact(schema, {"a": 1, "b": None}) is False  # optional, but not nullable
    assert exact(schema, [("a", 1)]) is False
    # A key JSON cannot have: msgspec refuses it, stricter than cerberus.
    assert cerberus_says(schema, {1: 1, "a": 1}, allow_unknown=True) is True
    assert typed_says(schema, {1: 1, "a": 1}, allow_unknown=True) is False


def test_field_names_that_are_not_identifiers() -> None:
    schema = {"class": {"type": "integer"}, "a-b": {"type": "string", "required": True}, "": {}}
    assert exact(schema, {"class": 1, "a-b": "x", "": 0}) is True
    assert exact(schema, {"class": "1", "a-b": "x"}) is False
    assert exact(schema, {"f0": 1, "a-b": "x"}) is False  # the Struct's own names are not keys


def test_unknown_fields_nested() -> None:
    inner = {"type": "dict", "schema": {"x": {}}}
    schema = {
        "closed": inner,
        "open": {**inner, "allow_unknown": True},
        # A list's allow_unknown does not reach its items: they inherit the parent's.
        "items": {"type": "list", "allow_unknown": True, "schema": inner},
    }
    assert exact(schema, {"closed": {"x": 1, "y": 2}}) is False
    assert exact(schema, {"closed": {"x": 1, "y": 2}}, allow_unknown=True) is True
    assert exact(schema, {"open": {"x": 1, "y": 2}}) is True
    assert exact(schema, {"items": [{"x": 1, "y": 2}]}) is False
    assert exact(schema, {"items": [{"x": 1, "y": 2}]}, allow_unknown=True) is True
    deep = {"a": {"type": "dict", "schema": {"b": {"type": "dict", "schema": {}}}}}
    assert exact(deep, {"a": {"b": {"c": 1}}}) is False
    assert exact(deep, {"a": {"b": {"c": 1}}}, allow_unknown=True) is True


def test_unknown_fields_under_a_residual_field() -> None:
    """A field kept whole in the residual keeps the allow_unknown it inherits."""
    rules = {"type": "dict", "empty": True, "minlength": 1, "schema": {"x": {}}}
    schema = {"wrap": {"type": "dict", "allow_unknown": False, "schema": {"inner": rules}}}
    assert exact(schema, {"wrap": {"inner": {"x": 1}}}, allow_unknown=True) is True
    assert exact(schema, {"wrap": {"inner": {"x": 1, "y": 2}}}, allow_unknown=True) is False
    listed = {"l": {"type": "list", "schema": rules}}
    assert exact(listed, {"l": [{"x": 1, "y": 2}]}) is False
    assert exact(listed, {"l": [{"x": 1, "y": 2}]}, allow_unknown=True) is True


def test_require_all() -> None:
    schema = {"a": {"type": "dict", "require_all": True, "schema": {"x": {}, "y": {}}}}
    assert exact(schema, {"a": {"x": 1, "y": 2}}) is True
    assert exact(schema, {"a": {"x": 1}}) is False
    optional = {"a": {**schema["a"], "schema": {"x": {}, "y": {"required": False}}}}
    assert exact(optional, {"a": {"x": 1}}) is True
    top = compile_typed({"x": {}, "y": {"required": False}}, allow_unknown=False, require_all=True)
    assert top.accepts is not None
    assert top.accepts({"x": 1}) is True
    assert top.accepts({"y": 1}) is False


def test_nested_lists_and_dicts() -> None:
    money = {"type": "dict", "schema": {"amount": {"type": "number", "required": True}}}
    schema = {
        "items": {
            "type": "list",
            "empty": False,
            "schema": {"type": "dict", "schema": {"id": {"type": "string"}, "price": money}},
        },
        "grid": {"type": "list", "schema": {"type": "list", "schema": {"type": "integer"}}},
        "labels": {"type": "dict", "valuesrules": {"type": "integer", "max": 9}},
    }
    assert exact(schema, {"items": [{"id": "a", "price": {"amount": 1.5}}]}) is True
    assert exact(schema, {"items": [{"id": "a", "price": {}}]}) is False
    assert exact(schema, {"items": [{"id": "a", "price": {"amount": True}}]}) is False
    assert exact(schema, {"items": []}) is False
    assert exact(schema, {"items": [{"id": "a", "extra": [1]}]}) is False
    assert exact(schema, {"items": [{"id": "a", "extra": [1]}]}, allow_unknown=True) is True
    assert exact(schema, {"grid": [[1, 2], [], [3]]}) is True
    assert exact(schema, {"grid": [[1, 2.0]]}) is False
    assert exact(schema, {"labels": {"x": 9}}) is True
    assert exact(schema, {"labels": {"x": 10}}) is False


def test_dependencies_readonly_and_untyped_fields_are_residual() -> None:
    schema = {
        "a": {"type": "string", "dependencies": ["b"]},
        "b": {"type": "integer", "nullable": True},
        "c": {"type": "string", "dependencies": {"b": [1, 2]}},
        "ro": {"readonly": True, "nullable": True},
        "any": {"maxlength": 1},
    }
    typed = compile_typed(schema, allow_unknown=False)
    assert typed.residual_schema is not None
    assert set(typed.residual_schema) == {"a", "c", "ro", "any"}
    assert exact(schema, {"a": "x", "b": None}) is True
    assert exact(schema, {"a": "x"}) is False
    assert exact(schema, {"a": 1, "b": 1}) is False  # the type is still msgspec's
    assert exact(schema, {"c": "x", "b": 2}) is True
    assert exact(schema, {"c": "x", "b": 3}) is False
    assert exact(schema, {"ro": None}) is False
    assert exact(schema, {"any": [1]}) is True
    assert exact(schema, {"any": "ab"}) is False
    assert exact(schema, {"any": None}) is False


def test_excludes_keeps_its_mapping_out_of_the_type() -> None:
    one_of = {
        "email": {"type": "string", "required": True, "excludes": "phone"},
        "phone": {"type": "string", "required": True, "excludes": "email"},
    }
    top = compile_typed(one_of, allow_unknown=False)
    assert top.type is None and top.accepts is None
    assert any("excludes" in reason for reason in top.reasons)
    nested = {"contact": {"type": "dict", "schema": one_of}, "n": {"type": "integer"}}
    assert exact(nested, {"contact": {"email": "x"}, "n": 1}) is True
    assert exact(nested, {"contact": {"email": "x", "phone": "y"}}) is False
    assert exact(nested, {"contact": {}}) is False
    assert exact(nested, {"n": "1"}) is False


def test_a_schema_that_does_not_compile_has_no_type() -> None:
    typed = compile_typed({"a": {"type": "integer", "forbidden": [13]}}, allow_unknown=False)
    assert typed.accepts is None
    assert compile_typed({"a": {}}, allow_unknown={"type": "string"}).accepts is None
    with pytest.raises(cerberus.SchemaError):
        compile_typed({"a": {"type": "no-such-type"}}, allow_unknown=False)


def test_every_builtin_plugin_spec_is_typed() -> None:
    """The fast path is the one the vendors' events take, and it stays exact."""
    validators = Validators(PLUGIN_SPECS)
    stats = validators.statistics()
    assert stats.fallback == {}
    assert set(stats.typed) == {(s.vendor, s.event_type) for s in PLUGIN_SPECS}
    for spec in PLUGIN_SPECS:
        typed = compile_typed(spec.schema, allow_unknown=spec.allow_unknown)
        # Only what msgspec cannot say is residual: dependencies, UUID hyphens.
        for rules in (typed.residual_schema or {}).values():
            assert set(rules) - {"type", "nullable", "allow_unknown", "require_all"} <= {
                "dependencies",
                "minlength",
            }, (catalog.spec_id(spec), rules)


# --------------------------------------------------------------------------
# Differential: typed == cerberus over generated documents
# --------------------------------------------------------------------------


class Subject:
    """One spec's documents, validators and typed check, built once."""

    def __init__(self, spec: ValidatorSpec):
        self.documents = documents(spec)
        self.valid = valid_for_spec(spec)
        self.validator = SchemaValidator(spec.schema, allow_unknown=spec.allow_unknown)
        self.typed = compile_typed(spec.schema, allow_unknown=spec.allow_unknown)
        self.validators = Validators([spec])


_SUBJECTS: dict[int, Subject] = {}


def subject_of(spec: ValidatorSpec) -> Subject:
    return _SUBJECTS.get(id(spec)) or _SUBJECTS.setdefault(id(spec), Subject(spec))


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
@settings(max_examples=40, deadline=None, suppress_health_check=SLOW_OK)
@given(data=st.data())
def test_differential(spec: ValidatorSpec, data: st.DataObject) -> None:
    subject = subject_of(spec)
    doc = data.draw(subject.documents, label="document")
    try:
        expected: bool | None = subject.validator.validate(doc, normalize=False)
    except Exception:
        expected = None  # cerberus raises: the typed check must refuse
    accepts = subject.typed.accepts
    if accepts is not None:
        note(f"residual: {subject.typed.residual_schema}")
        assert accepts(doc) is bool(expected)

    # Through Validators: cerberus's answer, and its errors after a typed refusal.
    check = subject.validators.check
    if expected is None:
        with pytest.raises(Exception):  # noqa: B017 - whatever cerberus raises
            check(spec.vendor, spec.event_type, doc)
    elif expected:
        assert check(spec.vendor, spec.event_type, doc) == missing_any(doc, spec.require_any)
    else:
        assert check(spec.vendor, spec.event_type, doc) == flatten_errors(subject.validator.errors)


@pytest.mark.parametrize("spec", PLUGIN_SPECS, ids=[catalog.spec_id(s) for s in PLUGIN_SPECS])
@settings(max_examples=15, deadline=None, suppress_health_check=SLOW_OK)
@given(data=st.data())
def test_plugin_events_take_the_typed_path(spec: ValidatorSpec, data: st.DataObject) -> None:
    """Every valid vendor event is accepted by msgspec alone (no fallback)."""
    subject = subject_of(spec)
    doc = data.draw(subject.valid, label="document")
    assert subject.typed.accepts is not None
    assert subject.typed.accepts(doc) is True


@st.composite
def awkward_values(draw: st.DrawFn) -> Any:
    """Values where JSON, cerberus and msgspec could part ways."""
    hyphenless = st.uuids().map(lambda u: u.hex)
    hyphenated = st.uuids().map(str)
    return draw(
        st.sampled_from([True, False, 0, 1, 1.0, -0.0, 2**63, 2**64 - 1, "", "\n", None])
        | hyphenless
        | hyphenated
        | hyphenated.map(str.upper)
        | st.text(alphabet=st.characters(codec="utf-8"), max_size=4)
        | st.integers(-(2**64), 2**64)
        | st.floats(allow_nan=False, allow_infinity=False)
    )


@pytest.mark.parametrize("spec", PLUGIN_SPECS, ids=[catalog.spec_id(s) for s in PLUGIN_SPECS])
@settings(max_examples=30, deadline=None, suppress_health_check=SLOW_OK)
@given(data=st.data())
def test_plugin_fields_with_awkward_values(spec: ValidatorSpec, data: st.DataObject) -> None:
    """A valid event with one field set to a hyphenless UUID, a big int, a bool…"""
    subject = subject_of(spec)
    doc = data.draw(subject.valid, label="valid")
    field = data.draw(st.sampled_from(sorted(spec.schema)), label="field")
    doc[field] = data.draw(awkward_values(), label="value")
    expected = bool(subject.validator.validate(doc, normalize=False))
    event("valid" if expected else "invalid")
    assert subject.typed.accepts is not None
    assert subject.typed.accepts(doc) is expected
    errors = subject.validators.check(spec.vendor, spec.event_type, doc)
    if expected:
        assert errors == missing_any(doc, spec.require_any)
    else:
        assert errors == flatten_errors(subject.validator.errors)
        assert errors and all(isinstance(e, FieldError) for e in errors)


def _no_top_excludes(schema: dict[str, Any]) -> dict[str, Any]:
    """A top-level ``excludes`` leaves no typed form to test; nested ones stay."""
    return {k: {r: v for r, v in rules.items() if r != "excludes"} for k, rules in schema.items()}


@settings(max_examples=80, deadline=None, suppress_health_check=SLOW_OK)
@given(schema=random_schema(2).map(_no_top_excludes), allow_unknown=st.booleans(), data=st.data())
def test_differential_random_schemas(
    schema: dict[str, Any], allow_unknown: bool, data: st.DataObject
) -> None:
    """Random schemas of every supported rule: a typed yes is always a cerberus yes."""
    try:
        validator = SchemaValidator(schema, allow_unknown=allow_unknown)
    except cerberus.SchemaError:
        return  # not a schema cerberus accepts: nothing to compare
    typed = compile_typed(schema, allow_unknown=allow_unknown)
    note(f"residual: {typed.residual_schema}; reasons: {typed.reasons}")
    docs = RANDOM_DOCUMENTS
    try:
        docs |= valid_documents(schema, allow_unknown=allow_unknown)
    except ValueError:
        event("no valid document")
    doc = data.draw(docs, label="document")
    try:
        expected = bool(validator.validate(doc, normalize=False))
    except Exception:
        expected = False
    if typed.accepts is None:
        event("no typed form")
        return
    got = typed.accepts(doc)
    event(f"cerberus {expected}, typed {got}")
    assert not (got and not expected)
