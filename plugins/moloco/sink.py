"""Delivery to Moloco's Event API: one ``v1Event`` per PostUserEvent request."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from router import URL_OPTION, Sink, SinkRequest

from .schema import CHANNEL_TYPES, CURRENCIES, EVENT_TYPES, VENDOR

__all__ = ["MolocoSink"]


class MolocoSink(Sink):
    """POSTs each event to ``{url}/rmp/event/v1/platforms/{platform}/userevents``.

    ``url`` is the host Moloco's account manager gives (it varies by
    platform), ``api_key`` goes in ``x-api-key``. The codec options
    (``channel_type``, ``currency``, ``unsupported_currency``,
    ``default_item_id``, ``type_map``) are documented in ``docs/vendors/moloco.md``.
    """

    kind = VENDOR
    vendor = VENDOR
    options_schema = {
        "url": URL_OPTION,
        "api_key": {"type": "string", "required": True, "empty": False},
        "platform": {"type": "string", "required": True, "empty": False},
        "channel_type": {
            "type": "string",
            "allowed": [c for c in CHANNEL_TYPES if c != "UNKNOWN_CHANNEL_TYPE"],
        },
        "currency": {"type": "string", "allowed": CURRENCIES},
        "unsupported_currency": {"type": "string", "allowed": ["reject", "unknown"]},
        "default_item_id": {"type": "string", "empty": False},
        "type_map": {
            "type": "dict",
            "keysrules": {"type": "string", "empty": False},
            "valuesrules": {"type": "string", "allowed": EVENT_TYPES},
        },
    }
    #: PostUserEvent takes exactly one event.
    max_batch_events = 1
    #: One event per request, so throughput comes from parallel requests;
    #: Moloco answers 429 when a platform or user sends too fast, and the core
    #: then pauses the sink.
    delivery_defaults = {"max_concurrency": 16}

    def request_url(self, options: Mapping[str, Any]) -> str:
        """``{url}/rmp/event/v1/platforms/{platform}/userevents``."""
        platform = quote(options["platform"], safe="")
        return f"{options['url'].rstrip('/')}/rmp/event/v1/platforms/{platform}/userevents"

    def request_headers(self, options: Mapping[str, Any]) -> dict[str, str]:
        """JSON, and the API key in ``x-api-key``."""
        return {"content-type": "application/json", "x-api-key": options["api_key"]}

    def build_request(self, batch: Sequence[bytes]) -> SinkRequest:
        """The call delivering ``batch``: its one event is the body, as encoded."""
        return self.request(bytes(batch[0]))
