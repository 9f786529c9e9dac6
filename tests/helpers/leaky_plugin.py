"""A test vendor that fails in every hook with a credential at hand, for the log-redaction test.

"leaky" speaks ``POST /leaky/events`` with ``{"events": [{"kind": ..., "user": ...}]}``
and the credential in ``x-leaky-key``. The request's ``x-leaky-mode`` header
picks a failure, each with the credential in a local variable and, where it
can, in the exception's message:

- ``split``: ``split`` raises (a plugin bug);
- ``core``: ``credential`` returns bytes, so the core's key check raises (a core bug);
- ``asgi``: ``accepted`` returns a body that cannot be serialized: the error
  escapes the application and hypercorn logs it;
- ``render``: ``error`` raises while rendering an error reply.

An event of kind ``explode`` makes the codec raise. The sink sends the
``signature`` option (declared secret in its schema) in ``x-leaky-signature``
and raises with it when an event's kind is ``raise``, or at construction
when its ``url`` is ``http://refuse.invalid``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

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

__version__ = "0.1"

EVENT_SCHEMA = {
    "kind": {"type": "string", "required": True},
    "user": {"type": "string", "required": True, "empty": False},
}


class LeakyCodec(Codec):
    vendor = "leaky"

    def event_type(self, raw: Any) -> str | None:
        return raw.get("kind") if isinstance(raw, dict) else None

    def decode(
        self, raw: Mapping[str, Any], *, id: str, received_at: int, meta: Mapping[str, Any]
    ) -> Event:
        key = meta.get("key")
        if raw["kind"] == "explode":
            raise RuntimeError(f"leaky codec exploded on key {key}")
        event = Event(
            id=id,
            type="page_view",
            timestamp=received_at,
            received_at=received_at,
            vendor="leaky",
            identity=Identity(user_id=raw["user"]),
        )
        event.properties["kind"] = raw["kind"]
        return event

    def encode(self, event: Event, options: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "kind": event.properties.get("kind", "view"),
            "user": event.identity.user_id or "anonymous",
        }


class LeakySource(Source):
    vendor = "leaky"
    routes = (IngestRoute("POST", "/leaky/events"),)
    events_field = "events"
    credential_header = "x-leaky-key"
    options_schema = {"passphrase": {"type": "string", "meta": {"secret": True}}}

    def credential(self, request):
        key = request.headers.get("x-leaky-key")
        if key and request.headers.get("x-leaky-mode") == "core":
            return key.encode()
        return key

    def split(self, request, body: Any) -> Envelope:
        key = request.headers.get("x-leaky-key", "")
        passphrase = self.options.get("passphrase")
        if request.headers.get("x-leaky-mode") == "split":
            raise RuntimeError(f"leaky split failed for {key} with {passphrase}")
        if not isinstance(body, dict) or not isinstance(body.get("events"), list):
            raise BadRequest("body must be an object with an events array")
        return Envelope(body["events"], {"key": key})

    def accepted(self, request, result) -> Reply:
        if request.headers.get("x-leaky-mode") == "asgi":
            return Reply(202, {"key": request.headers.get("x-leaky-key"), "bad": object()})
        return Reply(202, {"accepted": result.accepted})

    def error(self, request, error) -> Reply:
        if request.headers.get("x-leaky-mode") == "render":
            key = request.headers.get("x-leaky-key")
            raise RuntimeError(f"leaky cannot render an error for {key}")
        return Reply(error.status, {"leaky_error": error.message}, dict(error.headers))


class LeakySink(Sink):
    kind = "leaky"
    vendor = "leaky"
    options_schema = {
        "url": {"type": "string", "required": True},
        "signature": {"type": "string", "required": True, "meta": {"secret": True}},
    }

    def __init__(self, name: str, options: Mapping[str, Any], **kw: Any):
        super().__init__(name, options, **kw)
        if options["url"] == "http://refuse.invalid":
            raise ValueError(f"leaky sink will not start with {options['signature']}")

    async def send(self, batch: Sequence[bytes]) -> None:
        signature = self.options["signature"]
        if any(orjson.loads(event)["kind"] == "raise" for event in batch):
            raise ValueError(f"leaky sink refused to send with {signature}")
        await self.post(
            self.options["url"] + "/ingest",
            content=b'{"events":[' + b",".join(batch) + b"]}",
            headers={"x-leaky-signature": signature, "content-type": "application/json"},
        )


@hookimpl
def router_codecs():
    return [LeakyCodec()]


@hookimpl
def router_validators():
    return [ValidatorSpec("leaky", "*", EVENT_SCHEMA)]


@hookimpl
def router_sources():
    return [LeakySource]


@hookimpl
def router_sinks():
    return [LeakySink]
