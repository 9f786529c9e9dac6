"""Delivers batches of Conscent events to ``{url}/collect/event``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from router import URL_OPTION, Sink, SinkRequest

from .codec import TO_CANONICAL
from .schema import EVENT_LOCATIONS, VENDOR

__all__ = ["PRODUCTION_URL", "SANDBOX_URL", "ConscentSink"]

SANDBOX_URL = "https://sandbox-collection.conscent.in"
PRODUCTION_URL = "https://collections.conscent.in"


class ConscentSink(Sink):
    """POSTs ``{"messageBody": [...]}`` with up to ``max_batch_events`` events."""

    kind = VENDOR
    vendor = VENDOR
    options_schema = {
        # The API's base URL; the router appends /collect/event.
        "url": URL_OPTION,
        # clientId of events from other vendors (Conscent's events keep their own).
        "client_id": {"type": "string", "empty": False},
        # Sent as the header api_key_header when set; Conscent documents none.
        "api_key": {"type": "string", "empty": False},
        "api_key_header": {"type": "string", "empty": False, "dependencies": "api_key"},
        # eventLocation when context.location is not one of Conscent's locations.
        "default_event_location": {"type": "string", "allowed": list(EVENT_LOCATIONS)},
        # canonical (or a source's custom) type -> Conscent eventType; overrides the defaults.
        "type_map": {
            "type": "dict",
            "keysrules": {"type": "string", "empty": False},
            "valuesrules": {"type": "string", "allowed": list(TO_CANONICAL)},
        },
    }
    # Conscent documents no batch limit: 1000 is this router's own cap, and the
    # default of 500 (about 150 KB) is bounded in bytes by batch.max_bytes (1 MiB).
    max_batch_events = 1000
    delivery_defaults = {"batch": {"max_events": 500, "max_wait": 0.2}, "max_concurrency": 4}

    def request_url(self, options: Mapping[str, Any]) -> str:
        """``{url}/collect/event``."""
        return options["url"].rstrip("/") + "/collect/event"

    def request_headers(self, options: Mapping[str, Any]) -> dict[str, str]:
        """JSON, and the API key under ``api_key_header`` if one is set."""
        headers = {"content-type": "application/json"}
        if options.get("api_key"):
            header = options.get("api_key_header") or "X-Api-Key"
            headers[header.lower()] = options["api_key"]
        return headers

    def build_request(self, batch: Sequence[bytes]) -> SinkRequest:
        """One call carrying ``batch``; the events are joined, not re-parsed."""
        body = b'{"messageBody":[' + b",".join(batch) + b"]}"
        return self.request(body)
