"""What a plugin provides to translate: a :class:`Codec` per vendor."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from router.event import Event

__all__ = ["Codec", "Requirement", "resolve_type"]


@dataclass(frozen=True, slots=True)
class Requirement:
    """What one of a vendor's event types needs from a canonical event to be encoded.

    Met when the event has one of ``fields`` (dotted canonical paths such as
    ``identity.user_id``, ``items``) or when the sink option ``option`` is set;
    otherwise the event is dead-lettered and ``fix`` says what to change.
    ``router check`` reads these to report translation coverage without traffic.
    """

    #: What is needed, for people: ``"items"``, ``"a userId"``.
    what: str
    fields: tuple[str, ...]
    #: What to change when it is missing: ``"set the sink option default_item_id"``.
    fix: str
    #: A sink option that, when set, supplies what is needed.
    option: str | None = None
    #: Sink options that make more fields count: option -> fields, or ``None``
    #: for an option whose value lists identity field names (``fingerprint_from``).
    counts_with: Mapping[str, tuple[str, ...] | None] = field(default_factory=dict)
    #: A sink option whose value, when set, lists the identity fields used instead
    #: of ``fields`` (``visitor_id_from``).
    fields_option: str | None = None
    #: Fields whose values may make the event untranslatable (a currency the
    #: vendor does not take); the requirement is met without them or with ``option`` set.
    risky: tuple[str, ...] = ()


def resolve_type(
    type_map: Mapping[str, str] | None,
    event_type: str,
    *,
    default: str | None = None,
) -> str | None:
    """The destination type of ``event_type`` under a sink's ``type_map`` option.

    In order: the ``type_map`` entry for ``event_type``; ``default``; the
    ``"*"`` entry, the operator's catch-all; ``None`` (no type).
    """
    if type_map:
        mapped = type_map.get(event_type)
        if mapped:
            return mapped
    if default:
        return default
    if type_map:
        return type_map.get("*") or None
    return None


class Codec:
    """Translates one vendor's events to and from the canonical event.

    Codecs are stateless and must be pure: the same input gives the same
    output, no I/O, no clock reads beyond the arguments given. The core relies
    on ``encode(decode(raw)) == raw`` for every valid ``raw`` of the same vendor
    (tested with hypothesis), so a relay to the same vendor loses nothing.
    """

    #: The vendor name; also the key of this vendor's validators.
    vendor: ClassVar[str]
    #: This vendor's type for each canonical type it has one for, used when the
    #: sink's ``type_map`` has no entry (see :meth:`resolve_type`).
    default_types: ClassVar[Mapping[str, str]] = {}

    # The declarative tables below describe decode and encode for ``router check``'s
    # translation coverage; ``tests/unit/test_coverage.py`` holds them to the code.

    #: Decoding: each of this vendor's own event types -> the canonical type it decodes to.
    decoded_types: ClassVar[Mapping[str, str]] = {}
    #: Whether type names are open: decode keeps an unknown name as a custom type
    #: and encode sends any type under a name of its own.
    custom_types: ClassVar[bool] = False
    #: Decoding: the canonical fields every event of a type has (key: this vendor's
    #: type, ``"*"`` for custom types); ``"a|b"`` means at least one of them.
    always: ClassVar[Mapping[str, frozenset[str]]] = {}
    #: Decoding: the canonical fields an event of a type may have; ``"*"``: any field.
    #: A field in neither table is never set for that type.
    sometimes: ClassVar[Mapping[str, frozenset[str]]] = {}
    #: Encoding: what each of this vendor's types needs (key ``"*"``: every type).
    needs: ClassVar[Mapping[str, tuple[Requirement, ...]]] = {}

    def resolve_type(
        self,
        event_type: str,
        options: Mapping[str, Any],
        *,
        custom: bool = False,
        default: str | None = None,
    ) -> str | None:
        """This vendor's type for an event of ``event_type``, or ``None`` if it has none.

        In order: the sink option ``type_map``'s entry for ``event_type``;
        ``default`` (the codec's own choice for this event, such as a custom
        type's name for a vendor that takes any type); :attr:`default_types`
        for a canonical type (not ``custom``); ``type_map["*"]``, the
        operator's catch-all. On ``None`` a codec raises ``Untranslatable``
        naming ``type_map``, or applies its own fallback.
        """
        if default is None and not custom:
            default = self.default_types.get(event_type)
        return resolve_type(options.get("type_map"), event_type, default=default)

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
