"""router.schemajson: cerberus field rules, dependencies and exclusions as JSON Schema."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from router.schemajson import event_schema, events_schema, json_schema
from router.validation import ValidatorSpec


def validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize(
    ("rules", "good", "bad"),
    [
        ({"type": "integer", "nullable": True}, [None, 3], [True, "3", 1.5]),
        ({"type": ["string", "integer"], "min": 0}, ["-1", 0], [-1, None]),
        ({"type": "string", "regex": r"[0-9]{2}\Z"}, ["12"], ["123", "a12", "1"]),
        ({"type": "list", "allowed": ["a", "b"]}, [["a"], []], [["c"], "a"]),
        ({"type": "dict", "keysrules": {"regex": "[a-z]+"}}, [{"ab": 1}], [{"A": 1}]),
        ({"type": "dict", "valuesrules": {"type": "integer"}}, [{"a": 1}], [{"a": "1"}]),
        ({"anyof_type": ["string", "integer"]}, ["a", 1], [1.5, None]),
        ({"noneof": [{"type": "string"}]}, [1], ["a"]),
        ({"items": [{"type": "string"}, {"type": "integer"}]}, [["a", 1]], [["a"], [1, "a"]]),
        ({"type": "string", "empty": False, "maxlength": 2}, ["ab"], ["", "abc"]),
        ({"type": "string", "forbidden": ["x"]}, ["y"], ["x"]),
        # An explicit empty: True exempts "" from minlength and regex.
        ({"type": "string", "empty": True, "minlength": 3, "regex": "a+"}, ["", "aaa"], ["a"]),
        (
            {"type": "list", "allowed": ["a", "bb"], "schema": {"maxlength": 1}},
            [["a"]],
            [["bb"], ["c"]],
        ),
    ],
)
def test_field_rules(rules: dict[str, Any], good: list[Any], bad: list[Any]) -> None:
    check = validator(json_schema({"f": rules}, allow_unknown=False))
    for value in good:
        assert check.is_valid({"f": value}), value
    for value in bad:
        assert not check.is_valid({"f": value}), value


def test_dependencies_excludes_and_unknown_keys() -> None:
    schema = {
        "a": {"type": "string", "dependencies": ["b"]},
        "b": {"type": "string", "excludes": "c"},
        "c": {"type": "string", "dependencies": {"b": ["x"]}},
        "d": {"type": "dict", "allow_unknown": False, "schema": {"e": {"required": True}}},
    }
    check = validator(json_schema(schema))
    assert check.is_valid({"a": "1", "b": "2", "extra": None, "d": {"e": 0}})
    assert not check.is_valid({"a": "1"})
    assert not check.is_valid({"b": "2", "c": "3"})
    assert not check.is_valid({"c": "3"})
    assert not check.is_valid({"d": {"e": 0, "f": 1}})
    assert not check.is_valid({"d": {}})


def test_required_fields_that_exclude_each_other_need_one_of_them() -> None:
    schema = {
        "email": {"type": "string", "required": True, "excludes": "phone"},
        "phone": {"type": "string", "required": True, "excludes": "email"},
        "nested": {
            "type": "dict",
            "schema": {
                "a": {"required": True, "excludes": "b"},
                "b": {"required": True, "excludes": "a"},
            },
        },
    }
    check = validator(json_schema(schema))
    assert check.is_valid({"email": "e"}) and check.is_valid({"phone": "p"})
    assert not check.is_valid({}) and not check.is_valid({"email": "e", "phone": "p"})
    assert check.is_valid({"email": "e", "nested": {"a": 1}})
    assert not check.is_valid({"email": "e", "nested": {}})


def test_types_json_never_holds_match_nothing_unless_nullable() -> None:
    assert not validator(json_schema({"f": {"type": "datetime"}})).is_valid({"f": "2020"})
    nullable = validator(json_schema({"f": {"type": "datetime", "nullable": True}}))
    assert nullable.is_valid({"f": None}) and not nullable.is_valid({"f": "2020"})
    number = json_schema({"f": {"type": ["integer", "float"]}})["properties"]["f"]
    assert number["type"] == "number"


def test_an_untyped_field_refuses_null_and_keeps_its_description() -> None:
    field = json_schema({"f": {"meta": {"description": "the f"}}})["properties"]["f"]
    assert field["description"] == "the f"
    check = validator(json_schema({"f": {"meta": {"description": "the f"}}}))
    assert check.is_valid({"f": 1}) and not check.is_valid({"f": None})


def test_events_schema_picks_the_type_and_falls_back_to_the_catch_all() -> None:
    specs = {
        "a": ValidatorSpec("v", "a", {"n": {"type": "integer", "required": True}}),
        "*": ValidatorSpec("v", "*", {"m": {"type": "string", "required": True}}),
    }
    check = validator(events_schema(specs, "type"))
    assert check.is_valid({"type": "a", "n": 1}) and not check.is_valid({"type": "a", "m": "x"})
    assert check.is_valid({"type": "b", "m": "x"}) and not check.is_valid({"type": "b", "n": 1})
    assert event_schema(specs["a"])["required"] == ["n"]
