"""The Segment HTTP Tracking API as a router source: ``/v1/track``, ``/identify``, ``/page``, ``/batch``."""

from __future__ import annotations

import json
from typing import Any

from router import BadRequest, Envelope, IngestRoute, PayloadTooLarge, Reply, Source

from router_segment.schema import TYPES, VENDOR

#: Segment's limits: 32 KB per call, 500 KB per batch request.
MAX_EVENT_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024


class SegmentSource(Source):
    """Receives calls as Segment's libraries send them; answers ``200 {"success": true}``."""

    vendor = VENDOR
    routes = (
        *(IngestRoute("POST", f"/v1/{kind}", name=kind) for kind in TYPES),
        # Its events are under "batch": validation errors name batch[i].
        IngestRoute("POST", "/v1/batch", name="batch", events_field="batch"),
    )
    # Segment's libraries send the write key as the Basic user name, empty password.
    credential_style = "basic"
    credential_header = "authorization"
    credential_scheme = "basic"
    event_type_field = "type"
    accepted_status = 200
    accepted_schema = {
        "type": "object",
        "required": ["success"],
        "properties": {"success": {"const": True}},
    }
    error_schema = {
        "type": "object",
        "required": ["success", "message"],
        "properties": {"success": {"const": False}, "message": {"type": "string"}},
    }

    def split(self, request, body: Any) -> Envelope:
        if not isinstance(body, dict):
            raise BadRequest("send a JSON object")
        # The route's name, not its path: `paths:` in the config may move a route.
        kind = request.route or request.path.rstrip("/").rsplit("/", 1)[-1]
        if kind == "batch":
            if len(request.body) > MAX_BATCH_BYTES:
                raise PayloadTooLarge(f"a batch is at most {MAX_BATCH_BYTES} bytes")
            events = body.get("batch")
            if not isinstance(events, list) or not events:
                raise BadRequest("batch must be a non-empty array of calls")
            for index, event in enumerate(events):
                if not isinstance(event, dict):
                    raise BadRequest(f"batch[{index}] must be an object")
                if _size(event) > MAX_EVENT_BYTES:
                    raise PayloadTooLarge(
                        f"batch[{index}] is over {MAX_EVENT_BYTES} bytes"
                    )
            return Envelope([_without_key(e) for e in events])
        if len(request.body) > MAX_EVENT_BYTES:
            raise PayloadTooLarge(f"a call is at most {MAX_EVENT_BYTES} bytes")
        given = body.get("type", kind)
        if given != kind:
            raise BadRequest(f"type is {given!r} on /v1/{kind}; post it to /v1/{given}")
        return Envelope([{**_without_key(body), "type": kind}])

    def accepted(self, request, result) -> Reply:
        return Reply(200, {"success": True})

    def error(self, request, error) -> Reply:
        return Reply(
            error.status,
            {"success": False, "message": error.message},
            dict(error.headers),
        )


def _without_key(event: dict[str, Any]) -> dict[str, Any]:
    # A write key sent in the body is a credential: never stored or relayed.
    return {k: v for k, v in event.items() if k != "writeKey"}


def _size(event: Any) -> int:
    return len(json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode())
