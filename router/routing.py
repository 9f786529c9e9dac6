"""Routing: which sinks an event goes to, and its payload for each.

A route connects sources to sinks, optionally filtered by canonical event
type and by simple field matches (``{"context.channel": ["app", "site"]}``).
Translation happens here, at ingest, through the destination's codec; the
result is checked against the destination vendor's validators, so an event
that cannot become a valid destination event is dead-lettered with the
reason instead of being sent malformed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from router.config import RouteConfig
from router.errors import Untranslatable
from router.event import Event
from router.queue import SinkQueue
from router.sink import Sink
from router.validation import Validators

__all__ = ["Encoded", "Failed", "Route", "SinkTarget", "event_field"]


@dataclass(frozen=True, slots=True)
class Encoded:
    payload: bytes


@dataclass(frozen=True, slots=True)
class Failed:
    """An event that cannot be delivered to a sink: ``code`` for metrics, ``reason`` for people."""

    code: str
    reason: str


class SinkTarget:
    """A sink as ingest sees it: its encoder and its queue."""

    def __init__(
        self,
        name: str,
        sink: Sink,
        queue: SinkQueue,
        validators: Validators,
        *,
        when_full: str = "block",
    ):
        self.name = name
        self.when_full = when_full
        self.sink = sink
        self.queue = queue
        self.vendor = type(sink).vendor
        self.codec = sink.codec
        self.validators = validators

    def takes_as_is(self, vendor: str) -> bool:
        """Whether events of ``vendor`` can be queued for this sink exactly as received.

        True for a sink of the same vendor whose codec guarantees that its own
        events pass through its options unchanged (``Codec.passthrough``), and
        that does not de-duplicate (dedup keys on the vendor's own event id,
        which only decoding finds).
        """
        return (
            self.vendor == vendor
            and self.codec is not None
            and self.codec.passthrough(self.sink.options)
            and self.queue.dedup_window is None
        )

    def encode(self, event: Event) -> Encoded | Failed:
        """The payload for this sink, or why there can be none."""
        try:
            doc = self.sink.encode(event)
        except Untranslatable as exc:
            field = f" (field {exc.field})" if exc.field else ""
            return Failed("untranslatable", f"{exc.vendor}: {exc.reason}{field}")
        except Exception as exc:  # a codec bug: dead-letter this event, keep serving
            return Failed(
                "plugin_error", f"{self.vendor or 'sink'} codec raised {type(exc).__name__}: {exc}"
            )
        if self.codec is not None:
            try:
                event_type = self.codec.event_type(doc)
            except Exception as exc:
                return Failed("plugin_error", f"{self.vendor} event_type raised {exc!r}")
            errors = self.validators.check(self.vendor, event_type, doc)
            if errors:
                return Failed(
                    "invalid_for_destination",
                    f"{self.vendor}: " + "; ".join(str(e) for e in errors),
                )
        try:
            return Encoded(orjson.dumps(doc))
        except TypeError as exc:
            return Failed("plugin_error", f"{self.vendor} codec returned non-JSON data: {exc}")


class Route:
    """One configured route from the point of view of one source."""

    def __init__(self, config: RouteConfig, targets: Sequence[SinkTarget]):
        self.config = config
        self.targets = tuple(targets)
        self.types = config.types
        self.match = tuple(
            (tuple(path.split(".")), tuple(v) if isinstance(v, list) else (v,))
            for path, v in config.match.items()
        )
        self.unfiltered = self.types is None and not self.match

    def matches(self, event: Event) -> bool:
        if self.unfiltered:
            return True
        if self.types is not None and event.type not in self.types:
            return False
        return all(event_field(event, path) in allowed for path, allowed in self.match)


def event_field(event: Any, path: Sequence[str]) -> Any:
    """The value at a dotted path of an event (attributes, then dict keys); None if absent."""
    value = event
    for part in path:
        value = value.get(part) if isinstance(value, Mapping) else getattr(value, part, None)
        if value is None:
            return None
    return value
