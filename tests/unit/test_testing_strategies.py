"""router.testing.strategies: generated documents are what they claim, checked by cerberus."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, Phase, find, given, note, settings
from hypothesis import strategies as st

from router.schema import SchemaValidator
from router.testing.strategies import (
    Invalid,
    invalid_documents,
    json_values,
    valid_documents,
    valid_for_spec,
)
from router.validation import ValidatorSpec, missing_any
from tests.helpers.schemadocs import load_catalog

catalog = load_catalog()

#: Nested documents are slow to generate on a loaded 2-core CI box; that is
#: not a problem with the strategies (filtering health checks stay on).
SLOW_OK = [HealthCheck.too_slow]
SPECS = catalog.all_specs()
IDS = [catalog.spec_id(s) for s in SPECS]

_STRATEGIES: dict[tuple[str, int], st.SearchStrategy[Any]] = {}


def cached(kind: str, spec: ValidatorSpec) -> st.SearchStrategy[Any]:
    key = (kind, id(spec))
    if key not in _STRATEGIES:
        if kind == "valid":
            _STRATEGIES[key] = valid_for_spec(spec)
        else:
            _STRATEGIES[key] = invalid_documents(spec.schema, allow_unknown=spec.allow_unknown)
    return _STRATEGIES[key]


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
@settings(max_examples=15, deadline=None, suppress_health_check=SLOW_OK)
@given(data=st.data())
def test_valid_for_spec_is_valid(spec: ValidatorSpec, data: st.DataObject) -> None:
    doc = data.draw(cached("valid", spec))
    validator = SchemaValidator(spec.schema, allow_unknown=spec.allow_unknown)
    assert validator.validate(doc, normalize=False), validator.errors
    assert missing_any(doc, spec.require_any) == []
    orjson.dumps(doc)  # JSON-realistic: encodable as the router would


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
@settings(max_examples=15, deadline=None, suppress_health_check=SLOW_OK)
@given(data=st.data())
def test_invalid_documents_are_invalid(spec: ValidatorSpec, data: st.DataObject) -> None:
    broken = data.draw(cached("invalid", spec))
    assert isinstance(broken, Invalid)
    note(broken.reason)
    validator = SchemaValidator(spec.schema, allow_unknown=spec.allow_unknown)
    assert not validator.validate(broken.document, normalize=False)
    where, _, what = broken.reason.partition(": ")
    assert where and what


SMALL = {
    "name": {"type": "string", "required": True, "regex": "[a-z]+", "maxlength": 8},
    "kind": {"type": "string", "allowed": ["a", "b"]},
    "count": {"type": "integer", "min": 1, "max": 5},
    "note": {"type": "string", "empty": False, "nullable": True},
    "short": {"type": "string", "minlength": 2, "empty": True},
    "tags": {"type": "list", "schema": {"type": "string"}, "maxlength": 2},
    "inner": {"type": "dict", "schema": {"id": {"type": "integer", "required": True}}},
    "ro": {"readonly": True},
    "a": {"dependencies": ["count"]},
    "b": {"excludes": "kind"},
}


def found(strategy: st.SearchStrategy[Any], condition: Any) -> Any:
    """An example satisfying ``condition``, without shrinking it (fast).

    Derandomized, so whether a rare shape is reached does not change from one
    run to the next (a random search of 500 missed ``tags[0]`` now and then).
    """
    quick = settings(
        max_examples=2000,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=SLOW_OK,
        derandomize=True,
    )
    return find(strategy, condition, settings=quick)


def test_valid_documents_vary_presence_and_unknown_keys() -> None:
    docs = valid_documents(SMALL)
    found(docs, lambda d: "kind" in d)
    found(docs, lambda d: "kind" not in d)
    found(docs, lambda d: d.get("note", "") is None)
    found(docs, lambda d: d.get("short") == "")  # empty: True beats minlength
    found(docs, lambda d: set(d) - set(SMALL))  # unknown keys when allowed
    found(docs, lambda d: "inner" in d and isinstance(d["inner"], dict))


@given(valid_documents(SMALL, allow_unknown=False))
@settings(max_examples=30, deadline=None, suppress_health_check=SLOW_OK)
def test_valid_documents_closed(doc: dict[str, Any]) -> None:
    assert set(doc) <= set(SMALL)
    assert "ro" not in doc  # readonly fields never appear
    if "a" in doc:
        assert "count" in doc
    assert not ("b" in doc and "kind" in doc)
    assert SchemaValidator(SMALL).validate(doc, normalize=False)


KINDS = [
    "required",
    "type",
    "nullable",
    "allowed",
    "regex",
    "minlength",
    "maxlength",
    "min",
    "max",
    "empty",
    "unknown",
    "readonly",
    "dependencies",
    "excludes",
]
_ONLY = {kind: invalid_documents(SMALL, allow_unknown=False, only=[kind]) for kind in KINDS}


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=5, deadline=None, suppress_health_check=SLOW_OK)
@given(data=st.data())
def test_invalid_documents_break_the_rule_asked_for(kind: str, data: st.DataObject) -> None:
    broken = data.draw(_ONLY[kind])
    assert broken.reason.split(": ", 1)[1].startswith(kind)
    assert not SchemaValidator(SMALL).validate(broken.document, normalize=False)


def test_invalid_documents_reach_nested_fields() -> None:
    wrong_types = invalid_documents(SMALL, only=["type"])
    for prefix in ("inner.id: type", "tags[0]: type"):
        broken = found(wrong_types, lambda b, p=prefix: b.reason.startswith(p))
        assert not SchemaValidator(SMALL, allow_unknown=True).validate(broken.document)


def test_exactly_one_of_both_ways() -> None:
    schema = {
        "email": {"type": "string", "required": True, "excludes": "phone"},
        "phone": {"type": "string", "required": True, "excludes": "email"},
    }
    docs = valid_documents(schema, allow_unknown=False)
    assert set(found(docs, lambda d: "email" in d)) == {"email"}
    assert set(found(docs, lambda d: "phone" in d)) == {"phone"}


def test_dependencies_mapping_form_pins_the_other_field() -> None:
    schema = {
        "event": {"type": "string", "required": True, "allowed": ["BUY", "VIEW", "SEARCH"]},
        "revenue": {"type": "number", "dependencies": {"event": ["BUY"]}},
    }
    doc = found(valid_documents(schema), lambda d: "revenue" in d)
    assert doc["event"] == "BUY"


def test_valid_for_spec_fills_each_require_any_path() -> None:
    spec = ValidatorSpec(
        "v",
        "*",
        {
            "user_id": {"type": "string", "maxlength": 4},
            "device": {"type": "dict", "schema": {"persistent_id": {"type": "string"}}},
        },
        require_any=(("user_id", "device.persistent_id", "custom.id"),),
    )
    docs = valid_for_spec(spec)
    only_device = {"device"}
    only_custom = {"custom"}
    for doc in (
        found(docs, lambda d: set(d) & {"user_id", "device", "custom"} == only_device),
        found(docs, lambda d: set(d) & {"user_id", "device", "custom"} == only_custom),
        found(docs, lambda d: d.get("user_id")),
    ):
        assert missing_any(doc, spec.require_any) == []


def test_impossible_schemas_say_so() -> None:
    with pytest.raises(ValueError, match="required and readonly"):
        valid_documents({"a": {"required": True, "readonly": True}})
    with pytest.raises(ValueError, match="require_any"):
        valid_for_spec(
            ValidatorSpec(
                "v", "*", {"a": {"type": "integer"}}, require_any=(("b",),), allow_unknown=False
            )
        )
    with pytest.raises(ValueError, match="nothing to break"):
        invalid_documents({"a": {"nullable": True}}, allow_unknown=True)
    with pytest.raises(ValueError, match="nothing to break"):
        invalid_documents({"a": {"type": "string"}}, only=["regex"])


@given(json_values())
@settings(max_examples=50, deadline=None)
def test_json_values_are_json(value: Any) -> None:
    assert orjson.loads(orjson.dumps(value)) == value
