"""An example third-party router plugin: a tiny tracking API and a generic webhook sink.

Everything here goes through the public ``router`` API and the same hooks as
the built-in vendors; the package is found through its ``router.plugins``
entry point (see ``pyproject.toml``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from router import (
    BadRequest,
    Codec,
    Envelope,
    Event,
    Identity,
    IngestRoute,
    Reply,
    Sink,
    Source,
    ValidatorSpec,
    hookimpl,
)

__version__ = "1.0.0"

TRACK_SCHEMA = {
    "event": {"type": "string", "required": True, "empty": False, "maxlength": 64},
    "user": {"type": "string", "required": True, "empty": False},
    "props": {"type": "dict"},
}


_DECODED = ("event", "user", "props")


class TrackCodec(Codec):
    """``{"event", "user", "props"}`` <-> canonical: the event name is a custom type."""

    vendor = "example"

    def event_type(self, raw: Any) -> str | None:
        return "track"

    def decode(
        self, raw: Mapping[str, Any], *, id: str, received_at: int, meta: Mapping[str, Any]
    ) -> Event:
        return Event(
            id=id,
            type=raw["event"],
            custom=True,
            timestamp=received_at,
            received_at=received_at,
            vendor=self.vendor,
            identity=Identity(user_id=raw["user"]),
            properties=dict(raw.get("props") or {}),
            # Unknown fields, and an empty props ({} and absent are two things
            # on the wire), are kept so that the event goes out as it came in.
            extras={self.vendor: {k: v for k, v in raw.items() if k not in _DECODED or v == {}}},
        )

    def encode(self, event: Event, options: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = dict(event.extras.get(self.vendor, {}))
        out.update(event=event.type, user=event.identity.user_id or "")
        if event.properties:
            out["props"] = dict(event.properties)
        return out


class TrackSource(Source):
    vendor = "example"
    routes = (IngestRoute("POST", "/example/track"),)
    credential_header = "x-example-key"

    def split(self, request, body: Any) -> Envelope:
        if not isinstance(body, dict):
            raise BadRequest("send one JSON object per request")
        return Envelope([body])

    def accepted(self, request, result) -> Reply:
        return Reply(200, {"ok": True, "id": result.ids[0]})

    def error(self, request, error) -> Reply:
        return Reply(error.status, {"ok": False, "error": error.message}, dict(error.headers))


class WebhookSink(Sink):
    """POSTs each batch of canonical events as a JSON array to ``url``."""

    kind = "webhook"
    vendor = None
    options_schema = {
        "url": {"type": "string", "required": True},
        "headers": {"type": "dict", "valuesrules": {"type": "string"}},
    }

    async def send(self, batch: Sequence[bytes]) -> None:
        headers = {"content-type": "application/json", **self.options.get("headers", {})}
        await self.post(
            self.options["url"], content=b"[" + b",".join(batch) + b"]", headers=headers
        )


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
