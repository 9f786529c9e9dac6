"""Moloco's PostUserEvent API as a router source.

``POST /rmp/event/v1/platforms/<platform>/userevents`` with one ``v1Event`` as
the body and the key in ``x-api-key``. Success is ``200 {}``; every error is a
gRPC ``rpcStatus`` (``{"code", "message", "details"}``) as Moloco's JSON
gateway sends it. See ``docs/vendors/moloco.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from router import (
    BadRequest,
    Envelope,
    Forbidden,
    IngestError,
    IngestRequest,
    IngestResult,
    IngestRoute,
    Reply,
    Source,
    ValidationFailed,
)

from .schema import IDENTITY_FIELDS

__all__ = ["GRPC_CODES", "MolocoSource"]

#: HTTP status -> gRPC status code, as grpc-gateway pairs them. The first six
#: are the statuses of the spec; 405, 408, 413, 431 and 503 are statuses the router's
#: core may answer with, kept as they are (clients and proxies act on them)
#: with the gRPC code a gateway would give.
GRPC_CODES: Mapping[int, int] = {
    400: 3,  # INVALID_ARGUMENT
    401: 16,  # UNAUTHENTICATED
    403: 7,  # PERMISSION_DENIED
    404: 5,  # NOT_FOUND
    429: 8,  # RESOURCE_EXHAUSTED
    500: 13,  # INTERNAL
    405: 12,  # UNIMPLEMENTED (grpc-gateway's code for a wrong method)
    408: 4,  # DEADLINE_EXCEEDED (the body did not arrive in time)
    413: 8,  # RESOURCE_EXHAUSTED (gRPC's code for a message over the size limit)
    431: 8,  # RESOURCE_EXHAUSTED (gRPC's code for metadata over the size limit)
    503: 14,  # UNAVAILABLE
}
#: The gRPC code of any other status: UNKNOWN.
GRPC_UNKNOWN = 2


class MolocoSource(Source):
    """Receives events exactly as Moloco's Event API does.

    Options: ``platforms``, a list of platform names this source accepts
    (default: any); a request for another platform is refused with 403
    PERMISSION_DENIED.
    """

    vendor = "moloco"
    routes = (IngestRoute("POST", "/rmp/event/v1/platforms/<platform>/userevents"),)
    events_field = None
    credential_header = "x-api-key"
    default_on_invalid = "reject"
    options_schema = {
        "platforms": {
            "type": "list",
            "empty": False,
            "schema": {"type": "string", "empty": False},
        },
    }
    #: ``platform``: the path parameter; ``user``: the event's first user id
    #: (Moloco limits "either by platform or by user").
    rate_limit_keys = ("platform", "user")
    event_type_field = "event_type"
    accepted_schema = {"type": "object", "additionalProperties": False}
    #: ``rpcStatus`` of the official spec.
    error_schema = {
        "type": "object",
        "required": ["code", "message", "details"],
        "properties": {
            "code": {"type": "integer", "format": "int32"},
            "message": {"type": "string"},
            "details": {"type": "array", "items": {"type": "object"}},
        },
    }

    def error_statuses(self) -> Mapping[int, str]:
        """403 when the source serves only some ``platforms``."""
        if self.options.get("platforms"):
            return {403: "a platform not in the source's platforms"}
        return {}

    def split(self, request: IngestRequest, body: Any) -> Envelope:
        """The body is one ``v1Event``; the path's platform goes in ``meta``."""
        if not isinstance(body, dict):
            raise BadRequest(
                f"request body must be a JSON object (one v1Event), not {_json_type(body)}"
            )
        return Envelope([body], {"platform": request.path_params.get("platform", "")})

    def authorize(self, request: IngestRequest, envelope: Envelope) -> None:
        """With ``platforms`` set, the path's platform must be one of them."""
        platforms = self.options.get("platforms")
        platform = envelope.meta.get("platform")
        if platforms and platform not in platforms:
            raise Forbidden(f"platform {platform!r} is not served here")

    def rate_limit_key(self, key: str, request: IngestRequest, envelope: Envelope) -> str | None:
        """``platform`` (from the path) and ``user`` (the first of the event's user ids)."""
        if key == "platform":
            return envelope.meta.get("platform") or None
        if key == "user":
            return _user_key(envelope.events[0]) if envelope.events else None
        return None

    def accepted(self, request: IngestRequest, result: IngestResult) -> Reply:
        """200 with an empty JSON object, as PostUserEvent answers."""
        return Reply(200, {})

    def error(self, request: IngestRequest, error: IngestError) -> Reply:
        """A gRPC-gateway status body: ``{code, message, details}``."""
        message = error.message
        if isinstance(error, ValidationFailed) and error.errors:
            message = "invalid event: " + "; ".join(str(e) for _, e in error.errors)
        body = {
            "code": GRPC_CODES.get(error.status, GRPC_UNKNOWN),
            "message": message,
            "details": [],
        }
        return Reply(error.status, body, dict(error.headers))


def _user_key(event: Any) -> str | None:
    """The first non-empty id of ``user_id``, ``device.persistent_id``, ``custom_id``."""
    if not isinstance(event, dict):
        return None
    for path in IDENTITY_FIELDS:
        value: Any = event
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value and isinstance(value, str):
            return f"{path}:{value}"
    return None


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if value is None:
        return "null"
    return type(value).__name__
