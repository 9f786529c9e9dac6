"""The conscent provider plugin: Conscent's Event Collection API, in and out.

``docs/vendors/conscent.md`` describes the API as the router implements it,
``docs/translation/conscent.md`` the mapping to the canonical event. Every
built-in plugin has the same modules: ``schema`` (``VENDOR``,
``VALIDATORS``), ``codec``, ``ingest`` and ``sink``; this one holds only
the hook implementations.
"""

from __future__ import annotations

from router import hookimpl

from .codec import ConscentCodec
from .ingest import ConscentSource
from .schema import VALIDATORS
from .sink import ConscentSink


@hookimpl
def router_codecs():
    """The Conscent codec."""
    return [ConscentCodec()]


@hookimpl
def router_validators():
    """The Conscent validators, one per event type and ``"*"`` for the rest."""
    return list(VALIDATORS)


@hookimpl
def router_sources():
    """The Conscent ingest API."""
    return [ConscentSource]


@hookimpl
def router_sinks():
    """Delivery to the Conscent API."""
    return [ConscentSink]
