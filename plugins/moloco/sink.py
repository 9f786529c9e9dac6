"""Delivery to Moloco's Event API: one ``v1Event`` per PostUserEvent request."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from router import Sink

from .schema import CHANNEL_TYPES, CURRENCIES, EVENT_TYPES

__all__ = ["MolocoSink"]


class MolocoSink(Sink):
    """POSTs each event to ``{url}/rmp/event/v1/platforms/{platform}/userevents``.

    ``url`` is the host Moloco's account manager gives (it varies by
    platform), ``api_key`` goes in ``x-api-key``. The codec options
    (``channel_type``, ``currency``, ``unsupported_currency``,
    ``default_item_id``, ``type_map``) are documented in ``docs/vendors/moloco.md``.
    """

    kind = "moloco"
    vendor = "moloco"
    options_schema = {
        "url": {"type": "string", "required": True, "regex": r"https?://[^/?#\s]+(/[^?#\s]*)?"},
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

    def __init__(self, name: str, options: Mapping[str, Any], **kwargs: Any):
        super().__init__(name, options, **kwargs)
        base = options["url"].rstrip("/")
        platform = quote(options["platform"], safe="")
        self.url = f"{base}/rmp/event/v1/platforms/{platform}/userevents"
        self.headers = {"content-type": "application/json", "x-api-key": options["api_key"]}

    def build_request(self, batch: Sequence[bytes]) -> tuple[str, bytes, dict[str, str]]:
        """The ``(url, body, headers)`` of the request delivering ``batch`` (one event)."""
        if len(batch) != 1:
            raise ValueError(f"Moloco takes one event per request, got {len(batch)}")
        return self.url, batch[0], dict(self.headers)

    async def send(self, batch: Sequence[bytes]) -> None:
        url, body, headers = self.build_request(batch)
        await self.post(url, content=body, headers=headers)
