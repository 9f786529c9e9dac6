"""Cerberus schemas as JSON Schema 2020-12, for ``/openapi.json`` (:mod:`router.openapi`).

The translation is exact for ``type``, ``required``, ``nullable``,
``empty``, ``allowed``, ``forbidden``, ``min``/``max``,
``minlength``/``maxlength``, ``schema`` (dict and list), ``keysrules``,
``valuesrules``, ``allow_unknown``, ``require_all``, ``items``, ``contains``,
``readonly``, plain ``dependencies`` and ``excludes`` (with the ``required``
fields they relax), explicit ``empty: True`` (which lifts the length, regex
and allowed rules from an empty value), and ``require_any``.
Approximated, because JSON Schema cannot say it:

* ``integer`` also admits ``1.0`` (JSON Schema counts it as an integer; the
  router, like Python, does not);
* ``regex`` is anchored at both ends with ECMA-262's ``$``, so the trailing
  newline Python's ``$`` lets through is refused; ``\\d``/``\\w`` are ASCII;
* ``anyof``/``oneof``/``allof``/``noneof`` branches are checked besides the
  field's other rules, not merged with them (a branch cannot override them);
* dotted or ``^`` paths in ``dependencies`` are left out;
* ``allowed`` compares as JSON, so ``true`` does not match an allowed ``1``;
* rules with no JSON Schema meaning (``check_with``, normalization rules) are
  left out, and a source without ``event_type_field`` gets every type's
  schema as alternatives (``anyOf``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from router.validation import ANY_TYPE, ValidatorSpec

__all__ = ["event_schema", "events_schema", "json_schema"]

#: Cerberus type names and the JSON Schema types they stand for; the others
#: (``binary``, ``date``, ``datetime``, ``set``) never come out of JSON.
_TYPES = {
    "string": "string",
    "integer": "integer",
    "float": "number",
    "number": "number",
    "boolean": "boolean",
    "dict": "object",
    "list": "array",
}
_SCALARS = {"string", "integer", "number", "boolean"}
#: Matches no JSON value.
_NOTHING: dict[str, Any] = {"not": {}}
#: A value ``require_any`` counts as present (the ``_ABSENT`` of router.validation).
_PRESENT: dict[str, Any] = {"not": {"enum": [None, "", [], {}]}}


def json_schema(
    schema: Mapping[str, Any], *, allow_unknown: bool | Mapping[str, Any] = True
) -> dict[str, Any]:
    """The JSON Schema of documents a cerberus mapping ``schema`` accepts."""
    return _mapping(schema, allow_unknown, False)


def event_schema(spec: ValidatorSpec) -> dict[str, Any]:
    """The JSON Schema of one event type: its cerberus schema and its ``require_any`` groups."""
    out = json_schema(spec.schema, allow_unknown=spec.allow_unknown)
    groups = [{"anyOf": [_path_present(path) for path in group]} for group in spec.require_any]
    if groups:
        out["allOf"] = [*out.get("allOf", ()), *groups]
    return out


def events_schema(
    specs: Mapping[str, ValidatorSpec], type_field: str | None, ref: Any = None
) -> dict[str, Any]:
    """One event of a vendor: the schema of its type, chosen by ``type_field``.

    Mirrors ``Validators.check``: an event whose type has no spec of its own
    (or none at all) is checked by the ``"*"`` spec, and with no ``"*"`` spec
    any object is valid. ``ref(event_type)`` may turn each type's schema into
    a ``$ref``.
    """
    schema_of = ref or (lambda t: event_schema(specs[t]))
    typed = sorted(t for t in specs if t != ANY_TYPE)
    other = schema_of(ANY_TYPE) if ANY_TYPE in specs else {"type": "object"}
    if not typed:
        return other
    if type_field is None:
        return {"anyOf": [*(schema_of(t) for t in typed), other]}
    branches = [
        {
            "title": t,
            "allOf": [
                {"properties": {type_field: {"const": t}}, "required": [type_field]},
                schema_of(t),
            ],
        }
        for t in typed
    ]
    untyped = {"not": {"properties": {type_field: {"enum": typed}}, "required": [type_field]}}
    branches.append({"title": "other", "allOf": [untyped, other]})
    return {"oneOf": branches}


def _path_present(path: str) -> dict[str, Any]:
    """``a.b`` holds a non-empty value: nested objects down to it."""
    *parents, last = path.split(".")
    schema: dict[str, Any] = {"type": "object", "required": [last], "properties": {last: _PRESENT}}
    for part in reversed(parents):
        schema = {"type": "object", "required": [part], "properties": {part: schema}}
    return schema


def _mapping(
    schema: Mapping[str, Any], allow_unknown: bool | Mapping[str, Any], require_all: bool
) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    required: list[str] = []
    dependent_required: dict[str, list[str]] = {}
    dependent_schemas: dict[str, Any] = {}
    for name, rules in schema.items():
        if not isinstance(name, str) or not isinstance(rules, Mapping):
            continue
        properties[name] = _field(rules, allow_unknown)
        if rules.get("readonly"):
            properties[name] = _NOTHING
        elif rules.get("required", require_all):
            required.append(name)
        _dependencies(name, rules.get("dependencies"), dependent_required, dependent_schemas)
        excludes = rules.get("excludes")
        if excludes is not None:
            others = [excludes] if isinstance(excludes, str) else list(excludes)
            dependent_schemas.setdefault(name, {"allOf": []})["allOf"].append(
                {"not": {"anyOf": [{"required": [other]} for other in others]}}
            )
    # Cerberus: a present required field that excludes another required one
    # makes that one optional.
    excluded_by: dict[str, list[str]] = {}
    for name in required:
        excludes = schema[name].get("excludes")
        for other in [excludes] if isinstance(excludes, str) else list(excludes or ()):
            if other in required:
                excluded_by.setdefault(other, []).append(name)
    out: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        out["required"] = [name for name in required if name not in excluded_by]
        if not out["required"]:
            del out["required"]
    if excluded_by:
        out["allOf"] = [
            {"anyOf": [{"required": [name]}, *({"required": [f]} for f in by)]}
            for name, by in excluded_by.items()
        ]
    if allow_unknown is False:
        out["additionalProperties"] = False
    elif isinstance(allow_unknown, Mapping):
        out["additionalProperties"] = _field(allow_unknown, True)
    if dependent_required:
        out["dependentRequired"] = dependent_required
    if dependent_schemas:
        out["dependentSchemas"] = dependent_schemas
    return out


def _dependencies(
    name: str,
    dependencies: Any,
    dependent_required: dict[str, list[str]],
    dependent_schemas: dict[str, Any],
) -> None:
    """``dependencies`` of field ``name``; dotted and ``^`` paths are not expressible."""
    if dependencies is None:
        return
    if isinstance(dependencies, str):
        dependencies = [dependencies]
    if isinstance(dependencies, Mapping):
        plain = {k: v for k, v in dependencies.items() if _plain(k)}
        if plain:
            dependent_schemas.setdefault(name, {"allOf": []})["allOf"].append(
                {
                    "required": list(plain),
                    "properties": {
                        k: {"enum": list(v) if isinstance(v, list | tuple) else [v]}
                        for k, v in plain.items()
                    },
                }
            )
        return
    plain_names = [d for d in dependencies if isinstance(d, str) and _plain(d)]
    if plain_names:
        dependent_required[name] = plain_names


def _plain(path: Any) -> bool:
    return isinstance(path, str) and "." not in path and not path.startswith("^")


def _field(rules: Mapping[str, Any], allow_unknown: bool | Mapping[str, Any]) -> dict[str, Any]:
    """The JSON Schema of one field's value under cerberus ``rules``."""
    types = _json_types(rules.get("type"))
    if types == []:  # only types JSON never holds
        return {"type": "null"} if rules.get("nullable") else dict(_NOTHING)
    out: dict[str, Any] = {}
    if types is not None:
        out["type"] = types[0] if len(types) == 1 else types
    parts: list[dict[str, Any]] = []
    _sized(rules, types, allow_unknown, out, parts)
    if rules.get("empty") is False:
        for keyword in ("minLength", "minItems", "minProperties"):
            out[keyword] = max(1, out.get(keyword, 0))
    if "min" in rules and _is_number(rules["min"]):
        out["minimum"] = rules["min"]
    if "max" in rules and _is_number(rules["max"]):
        out["maximum"] = rules["max"]
    _nested(rules, types, allow_unknown, out, parts)
    parts += _alternatives(rules, allow_unknown)
    if isinstance(rules.get("meta"), Mapping) and isinstance(rules["meta"].get("description"), str):
        out["description"] = rules["meta"]["description"]
    if parts:
        out["allOf"] = parts
    if rules.get("nullable"):
        return {"anyOf": [{"type": "null"}, out]} if out else {}
    if types is None:
        out.setdefault("allOf", []).append({"not": {"type": "null"}})
    return out


def _json_types(names: Any) -> list[str] | None:
    """The JSON Schema types of cerberus ``type`` names (``number`` covers ``integer``)."""
    if names is None:
        return None
    names = [names] if isinstance(names, str) else list(names)
    types: list[str] = []
    for name in names:
        json_type = _TYPES.get(name)
        if json_type is not None and json_type not in types:
            types.append(json_type)
    if "integer" in types and "number" in types:
        types.remove("integer")
    return types


def _sized(
    rules: Mapping[str, Any],
    types: list[str] | None,
    allow_unknown: bool | Mapping[str, Any],
    out: dict[str, Any],
    parts: list[dict[str, Any]],
) -> None:
    """The rules cerberus skips for an empty value when the field says ``empty: True``:
    ``allowed``, ``forbidden``, the lengths, ``regex`` and ``items``."""
    sized: dict[str, Any] = {}
    sized_parts: list[dict[str, Any]] = []
    if "allowed" in rules:
        allowed = list(rules["allowed"])
        if types is not None and set(types) <= _SCALARS:
            sized["enum"] = allowed
        elif types == ["array"]:
            sized["items"] = {"enum": allowed}
        else:
            # Cerberus checks the members of a list (and the keys of a dict) instead.
            sized_parts.append(
                {
                    "anyOf": [
                        {"type": "array", "items": {"enum": allowed}},
                        {"type": "object", "propertyNames": {"enum": allowed}},
                        {"enum": allowed},
                    ]
                }
            )
    if "forbidden" in rules:
        sized_parts.append({"not": {"enum": list(rules["forbidden"])}})
    if "minlength" in rules:
        n = rules["minlength"]
        sized.update(minLength=n, minItems=n, minProperties=n)
    if "maxlength" in rules:
        n = rules["maxlength"]
        sized.update(maxLength=n, maxItems=n, maxProperties=n)
    if isinstance(rules.get("regex"), str):
        sized["pattern"] = _ecma_pattern(rules["regex"])
    if isinstance(rules.get("items"), Sequence) and not isinstance(rules["items"], str):
        items = [_field(r, allow_unknown) for r in rules["items"] if isinstance(r, Mapping)]
        sized.update(prefixItems=items, minItems=len(items), maxItems=len(items))
    if rules.get("empty") is True and (sized or sized_parts):
        if sized_parts:
            sized["allOf"] = sized_parts
        parts.append({"anyOf": [{"enum": ["", [], {}]}, sized]})
    else:
        out.update(sized)
        parts.extend(sized_parts)


def _nested(
    rules: Mapping[str, Any],
    types: list[str] | None,
    allow_unknown: bool | Mapping[str, Any],
    out: dict[str, Any],
    parts: list[dict[str, Any]],
) -> None:
    """The rules on what a value holds: ``schema``, ``keysrules``, ``valuesrules``, ``contains``."""
    nested_unknown = rules.get("allow_unknown", allow_unknown)
    sub = rules.get("schema")
    if isinstance(sub, Mapping):
        as_list = types == ["array"] or (types is None and _is_rule_set(sub))
        if as_list:
            items = _field(sub, nested_unknown)
            if "items" in out:  # the members' ``allowed`` too
                parts.append({"items": items})
            else:
                out["items"] = items
        else:
            mapping = _mapping(sub, nested_unknown, bool(rules.get("require_all")))
            mapping.pop("type")
            parts.extend(mapping.pop("allOf", ()))
            out.update(mapping)
    if isinstance(rules.get("keysrules"), Mapping):
        out["propertyNames"] = _field(rules["keysrules"], allow_unknown)
    if isinstance(rules.get("valuesrules"), Mapping):
        # In a subschema of its own, so it covers the named properties too.
        parts.append({"additionalProperties": _field(rules["valuesrules"], allow_unknown)})
    if "contains" in rules:
        wanted = rules["contains"]
        wanted = wanted if isinstance(wanted, list | tuple) else [wanted]
        parts.extend({"contains": {"const": value}} for value in wanted)


def _alternatives(
    rules: Mapping[str, Any], allow_unknown: bool | Mapping[str, Any]
) -> list[dict[str, Any]]:
    """``anyof``, ``oneof``, ``allof`` and ``noneof`` (and their ``*of_<rule>`` shortcuts)."""
    parts: list[dict[str, Any]] = []
    for operator, keyword in (("anyof", "anyOf"), ("oneof", "oneOf"), ("allof", "allOf")):
        branches = _branches(rules, operator, allow_unknown)
        if branches is not None:
            parts.append({keyword: branches})
    noneof = _branches(rules, "noneof", allow_unknown)
    if noneof is not None:
        parts.append({"not": {"anyOf": noneof}})
    return parts


def _branches(
    rules: Mapping[str, Any], operator: str, allow_unknown: bool | Mapping[str, Any]
) -> list[dict[str, Any]] | None:
    """The branches of ``anyof`` and the like, with ``anyof_type``-style shortcuts expanded."""
    definitions: list[Mapping[str, Any]] = []
    if isinstance(rules.get(operator), Sequence):
        definitions += [d for d in rules[operator] if isinstance(d, Mapping)]
    prefix = operator + "_"
    for key, values in rules.items():
        if key.startswith(prefix) and isinstance(values, Sequence):
            definitions += [{key[len(prefix) :]: value} for value in values]
    if not definitions:
        return None
    return [_field(definition, allow_unknown) for definition in definitions]


def _is_rule_set(schema: Mapping[str, Any]) -> bool:
    """Whether an untyped ``schema`` rule holds one rule set (a list's) or fields (a dict's)."""
    return any(not isinstance(value, Mapping) for value in schema.values()) or "type" in schema


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _ecma_pattern(regex: str) -> str:
    """Cerberus's match-at-start-and-end as an ECMA-262 search pattern."""
    body = regex.replace(r"\Z", "$").replace(r"\A", "^")
    return f"^(?:{body})$"
