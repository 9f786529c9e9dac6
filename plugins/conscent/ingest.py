"""Conscent's Event Collection API: ``POST /collect/event``.

``docs/vendors/conscent.md`` is the contract this module implements.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from router import (
    BadRequest,
    Envelope,
    FieldError,
    Forbidden,
    IngestError,
    IngestRequest,
    IngestResult,
    IngestRoute,
    PayloadTooLarge,
    Quarantine,
    Reply,
    Source,
    Unauthorized,
)

from .schema import VENDOR

__all__ = ["ConscentSource"]

EVENTS_FIELD = "messageBody"


class ConscentSource(Source):
    """Receives ``{"messageBody": [...], "messageHeaders": {...}}`` like Conscent's collector."""

    vendor = VENDOR
    routes = (IngestRoute("POST", "/collect/event"),)
    events_field = EVENTS_FIELD
    default_on_invalid = "reject"
    credential_header = None
    options_schema = {
        # More events than this in one request is a 413 (the body limit counts bytes only).
        "max_events": {"type": "integer", "min": 1, "nullable": True},
    }
    auth_schema = {
        # Every event's clientId must be one of these.
        "client_ids": {
            "type": "list",
            "minlength": 1,
            "schema": {"type": "string", "empty": False},
        },
    }
    rate_limit_keys = ("client_id",)
    event_type_field = "eventType"
    accepted_status = 201
    accepted_schema = {
        "type": "array",
        "description": "one record per event, in request order",
        "items": {
            "type": "object",
            "required": ["headers", "value"],
            "properties": {
                # {} for an accepted event; why, for a quarantined one.
                "headers": {
                    "type": "object",
                    "properties": {
                        "status": {"const": "quarantined"},
                        "message": {"type": "string"},
                    },
                    "additionalProperties": False,
                },
                "value": {"type": "string", "description": "the event as stored, as JSON"},
            },
        },
    }
    error_schema = {
        "type": "object",
        "required": ["error", "message", "statusCode"],
        "properties": {
            "error": {"type": "string"},
            "message": {"type": "string"},
            "statusCode": {"type": "integer"},
        },
    }

    def __init__(
        self, name: str, options: Mapping[str, Any], *, quarantine: Quarantine | None = None
    ):
        super().__init__(name, options, quarantine=quarantine)
        self.max_events: int | None = options.get("max_events")
        auth = options.get("auth")
        client_ids = auth.get("client_ids") if isinstance(auth, Mapping) else None
        self.client_ids: tuple[bytes, ...] | None = (
            tuple(c.encode() for c in client_ids) if client_ids else None
        )

    def split(self, request: IngestRequest, body: Any) -> Envelope:
        """``messageBody`` must be a non-empty array; the rest of the body is ``meta``."""
        if not isinstance(body, dict):
            raise BadRequest("request body must be a JSON object")
        if EVENTS_FIELD not in body:
            raise BadRequest(f"{EVENTS_FIELD} is required")
        events = body[EVENTS_FIELD]
        if not isinstance(events, list):
            raise BadRequest(f"{EVENTS_FIELD} must be an array of events")
        if not events:
            raise BadRequest(f"{EVENTS_FIELD} must not be empty")
        if self.max_events is not None and len(events) > self.max_events:
            raise PayloadTooLarge(
                f"{EVENTS_FIELD} holds {len(events)} events; at most {self.max_events} per request"
            )
        # Both spellings are accepted and kept as sent, with any other top-level key.
        meta = {key: value for key, value in body.items() if key != EVENTS_FIELD}
        for key in ("messageHeaders", "messageheader"):
            if key in meta and not isinstance(meta[key], dict):
                raise BadRequest(f"{key} must be an object")
        return Envelope(events, meta)

    def request_schema(self, event: Mapping[str, Any]) -> Mapping[str, Any]:
        """``messageBody``, a non-empty array of events, and either header spelling."""
        events: dict[str, Any] = {"type": "array", "minItems": 1, "items": event}
        headers = {"type": "object"}
        return {
            "type": "object",
            "required": [EVENTS_FIELD],
            "properties": {
                EVENTS_FIELD: events,
                # Both spellings are accepted (see split).
                "messageHeaders": headers,
                "messageheader": headers,
            },
        }

    def error_statuses(self) -> Mapping[int, str]:
        """413 with ``max_events``, 401 and 403 with ``auth.client_ids``."""
        statuses = {}
        if self.max_events is not None:
            statuses[413] = f"more than {self.max_events} events (max_events)"
        if self.client_ids is not None:
            statuses[401] = "an event without a clientId (auth.client_ids)"
            statuses[403] = "an event whose clientId is not in auth.client_ids"
        return statuses

    def authorize(self, request: IngestRequest, envelope: Envelope) -> None:
        """With ``auth: {client_ids: [...]}``, every event's clientId must be listed."""
        if self.client_ids is None:
            return
        checked: dict[str, bool] = {}
        for index, event in enumerate(envelope.events):
            client_id = event.get("clientId") if isinstance(event, dict) else None
            where = f"{EVENTS_FIELD}[{index}].clientId"
            if not isinstance(client_id, str) or not client_id:
                raise Unauthorized(f"{where}: a client id is required")
            allowed = checked.get(client_id)
            if allowed is None:
                allowed = checked[client_id] = self._allowed(client_id)
            if not allowed:
                raise Forbidden(f"{where}: client id not allowed")

    def _allowed(self, client_id: str) -> bool:
        sent = client_id.encode()
        found = False
        for allowed in self.client_ids or ():
            found |= hmac.compare_digest(sent, allowed)
        return found

    def rate_limit_key(self, key: str, request: IngestRequest, envelope: Envelope) -> str | None:
        """``client_id``: the clientId of the request's first event that has one."""
        if key != "client_id":
            return None
        for event in envelope.events:
            if isinstance(event, dict):
                client_id = event.get("clientId")
                if isinstance(client_id, str) and client_id:
                    return client_id
        return None

    def accepted(self, request: IngestRequest, result: IngestResult) -> Reply:
        """201 with one ``{"headers", "value"}`` record per event, in request order.

        ``value`` is the event as stored, as a JSON string; ``headers`` is ``{}``
        for an accepted event and says why for a quarantined one.
        """
        failed = result.failed
        return Reply(
            201,
            [
                {
                    "headers": _quarantined(index, failed[index]) if index in failed else {},
                    "value": result.event_json(index).decode(),
                }
                for index in range(len(result.envelope.events))
            ],
        )

    def error(self, request: IngestRequest, error: IngestError) -> Reply:
        """``{"error": <HTTP title>, "message": ..., "statusCode": <status>}``."""
        return Reply(
            error.status,
            {"error": error.title, "message": error.message, "statusCode": error.status},
            dict(error.headers),
        )


def _quarantined(index: int, errors: list[FieldError]) -> dict[str, str]:
    """The record headers of a quarantined event: why, worded like a 400's message."""
    where = f"{EVENTS_FIELD}[{index}]"
    return {
        "status": "quarantined",
        "message": "; ".join(
            f"{where}.{error.field}: {error.message}" if error.path else f"{where}: {error.message}"
            for error in errors
        ),
    }
