"""Delivery to Segmento's "Create User Events" API: ``{"data": [...]}`` with ``authkey``."""

from __future__ import annotations

from collections.abc import Sequence

from router import Sink

from .codec import DEFAULT_VISITOR_ID_FROM
from .schema import VENDOR

__all__ = ["MAX_BATCH_EVENTS", "SegmentoSink"]

#: Events per request. MSG91 documents no limit; 100 keeps a request small
#: (a few hundred KiB at most) and a rejected batch cheap to dead-letter.
MAX_BATCH_EVENTS = 100


class SegmentoSink(Sink):
    kind = VENDOR
    vendor = VENDOR
    options_schema = {
        "url": {"type": "string", "required": True, "regex": r"https?://\S+\Z"},
        "api_key": {"type": "string", "required": True, "empty": False},
        "type_map": {
            "type": "dict",
            "keysrules": {"type": "string", "empty": False},
            "valuesrules": {"type": "string", "empty": False},
        },
        "visitor_id_from": {
            "type": "list",
            "empty": False,
            "schema": {
                "type": "string",
                "allowed": [*DEFAULT_VISITOR_ID_FROM, "session_id"],
            },
        },
    }
    max_batch_events = MAX_BATCH_EVENTS
    delivery_defaults = {"batch": {"max_events": MAX_BATCH_EVENTS}, "max_concurrency": 2}

    def build_request(self, batch: Sequence[bytes]) -> tuple[str, bytes, dict[str, str]]:
        """The URL, body and headers of one call carrying ``batch`` (encoded events)."""
        body = b'{"data":[' + b",".join(batch) + b"]}"
        headers = {
            "authkey": self.options["api_key"],
            "content-type": "application/json",
            "accept": "application/json",
        }
        return self.options["url"], body, headers

    async def send(self, batch: Sequence[bytes]) -> None:
        url, body, headers = self.build_request(batch)
        await self.post(url, content=body, headers=headers)
