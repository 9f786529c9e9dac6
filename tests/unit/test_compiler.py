"""router.compiler: compiled predicates agree with cerberus, rule by rule and at random.

The differential tests run over every spec of ``tests/data/schemas`` (and the
built-in plugins listed there in ``PLUGINS``); add a schema module there to
cover a new shape.
"""

from __future__ import annotations

from typing import Any

import cerberus
import pytest
import structlog
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

import router.validation
from router.compiler import Compiled, compile_schema
from router.errors import FieldError
from router.schema import SchemaValidator
from router.testing.strategies import valid_documents
from router.typedschema import Typed
from router.validation import Validators, ValidatorSpec, flatten_errors, missing_any
from tests.helpers.schemadocs import RANDOM_DOCUMENTS, documents, load_catalog, random_schema

catalog = load_catalog()

#: Nested documents are slow to generate on a loaded 2-core CI box; that is
#: not a problem with the strategies (filtering health checks stay on).
SLOW_OK = [HealthCheck.too_slow]
SPECS = catalog.all_specs()
IDS = [catalog.spec_id(s) for s in SPECS]


def cerberus_verdict(schema: Any, doc: Any, *, allow_unknown: Any = False) -> bool | str:
    """What cerberus says: True, False, or "raises"."""
    validator = SchemaValidator(schema, allow_unknown=allow_unknown)
    try:
        return bool(validator.validate(doc, normalize=False))
    except Exception:
        return "raises"


def compiled_verdict(schema: Any, doc: Any, *, allow_unknown: Any = False) -> bool:
    compiled = compile_schema(schema, allow_unknown=allow_unknown)
    assert compiled.is_valid is not None, compiled.reasons
    return compiled.is_valid(doc)


def agree(schema: Any, doc: Any, *, allow_unknown: Any = False) -> bool:
    """Assert the compiled predicate agrees with cerberus; return the verdict."""
    expected = cerberus_verdict(schema, doc, allow_unknown=allow_unknown)
    got = compiled_verdict(schema, doc, allow_unknown=allow_unknown)
    # Where cerberus raises, the predicate says invalid so the caller's
    # cerberus re-run raises as before.
    assert got is (False if expected == "raises" else expected), (schema, doc, expected)
    return got


# --------------------------------------------------------------------------
# Rule by rule: the cerberus semantics the compiler reproduces
# --------------------------------------------------------------------------

TYPE_CASES = [
    # (type, value, cerberus's verdict)
    ("integer", 1, True),
    ("integer", True, False),  # JSON types: a boolean is not an integer (router.schema)
    ("integer", 1.0, False),
    ("float", 1.5, True),
    ("float", 1, True),  # float means float or int...
    ("float", True, False),  # ...but not a boolean
    ("number", 1, True),
    ("number", 1.5, True),
    ("number", True, False),  # number excludes bool explicitly
    ("boolean", True, True),
    ("boolean", 1, False),
    ("string", "", True),
    ("string", b"x", False),
    ("list", [], True),
    ("list", (1, 2), True),  # any non-str Sequence
    ("list", "ab", False),
    ("list", {}, False),
    ("dict", {}, True),
    ("dict", [], False),
    (["string", "integer"], 3, True),
    (["string", "integer"], 3.5, False),
    ([], object(), True),  # an empty type list checks nothing
]


@pytest.mark.parametrize(("type_", "value", "expected"), TYPE_CASES)
def test_type(type_: Any, value: Any, expected: bool) -> None:
    assert agree({"a": {"type": type_}}, {"a": value}) is expected


@pytest.mark.parametrize(
    ("rules", "value", "expected"),
    [
        ({"type": "string"}, None, False),  # nullable defaults to False, on every field
        ({}, None, False),
        ({"type": "string", "nullable": True}, None, True),
        # A nullable None skips type, allowed, lengths, regex, bounds...
        ({"type": "integer", "nullable": True, "min": 3, "allowed": [5]}, None, True),
    ],
)
def test_nullable(rules: dict[str, Any], value: Any, expected: bool) -> None:
    assert agree({"a": rules}, {"a": value}) is expected


def test_nullable_none_still_checks_dependencies_and_excludes() -> None:
    schema = {"a": {"nullable": True, "dependencies": "b"}, "b": {}, "c": {"excludes": "a"}}
    assert agree(schema, {"a": None}) is False
    assert agree(schema, {"a": None, "b": 1}) is True
    assert agree(schema, {"a": None, "b": 1, "c": 1}) is False


@pytest.mark.parametrize(
    ("rules", "value", "expected"),
    [
        # Without an ``empty`` rule an empty string is just a string...
        ({"type": "string"}, "", True),
        # ...still subject to minlength, regex and allowed.
        ({"type": "string", "minlength": 1}, "", False),
        ({"type": "string", "regex": "a+"}, "", False),
        ({"type": "string", "allowed": ["x"]}, "", False),
        # ``empty: True`` drops those rules for an empty value.
        ({"type": "string", "empty": True, "minlength": 1}, "", True),
        ({"type": "string", "empty": True, "regex": "a+"}, "", True),
        ({"type": "string", "empty": True, "allowed": ["x"]}, "", True),
        ({"type": "string", "empty": True, "minlength": 2}, "x", False),
        # ``empty: False`` refuses any empty Sized value.
        ({"type": "string", "empty": False}, "", False),
        ({"type": "list", "empty": False}, [], False),
        ({"type": "dict", "empty": False}, {}, False),
        ({"type": "dict", "minlength": 1}, {}, False),
        ({"type": "list", "empty": True, "minlength": 2}, [], True),
        ({"type": "integer", "empty": False}, 0, True),  # not Sized: the rule does nothing
        ({"empty": False}, "", False),
        ({"empty": True, "maxlength": 0}, [], True),
    ],
)
def test_empty(rules: dict[str, Any], value: Any, expected: bool) -> None:
    assert agree({"a": rules}, {"a": value}) is expected


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("abc", "abc", True),
        ("abc", "abcd", False),  # anchored at the end by an appended $...
        ("abc", "xabc", False),  # ...and at the start by re.match
        ("abc", "abc\n", True),  # but $ also matches before a final newline
        ("a|b", "ax", True),  # and binds to the last branch only: "a|b$"
        ("a|b", "xb", False),
        ("(a|b)", "ax", False),
        ("ab$", "ab", True),  # no second $ when the pattern ends with one
        (r"\d{3}", "\u0661\u0662\u0663", True),  # \d is Unicode-aware (Arabic-Indic digits)
    ],
)
def test_regex_anchoring(pattern: str, value: str, expected: bool) -> None:
    assert agree({"a": {"type": "string", "regex": pattern}}, {"a": value}) is expected


def test_regex_ignores_non_strings() -> None:
    assert agree({"a": {"regex": "x"}}, {"a": 5}) is True
    assert agree({"a": {"regex": "x"}}, {"a": ["y"]}) is True


@pytest.mark.parametrize(
    ("rules", "value", "expected"),
    [
        ({"allowed": ["a", "b"]}, "a", True),
        ({"allowed": ["a", "b"]}, "c", False),
        ({"allowed": [1]}, True, True),  # 1 == True
        ({"allowed": [1, 2, 3, 4, 5]}, 1.0, True),  # the frozenset fast path keeps ==
        ({"allowed": ["a", "b"]}, ["a", "b", "a"], True),  # lists: every element
        ({"allowed": ["a", "b"]}, ["a", "c"], False),
        ({"allowed": ["a", "b"]}, [], True),
        ({"allowed": ["a", "b"]}, {"a": 1}, True),  # dicts: every key
        ({"type": "string", "allowed": ["ab"]}, "ab", True),  # a string is not iterated
    ],
)
def test_allowed(rules: dict[str, Any], value: Any, expected: bool) -> None:
    assert agree({"a": rules}, {"a": value}) is expected


@pytest.mark.parametrize(
    ("rules", "value", "expected"),
    [
        ({"min": 1, "max": 3}, 2, True),
        ({"min": 1, "max": 3}, 0, False),
        ({"min": 1, "max": 3}, 3.5, False),
        ({"min": 1}, True, True),
        ({"max": 3}, "zzz", True),  # "zzz" > 3 raises TypeError: cerberus passes it
        ({"max": "m"}, "z", False),  # strings compare with strings
        ({"type": "float", "min": 0.5}, 0, False),
        ({"minlength": 2, "maxlength": 3}, "ab", True),
        ({"minlength": 2, "maxlength": 3}, [1, 2, 3, 4], False),
        ({"minlength": 2}, {"x": 1}, False),
        ({"minlength": 2}, 5, True),  # not iterable: no length rules
    ],
)
def test_bounds_and_lengths(rules: dict[str, Any], value: Any, expected: bool) -> None:
    assert agree({"a": rules}, {"a": value}) is expected


def test_required_and_unknown_fields() -> None:
    schema = {"a": {"required": True}, "b": {}}
    assert agree(schema, {"a": 1}) is True
    assert agree(schema, {"b": 1}) is False
    assert agree(schema, {"a": None}) is False  # present but not nullable
    assert agree(schema, {"a": 1, "z": 1}) is False
    assert agree(schema, {"a": 1, "z": 1}, allow_unknown=True) is True


def test_unknown_fields_nested() -> None:
    inner = {"type": "dict", "schema": {"x": {}}}
    schema = {
        "closed": inner,
        "open": {**inner, "allow_unknown": True},
        # A list's allow_unknown does not reach its items: they inherit the parent's.
        "items": {"type": "list", "allow_unknown": True, "schema": inner},
    }
    assert agree(schema, {"closed": {"x": 1, "y": 2}}) is False
    assert agree(schema, {"closed": {"x": 1, "y": 2}}, allow_unknown=True) is True
    assert agree(schema, {"open": {"x": 1, "y": 2}}) is True
    assert agree(schema, {"items": [{"x": 1, "y": 2}]}) is False
    assert agree(schema, {"items": [{"x": 1, "y": 2}]}, allow_unknown=True) is True
    # ...and a nested schema inherits the top level's allow_unknown.
    deep = {"a": {"type": "dict", "schema": {"b": {"type": "dict", "schema": {}}}}}
    assert agree(deep, {"a": {"b": {"c": 1}}}) is False
    assert agree(deep, {"a": {"b": {"c": 1}}}, allow_unknown=True) is True


def test_require_all() -> None:
    schema = {"a": {"type": "dict", "require_all": True, "schema": {"x": {}, "y": {}}}}
    assert agree(schema, {"a": {"x": 1, "y": 2}}) is True
    assert agree(schema, {"a": {"x": 1}}) is False
    optional = {"a": {**schema["a"], "schema": {"x": {}, "y": {"required": False}}}}
    assert agree(optional, {"a": {"x": 1}}) is True


def test_list_schema_and_keys_values_rules() -> None:
    schema = {
        "ids": {"type": "list", "schema": {"type": "dict", "schema": {"id": {"required": True}}}},
        "grid": {"type": "list", "schema": {"type": "list", "schema": {"type": "integer"}}},
        "labels": {
            "type": "dict",
            "keysrules": {"type": "string", "regex": "[a-z]+"},
            "valuesrules": {"type": "integer", "max": 9},
        },
    }
    assert agree(schema, {"ids": [{"id": 1}, {"id": None}]}) is False
    assert agree(schema, {"ids": [{"id": 1}, {}]}) is False
    assert agree(schema, {"ids": []}) is True
    assert agree(schema, {"grid": [[1, 2], [], [3]]}) is True
    assert agree(schema, {"grid": [[1, "2"]]}) is False
    assert agree(schema, {"labels": {"ab": 1}}) is True
    assert agree(schema, {"labels": {"a1": 1}}) is False
    assert agree(schema, {"labels": {"ab": 10}}) is False


def test_dependencies() -> None:
    schema = {
        "a": {"dependencies": ["b", "c"]},
        "b": {"nullable": True},
        "c": {},
        "d": {"dependencies": {"c": ["x", "y"]}},
        "e": {"dependencies": {"b": [None, 1]}},  # a missing field counts as None
        "f": {"dependencies": "nested.inner"},
        "g": {"dependencies": "c"},
        "nested": {"type": "dict", "schema": {"inner": {"nullable": True}}},
    }
    assert agree(schema, {"a": 1, "b": None, "c": 1}) is True  # present, even as None
    assert agree(schema, {"a": 1, "b": 1}) is False
    assert agree(schema, {"d": 1, "c": "x"}) is True
    assert agree(schema, {"d": 1, "c": "z"}) is False
    assert agree(schema, {"d": 1}) is False
    assert agree(schema, {"e": 1}) is True
    assert agree(schema, {"e": 1, "b": 2}) is False
    assert agree(schema, {"f": 1, "nested": {"inner": None}}) is True
    assert agree(schema, {"f": 1, "nested": {}}) is False
    assert agree(schema, {"g": 1}) is False


def test_dependencies_relative_to_root_and_nested_document() -> None:
    schema = {
        "top": {},
        "sub": {
            "type": "dict",
            "schema": {"x": {"dependencies": "^top"}, "y": {"dependencies": "x"}, "top": {}},
        },
    }
    assert agree(schema, {"top": 1, "sub": {"x": 1}}) is True
    assert agree(schema, {"sub": {"x": 1, "top": 1}}) is False  # ^ is the root
    assert agree(schema, {"top": 1, "sub": {"y": 1}}) is False  # plain names: this document
    assert agree(schema, {"top": 1, "sub": {"x": 1, "y": 1}}) is True


def test_where_cerberus_raises_the_predicate_says_invalid() -> None:
    schema = {"a": {"dependencies": "b.c"}, "b": {"type": ["dict", "string"]}}
    assert cerberus_verdict(schema, {"a": 1, "b": "xcx"}) == "raises"  # "c" in "xcx", then .get
    assert agree(schema, {"a": 1, "b": "xcx"}) is False
    assert agree(schema, {"a": 1, "b": "xyz"}) is False  # plain missing dependency
    assert agree(schema, {"a": 1, "b": {"c": 0}}) is True


def test_excludes_one_of_idiom() -> None:
    # cerberus's "exactly one of": both required, each excluding the other.
    schema = {
        "email": {"required": True, "excludes": "phone", "nullable": True},
        "phone": {"required": True, "excludes": "email"},
    }
    assert agree(schema, {"email": "x"}) is True
    assert agree(schema, {"phone": "1"}) is True
    assert agree(schema, {}) is False
    assert agree(schema, {"email": "x", "phone": "1"}) is False
    # The excluded-but-present field must hold a value for the pair to count.
    assert agree(schema, {"email": None}) is False


def test_excludes_asymmetric() -> None:
    schema = {"a": {"required": True, "excludes": ["b", "zz"]}, "b": {"required": True}}
    assert agree(schema, {"a": 1}) is True  # a required a that excludes b unrequires b
    assert agree(schema, {"b": 1}) is False  # but b alone leaves a missing
    assert agree(schema, {"a": 1, "zz": 1}, allow_unknown=True) is False


def test_readonly_meta_and_normalization_rules() -> None:
    schema = {
        "ro": {"readonly": True, "nullable": True},
        "m": {"meta": {"doc": "x"}, "default": 5, "coerce": int, "type": "integer"},
        "r": {"rename": "s"},
    }
    assert agree(schema, {}) is True
    assert agree(schema, {"ro": 1}) is False
    assert agree(schema, {"ro": None}) is False
    assert agree(schema, {"m": "5"}) is False  # no coercion without normalization
    assert agree(schema, {"r": 1}) is True


def test_not_a_mapping() -> None:
    compiled = compile_schema({"a": {}}, allow_unknown=True)
    assert compiled.is_valid is not None
    assert compiled.is_valid([("a", 1)]) is False
    assert compiled.is_valid(None) is False


# --------------------------------------------------------------------------
# Unsupported rules fall back to cerberus, and say so
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "rules"),
    [
        ({"a": {"anyof": [{"type": "integer"}, {"type": "string"}]}}, {"anyof"}),
        ({"a": {"anyof_type": ["integer", "string"]}}, {"anyof"}),  # expanded first
        ({"a": {"check_with": lambda field, value, error: None}}, {"check_with"}),
        ({"a": {"forbidden": ["x"]}, "b": {"contains": "y"}}, {"forbidden", "contains"}),
        ({"a": {"schema": {"b": {}}}}, {"schema"}),  # no type: dict or list decided at run time
        ({"a": {"type": "list", "schema": {"dependencies": "b"}}, "b": {}}, {"dependencies"}),
    ],
)
def test_unsupported_rules_are_reported(schema: dict[str, Any], rules: set[str]) -> None:
    compiled = compile_schema(schema, allow_unknown=False)
    assert compiled.is_valid is None
    assert compiled.unsupported == rules
    assert all("a" in reason or "b" in reason for reason in compiled.reasons)


def test_mapping_allow_unknown_is_unsupported() -> None:
    compiled = compile_schema({"a": {}}, allow_unknown={"type": "string"})
    assert compiled.unsupported == {"allow_unknown"}


def test_bad_schema_raises_like_cerberus() -> None:
    with pytest.raises(cerberus.SchemaError):
        compile_schema({"a": {"type": "no-such-type"}}, allow_unknown=False)


FALLBACK = ValidatorSpec("v", "odd", {"a": {"type": "integer", "forbidden": [13]}})
COMPILED = ValidatorSpec("v", "*", {"a": {"type": "integer", "max": 9}})


def test_validators_fall_back_and_report() -> None:
    with structlog.testing.capture_logs() as logs:
        validators = Validators([FALLBACK, COMPILED])
    stats = validators.statistics()
    assert stats.compiled == (("v", "*"),)
    assert stats.fallback == {("v", "odd"): frozenset({"forbidden"})}
    assert stats.disagreements == 0
    [entry] = [e for e in logs if e["event"] == "validation.compiler_fallback"]
    assert entry["vendor"] == "v"
    assert entry["event_type"] == "odd"
    assert entry["rules"] == ["forbidden"]
    # Both still validate, with cerberus's messages.
    assert validators.check("v", "odd", {"a": 13}) == [FieldError(("a",), "unallowed value 13")]
    assert validators.check("v", "other", {"a": 10}) == [FieldError(("a",), "max value is 9")]
    assert validators.check("v", "other", {"a": 9}) == []
    assert validators.check("v", "other", [1]) == [FieldError((), "must be a JSON object")]


def test_validators_compiled_check_runs_require_any() -> None:
    spec = ValidatorSpec("v", "*", {"a": {"type": "string"}}, require_any=(("a", "b.c"),))
    validators = Validators([spec])
    assert validators.statistics().compiled == (("v", "*"),)
    assert validators.check("v", None, {"a": "x"}) == []
    assert validators.check("v", None, {"a": ""}) == [
        FieldError((), "at least one of a, b.c is required")
    ]
    assert validators.check("v", None, {"a": 1}) == [FieldError(("a",), "must be of string type")]


def test_validators_log_a_disagreement_and_trust_cerberus(monkeypatch) -> None:
    def always_invalid(schema: Any, *, allow_unknown: Any) -> Compiled:
        return Compiled(lambda doc: False)

    monkeypatch.setattr(router.validation, "compile_schema", always_invalid)
    # And no msgspec type to accept the event first.
    monkeypatch.setattr(router.validation, "compile_typed", lambda schema, **kw: Typed(None))
    validators = Validators([COMPILED])
    with structlog.testing.capture_logs() as logs:
        assert validators.check("v", "*", {"a": 1}) == []
    assert [e["event"] for e in logs] == ["validation.compiler_disagrees"]
    assert logs[0]["log_level"] == "error"
    assert (logs[0]["vendor"], logs[0]["event_type"]) == ("v", "*")
    assert validators.statistics().disagreements == 1


# --------------------------------------------------------------------------
# Differential: compiled == cerberus over generated documents
# --------------------------------------------------------------------------


class Subject:
    """Everything the differential test needs for one spec, built once."""

    def __init__(self, spec: ValidatorSpec):
        self.documents = documents(spec)
        self.validator = SchemaValidator(spec.schema, allow_unknown=spec.allow_unknown)
        self.compiled = compile_schema(spec.schema, allow_unknown=spec.allow_unknown)
        self.validators = Validators([spec])


_SUBJECTS: dict[int, Subject] = {}


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
@settings(max_examples=50, deadline=None, suppress_health_check=SLOW_OK)
@given(data=st.data())
def test_differential(spec: ValidatorSpec, data: st.DataObject) -> None:
    subject = _SUBJECTS.get(id(spec)) or _SUBJECTS.setdefault(id(spec), Subject(spec))
    doc = data.draw(subject.documents, label="document")
    validator = subject.validator
    try:
        expected: bool | None = validator.validate(doc, normalize=False)
    except Exception:
        expected = None  # cerberus raises: the predicate must say invalid

    if subject.compiled.is_valid is not None:
        assert subject.compiled.is_valid(doc) is bool(expected)

    # And the wired-up Validators give exactly cerberus's answer.
    validators = subject.validators
    if expected is None:
        with pytest.raises(Exception):  # noqa: B017 - whatever cerberus raises
            validators.check(spec.vendor, spec.event_type, doc)
    elif expected:
        assert validators.check(spec.vendor, spec.event_type, doc) == missing_any(
            doc, spec.require_any
        )
    else:
        assert validators.check(spec.vendor, spec.event_type, doc) == flatten_errors(
            validator.errors
        )


OWN_SPECS = list(catalog.test_specs())


@pytest.mark.parametrize("spec", OWN_SPECS, ids=[catalog.spec_id(s) for s in OWN_SPECS])
def test_catalog_schemas_compile(spec: ValidatorSpec) -> None:
    """The test schemas use only supported rules, so the differential tests bite."""
    compiled = compile_schema(spec.schema, allow_unknown=spec.allow_unknown)
    assert compiled.is_valid is not None, compiled.reasons


# --------------------------------------------------------------------------
# Differential over random schemas: every supported rule, in any combination
# --------------------------------------------------------------------------


@settings(max_examples=50, deadline=None, suppress_health_check=SLOW_OK)
@given(schema=random_schema(2), allow_unknown=st.booleans(), data=st.data())
def test_differential_random_schemas(
    schema: dict[str, Any], allow_unknown: bool, data: st.DataObject
) -> None:
    try:
        validator = SchemaValidator(schema, allow_unknown=allow_unknown)
    except cerberus.SchemaError:
        return  # not a schema cerberus accepts (an empty regex list...): nothing to compare
    compiled = compile_schema(schema, allow_unknown=allow_unknown)
    assert compiled.is_valid is not None, compiled.reasons
    note(compiled.source)
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
    event("valid" if expected else "invalid")
    assert compiled.is_valid(doc) is expected
