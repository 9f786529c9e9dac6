"""A small vendor used by the core's tests, so they do not depend on real vendors.

"sample" speaks ``POST /sample/events`` with ``{"events": [{"kind": ..., "user":
..., "n": int}]}``; its sink posts ``{"events": [...]}`` to ``{url}/ingest``
with an ``x-sample-key`` header. Its codec raises on ``kind == "explode"`` so
tests can prove that a plugin bug on one event does not take the daemon down.
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
    Untranslatable,
    ValidatorSpec,
    hookimpl,
)

__version__ = "1.2.3"

EVENT_SCHEMA = {
    "kind": {"type": "string", "required": True, "allowed": ["view", "buy", "explode", "odd"]},
    "user": {"type": "string", "required": True, "empty": False},
    "n": {"type": "integer", "min": 0},
}


class SampleCodec(Codec):
    vendor = "sample"

    def event_type(self, raw: Any) -> str | None:
        return raw.get("kind") if isinstance(raw, dict) else None

    def decode(
        self, raw: Mapping[str, Any], *, id: str, received_at: int, meta: Mapping[str, Any]
    ) -> Event:
        if raw["kind"] == "explode":
            raise RuntimeError("sample codec exploded")
        event = Event(
            id=id,
            type={"view": "page_view", "buy": "purchase"}.get(raw["kind"], "odd"),
            timestamp=received_at,
            received_at=received_at,
            vendor="sample",
            identity=Identity(user_id=raw["user"]),
        )
        if "n" in raw:
            event.properties["n"] = raw["n"]
        return event

    def encode(self, event: Event, options: Mapping[str, Any]) -> dict[str, Any]:
        kind = {"page_view": "view", "purchase": "buy"}.get(event.type)
        if kind is None:
            raise Untranslatable("sample", f"no sample kind for {event.type}", field="type")
        out: dict[str, Any] = {"kind": kind, "user": event.identity.user_id}
        if "n" in event.properties:
            out["n"] = event.properties["n"]
        return out


class SampleSource(Source):
    vendor = "sample"
    routes = (IngestRoute("POST", "/sample/events"),)
    events_field = "events"
    credential_header = "x-sample-key"

    def split(self, request, body: Any) -> Envelope:
        if not isinstance(body, dict) or not isinstance(body.get("events"), list):
            raise BadRequest("body must be an object with an events array")
        return Envelope(body["events"])

    def accepted(self, request, result) -> Reply:
        return Reply(202, {"accepted": result.accepted, "failed": len(result.failed)})

    def error(self, request, error) -> Reply:
        return Reply(error.status, {"sample_error": error.message}, dict(error.headers))


class SampleSink(Sink):
    kind = "sample"
    vendor = "sample"
    options_schema = {"url": {"type": "string", "required": True}, "api_key": {"type": "string"}}

    async def send(self, batch: Sequence[bytes]) -> None:
        await self.post(
            self.options["url"] + "/ingest",
            content=b'{"events":[' + b",".join(batch) + b"]}",
            headers={
                "x-sample-key": self.options.get("api_key", ""),
                "content-type": "application/json",
            },
        )


@hookimpl
def router_codecs():
    return [SampleCodec()]


@hookimpl
def router_validators():
    return [ValidatorSpec("sample", "*", EVENT_SCHEMA)]


@hookimpl
def router_sources():
    return [SampleSource]


@hookimpl
def router_sinks():
    return [SampleSink]
