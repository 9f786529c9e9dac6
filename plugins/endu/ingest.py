"""Endu's "Submit an event" API, served by the router.

One event per ``POST``; success is an empty ``200``. The doc gives neither
the path nor an error shape: see ``docs/vendors/endu.md`` ("Decisions").
"""

from __future__ import annotations

from typing import Any

from router import (
    BadRequest,
    Envelope,
    IngestError,
    IngestRequest,
    IngestResult,
    IngestRoute,
    Reply,
    Source,
)

from .schema import VENDOR

__all__ = ["DEFAULT_PATH", "EnduSource"]

#: Where Endu clients post events unless the source's ``paths: {ingest: …}``
#: moves it: the Endu v2.0 API serves under ``/api/`` and the doc's page is
#: ``eventsrecord``.
DEFAULT_PATH = "/api/events/record"


class EnduSource(Source):
    """Receives Endu events as an Endu client sends them."""

    vendor = VENDOR
    routes = (IngestRoute("POST", DEFAULT_PATH, name="ingest"),)
    events_field = None
    default_on_invalid = "reject"
    #: Endu v2.0 clients send ``Authorization: Bearer <API key>``; the core
    #: strips the scheme before the key is compared.
    credential_style = "bearer"
    credential_header = "authorization"
    #: Rate-limit per Endu property or organization (``rate_limit.key``).
    rate_limit_keys = ("property_id", "organization_id")
    event_type_field = "event_type"
    credential_scheme = "bearer"
    error_schema = {
        "type": "object",
        "required": ["success", "error"],
        "properties": {
            "success": {"const": False},
            "error": {
                "type": "object",
                "required": ["code", "title", "message"],
                "properties": {
                    "code": {"type": "integer"},
                    "title": {"type": "string"},
                    "message": {"type": "string"},
                    "fields": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["field", "message"],
                            "properties": {
                                "field": {"type": "string"},
                                "message": {"type": "string"},
                            },
                        },
                    },
                },
            },
        },
    }

    def split(self, request: IngestRequest, body: Any) -> Envelope:
        """The body is one Endu event (an object); an array is refused by name."""
        if isinstance(body, dict):
            return Envelope([body])
        if isinstance(body, list):
            raise BadRequest("Endu takes one event per request: send a JSON object, not an array")
        raise BadRequest("request body must be a JSON object (one Endu event)")

    def rate_limit_key(self, key: str, request: IngestRequest, envelope: Envelope) -> str | None:
        """A top-level string field of the event named in ``rate_limit_keys``."""
        if key not in self.rate_limit_keys or not envelope.events:
            return None
        value = envelope.events[0].get(key)
        return value if isinstance(value, str) and value else None

    def accepted(self, request: IngestRequest, result: IngestResult) -> Reply:
        """Endu: "All responses are empty HTTP 200", quarantined or not."""
        return Reply(200, b"", content_type="text/plain; charset=utf-8")

    def error(self, request: IngestRequest, error: IngestError) -> Reply:
        """Chatsight's error envelope: ``{"success": false, "error": {...}}``."""
        body: dict[str, Any] = {
            "code": error.status,
            "title": error.title,
            "message": error.message,
        }
        if error.errors:
            body["fields"] = [
                {"field": field_error.field, "message": field_error.message}
                for _, field_error in error.errors
            ]
        return Reply(error.status, {"success": False, "error": body}, dict(error.headers))
