"""An example third-party router plugin: a tiny tracking API and a generic webhook sink.

Everything here goes through the public ``router`` API and the same hooks as
the built-in vendors; the package is found through its ``router.plugins``
entry point (see ``pyproject.toml``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from router import (
    ABSENT,
    BadRequest,
    Codec,
    Envelope,
    Event,
    Identity,
    IngestError,
    IngestRequest,
    IngestResult,
    IngestRoute,
    Reply,
    Sink,
    SinkRequest,
    Source,
    ValidatorSpec,
    field_of,
    hookimpl,
    recall,
    remember,
)

__version__ = "1.0.0"

TRACK_SCHEMA = {
    "event": {"type": "string", "required": True, "empty": False, "maxlength": 64},
    "user": {"type": "string", "required": True, "empty": False},
    "props": {"type": "dict"},
}


_KNOWN = frozenset(TRACK_SCHEMA)


class TrackCodec(Codec):
    """``{"event", "user", "props"}`` <-> canonical: the event name is a custom type.

    ``props: {}`` and no ``props`` decode to the same empty ``properties``;
    which one was sent is noted in ``extras["example"]``, with any field the
    schema does not name, so that encoding gives back exactly what came in.
    """

    vendor = "example"

    def event_type(self, raw: Any) -> str | None:
        return "track"

    def decode(
        self, raw: Mapping[str, Any], *, id: str, received_at: int, meta: Mapping[str, Any]
    ) -> Event:
        props = dict(raw.get("props") or {})
        notes: dict[str, Any] = {}
        # What encode would write from the properties alone: nothing if empty.
        remember(notes, "props", field_of(raw, "props"), props or ABSENT)
        # Fields the API added after this plugin was written: kept, sent back.
        unknown = {k: v for k, v in raw.items() if k not in _KNOWN}
        if unknown:
            notes["fields"] = unknown
        return Event(
            id=id,
            type=raw["event"],
            custom=True,
            timestamp=received_at,
            received_at=received_at,
            vendor=self.vendor,
            identity=Identity(user_id=raw["user"]),
            properties=props,
            extras={self.vendor: notes} if notes else {},
        )

    def passthrough(self, options: Mapping[str, Any]) -> bool:
        """No sink option changes how this vendor's own events are encoded."""
        return True

    def encode(self, event: Event, options: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"event": event.type, "user": event.identity.user_id or ""}
        props = event.properties or ABSENT
        if props is ABSENT:
            # Empty properties: an empty or absent props, as the source sent it.
            props = recall(event.extras.get(self.vendor), "props", ABSENT)
        if props is not ABSENT:
            out["props"] = props
        for name, value in (event.extras.get(self.vendor) or {}).get("fields", {}).items():
            out.setdefault(name, value)
        return out


class TrackSource(Source):
    vendor = "example"
    routes = (IngestRoute("POST", "/example/track"),)
    credential_header = "x-example-key"

    def split(self, request: IngestRequest, body: Any) -> Envelope:
        if not isinstance(body, dict):
            raise BadRequest("send one JSON object per request")
        return Envelope([body])

    def accepted(self, request: IngestRequest, result: IngestResult) -> Reply:
        return Reply(200, {"ok": True, "id": result.ids[0]})

    def error(self, request: IngestRequest, error: IngestError) -> Reply:
        return Reply(error.status, {"ok": False, "error": error.message}, dict(error.headers))


class WebhookSink(Sink):
    """POSTs each batch of canonical events as a JSON array to ``url``."""

    kind = "webhook"
    vendor = None
    options_schema = {
        "url": {"type": "string", "required": True},
        "headers": {"type": "dict", "valuesrules": {"type": "string"}},
    }

    def build_request(self, batch: Sequence[bytes]) -> SinkRequest:
        # The core posts it, retries 5xx and 429, and dead-letters what a 4xx refuses.
        headers = {"content-type": "application/json", **self.options.get("headers", {})}
        return SinkRequest(self.options["url"], b"[" + b",".join(batch) + b"]", headers)


@hookimpl
def router_codecs():
    return [TrackCodec()]


@hookimpl
def router_validators():
    return [ValidatorSpec("example", "track", TRACK_SCHEMA)]


@hookimpl
def router_sources():
    return [TrackSource]


@hookimpl
def router_sinks():
    return [WebhookSink]
