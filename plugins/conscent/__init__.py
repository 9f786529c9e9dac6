"""The conscent provider plugin: Conscent's Event Collection API in and out.

``docs/vendors/conscent.md`` describes the API as the router implements it,
``docs/translation/conscent.md`` the mapping to the canonical event.
"""

from __future__ import annotations

from router import hookimpl

from .codec import ConscentCodec
from .ingest import ConscentSource
from .schema import VALIDATORS
from .sink import ConscentSink


@hookimpl
def router_codecs():
    return [ConscentCodec()]


@hookimpl
def router_validators():
    return list(VALIDATORS)


@hookimpl
def router_sources():
    return [ConscentSource]


@hookimpl
def router_sinks():
    return [ConscentSink]
