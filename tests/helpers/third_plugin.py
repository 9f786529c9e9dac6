"""A third-party plugin that leaves everything it can to the Codec and Sink base classes."""

from __future__ import annotations

import types
from collections.abc import Mapping, Sequence
from typing import Any

from router import Codec, Event, Sink, SinkRequest, hookimpl


class ThirdCodec(Codec):
    """A third-party codec that leaves type_map to the base class."""

    vendor = "third"
    default_types = {"page_view": "VIEW", "purchase": "BUY"}

    def event_type(self, raw: Any) -> str | None:
        return raw.get("t") if isinstance(raw, dict) else None

    def decode(self, raw, *, id, received_at, meta) -> Event:
        return Event(id=id, type="page_view", timestamp=received_at, received_at=received_at,
                     vendor="third")  # fmt: skip

    def encode(self, event: Event, options: Mapping[str, Any]) -> dict[str, Any]:
        return {"t": self.resolve_type(event.type, options, custom=event.custom) or "?"}


class ThirdSink(Sink):
    """A third-party HTTP sink that writes only build_request."""

    kind = "third"
    vendor = "third"
    options_schema = {"url": {"type": "string", "required": True}}

    def build_request(self, batch: Sequence[bytes]) -> SinkRequest:
        body = b"[" + b",".join(batch) + b"]"
        return SinkRequest(self.options["url"] + "/in", body, {"content-type": "application/json"})


class SingleSink(ThirdSink):
    """The same API taking one event per request."""

    kind = "single"
    max_batch_events = 1


class NoRequestSink(Sink):
    """A sink that forgot both build_request and send."""

    kind = "forgetful"


@hookimpl
def router_codecs():
    return [ThirdCodec()]


@hookimpl
def router_sinks():
    return [ThirdSink, SingleSink]


#: ``plugins=THIRD`` for running_daemon, build_config and make_plugin_manager(extra=...).
THIRD = [("third", types.SimpleNamespace(router_codecs=router_codecs, router_sinks=router_sinks))]
