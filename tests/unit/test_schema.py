"""SchemaValidator: cerberus with JSON's types."""

from __future__ import annotations

import cerberus
import pytest

from router.schema import SchemaValidator


@pytest.mark.parametrize("kind", ["integer", "float"])
def test_a_boolean_is_not_a_number(kind):
    schema = {"n": {"type": kind}}
    assert cerberus.Validator(schema).validate({"n": True})  # what stock cerberus does
    validator = SchemaValidator(schema)
    assert not validator.validate({"n": True})
    assert validator.errors == {"n": [f"must be of {kind} type"]}


@pytest.mark.parametrize(
    ("kind", "value", "valid"),
    [
        ("integer", 3, True),
        ("integer", 3.0, False),
        ("float", 3, True),
        ("float", 3.5, True),
        ("float", "3.5", False),
        ("boolean", True, True),
        ("number", False, False),  # stock cerberus already keeps booleans out of "number"
    ],
)
def test_other_types_keep_their_cerberus_meaning(kind, value, valid):
    assert SchemaValidator({"n": {"type": kind}}).validate({"n": value}) is valid
