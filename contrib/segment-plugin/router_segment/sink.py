"""Segment as a destination: batches to ``/v1/batch`` with the write key as Basic user."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

from router import URL_OPTION, Event, Sink, SinkRequest, Untranslatable

from router_segment.schema import VENDOR
from router_segment.source import MAX_BATCH_BYTES, MAX_EVENT_BYTES

#: What ``{"batch": [...]}`` adds around the events.
_ENVELOPE = len(b'{"batch":[]}')


class SegmentSink(Sink):
    """POSTs ``{"batch": [...]}`` to ``<url>/v1/batch``."""

    kind = VENDOR
    vendor = VENDOR
    options_schema = {
        # https://api.segment.io, or https://events.eu1.segmentapis.com for the EU.
        "url": URL_OPTION,
        "write_key": {"type": "string", "required": True, "empty": False},
    }
    max_batch_events = 2500
    delivery_defaults = {
        # One comma per event besides the envelope: the batch stays under 500 KB.
        "batch": {"max_events": 100, "max_bytes": MAX_BATCH_BYTES - _ENVELOPE - 2500},
    }

    def encode(self, event: Event) -> dict[str, Any]:
        doc = super().encode(event)
        size = len(json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode())
        if size > MAX_EVENT_BYTES:
            raise Untranslatable(
                VENDOR, f"the call is {size} bytes; Segment takes 32 KB"
            )
        return doc

    def build_request(self, batch: Sequence[bytes]) -> SinkRequest:
        token = base64.b64encode(f"{self.options['write_key']}:".encode()).decode()
        return SinkRequest(
            self.options["url"].rstrip("/") + "/v1/batch",
            b'{"batch":[' + b",".join(batch) + b"]}",
            {"content-type": "application/json", "authorization": f"Basic {token}"},
        )
