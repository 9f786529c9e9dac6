"""The segmento provider plugin: MSG91 Segmento's (CDP) user events API, in and out.

``docs/vendors/segmento.md`` describes the API as the router implements it,
``docs/translation/segmento.md`` the mapping to the canonical event. Every
built-in plugin has the same modules: ``schema`` (``VENDOR``,
``VALIDATORS``), ``codec``, ``ingest`` and ``sink``; this one holds only
the hook implementations.
"""

from __future__ import annotations

from router import hookimpl

from .codec import SegmentoCodec
from .ingest import SegmentoSource
from .schema import VALIDATORS
from .sink import SegmentoSink


@hookimpl
def router_codecs():
    """The Segmento codec."""
    return [SegmentoCodec()]


@hookimpl
def router_validators():
    """The Segmento validators, one per event type and ``"*"`` for the rest."""
    return list(VALIDATORS)


@hookimpl
def router_sources():
    """The Segmento ingest API."""
    return [SegmentoSource]


@hookimpl
def router_sinks():
    """Delivery to the Segmento API."""
    return [SegmentoSink]
