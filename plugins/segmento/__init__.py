"""The segmento provider plugin: MSG91 Segmento (CDP) user events, in and out."""

from __future__ import annotations

from router import hookimpl

from .codec import SegmentoCodec
from .ingest import SegmentoSource
from .schema import validator_specs
from .sink import SegmentoSink


@hookimpl
def router_codecs():
    return [SegmentoCodec()]


@hookimpl
def router_validators():
    return validator_specs()


@hookimpl
def router_sources():
    return [SegmentoSource]


@hookimpl
def router_sinks():
    return [SegmentoSink]
