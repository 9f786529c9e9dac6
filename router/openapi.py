"""The OpenAPI 3.1 document of the running daemon's ingest routes (``GET /openapi.json``).

Built from the configured sources (paths with their prefix, auth, rate
limits) and the cerberus schemas plugins register, translated to JSON Schema
2020-12. The reply shapes come from each :class:`~router.source.Source`'s
declarations (``accepted_status``, ``accepted_schema``, ``error_schema``,
:meth:`~router.source.Source.request_schema`,
:meth:`~router.source.Source.error_statuses`), so a third-party plugin gets a
document without writing one.

The cerberus translation is exact for ``type``, ``required``, ``nullable``,
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

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from router.errors import BadRequest, FieldError, ValidationFailed
from router.source import Envelope, IngestRequest, IngestResult, Reply, Source
from router.validation import ANY_TYPE, ValidatorSpec

if TYPE_CHECKING:
    from router.ingest import SourceRuntime
    from router.source import IngestRoute

__all__ = ["build_document", "event_schema", "events_schema", "infer_schema", "json_schema"]

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
#: The alternative to a valid event where invalid ones are quarantined.
_QUARANTINED = {"description": "an event that fails its schema: quarantined, not refused"}
_PATH_VARIABLE = re.compile(r"<(?:([a-z]+):)?([A-Za-z_][A-Za-z0-9_]*)>")
_COMPONENT_NAME = re.compile(r"[^A-Za-z0-9._-]")


# --------------------------------------------------------------------------
# cerberus -> JSON Schema
# --------------------------------------------------------------------------


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
    out: dict[str, Any] = {}
    parts: list[dict[str, Any]] = []
    names = rules.get("type")
    types: list[str] | None = None
    if names is not None:
        names = [names] if isinstance(names, str) else list(names)
        types = []
        for name in names:
            json_type = _TYPES.get(name)
            if json_type is not None and json_type not in types:
                types.append(json_type)
        if "integer" in types and "number" in types:
            types.remove("integer")
        if not types:
            return {"type": "null"} if rules.get("nullable") else dict(_NOTHING)
        out["type"] = types[0] if len(types) == 1 else types

    # What cerberus skips for an empty value when the field says ``empty: True``.
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
    if rules.get("empty") is False:
        for keyword in ("minLength", "minItems", "minProperties"):
            out[keyword] = max(1, out.get(keyword, 0))
    if "min" in rules and _is_number(rules["min"]):
        out["minimum"] = rules["min"]
    if "max" in rules and _is_number(rules["max"]):
        out["maximum"] = rules["max"]

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
    for operator, keyword in (("anyof", "anyOf"), ("oneof", "oneOf"), ("allof", "allOf")):
        branches = _branches(rules, operator, allow_unknown)
        if branches is not None:
            parts.append({keyword: branches})
    noneof = _branches(rules, "noneof", allow_unknown)
    if noneof is not None:
        parts.append({"not": {"anyOf": noneof}})
    if isinstance(rules.get("meta"), Mapping) and isinstance(rules["meta"].get("description"), str):
        out["description"] = rules["meta"]["description"]

    if parts:
        out["allOf"] = parts
    if rules.get("nullable"):
        return {"anyOf": [{"type": "null"}, out]} if out else {}
    if types is None:
        out.setdefault("allOf", []).append({"not": {"type": "null"}})
    return out


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


# --------------------------------------------------------------------------
# The document
# --------------------------------------------------------------------------


def build_document(
    runtimes: Iterable[SourceRuntime], *, max_body_bytes: int, version: str
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every ingest route of ``runtimes``."""
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {}
    security_schemes: dict[str, Any] = {}
    for runtime in runtimes:
        source = runtime.source
        cls = type(source)
        specs = {t: s for (v, t), s in runtime.validators.specs.items() if v == runtime.vendor}
        vendor = runtime.vendor
        for event_type, spec in specs.items():
            schemas.setdefault(
                _event_component(vendor, event_type), {"title": event_type, **event_schema(spec)}
            )
        event = events_schema(
            specs,
            cls.event_type_field,
            ref=lambda t, v=vendor: {"$ref": f"#/components/schemas/{_event_component(v, t)}"},
        )
        one_event = event
        if runtime.config.on_invalid == "quarantine":
            # Any event is accepted; the reply says which were quarantined.
            one_event = {"anyOf": [event, {**_QUARANTINED}]}
            if cls.events_field is None:
                one_event["anyOf"][1]["type"] = "object"
        security = None
        auth = runtime.config.auth
        if auth is not None and auth.keys and auth.header:
            scheme_name = _component(f"{runtime.name}.credential")
            security_schemes[scheme_name] = _security_scheme(auth.header, cls.credential_scheme)
            security = [{scheme_name: []}]
        for route in cls.routes:
            path = runtime.config.prefix + runtime.config.paths.get(route.name, route.path)
            openapi_path, parameters = _path(path)
            if route.handler is not None:
                query = _query_operation(runtime, route, parameters, security)
                if query is not None:
                    paths.setdefault(openapi_path, {})[route.method.lower()] = query
                continue
            body_schema = source.route_request_schema(route, one_event)
            operation: dict[str, Any] = {
                "operationId": _component(f"{runtime.name}.{route.name}"),
                "summary": f"{route.name} ({runtime.vendor}) of source {runtime.name}",
                "tags": [runtime.name],
                "requestBody": {
                    "required": True,
                    "description": f"at most {max_body_bytes} bytes (server.max_body_bytes)",
                    "content": {"application/json": {"schema": body_schema}},
                },
                "responses": _responses(runtime),
            }
            if parameters:
                operation["parameters"] = parameters
            if security is not None:
                operation["security"] = security
            paths.setdefault(openapi_path, {})[route.method.lower()] = operation
    components: dict[str, Any] = {"schemas": schemas}
    if security_schemes:
        components["securitySchemes"] = security_schemes
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "event router ingest API",
            "version": version,
            "description": "The vendors' ingest APIs this router serves, as configured.",
        },
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "paths": paths,
        "components": components,
    }


def _event_component(vendor: str, event_type: str) -> str:
    return _component(f"{vendor}.{'other' if event_type == ANY_TYPE else event_type}")


def _event_component(vendor: str, event_type: str) -> str:
    return _component(f"{vendor}.{'other' if event_type == ANY_TYPE else event_type}")


def _component(name: str) -> str:
    return _COMPONENT_NAME.sub("_", name)


def _security_scheme(header: str, scheme: str | None) -> dict[str, Any]:
    if scheme is not None and header.lower() == "authorization":
        return {"type": "http", "scheme": scheme}
    return {"type": "apiKey", "in": "header", "name": header}


def _path(path: str) -> tuple[str, list[dict[str, Any]]]:
    """A Quart path as an OpenAPI path template and its path parameters."""
    parameters = [
        {
            "name": match.group(2),
            "in": "path",
            "required": True,
            # The ingest dispatcher matches one path segment.
            "schema": {"type": "string", "pattern": "^[^/]+$"},
        }
        for match in _PATH_VARIABLE.finditer(path)
    ]
    return _PATH_VARIABLE.sub(lambda m: "{" + m.group(2) + "}", path), parameters


def _query_operation(
    runtime: SourceRuntime,
    route: IngestRoute,
    parameters: list[dict[str, Any]],
    security: list[dict[str, list[str]]] | None,
) -> dict[str, Any] | None:
    """A read-only route as its Source describes it, with the core's part added."""
    described = runtime.source.query_operation(route)
    if described is None:
        return None
    operation: dict[str, Any] = {
        "operationId": _component(f"{runtime.name}.{route.name}"),
        "summary": f"{route.name} ({runtime.vendor}) of source {runtime.name}",
        "tags": [runtime.name],
        **described,
    }
    operation["parameters"] = [*parameters, *described.get("parameters", ())]
    responses = dict(described.get("responses", {}))
    error = {"content": {"application/json": {"schema": _reply_shapes(runtime.source)[2]}}}
    extra = {500: "never expected: a bug in the router or a plugin"}
    auth = runtime.config.auth
    if security is not None and auth is not None:
        operation["security"] = security
        extra[401] = f"no credential in {runtime.source.credential_hint()}"
        extra[403] = f"a wrong credential in {runtime.source.credential_hint()}"
    for status, why in extra.items():
        responses.setdefault(str(status), {"description": why, **error})
    operation["responses"] = dict(sorted(responses.items()))
    return operation


def _responses(runtime: SourceRuntime) -> dict[str, Any]:
    source = runtime.source
    limited = runtime.config.rate_limit is not None
    headers: dict[str, Any] = {}
    if limited:
        headers = {
            name: {"description": text, "schema": {"type": "integer"}}
            for name, text in (
                ("X-RateLimit-Limit", "the bucket's size (burst)"),
                ("X-RateLimit-Remaining", "what is left in the bucket"),
                ("X-RateLimit-Reset", "Unix time at which the bucket is full again"),
            )
        }
    retry_after = {"Retry-After": {"description": "seconds", "schema": {"type": "integer"}}}
    statuses: dict[int, str] = {
        400: "malformed JSON or envelope, or an event that fails its schema",
        413: "the body is larger than server.max_body_bytes",
        500: "never expected: a bug in the router or a plugin; nothing was accepted",
        503: "a sink's spool is full or storage failed; nothing was accepted, retry later",
    }
    auth = runtime.config.auth
    if auth is not None and auth.keys:
        statuses[401] = f"no credential in {runtime.source.credential_hint()}"
        statuses[403] = f"a wrong credential in {runtime.source.credential_hint()}"
    if limited:
        statuses[429] = "over the source's rate limit"
    for status, why in source.error_statuses().items():
        statuses[status] = f"{statuses[status]}; {why}" if status in statuses else why

    accepted_status, accepted_schema, error_schema = _reply_shapes(source)
    success: dict[str, Any] = {"description": "accepted", "headers": dict(headers)}
    if accepted_schema is not None:
        success["content"] = {"application/json": {"schema": accepted_schema}}
    responses: dict[str, Any] = {str(accepted_status): success}
    for status in sorted(statuses):
        reply: dict[str, Any] = {
            "description": statuses[status],
            "content": {"application/json": {"schema": error_schema}},
        }
        extra = {**headers, **(retry_after if status in (429, 503) else {})}
        if extra:
            reply["headers"] = extra
        responses[str(status)] = reply
    return responses


def _reply_shapes(source: Source) -> tuple[int, dict[str, Any] | None, dict[str, Any]]:
    """Success status, success body schema and error body schema of a source.

    What the Source class declares, else what its :meth:`~Source.accepted`
    and :meth:`~Source.error` return for sample requests; a method that
    raises on them leaves the generic default (200, any object; the core's
    ``{"error", "message"}``).
    """
    cls = type(source)
    request = IngestRequest("POST", "/", {}, b"{}", request_id="openapi")
    status, accepted = cls.accepted_status, cls.accepted_schema
    if status is None or accepted is None:
        try:
            reply = source.accepted(request, IngestResult(Envelope([{}]), ["0"], {}))
        except Exception:
            reply = Reply(200, {})
        status = status or reply.status
        if accepted is None and reply.body not in (b"", ""):
            accepted = infer_schema(reply.body) if not isinstance(reply.body, bytes | str) else {}
    error = cls.error_schema
    if error is None:
        samples = [
            BadRequest("a sample error"),
            ValidationFailed(
                "a sample field error", errors=[(0, FieldError(("field",), "a sample message"))]
            ),
        ]
        try:
            error = _merge([infer_schema(source.error(request, e).body) for e in samples])
        except Exception:
            error = infer_schema({"error": "", "message": ""})
    return status, None if accepted is None else dict(accepted), dict(error)


def infer_schema(value: Any) -> dict[str, Any]:
    """A JSON Schema of values shaped like ``value`` (its types and keys, not its contents)."""
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "integer"}
    if isinstance(value, float):
        return {"type": "number"}
    if isinstance(value, str):
        return {"type": "string"}
    if value is None:
        return {"type": "null"}
    if isinstance(value, Mapping):
        return {
            "type": "object",
            "required": list(value),
            "properties": {str(k): infer_schema(v) for k, v in value.items()},
        }
    if isinstance(value, list | tuple):
        items = _merge([infer_schema(v) for v in value]) if value else {}
        return {"type": "array", "items": items} if items else {"type": "array"}
    return {}


def _merge(schemas: list[dict[str, Any]]) -> dict[str, Any]:
    """A schema that every one of ``schemas`` fits: keys required by all, types united."""
    if not schemas:
        return {}
    types = {s.get("type") for s in schemas}
    if len(types) != 1 or None in types:
        return {}
    merged = dict(schemas[0])
    if types == {"object"}:
        names = [k for s in schemas for k in s["properties"]]
        merged["properties"] = {
            name: _merge([s["properties"][name] for s in schemas if name in s["properties"]])
            for name in dict.fromkeys(names)
        }
        merged["required"] = [
            k for k in schemas[0]["required"] if all(k in s["required"] for s in schemas)
        ]
    elif types == {"array"}:
        items = [s["items"] for s in schemas if "items" in s]
        merged.pop("items", None)
        if len(items) == len(schemas):
            merged["items"] = _merge(items)
    return merged
