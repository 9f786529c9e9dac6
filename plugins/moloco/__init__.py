"""The moloco provider plugin: Moloco's Event API (PostUserEvent), in and out.

``docs/vendors/moloco.md`` describes the API as the router implements it,
``docs/translation/moloco.md`` the mapping to the canonical event. Every
built-in plugin has the same modules: ``schema`` (``VENDOR``,
``VALIDATORS``), ``codec``, ``ingest`` and ``sink``; this one holds only
the hook implementations.
"""

from __future__ import annotations

from router import hookimpl

from .codec import MolocoCodec
from .ingest import MolocoSource
from .schema import VALIDATORS
from .sink import MolocoSink


@hookimpl
def router_codecs():
    """The Moloco codec."""
    return [MolocoCodec()]


@hookimpl
def router_validators():
    """The Moloco validators, one per event type and ``"*"`` for the rest."""
    return list(VALIDATORS)


@hookimpl
def router_sources():
    """The Moloco ingest API."""
    return [MolocoSource]


@hookimpl
def router_sinks():
    """Delivery to the Moloco API."""
    return [MolocoSink]
