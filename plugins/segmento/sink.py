"""Delivery to Segmento's "Create User Events" API: ``{"data": [...]}`` with ``authkey``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from router import URL_OPTION, Sink, SinkRequest

from .codec import DEFAULT_VISITOR_ID_FROM
from .schema import VENDOR

__all__ = ["MAX_BATCH_EVENTS", "SegmentoSink"]

#: Events per request at most. MSG91 documents no limit: 1000 is this router's
#: own cap; the default (``delivery_defaults``) is 500, about 250 KB of typical
#: events, and bounded in bytes by ``batch.max_bytes`` (1 MiB). A refused batch is
#: split in halves until the refused events are found, so only they are dead-lettered.
MAX_BATCH_EVENTS = 1000


class SegmentoSink(Sink):
    """POSTs ``{"data": [...]}`` with up to ``max_batch_events`` events to ``url`` as given."""

    kind = VENDOR
    vendor = VENDOR
    options_schema = {
        # The full endpoint URL (Segmento's path includes the account's region).
        "url": URL_OPTION,
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
    delivery_defaults = {"batch": {"max_events": 500}, "max_concurrency": 2}

    def request_headers(self, options: Mapping[str, Any]) -> dict[str, str]:
        """The API key in ``authkey``; JSON both ways."""
        return {
            "authkey": options["api_key"],
            "content-type": "application/json",
            "accept": "application/json",
        }

    def build_request(self, batch: Sequence[bytes]) -> SinkRequest:
        """One call carrying ``batch``; the events are joined, not re-parsed."""
        body = b'{"data":[' + b",".join(batch) + b"]}"
        return self.request(body)
