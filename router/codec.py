"""What a plugin provides to translate: a :class:`Codec` per vendor."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from router.event import Event

__all__ = ["Codec"]


class Codec:
    """Translates one vendor's events to and from the canonical event.

    Codecs are stateless and must be pure: the same input gives the same
    output, no I/O, no clock reads beyond the arguments given. The core relies
    on ``encode(decode(raw)) == raw`` for every valid ``raw`` of the same vendor
    (tested with hypothesis), so a relay to the same vendor loses nothing.
    """

    #: The vendor name; also the key of this vendor's validators.
    vendor: ClassVar[str]

    def event_type(self, raw: Any) -> str | None:
        """The vendor's type name of a raw event; selects its validator.

        Return ``None`` if the event has no usable type; the vendor's ``"*"``
        validator then reports what is wrong.
        """
        raise NotImplementedError

    def decode(
        self, raw: Mapping[str, Any], *, id: str, received_at: int, meta: Mapping[str, Any]
    ) -> Event:
        """A valid raw event as a canonical event.

        :param raw: One event that passed its validator.
        :param id: The router's id for it; use the vendor's own id instead if it has one.
        :param received_at: When the router accepted it (ms since epoch, UTC).
        :param meta: ``Envelope.meta`` of the request it came in.
        """
        raise NotImplementedError

    def passthrough(self, options: Mapping[str, Any]) -> bool:
        """Whether ``encode(decode(raw), options) == raw`` for every valid ``raw`` of this vendor.

        When true, a route into a sink of this same vendor (with no filters)
        queues the event as received, skipping decode, encode and the second
        validation. Say true only for sink options that cannot change how the
        vendor's own events are encoded; the round-trip property tests check
        the claim. Default: false (always translate).
        """
        return False

    def encode(self, event: Event, options: Mapping[str, Any]) -> dict[str, Any]:
        """A canonical event as one raw event of this vendor.

        :param options: The destination sink's options (defaults for fields the
            source may lack: client ids, channel, …).
        :raises Untranslatable: if no valid event of this vendor can be made;
            the core dead-letters the event with the reason.
        The core validates the result with this vendor's validators before
        it is queued, so a codec need not re-check its own output.
        """
        raise NotImplementedError
