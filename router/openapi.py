"""The OpenAPI 3.1 document of the running daemon's ingest routes (``GET /openapi.json``).

Built from the configured sources (paths with their prefix, auth, rate
limits) and the cerberus schemas plugins register, translated to JSON Schema
2020-12 by :mod:`router.schemajson` (which lists what is exact and what is
approximated). The reply shapes come from each :class:`~router.source.Source`'s
declarations (``accepted_status``, ``accepted_schema``, ``error_schema``,
:meth:`~router.source.Source.request_schema`,
:meth:`~router.source.Source.error_statuses`), so a third-party plugin gets a
document without writing one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from router.errors import BadRequest, FieldError, ValidationFailed
from router.schemajson import event_schema, events_schema, json_schema
from router.source import Envelope, IngestRequest, IngestResult, Reply, Source
from router.validation import ANY_TYPE

if TYPE_CHECKING:
    from router.ingest import SourceRuntime
    from router.source import IngestRoute

__all__ = ["build_document", "event_schema", "events_schema", "infer_schema", "json_schema"]

#: The alternative to a valid event where invalid ones are quarantined.
_QUARANTINED = {"description": "an event that fails its schema: quarantined, not refused"}
_PATH_VARIABLE = re.compile(r"<(?:([a-z]+):)?([A-Za-z_][A-Za-z0-9_]*)>")
_COMPONENT_NAME = re.compile(r"[^A-Za-z0-9._-]")


def build_document(
    runtimes: Iterable[SourceRuntime], *, max_body_bytes: int, version: str
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every ingest route of ``runtimes``."""
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {}
    security_schemes: dict[str, Any] = {}
    for runtime in runtimes:
        one_event = _one_event(runtime, schemas)
        security = _security(runtime, security_schemes)
        for route in type(runtime.source).routes:
            path = runtime.config.prefix + runtime.config.paths.get(route.name, route.path)
            openapi_path, parameters = _path(path)
            if route.handler is not None:
                operation = _query_operation(runtime, route, parameters, security)
            else:
                operation = _ingest_operation(
                    runtime, route, one_event, parameters, security, max_body_bytes
                )
            if operation is not None:
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


def _one_event(runtime: SourceRuntime, schemas: dict[str, Any]) -> dict[str, Any]:
    """The schema of one event a source takes; adds each event type's to ``schemas``."""
    cls = type(runtime.source)
    vendor = runtime.vendor
    specs = {t: s for (v, t), s in runtime.validators.specs.items() if v == vendor}
    for event_type, spec in specs.items():
        schemas.setdefault(
            _event_component(vendor, event_type), {"title": event_type, **event_schema(spec)}
        )
    event = events_schema(
        specs,
        cls.event_type_field,
        ref=lambda t: {"$ref": f"#/components/schemas/{_event_component(vendor, t)}"},
    )
    if runtime.config.on_invalid != "quarantine":
        return event
    # Any event is accepted; the reply says which were quarantined.
    one_event = {"anyOf": [event, {**_QUARANTINED}]}
    if cls.events_field is None:
        one_event["anyOf"][1]["type"] = "object"
    return one_event


def _security(
    runtime: SourceRuntime, security_schemes: dict[str, Any]
) -> list[dict[str, Any]] | None:
    """The security requirement of a source's routes; adds its scheme to ``security_schemes``."""
    auth = runtime.config.auth
    if auth is None or not auth.keys or not auth.header:
        return None
    scheme_name = _component(f"{runtime.name}.credential")
    security_schemes[scheme_name] = _security_scheme(
        auth.header, type(runtime.source).credential_scheme
    )
    return [{scheme_name: []}]


def _ingest_operation(
    runtime: SourceRuntime,
    route: IngestRoute,
    one_event: dict[str, Any],
    parameters: list[dict[str, Any]],
    security: list[dict[str, Any]] | None,
    max_body_bytes: int,
) -> dict[str, Any]:
    """The operation of one ingest route: its request body and every reply."""
    request_schema = runtime.source.route_request_schema(route, one_event)
    operation: dict[str, Any] = {
        "operationId": _component(f"{runtime.name}.{route.name}"),
        "summary": f"{route.name} ({runtime.vendor}) of source {runtime.name}",
        "tags": [runtime.name],
        "requestBody": {
            "required": True,
            "description": f"at most {max_body_bytes} bytes (server.max_body_bytes)",
            "content": {"application/json": {"schema": request_schema}},
        },
        "responses": _responses(runtime),
    }
    if parameters:
        operation["parameters"] = parameters
    if security is not None:
        operation["security"] = security
    return operation


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
