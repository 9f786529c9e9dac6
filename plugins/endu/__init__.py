"""The endu provider plugin: Endu's "Submit an event" API, in and out.

``docs/vendors/endu.md`` describes the API as the router implements it,
``docs/translation/endu.md`` the mapping to the canonical event. Every
built-in plugin has the same modules: ``schema`` (``VENDOR``,
``VALIDATORS``), ``codec``, ``ingest`` and ``sink``; this one holds only
the hook implementations.
"""

from __future__ import annotations

from router import hookimpl

from .codec import EnduCodec
from .ingest import EnduSource
from .schema import VALIDATORS
from .sink import EnduSink


@hookimpl
def router_codecs():
    """The Endu codec."""
    return [EnduCodec()]


@hookimpl
def router_validators():
    """The Endu validators, one per event type and ``"*"`` for the rest."""
    return list(VALIDATORS)


@hookimpl
def router_sources():
    """The Endu ingest API."""
    return [EnduSource]


@hookimpl
def router_sinks():
    """Delivery to the Endu API."""
    return [EnduSink]
