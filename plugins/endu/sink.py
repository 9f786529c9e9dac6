"""Delivery to Endu's "Submit an event" API: one event per request."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from router import URL_OPTION, Sink, SinkRequest

from .ingest import DEFAULT_PATH
from .schema import VENDOR

__all__ = ["DEFAULT_API_KEY_HEADER", "EnduSink"]

#: Endu v2.0 takes ``Authorization: Bearer <API key>``.
DEFAULT_API_KEY_HEADER = "Authorization"

_IDENTITY_FALLBACKS = ["anonymous_id", "persistent_id", "custom_id"]


class EnduSink(Sink):
    """POSTs each event to ``{url}{path}``."""

    kind = VENDOR
    vendor = VENDOR
    options_schema: Mapping[str, Any] = {
        "url": URL_OPTION,
        "path": {"type": "string", "regex": r"/[^?#\s]*"},
        "api_key": {"type": "string", "required": True, "empty": False},
        "api_key_header": {"type": "string", "regex": r"[A-Za-z0-9-]+"},
        "property_id": {"type": "string", "empty": False},
        "organization_id": {"type": "string", "empty": False},
        "override_ids": {"type": "boolean"},
        "type_map": {
            "type": "dict",
            "keysrules": {"type": "string", "empty": False},
            "valuesrules": {"type": "string", "empty": False},
        },
        "user_id_is_c_user_id": {"type": "boolean"},
        "fingerprint_from": {
            "type": "list",
            "schema": {"type": "string", "allowed": _IDENTITY_FALLBACKS},
        },
    }
    max_batch_events = 1
    #: One request per event: no batching wait, and enough requests in flight
    #: to keep up without a batch API.
    delivery_defaults: Mapping[str, Any] = {
        "batch": {"max_events": 1, "max_wait": 0},
        "max_concurrency": 16,
    }

    def request_url(self, options: Mapping[str, Any]) -> str:
        """``{url}{path}``, the path defaulting to Endu's."""
        return options["url"].rstrip("/") + options.get("path", DEFAULT_PATH)

    def request_headers(self, options: Mapping[str, Any]) -> dict[str, str]:
        """JSON, and the API key (as a bearer token under ``Authorization``)."""
        header = options.get("api_key_header", DEFAULT_API_KEY_HEADER)
        key = options["api_key"]
        return {
            "content-type": "application/json",
            header.lower(): f"Bearer {key}" if header.lower() == "authorization" else key,
        }

    def build_request(self, batch: Sequence[bytes]) -> SinkRequest:
        """The call delivering ``batch``: its one event is the body, as encoded."""
        return self.request(bytes(batch[0]))
