"""The Segmento "Create User Events" API, and its failed-events listing.

``POST /api/v5/segmento/user-events`` takes ``{"data": [event, ...]}`` with
the MSG91 ``authkey`` header. Like Segmento, an invalid event does not fail
its request: it is kept as a failed event (quarantined) with its reasons,
counted in the reply, and listed by ``GET /api/v5/segmento/user-events/failed``.
Bodies follow MSG91's v5 JSON shape (``status``, ``hasError``, ``data``,
``errors``); ``docs/vendors/segmento.md`` documents every one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from router import (
    BadRequest,
    Envelope,
    FieldError,
    IngestError,
    IngestRequest,
    IngestResult,
    IngestRoute,
    Reply,
    Source,
)

from .codec import format_timestamp
from .schema import VENDOR

__all__ = ["DEFAULT_PER_PAGE", "MAX_PER_PAGE", "SegmentoSource"]

#: Failed events per page unless the request or the source options say.
DEFAULT_PER_PAGE = 50
#: The most failed events one page may hold.
MAX_PER_PAGE = 500


class SegmentoSource(Source):
    """``POST /api/v5/segmento/user-events``, and the listing of its failed events.

    Invalid events are quarantined, not refused, and listed at
    ``GET /api/v5/segmento/user-events/failed`` (the one route that reads storage).
    """

    vendor = VENDOR
    routes = (
        IngestRoute("POST", "/api/v5/segmento/user-events", name="ingest"),
        IngestRoute(
            "GET", "/api/v5/segmento/user-events/failed", name="failed", handler="failed_events"
        ),
    )
    events_field = "data"
    credential_header = "authkey"
    default_on_invalid = "quarantine"
    options_schema = {
        "failed_per_page": {"type": "integer", "min": 1, "max": MAX_PER_PAGE},
    }
    event_type_field = "event_name"
    accepted_schema = {
        "type": "object",
        "required": ["status", "hasError", "message", "data"],
        "properties": {
            "status": {"const": "success"},
            "hasError": {"const": False},
            "message": {"type": "string"},
            "data": {
                "type": "object",
                "required": ["accepted", "failed", "failed_events"],
                "properties": {
                    "accepted": {"type": "integer", "minimum": 0},
                    "failed": {"type": "integer", "minimum": 0},
                    "failed_events": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["index", "event_name", "reason"],
                            "properties": {
                                "index": {"type": "integer", "minimum": 0},
                                "event_name": {},
                                "reason": {"type": "string"},
                            },
                        },
                    },
                },
            },
        },
    }
    error_schema = {
        "type": "object",
        "required": ["status", "hasError", "code", "message", "errors"],
        "properties": {
            "status": {"const": "fail"},
            "hasError": {"const": True},
            "code": {"type": "integer"},
            "message": {"type": "string"},
            # Field (``data[2].event_properties.product_id``) -> its messages.
            "errors": {
                "type": "object",
                "additionalProperties": {"type": "array", "items": {"type": "string"}},
            },
        },
    }

    def query_operation(self, route: IngestRoute) -> Mapping[str, Any] | None:
        """``GET …/failed``: its paging parameters and the listing."""
        if route.name != "failed":
            return None
        default = self.options.get("failed_per_page", DEFAULT_PER_PAGE)
        failed_event = {
            "type": "object",
            "required": ["id", "created_at", "event", "error"],
            "properties": {
                "id": {"type": "integer"},
                "created_at": {"type": "string"},
                "event": {"description": "the event as it was sent"},
                "error": {"type": "string"},
            },
        }
        listing = {
            "type": "object",
            "required": ["status", "hasError", "data"],
            "properties": {
                "status": {"const": "success"},
                "hasError": {"const": False},
                "data": {
                    "type": "object",
                    "required": ["total", "page", "per_page", "failed_events"],
                    "properties": {
                        "total": {"type": "integer", "minimum": 0},
                        "page": {"type": "integer", "minimum": 1},
                        "per_page": {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE},
                        "failed_events": {"type": "array", "items": failed_event},
                    },
                },
            },
        }
        return {
            "description": "this source's failed (quarantined) events, oldest first",
            "parameters": [
                _page_parameter("page", 1, 999_999_999),
                _page_parameter("per_page", default, MAX_PER_PAGE),
            ],
            "responses": {
                "200": {
                    "description": "one page of failed events",
                    "content": {"application/json": {"schema": listing}},
                },
                "400": {
                    "description": "page or per_page is not a positive integer in range",
                    "content": {"application/json": {"schema": self.error_schema}},
                },
            },
        }

    def split(self, request: IngestRequest, body: Any) -> Envelope:
        """``data`` must be a non-empty array of events."""
        if not isinstance(body, dict):
            raise _bad("body", "request body must be a JSON object")
        if "data" not in body:
            raise _bad("data", "data is required: an array of events")
        events = body["data"]
        if not isinstance(events, list):
            raise _bad("data", "data must be an array of events")
        if not events:
            raise _bad("data", "data must hold at least one event")
        return Envelope(events)

    def accepted(self, request: IngestRequest, result: IngestResult) -> Reply:
        """200 with Segmento's counts and each failed event's index, name and reason."""
        events = result.envelope.events
        failed = [
            {
                "index": index,
                "event_name": _event_name(events[index]),
                "reason": "; ".join(str(error) for error in errors),
            }
            for index, errors in sorted(result.failed.items())
        ]
        accepted = result.accepted
        return Reply(
            200,
            {
                "status": "success",
                "hasError": False,
                "message": f"{accepted} events accepted, {len(failed)} failed",
                "data": {"accepted": accepted, "failed": len(failed), "failed_events": failed},
            },
        )

    def error(self, request: IngestRequest, error: IngestError) -> Reply:
        """Segmento's ``{status: fail, hasError, code, message, errors}`` body."""
        errors: dict[str, list[str]] = {}
        for index, field_error in error.errors:
            errors.setdefault(self._field(index, field_error), []).append(field_error.message)
        return Reply(
            error.status,
            {
                "status": "fail",
                "hasError": True,
                "code": error.status,
                "message": error.message,
                "errors": errors,
            },
            dict(error.headers),
        )

    async def failed_events(self, request: IngestRequest) -> Reply:
        """``GET …/failed?page=1&per_page=50``: this source's failed events, oldest first."""
        default = self.options.get("failed_per_page", DEFAULT_PER_PAGE)
        try:
            page = _positive(request.query, "page", 1, None)
            per_page = _positive(request.query, "per_page", default, MAX_PER_PAGE)
        except BadRequest as exc:
            return self.error(request, exc)
        total, rows = await self.quarantine.list(
            self.name, offset=(page - 1) * per_page, limit=per_page
        )
        return Reply(
            200,
            {
                "status": "success",
                "hasError": False,
                "data": {
                    "total": total,
                    "page": page,
                    "per_page": per_page,
                    "failed_events": [
                        {
                            "id": row.seq,
                            "created_at": format_timestamp(row.received_at),
                            "event": row.event,
                            "error": "; ".join(row.errors),
                        }
                        for row in rows
                    ],
                },
            },
        )

    def _field(self, index: int | None, error: FieldError) -> str:
        """``data[2].event_properties.product_id``; ``body`` for the request as a whole."""
        if index is None:
            return error.field or "body"
        where = f"{self.events_field}[{index}]"
        return f"{where}.{error.field}" if error.path else where


def _page_parameter(name: str, default: int, most: int) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": most, "default": default},
    }


def _bad(field: str, message: str) -> BadRequest:
    return BadRequest(message, errors=[(None, FieldError((field,), message))])


def _event_name(event: Any) -> Any:
    return event.get("event_name") if isinstance(event, dict) else None


def _positive(query: Any, name: str, default: int, most: int | None) -> int:
    """Query parameter ``name`` as an int from 1 to ``most``; ``default`` if absent."""
    raw = query.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9 or int(raw) < 1:
        raise _bad(name, f"{name} must be a positive integer")
    if most is not None and int(raw) > most:
        raise _bad(name, f"{name} must be at most {most}")
    return int(raw)
