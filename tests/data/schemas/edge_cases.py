"""Schemas that exercise the corners of cerberus's semantics."""

from router.validation import ValidatorSpec

EDGES = {
    "count": {"type": "integer", "min": 0, "max": 10},
    "ratio": {"type": "float", "min": -1.5, "max": 1.5},
    "score": {"type": "number", "nullable": True},
    "flag": {"type": "boolean"},
    "maybe": {"type": "string", "nullable": True, "empty": True, "minlength": 3},
    "code": {"type": "string", "regex": "ab|cd"},
    "nonempty": {"type": "string", "empty": False},
    "tags": {"type": "list", "allowed": ["a", "b", "c"], "maxlength": 3},
    "matrix": {"type": "list", "schema": {"type": "list", "schema": {"type": "integer"}}},
    "labels": {
        "type": "dict",
        "keysrules": {"type": "string", "regex": "[a-z_]+"},
        "valuesrules": {"type": "string", "maxlength": 8},
    },
    "loose": {"type": "dict", "allow_unknown": True, "schema": {"id": {"required": True}}},
    "strict_all": {
        "type": "dict",
        "require_all": True,
        "schema": {"a": {}, "b": {"nullable": True}},
    },
    "either": {"type": ["string", "list"], "minlength": 2},
    "untyped": {"maxlength": 2},
    "when_count": {"type": "string", "dependencies": {"count": [1, 2, 3]}},
    "needs_nested": {"dependencies": "loose.id"},
    "secret": {"readonly": True},
    "legacy": {"type": "string", "meta": {"deprecated": True}, "coerce": str},
}
# The cerberus idiom for "exactly one of": both required, each excludes the other.
ONE_OF = {
    "email": {"type": "string", "required": True, "excludes": "phone", "regex": ".+@.+"},
    "phone": {"type": "string", "required": True, "excludes": "email", "regex": r"\+?[0-9]+"},
    "note": {"type": "string", "nullable": True, "excludes": ["email"]},
}

SPECS = [
    ValidatorSpec("edge", "edges", EDGES, allow_unknown=False),
    ValidatorSpec("edge", "edges_open", EDGES),
    ValidatorSpec("edge", "one_of", ONE_OF, allow_unknown=False),
]
