"""Documents and schemas for the differential tests of the validation backends.

``tests/unit/test_compiler.py`` (compiled predicates) and
``tests/unit/test_typedschema.py`` (msgspec types) compare what they accept
with cerberus over the same generated inputs: every spec of
``tests/data/schemas`` (with the built-in plugins' real specs), and random
schemas that combine every supported rule.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from hypothesis import event, note
from hypothesis import strategies as st

from router.testing.strategies import (
    invalid_documents,
    json_values,
    valid_documents,
    valid_for_spec,
)
from router.validation import ValidatorSpec


def load_catalog() -> Any:
    """``tests/data/schemas`` as a module (``tests.data`` is no package)."""
    path = Path(__file__).parents[1] / "data" / "schemas" / "__init__.py"
    spec = importlib.util.spec_from_file_location("_router_test_schemas", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@st.composite
def perturbed(draw: st.DrawFn, valid: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    """A valid document with one node replaced, removed or added at random."""
    doc = draw(valid)
    nodes: list[tuple[Any, Any]] = []  # (container, key)

    def walk(container: Any) -> None:
        items = container.items() if isinstance(container, dict) else enumerate(container)
        for key, value in list(items):
            nodes.append((container, key))
            if isinstance(value, dict | list):
                walk(value)

    walk(doc)
    containers = [doc] + [c[k] for c, k in nodes if isinstance(c[k], dict)]
    action = draw(st.sampled_from(["replace", "remove", "add"]))
    if action == "add" or not nodes:
        target = draw(st.sampled_from(containers))
        target[draw(st.text(max_size=6))] = draw(json_values(max_leaves=3))
    else:
        container, key = draw(st.sampled_from(nodes))
        if action == "remove" and isinstance(container, dict):
            del container[key]
        else:
            container[key] = draw(json_values(max_leaves=3))
    event(f"perturbed: {action}")
    return doc


def arbitrary(schema: Any) -> st.SearchStrategy[dict[str, Any]]:
    """Random JSON objects using the schema's field names (and others)."""
    keys = st.sampled_from(sorted(schema)) | st.text(max_size=4)
    return st.dictionaries(keys, json_values(max_leaves=6), max_size=6)


def documents(spec: ValidatorSpec) -> st.SearchStrategy[Any]:
    valid = valid_documents(spec.schema, allow_unknown=spec.allow_unknown)
    invalid = invalid_documents(spec.schema, allow_unknown=spec.allow_unknown)

    def tagged(strategy: st.SearchStrategy[Any], tag: str) -> st.SearchStrategy[Any]:
        def mark(doc: Any) -> Any:
            event(tag)
            return doc

        return strategy.map(mark)

    def unwrap(broken: Any) -> Any:
        event("invalid: " + broken.reason.split(": ", 1)[1].split(" ")[0])
        note(f"broken: {broken.reason}")
        return broken.document

    return st.one_of(
        tagged(valid_for_spec(spec), "valid for spec"),
        tagged(valid, "valid"),
        invalid.map(unwrap),
        perturbed(valid),
        tagged(arbitrary(spec.schema), "arbitrary"),
    )


NAMES = ["a", "b", "c", "d"]
PATTERNS = ["a+", "a|b", "[0-9]{2}", "x$", "", ".*", "(ab)?c"]
SCALARS = [0, 1, -1, 2.5, True, False, "", "a", "b", "ab", "x", None]
TYPE_NAMES = ["string", "integer", "float", "number", "boolean", "dict", "list"]
MAPPING_ONLY = ("dependencies", "excludes")


def random_rules(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    names = st.sampled_from(NAMES)
    scalars = st.sampled_from(SCALARS)
    optional: dict[str, st.SearchStrategy[Any]] = {
        "type": st.sampled_from(TYPE_NAMES) | st.lists(st.sampled_from(TYPE_NAMES), max_size=3),
        "nullable": st.booleans(),
        "empty": st.booleans(),
        "allowed": st.lists(st.sampled_from([s for s in SCALARS if s is not None]), max_size=5),
        "regex": st.sampled_from(PATTERNS),
        "minlength": st.integers(0, 3),
        "maxlength": st.integers(0, 3),
        "min": st.sampled_from([0, 1, 1.5, "b"]),
        "max": st.sampled_from([0, 2, 2.5, "b"]),
        "readonly": st.booleans(),
        "required": st.booleans(),
        "dependencies": names
        | st.lists(st.sampled_from([*NAMES, "a.b", "^a", "^^a"]), max_size=2)
        | st.dictionaries(
            st.sampled_from([*NAMES, "a.b"]), scalars | st.lists(scalars, max_size=2), max_size=2
        ),
        "excludes": names | st.lists(names, max_size=2),
    }
    if depth > 0:
        value_rules = random_rules(depth - 1).map(
            lambda r: {k: v for k, v in r.items() if k not in MAPPING_ONLY}
        )
        optional |= {
            "schema_dict": st.deferred(lambda: random_schema(depth - 1)),
            "schema_list": value_rules,
            "keysrules": value_rules,
            "valuesrules": value_rules,
            "allow_unknown": st.booleans(),
            "require_all": st.booleans(),
        }
    return st.fixed_dictionaries({}, optional=optional).map(_place_schema)


def _place_schema(rules: dict[str, Any]) -> dict[str, Any]:
    if "schema_dict" in rules:
        rules.pop("schema_list", None)
        rules.update(schema=rules.pop("schema_dict"), type="dict")
    elif "schema_list" in rules:
        rules.update(schema=rules.pop("schema_list"), type="list")
    return rules


def random_schema(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(st.sampled_from(NAMES), random_rules(depth), max_size=4)


RANDOM_DOCUMENTS = st.dictionaries(
    st.sampled_from(NAMES) | st.text(max_size=2),
    json_values(max_leaves=6) | st.sampled_from(SCALARS),
    max_size=5,
)
